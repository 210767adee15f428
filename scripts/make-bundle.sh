#!/usr/bin/env bash
# Signed firmware update bundles (docs/appliance.md, "Updates").
#   scripts/make-bundle.sh [--fail-health-check|--crash-after-commit] [--version-suffix S] BOARD OUT
#       Packs the rootfs that scripts/build-image.sh BOARD staged (IMAGE_OUT/work-BOARD/rootfs)
#       into a squashfs, with the version VERSION+S, and signs it into the bundle OUT.
#       Test flags (tests/image_update.rs; never in an image build-image.sh makes):
#       --fail-health-check: that firmware fails its trial health check and must roll back;
#       --crash-after-commit: it passes its trial and commits, then exits with an error at
#       every start, so hakoden-start must fall back to the previous slot.
#   scripts/make-bundle.sh --pubkey
#       Prints the public key (64 hex digits) the image carries in /etc/hakoden/update.pub.
# The signing key is HAKODEN_SIGNING_KEY (Ed25519, PKCS#8 PEM), default
# target/images/dev-signing.key, generated when missing: a development key. A product build sets
# HAKODEN_SIGNING_KEY to its release key and keeps it off the build machine's disk otherwise.
# Bundle layout: firmware/update/bundle.rs. Needs openssl, mksquashfs, sha256sum, xxd.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR="${IMAGE_OUT:-$REPO/target/images}"
# Not under IMAGE_OUT: check-reproducible.sh builds into a scratch IMAGE_OUT and must get the
# same key, hence the same image.
KEY="${HAKODEN_SIGNING_KEY:-$REPO/target/images/dev-signing.key}"

ensure_key() {
    if [ ! -f "$KEY" ]; then
        mkdir -p "$(dirname "$KEY")"
        (umask 077 && openssl genpkey -algorithm ed25519 -out "$KEY")
        echo "make-bundle: generated a development signing key $KEY" >&2
    fi
}

pubkey() {  # the last 32 bytes of the DER SubjectPublicKeyInfo are the Ed25519 key
    openssl pkey -in "$KEY" -pubout -outform DER | tail -c 32 | xxd -p -c 64
}

if [ "${1:-}" = --pubkey ]; then
    ensure_key
    pubkey
    exit 0
fi

FAIL=0
CRASH=0
SUFFIX=""
while [ $# -gt 0 ]; do
    case "$1" in
        --fail-health-check) FAIL=1; shift ;;
        --crash-after-commit) CRASH=1; shift ;;
        --version-suffix) SUFFIX="$2"; shift 2 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
BOARD="${1:-}"
OUT="${2:-}"
if [ -z "$BOARD" ] || [ -z "$OUT" ]; then
    echo "usage: $0 [--fail-health-check|--crash-after-commit] [--version-suffix S] BOARD OUT | $0 --pubkey" >&2
    exit 2
fi
STAGED="$OUT_DIR/work-$BOARD/rootfs"
[ -d "$STAGED" ] || { echo "no staged rootfs at $STAGED: run scripts/build-image.sh $BOARD first" >&2; exit 1; }
ensure_key

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || echo 1767225600)
fi
export SOURCE_DATE_EPOCH TZ=UTC LC_ALL=C
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cp -a "$STAGED" "$T/rootfs"
R="$T/rootfs"
version="$(cat "$R/etc/hakoden/version")$SUFFIX"
echo "$version" >"$R/etc/hakoden/version"
sed -i "s/^VERSION_ID=.*/VERSION_ID=$version/" "$R/etc/os-release"
if [ "$FAIL" = 1 ]; then
    echo "this firmware fails its trial health check on purpose (tests)" >"$R/etc/hakoden/test-fail-health-check"
fi
if [ "$CRASH" = 1 ]; then
    echo "this firmware crashes once committed, on purpose (tests)" >"$R/etc/hakoden/test-crash-after-commit"
fi
find "$R" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mksquashfs "$R" "$T/rootfs.sqfs" -comp zstd -all-root -noappend -no-progress -quiet >/dev/null

size=$(stat -c %s "$T/rootfs.sqfs")
sha=$(sha256sum "$T/rootfs.sqfs" | cut -d' ' -f1)
printf '{"format":1,"version":"%s","board":"%s","size":%s,"sha256":"%s"}' "$version" "$BOARD" "$size" "$sha" >"$T/manifest"
mlen=$(stat -c %s "$T/manifest")
{ printf 'HAKOBND1'; printf '%08x' "$mlen" | xxd -r -p; cat "$T/manifest"; } >"$T/signed"
openssl pkeyutl -sign -inkey "$KEY" -rawin -in "$T/signed" -out "$T/sig"
[ "$(stat -c %s "$T/sig")" = 64 ] || { echo "openssl gave no Ed25519 signature" >&2; exit 1; }
cat "$T/signed" "$T/sig" "$T/rootfs.sqfs" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "make-bundle: $OUT: $version for $BOARD, firmware $size bytes, sha256 ${sha:0:16}$([ "$FAIL" = 1 ] && echo ', FAILS its health check (test)')$([ "$CRASH" = 1 ] && echo ', CRASHES once committed (test)')"
