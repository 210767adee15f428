#!/usr/bin/env bash
# Boots an appliance image under qemu-system-aarch64: scripts/run-qemu.sh [options] IMAGE
# Every forwarded port listens on 127.0.0.1 only, and a guest port equals its host port, so
# the SIP and SDP addresses the box advertises (127.0.0.1) are right on both sides.
#   --sip PORT        SIP, UDP and TCP (env SIP_PORT, default 5060)
#   --rtp LO-HI       RTP relay range, every port forwarded (env RTP_PORTS, default 10000-10019)
#   --https PORT      web HTTPS, guest 8443 (env HTTPS_PORT, default 8443)
#   --console PORT    network console, guest 2323 (env CONSOLE_PORT, default 2323; unused)
#   --ssh PORT        SSH into the technician console, guest 22 (env SSH_PORT, default 2222)
#   --serial stdio|FILE|unix:PATH   where the serial console goes (default stdio)
#   --debug           hakoden.debug=1: a shell on the serial console and `--allow-debug`
#   --snapshot        discard disk writes (QEMU -snapshot)
#   --pidfile FILE    QEMU's pid, for stopping it by id
#   --append ARGS     more kernel command-line arguments
# Prints "run-qemu: box ready after N s" when the box's ready line appears (serial on stdio).
# The watchdog is an i6300esb; a watchdog expiry resets the guest (-action watchdog=reset).
set -euo pipefail

SIP_PORT="${SIP_PORT:-5060}"
RTP_PORTS="${RTP_PORTS:-10000-10019}"
HTTPS_PORT="${HTTPS_PORT:-8443}"
CONSOLE_PORT="${CONSOLE_PORT:-2323}"
SSH_PORT="${SSH_PORT:-2222}"
SERIAL=stdio
DEBUG=0
SNAPSHOT=()
PIDFILE=""
APPEND_MORE=""
# A forwarded RTP range opens one host socket per port: bounded so a typo cannot open 60k.
MAX_RTP_FORWARDS=200
# Guest RAM: the box's budget on the smallest board (docs/PERFORMANCE.md measures use).
MEM_MIB="${QEMU_MEM_MIB:-512}"

while [ $# -gt 0 ]; do
    case "$1" in
        --sip) SIP_PORT="$2"; shift 2 ;;
        --rtp) RTP_PORTS="$2"; shift 2 ;;
        --https) HTTPS_PORT="$2"; shift 2 ;;
        --console) CONSOLE_PORT="$2"; shift 2 ;;
        --ssh) SSH_PORT="$2"; shift 2 ;;
        --serial) SERIAL="$2"; shift 2 ;;
        --debug) DEBUG=1; shift ;;
        --snapshot) SNAPSHOT=(-snapshot); shift ;;
        --pidfile) PIDFILE="$2"; shift 2 ;;
        --append) APPEND_MORE="$2"; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
IMG="${1:-}"
[ -n "$IMG" ] && [ -f "$IMG" ] || { echo "usage: $0 [options] IMAGE" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! command -v qemu-system-aarch64 >/dev/null; then
    # shellcheck source=image-deps.sh
    . "$REPO/scripts/image-deps.sh"
    image_deps --qemu
fi

RTP_LO="${RTP_PORTS%-*}"
RTP_HI="${RTP_PORTS#*-}"
if [ $((RTP_HI - RTP_LO + 1)) -gt "$MAX_RTP_FORWARDS" ] || [ "$RTP_HI" -lt "$RTP_LO" ]; then
    echo "RTP range $RTP_PORTS: at most $MAX_RTP_FORWARDS ports" >&2
    exit 2
fi

# QEMU loads the kernel and stage 1 from the image's boot partition (as U-Boot would).
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
boot_start=$(sfdisk -J "$IMG" | awk '/"start"/{gsub(/[^0-9]/,"",$0); print; exit}')
mcopy -i "$IMG@@$((boot_start * 512))" ::/Image "$TMP/Image"
mcopy -i "$IMG@@$((boot_start * 512))" ::/initrd.gz "$TMP/initrd.gz"

# restrict=on would drop the guest's UDP answers (shared/notes/arm-image.md); the guest has
# no default route, DHCP or DNS, and only answers flows opened from 127.0.0.1.
fwd="hostfwd=udp:127.0.0.1:$SIP_PORT-:$SIP_PORT,hostfwd=tcp:127.0.0.1:$SIP_PORT-:$SIP_PORT"
fwd="$fwd,hostfwd=tcp:127.0.0.1:$HTTPS_PORT-:8443,hostfwd=tcp:127.0.0.1:$CONSOLE_PORT-:2323"
fwd="$fwd,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22"
for ((p = RTP_LO; p <= RTP_HI; p++)); do fwd="$fwd,hostfwd=udp:127.0.0.1:$p-:$p"; done

append="console=ttyAMA0 quiet panic=5 hakoden.sip_port=$SIP_PORT hakoden.rtp=$RTP_PORTS hakoden.advertise=127.0.0.1"
[ "$DEBUG" = 1 ] && append="$append hakoden.debug=1"
[ -n "$APPEND_MORE" ] && append="$append $APPEND_MORE"

case "$SERIAL" in
    stdio) serial=(-serial stdio) ;;
    unix:*) serial=(-serial "unix:${SERIAL#unix:},server=on,wait=off") ;;
    *) serial=(-serial "file:$SERIAL") ;;
esac
pidopt=()
[ -n "$PIDFILE" ] && pidopt=(-pidfile "$PIDFILE")

qemu=(qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m "$MEM_MIB" -display none -monitor none
      "${serial[@]}" -kernel "$TMP/Image" -initrd "$TMP/initrd.gz" -append "$append"
      -drive "file=$IMG,format=raw,if=virtio" "${SNAPSHOT[@]}"
      -netdev "user,id=n0,ipv6=off,$fwd" -device virtio-net-pci,netdev=n0,romfile=
      -device i6300esb -action watchdog=reset "${pidopt[@]}")

if [ "$SERIAL" != stdio ]; then
    exec "${qemu[@]}"
fi
start=$SECONDS
# The serial stream passes through; the ready line is announced (once per boot).
"${qemu[@]}" | while IFS= read -r line; do
    printf '%s\n' "$line"
    case "$line" in
        *"hakoden: ready "*) echo "run-qemu: box ready after $((SECONDS - start)) s" ;;
    esac
done
