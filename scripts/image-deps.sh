#!/usr/bin/env bash
# Installs what the appliance image build and the QEMU test need, when missing (idempotent):
# cross compilers, image tools, qemu from bookworm-backports, rustup targets.
# Sourced by build-image.sh, run-qemu.sh and test.sh; see shared/notes/arm-image.md for why
# each piece is here. Never adds the armhf architecture: its index breaks `apt-get update`.
set -euo pipefail

_image_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 1; fi
}

_image_apt_updated=0
_image_apt_update() {
    if [ "$_image_apt_updated" -eq 0 ]; then
        _image_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || echo "    apt-get update reported errors"
        _image_apt_updated=1
    fi
}

# The Debian codename decides the backports suite (qemu 7.2 in bookworm lacks nothing we need,
# but the machine may already carry backports qemu-utils, which blocks bookworm's qemu).
_image_backports_source() {
    local codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    local f=/etc/apt/sources.list.d/hakoden-backports.sources
    if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo "    adding the ${codename}-backports apt source (qemu)" >&2
        printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$codename" | _image_as_root tee "$f" >/dev/null
    fi
    echo "${codename}-backports"
}

# image_deps [--qemu]: host tools for building (and with --qemu, booting) images.
image_deps() {
    local want_qemu=0
    [ "${1:-}" = "--qemu" ] && want_qemu=1
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        echo "    dpkg: adding the arm64 architecture (kernel and busybox packages)"
        _image_as_root dpkg --add-architecture arm64
        _image_apt_updated=0
    fi
    local need=()
    command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
    command -v arm-linux-gnueabihf-gcc >/dev/null || need+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
    command -v mksquashfs >/dev/null || need+=(squashfs-tools)
    command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
    command -v mcopy >/dev/null || need+=(mtools)
    command -v mkfs.vfat >/dev/null || need+=(dosfstools)
    command -v sfdisk >/dev/null || need+=(fdisk)
    command -v cpio >/dev/null || need+=(cpio)
    command -v depmod >/dev/null || need+=(kmod)
    command -v zstd >/dev/null || need+=(zstd)
    command -v e2fsck >/dev/null || need+=(e2fsprogs)
    # make-bundle.sh signs and prints the update key (openssl, xxd); image-dropbear.sh follows
    # dropbear's libraries with readelf.
    command -v openssl >/dev/null || need+=(openssl)
    command -v xxd >/dev/null || need+=(xxd)
    command -v readelf >/dev/null || need+=(binutils)
    if [ "${#need[@]}" -gt 0 ]; then
        echo "    apt: installing ${need[*]}"
        _image_apt_update
        _image_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
    else
        # The arm64 index must exist for `apt-get download ...:arm64`.
        if ! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then _image_apt_update; fi
    fi
    if [ "$want_qemu" -eq 1 ] && ! command -v qemu-system-aarch64 >/dev/null; then
        local bp
        bp=$(_image_backports_source)
        # A new source needs a fresh index whatever ran before.
        if ! apt-cache policy qemu-system-arm 2>/dev/null | grep -q backports; then _image_apt_updated=0; fi
        _image_apt_update
        echo "    apt: installing qemu-system-arm from ${bp}"
        _image_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            -t "$bp" qemu-system-arm
    fi
}

# image_rust_target TRIPLE: the rustup target, added when missing.
image_rust_target() {
    local t="$1"
    if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
        echo "    rustup: adding target ${t}"
        rustup target add "$t"
    fi
}
