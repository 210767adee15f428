# shellcheck shell=bash
# Sourced by scripts/build-image.sh: puts Debian's dropbear (SSH server) and the shared
# libraries it needs into the rootfs, the way busybox comes from busybox-static, and adds
# the SSH user `admin` whose shell is the technician console (images/rootfs/usr/sbin/
# hakoden-shell). Uses fetch_deb, progress, WORK and DEB_ARCH from build-image.sh.
image_add_dropbear() {  # image_add_dropbear ROOTFS
    local R="$1" X="$WORK/dropbear" p deb lib found
    progress "dropbear (SSH) into the rootfs"
    rm -rf "$X"
    mkdir -p "$X"
    for p in dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g; do
        deb=$(fetch_deb "$p:$DEB_ARCH")
        dpkg-deb -x "$deb" "$X"
    done
    install -m 755 "$X/usr/sbin/dropbear" "$R/usr/sbin/dropbear"
    install -m 755 "$X/usr/bin/dropbearkey" "$R/usr/bin/dropbearkey"
    # The ELF interpreter and every NEEDED library, transitively, from the unpacked packages
    # (keeping their Debian paths, so the interpreter's default search finds them).
    local todo=("$R/usr/sbin/dropbear" "$R/usr/bin/dropbearkey") done_libs=" " interp
    interp=$(readelf -l "$R/usr/sbin/dropbear" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    found=$(cd "$X" && find . -path "*${interp}" | head -n1)
    [ -n "$found" ] || { echo "dropbear: interpreter $interp not in libc6" >&2; return 1; }
    mkdir -p "$R$(dirname "$interp")"
    cp -L "$X/$found" "$R$interp"
    while [ ${#todo[@]} -gt 0 ]; do
        local f="${todo[0]}"
        todo=("${todo[@]:1}")
        for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            case "$done_libs" in *" $lib "*) continue ;; esac
            done_libs="$done_libs$lib "
            found=$(cd "$X" && find . -name "$lib" \( -type f -o -type l \) | sort | head -n1)
            [ -n "$found" ] || { echo "dropbear: $lib not found in the packages" >&2; return 1; }
            found=${found#./}
            mkdir -p "$R/$(dirname "$found")"
            cp -L "$X/$found" "$R/$found"
            todo+=("$R/$found")
        done
    done
    # uid 0 because the console socket is root's (mode 0600); the shell allows nothing else.
    printf 'admin:x:0:0:technician console:/run/admin:/usr/sbin/hakoden-shell\n' >>"$R/etc/passwd"
    mkdir -p "$R/var/log"
}
