#!/usr/bin/env bash
# Writes an appliance image to a card or disk: scripts/flash.sh IMAGE DEVICE --yes-erase-DEVICE
# Safety: refuses a device that is (or has a partition that is) mounted, the disk holding
# / or /boot, anything that is not a block device (unless FLASH_ALLOW_FILE=1, for tests),
# a device smaller than the image, and runs only with the confirmation flag naming the
# device's base name (e.g. --yes-erase-sdb). After writing it reads the image back and
# compares sha256 sums.
set -euo pipefail

die() { echo "flash: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: $0 IMAGE DEVICE --yes-erase-NAME (NAME = the device's base name)"
IMG="$1"
DEV="$2"
CONFIRM="${3:-}"
[ -f "$IMG" ] || die "no image file $IMG"

real=$(readlink -f "$DEV")
name=$(basename "$real")

# Mounts: the device itself or any of its partitions (findmnt and /proc/mounts agree).
mounted_on() {
    local dev="$1"
    awk -v d="$dev" '$1 == d || index($1, d) == 1 {print $1 " on " $2}' /proc/mounts
}
if [ -b "$real" ]; then
    # The disk(s) under / and /boot: never a target.
    for mp in / /boot; do
        src=$(findmnt -n -o SOURCE "$mp" 2>/dev/null || true)
        [ -n "$src" ] || continue
        disk=$(lsblk -n -o PKNAME "$src" 2>/dev/null | head -n1 || true)
        [ -n "$disk" ] || disk=$(basename "$src")
        if [ "$name" = "$disk" ] || [ "$real" = "$src" ]; then
            die "$DEV holds $mp: refusing to overwrite the system disk"
        fi
    done
    m=$(mounted_on "$real")
    [ -z "$m" ] || die "$DEV is mounted ($m): unmount it first"
    size=$(blockdev --getsize64 "$real")
elif [ "${FLASH_ALLOW_FILE:-0}" = 1 ] && [ -f "$real" ]; then
    # Test mode: a regular file stands in for the card. It may still be "mounted" (a loop).
    m=$(losetup -j "$real" 2>/dev/null || true)
    [ -z "$m" ] || die "$DEV is attached to a loop device ($m): detach it first"
    m=$(mounted_on "$real")
    [ -z "$m" ] || die "$DEV is mounted ($m): unmount it first"
    size=$(stat -c %s "$real")
else
    die "$DEV is not a block device"
fi

[ "$CONFIRM" = "--yes-erase-$name" ] || die "this erases $DEV; confirm with --yes-erase-$name"
img_size=$(stat -c %s "$IMG")
[ "$size" -ge "$img_size" ] || die "$DEV ($size bytes) is smaller than the image ($img_size bytes)"

echo "flash: writing $IMG ($img_size bytes) to $DEV"
dd if="$IMG" of="$real" bs=4M conv=fsync,notrunc status=progress
sync
want=$(sha256sum "$IMG" | cut -d' ' -f1)
got=$(head -c "$img_size" "$real" | sha256sum | cut -d' ' -f1)
[ "$want" = "$got" ] || die "verify FAILED: wrote $want, read back $got"
echo "flash: verified (sha256 $want)"
