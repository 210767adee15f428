#!/usr/bin/env bash
# Regenerates every voice prompt WAV under sounds/{ja,en}/ from sounds/manifest.toml.
#
#   Japanese: open-jtalk + open-jtalk-mecab-naist-jdic + hts-voice-nitech-jp-atr503-m001
#             (the voice is in Debian's `contrib` component; this script enables it for the
#             running release in a separate sources file when apt cannot see it)
#   English:  espeak-ng, voice en-us
#   Tones:    sox synth
# Everything then goes through sox: mono, silence trimmed at both ends, 8 kHz, 16-bit PCM,
# peak-normalised to -3 dBFS. Which packages made the committed files: docs/sounds.md.
#
# Usage: scripts/make-sounds.sh [--no-install] [ID_PREFIX]
#   ID_PREFIX limits regeneration to ids that start with it (e.g. `num.`); stale WAVs (ids no
#   longer in the manifest) are removed only on a full run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFEST="$ROOT/sounds/manifest.toml"
OUT="$ROOT/sounds"
INSTALL=1
PREFIX=""
for arg in "$@"; do
  case "$arg" in
    --no-install) INSTALL=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) PREFIX="$arg" ;;
  esac
done

# Synthesis settings. Changing any of them changes every committed WAV: say so in docs/sounds.md.
JT_DIC=/var/lib/mecab/dic/open-jtalk/naist-jdic
JT_VOICE=/usr/share/hts-voice/nitech-jp-atr503-m001/nitech_jp_atr503_m001.htsvoice
JT_SPEED=1.0        # open_jtalk -r: the voice's own pace is already clear on a phone
ES_VOICE=en-us
ES_SPEED=150        # espeak-ng -s words per minute: a little slower than its 175 default for 8 kHz
RATE=8000           # telephone band, G.711's rate
PEAK_DB=-3          # peak level after normalising, dBFS
SIL_THRESHOLD=-45d  # below this counts as silence when trimming the ends
SIL_MIN=0.01        # seconds of sound needed before trimming stops

need_pkgs=()
command -v open_jtalk >/dev/null || need_pkgs+=(open-jtalk)
[ -d "$JT_DIC" ] || need_pkgs+=(open-jtalk-mecab-naist-jdic)
[ -f "$JT_VOICE" ] || need_pkgs+=(hts-voice-nitech-jp-atr503-m001)
command -v espeak-ng >/dev/null || need_pkgs+=(espeak-ng)
command -v sox >/dev/null || need_pkgs+=(sox)
command -v python3 >/dev/null || need_pkgs+=(python3)

if [ "${#need_pkgs[@]}" -gt 0 ]; then
  if [ "$INSTALL" -eq 0 ]; then
    echo "missing packages: ${need_pkgs[*]} (run without --no-install, as root)" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  if ! apt-cache policy hts-voice-nitech-jp-atr503-m001 | grep -q 'Candidate: [0-9]'; then
    # The HTS voice lives in Debian's contrib component, which the default sources leave out.
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
    echo "enabling Debian contrib for $codename (hts-voice-nitech-jp-atr503-m001)" >&2
    $SUDO tee /etc/apt/sources.list.d/debian-contrib-hakoden.sources >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $codename
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    $SUDO apt-get update -qq
  fi
  $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
[ -f "$JT_VOICE" ] || { echo "no Japanese HTS voice at $JT_VOICE" >&2; exit 1; }

mkdir -p "$OUT/ja" "$OUT/en"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# One line per WAV to make: lang, id, tone_hz, tone_ms, text (tab-separated; text last).
python3 - "$MANIFEST" > "$TMP/jobs.tsv" <<'PY'
import re, sys, tomllib
with open(sys.argv[1], "rb") as f:
    prompts = tomllib.load(f)["prompt"]
seen = set()
for p in prompts:
    pid = p["id"]
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", pid) or pid in seen:
        sys.exit(f"bad or duplicate id: {pid!r}")
    seen.add(pid)
    for lang in ("ja", "en"):
        text = p.get(lang, "")
        if not text:
            continue
        say = p.get(f"{lang}_read", text)
        print(f"{lang}\t{pid}\t{p.get('tone_hz', 0)}\t{p.get('tone_ms', 0)}\t{say}".replace("\n", " "))
PY

# sox effects shared by speech: trim silence at both ends (reverse trick), resample, normalise.
post() {
  sox -D "$1" -c 1 -b 16 -e signed-integer "$2" \
    silence 1 "$SIL_MIN" "$SIL_THRESHOLD" reverse silence 1 "$SIL_MIN" "$SIL_THRESHOLD" reverse \
    vol 0.5 \
    rate -v "$RATE" norm "$PEAK_DB"
}

count=0
while IFS=$'\t' read -r lang id hz ms text; do
  case "$id" in "$PREFIX"*) ;; *) continue ;; esac
  dst="$OUT/$lang/$id.wav"
  if [ "$hz" != 0 ]; then
    # A pure tone with 10 ms fades so it starts and stops without a click.
    sox -D -n -r "$RATE" -c 1 -b 16 -e signed-integer "$dst" \
      synth "$(awk "BEGIN{print $ms/1000}")" sine "$hz" fade 0.01 0 0.01 norm "$PEAK_DB"
  elif [ "$lang" = ja ]; then
    printf '%s\n' "$text" > "$TMP/in.txt"
    open_jtalk -x "$JT_DIC" -m "$JT_VOICE" -r "$JT_SPEED" -ow "$TMP/raw.wav" "$TMP/in.txt"
    post "$TMP/raw.wav" "$dst"
  else
    espeak-ng -v "$ES_VOICE" -s "$ES_SPEED" -w "$TMP/raw.wav" -- "$text"
    post "$TMP/raw.wav" "$dst"
  fi
  count=$((count + 1))
done < "$TMP/jobs.tsv"

if [ -z "$PREFIX" ]; then
  # Drop WAVs whose id left the manifest, so build.rs embeds exactly the manifest.
  for lang in ja en; do
    for f in "$OUT/$lang"/*.wav; do
      [ -e "$f" ] || continue
      id="$(basename "$f" .wav)"
      grep -q "^$lang	$id	" "$TMP/jobs.tsv" || { echo "removing stale $f" >&2; rm -f "$f"; }
    done
  done
fi
echo "made $count WAVs; sounds/ja + sounds/en: $(du -cb "$OUT"/ja/*.wav "$OUT"/en/*.wav | tail -1 | cut -f1) bytes"
