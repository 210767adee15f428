#!/usr/bin/env bash
# Builds the appliance image for a board: scripts/build-image.sh BOARD
#   BOARD = qemu-virt-aarch64 | raspberry-pi-4 | generic-armv7 (board/BOARD/profile)
# Output: target/images/hakoden-BOARD.img (GPT: boot | rootfs_a | rootfs_b | data) and its
# .sha256. Installs what it needs when missing (scripts/image-deps.sh). The same sources give
# the same image: every timestamp is SOURCE_DATE_EPOCH (the commit's time), inputs are sorted,
# UUIDs and seeds are fixed (docs/appliance.md, "Reproducible").
# Environment: CARGO_TARGET_DIR (cargo's), IMAGE_OUT (default target/images),
#   HAKODEN_BIN (use this binary instead of building one), IMAGE_SKIP_DEPS=1.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOARD="${1:-}"
if [ -z "$BOARD" ] || [ ! -f "$REPO/board/$BOARD/profile" ]; then
    echo "usage: $0 BOARD   (boards: $(cd "$REPO/board" && ls -d */ | tr -d / | tr '\n' ' '))" >&2
    exit 2
fi
# shellcheck source=/dev/null
. "$REPO/board/$BOARD/profile"
# shellcheck source=image-deps.sh
. "$REPO/scripts/image-deps.sh"

OUT="${IMAGE_OUT:-$REPO/target/images}"
WORK="$OUT/work-$BOARD"
CACHE="$OUT/cache"
IMG="$OUT/hakoden-$BOARD.img"
START=$SECONDS
progress() { printf '[build-image %s %3ss] %s\n' "$BOARD" "$((SECONDS - START))" "$*"; }

# Fixed identities: a rebuilt image must not differ in a random UUID. The values are
# arbitrary but must stay stable (the stage-1 init finds partitions by name, not by UUID).
DISK_GUID="6b1d3f3a-48a1-4c5e-9a43-0d15ea5e0001"
PART_GUIDS=(6b1d3f3a-48a1-4c5e-9a43-0d15ea5e0011 6b1d3f3a-48a1-4c5e-9a43-0d15ea5e0012
            6b1d3f3a-48a1-4c5e-9a43-0d15ea5e0013 6b1d3f3a-48a1-4c5e-9a43-0d15ea5e0014)
DATA_FS_UUID="6b1d3f3a-48a1-4c5e-9a43-0d15ea5e0024"
DATA_HASH_SEED="6b1d3f3a-48a1-4c5e-9a43-0d15ea5e0034"
BOOT_VOLID="4b0d0001"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || echo 1767225600)
fi
export SOURCE_DATE_EPOCH
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
export TZ=UTC LC_ALL=C

if [ "${IMAGE_SKIP_DEPS:-0}" != 1 ]; then
    progress "host tools"
    image_deps
    image_rust_target "$RUST_TARGET"
fi

# 1. The firmware, cross-compiled.
if [ -n "${HAKODEN_BIN:-}" ]; then
    BIN="$HAKODEN_BIN"
    progress "firmware: using $BIN"
else
    progress "firmware: cargo build --profile appliance --target $RUST_TARGET"
    target_env=$(echo "$RUST_TARGET" | tr 'a-z-' 'A-Z_')
    rustflags="--remap-path-prefix=$REPO=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
    [ "${RUST_STATIC:-0}" = 1 ] && rustflags="$rustflags -C target-feature=+crt-static"
    env "CARGO_TARGET_${target_env}_LINKER=$CROSS_CC" "CC_$(echo "$RUST_TARGET" | tr '-' '_')=$CROSS_CC" \
        "CARGO_TARGET_${target_env}_RUSTFLAGS=$rustflags" \
        cargo build --manifest-path "$REPO/Cargo.toml" --profile appliance --target "$RUST_TARGET" --bin hakoden
    BIN="${CARGO_TARGET_DIR:-$REPO/target}/$RUST_TARGET/appliance/hakoden"
fi
[ -x "$BIN" ] || { echo "no firmware binary at $BIN" >&2; exit 1; }

# 2. Kernel and busybox from Debian packages (cached by file name).
rm -rf "$WORK"
mkdir -p "$WORK" "$CACHE"
fetch_deb() {  # fetch_deb PACKAGE:ARCH -> path of the .deb in the cache
    # The cache holds several architectures: the file name's arch suffix must match.
    local pkg="$1" deb pattern
    pattern="${pkg%%:*}_*_${pkg##*:}.deb"
    deb=$(cd "$CACHE" && ls $pattern 2>/dev/null | sort | tail -n1 || true)
    if [ -z "$deb" ]; then
        (cd "$CACHE" && apt_download "$pkg" >&2)
        deb=$(cd "$CACHE" && ls $pattern | sort | tail -n1)
    fi
    echo "$CACHE/$deb"
}
# armhf cannot be added to dpkg here (its index breaks apt-get update); it is read through a
# private apt state with bookworm main only.
APT_PRIVATE=()
if [ "$DEB_ARCH" = armhf ]; then
    priv="$OUT/apt-armhf"
    mkdir -p "$priv/lists/partial" "$priv/cache/archives/partial"
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    printf 'deb [arch=armhf signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
        "$codename" >"$priv/sources.list"
    APT_PRIVATE=(-o "APT::Architectures::=armhf" -o "Dir::State::Lists=$priv/lists"
                 -o "Dir::Cache=$priv/cache" -o "Dir::Etc::SourceList=$priv/sources.list"
                 -o "Dir::Etc::SourceParts=/nonexistent" -o "Dir::State::status=$priv/status")
    touch "$priv/status"
    if [ ! -f "$priv/updated" ]; then
        progress "apt: private armhf index"
        apt-get "${APT_PRIVATE[@]}" update -qq && touch "$priv/updated"
    fi
fi
# The cache is root's; apt's _apt sandbox user cannot write there.
apt_download() { apt-get "${APT_PRIVATE[@]}" -o APT::Sandbox::User=root download -q "$1"; }
kpkg=$(apt-cache "${APT_PRIVATE[@]}" depends "$KERNEL_META:$DEB_ARCH" | awk '/Depends: linux-image/{print $2; exit}')
[ -n "$kpkg" ] || { echo "cannot resolve the kernel package of $KERNEL_META:$DEB_ARCH" >&2; exit 1; }
progress "packages: $kpkg busybox-static:$DEB_ARCH"
kdeb=$(fetch_deb "$kpkg")
bdeb=$(fetch_deb "busybox-static:$DEB_ARCH")
dpkg-deb -x "$kdeb" "$WORK/kern"
dpkg-deb -x "$bdeb" "$WORK/bb"
KVER=$(ls "$WORK/kern/lib/modules" | head -n1)
KIMAGE=$(ls "$WORK/kern/boot"/vmlinuz-* | head -n1)
depmod -b "$WORK/kern" "$KVER"
BUSYBOX="$WORK/bb/bin/busybox"

# 3. Stage 1 initramfs: busybox, the board's modules (with dependencies), the slot picker.
progress "stage-1 initramfs (kernel $KVER)"
S1="$WORK/stage1"
mkdir -p "$S1/bin" "$S1/etc" "$S1/lib/modules/$KVER"
cp "$BUSYBOX" "$S1/bin/busybox"
cp "$REPO/images/stage1/init" "$S1/init"
: >"$S1/etc/modules.order"
for m in $STAGE1_MODULES; do
    # --show-depends lists a module's dependencies first, itself last; built-ins say "builtin".
    modprobe -d "$WORK/kern" -S "$KVER" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}' |
        while read -r ko; do
            rel="${ko#"$WORK/kern"}"
            if ! grep -qx "$rel" "$S1/etc/modules.order"; then
                mkdir -p "$S1/$(dirname "$rel")"
                cp "$ko" "$S1/$rel"
                echo "$rel" >>"$S1/etc/modules.order"
            fi
        done
done
{ echo "ROOT_DISK=\"$ROOT_DISK\""; echo "WATCHDOG_MODULE=\"$WATCHDOG_MODULE\""; echo "WATCHDOG_ARGS=\"$WATCHDOG_ARGS\""; } >"$S1/etc/board"

pack_cpio() {  # pack_cpio DIR OUT: sorted, fixed owners and times
    find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    (cd "$1" && find . | sort | cpio --quiet --reproducible -o -H newc --owner=0:0) | gzip -9n >"$2"
}
pack_cpio "$S1" "$WORK/initrd.gz"

# 4. The rootfs of a slot: busybox init, hakoden, default configuration, board facts.
progress "rootfs (squashfs)"
R="$WORK/rootfs"
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,run,tmp,data,root,usr/bin,usr/sbin,var}
cp -a "$REPO/images/rootfs/." "$R/"
cp "$BUSYBOX" "$R/bin/busybox"
for a in $(cat "$REPO/images/busybox-applets"); do ln -sf busybox "$R/bin/$a"; done
for a in init reboot halt poweroff; do ln -sf ../bin/busybox "$R/sbin/$a"; done
ln -sf /run "$R/var/run"
cp "$BIN" "$R/usr/bin/hakoden"
sed -i "s/@CONSOLE_TTY@/$CONSOLE_TTY/" "$R/etc/inittab"
cp "$REPO/board/$BOARD/profile" "$R/etc/hakoden/board"
version=$(cd "$REPO" && echo "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)")
echo "$version" >"$R/etc/hakoden/version"
printf 'NAME=Hakoden\nID=hakoden\nVERSION_ID=%s\nBOARD=%s\n' "$version" "$BOARD" >"$R/etc/os-release"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
# The key update bundles must be signed with (scripts/make-bundle.sh, HAKODEN_SIGNING_KEY).
IMAGE_OUT="$OUT" "$REPO/scripts/make-bundle.sh" --pubkey >"$R/etc/hakoden/update.pub"
# shellcheck source=image-dropbear.sh
. "$REPO/scripts/image-dropbear.sh"
image_add_dropbear "$R"
# The test flags of make-bundle.sh (a firmware that fails its health check or crashes once
# committed) belong in test bundles only, never in an image.
for flag in "$R"/etc/hakoden/test-*; do
    [ -e "$flag" ] && { echo "test flag $flag in the image rootfs: refusing to build" >&2; exit 1; }
done
find "$R" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mksquashfs "$R" "$WORK/rootfs.sqfs" -comp zstd -all-root -noappend -no-progress -quiet >/dev/null
# (mksquashfs takes every timestamp from SOURCE_DATE_EPOCH itself.)

# 5. The boot partition: kernel, stage 1, extlinux (U-Boot distro boot), the board's DTBs.
progress "boot partition (vfat)"
B="$WORK/boot"
mkdir -p "$B/extlinux"
cp "$KIMAGE" "$B/Image"
cp "$WORK/initrd.gz" "$B/initrd.gz"
CMDLINE="console=$CONSOLE_TTY panic=10 quiet"
printf 'default hakoden\nlabel hakoden\n  kernel /Image\n  initrd /initrd.gz\n  append %s\n' "$CMDLINE" >"$B/extlinux/extlinux.conf"
echo "$CMDLINE" >"$B/cmdline.txt"
for dtb in $BOARD_DTBS; do
    src=$(ls "$WORK"/kern/usr/lib/linux-image-*/"$dtb" | head -n1)
    cp "$src" "$B/$(basename "$dtb")"
done
if [ "$BOARD" = raspberry-pi-4 ]; then
    printf 'arm_64bit=1\nenable_uart=1\nkernel=Image\ninitramfs initrd.gz followkernel\n' >"$B/config.txt"
fi
find "$B" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
rm -f "$WORK/boot.vfat"
mkfs.vfat -C -n BOOT -i "$BOOT_VOLID" --invariant "$WORK/boot.vfat" $((BOOT_MIB * 1024)) >/dev/null
(cd "$B" && find . -mindepth 1 -maxdepth 1 | sort | sed 's|^\./||' | while read -r f; do
    mcopy -s -m -p -i "$WORK/boot.vfat" "$f" ::/
done)

# 6. The data partition: the slot state (slot a committed) and an empty data directory.
progress "data partition (ext4)"
D="$WORK/data"
mkdir -p "$D/boot" "$D/hakoden"
echo a >"$D/boot/slot"
find "$D" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
rm -f "$WORK/data.ext4"
truncate -s "${DATA_MIB}M" "$WORK/data.ext4"
mkfs.ext4 -q -F -L data -U "$DATA_FS_UUID" -E "hash_seed=$DATA_HASH_SEED,root_owner=0:0" \
    -d "$D" "$WORK/data.ext4" "${DATA_MIB}M"
# mkfs.ext4 1.47.0 copies each file's ctime from the host (touch cannot set it): pinned here.
(cd "$D" && find . | sort | sed 's|^\.||; s|^$|/|') | while read -r p; do
    for field in atime ctime mtime crtime; do
        echo "sif \"$p\" $field @$SOURCE_DATE_EPOCH"
        echo "sif \"$p\" ${field}_extra 0"
    done
done >"$WORK/data.debugfs"
debugfs -w -f "$WORK/data.debugfs" "$WORK/data.ext4" >/dev/null 2>&1

# 7. The disk: GPT with fixed GUIDs; partitions written at their offsets.
progress "GPT image"
sqsize=$(stat -c %s "$WORK/rootfs.sqfs")
[ "$sqsize" -le $((ROOTFS_MIB << 20)) ] || { echo "rootfs ($sqsize bytes) exceeds ROOTFS_MIB=$ROOTFS_MIB" >&2; exit 1; }
total_mib=$((1 + BOOT_MIB + 2 * ROOTFS_MIB + DATA_MIB + 1))
rm -f "$IMG.tmp"
truncate -s "${total_mib}M" "$IMG.tmp"
sfdisk -q --no-reread --no-tell-kernel "$IMG.tmp" <<SFDISK
label: gpt
label-id: $DISK_GUID
start=1MiB, size=${BOOT_MIB}MiB, type=uefi, uuid=${PART_GUIDS[0]}, name=boot
size=${ROOTFS_MIB}MiB, type=linux, uuid=${PART_GUIDS[1]}, name=rootfs_a
size=${ROOTFS_MIB}MiB, type=linux, uuid=${PART_GUIDS[2]}, name=rootfs_b
size=${DATA_MIB}MiB, type=linux, uuid=${PART_GUIDS[3]}, name=data
SFDISK
write_part() {  # write_part N FILE
    local start
    start=$(sfdisk -J "$IMG.tmp" | awk -v n="$1" '/"start"/{i++; if (i==n){gsub(/[^0-9]/,"",$0); print; exit}}')
    dd if="$2" of="$IMG.tmp" bs=512 seek="$start" conv=notrunc,sparse status=none
}
write_part 1 "$WORK/boot.vfat"
write_part 2 "$WORK/rootfs.sqfs"
write_part 3 "$WORK/rootfs.sqfs"
write_part 4 "$WORK/data.ext4"
mv "$IMG.tmp" "$IMG"
(cd "$OUT" && sha256sum "$(basename "$IMG")" >"$(basename "$IMG").sha256")
cat >"$OUT/hakoden-$BOARD.manifest" <<MANIFEST
board=$BOARD
version=$version
kernel=$kpkg ($KVER)
busybox=$(basename "$bdeb")
rust_target=$RUST_TARGET
firmware_bytes=$(stat -c %s "$BIN")
rootfs_bytes=$sqsize
initrd_bytes=$(stat -c %s "$WORK/initrd.gz")
image_mib=$total_mib
source_date_epoch=$SOURCE_DATE_EPOCH
sha256=$(cut -d' ' -f1 "$IMG.sha256")
MANIFEST
progress "done: $IMG ($(du -h --apparent-size "$IMG" | cut -f1) sparse, $(du -h "$IMG" | cut -f1) used) sha256 $(cut -c1-16 "$IMG.sha256")"
