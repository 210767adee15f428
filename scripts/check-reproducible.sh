#!/usr/bin/env bash
# Rebuilds the image of BOARD from the same firmware binary into a scratch directory and
# compares it with target/images/hakoden-BOARD.img: the image assembly must be bit-for-bit
# reproducible (docs/appliance.md, "Reproducible"). Run after scripts/build-image.sh BOARD.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOARD="${1:-qemu-virt-aarch64}"
. "$REPO/board/$BOARD/profile"
OUT="${IMAGE_OUT:-$REPO/target/images}"
first="$OUT/hakoden-$BOARD.img.sha256"
[ -f "$first" ] || { echo "no $first: run scripts/build-image.sh $BOARD first" >&2; exit 1; }
bin="${CARGO_TARGET_DIR:-$REPO/target}/$RUST_TARGET/appliance/hakoden"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/cache"
# The package cache is shared so the second build downloads nothing.
cp -l "$OUT"/cache/*.deb "$scratch/cache/" 2>/dev/null || cp "$OUT"/cache/*.deb "$scratch/cache/"
IMAGE_OUT="$scratch" IMAGE_SKIP_DEPS=1 HAKODEN_BIN="$bin" bash "$REPO/scripts/build-image.sh" "$BOARD" | tail -n 1
a=$(cut -d' ' -f1 "$first")
b=$(cut -d' ' -f1 "$scratch/hakoden-$BOARD.img.sha256")
if [ "$a" != "$b" ]; then
    echo "NOT reproducible: $a vs $b" >&2
    for p in initrd.gz rootfs.sqfs boot.vfat data.ext4; do
        cmp -s "$OUT/work-$BOARD/$p" "$scratch/work-$BOARD/$p" || echo "  $p differs" >&2
    done
    exit 1
fi
echo "reproducible: both builds sha256 $a"
