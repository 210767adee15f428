#!/usr/bin/env bash
# Hakoden's one test entry point: installs the external peers (SIPp, baresip, sox) when
# missing, then runs fmt, clippy and every test. CI runs it as `bash .ci/run` with CI=true,
# as root on a fresh Debian machine, with no stdin.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

declare -a TIMING_NAMES=()
declare -a TIMING_SECS=()
# Wall time of each step, printed at the end (and on failure) so slow steps are visible.
step() {
    local name="$1"
    shift
    local start=$SECONDS
    echo "==> ${name}"
    local rc=0
    # Under `||` bash ignores `set -e` inside the called function, so each step function
    # returns its failures explicitly.
    "$@" || rc=$?
    TIMING_NAMES+=("${name}")
    TIMING_SECS+=("$((SECONDS - start))")
    if [ "$rc" -ne 0 ]; then
        echo "==> ${name} FAILED (exit ${rc})"
        summary
        exit "$rc"
    fi
}

summary() {
    echo "==> timing summary"
    local i
    for i in "${!TIMING_NAMES[@]}"; do
        printf '    %-28s %5ss\n' "${TIMING_NAMES[$i]}" "${TIMING_SECS[$i]}"
    done
    printf '    %-28s %5ss\n' "total" "$SECONDS"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        return 1
    fi
}

APT_UPDATED=0
# One package at a time: a package missing from the mirror must not block the others.
apt_install() {
    local pkg="$1"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "    no apt-get: cannot install ${pkg}"
        return 0
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || echo "    apt-get update failed"
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" \
        || echo "    apt-get install ${pkg} failed"
}

install_tools() {
    if ! command -v sipp >/dev/null 2>&1; then
        apt_install sip-tester
    fi
    if ! command -v baresip >/dev/null 2>&1; then
        # baresip-core holds the binary and the modules the tests load (g711, aufile,
        # sndfile); the `baresip` metapackage would also pull GTK, GStreamer and FFmpeg.
        apt_install baresip-core
        command -v baresip >/dev/null 2>&1 || apt_install baresip
    fi
    if ! command -v sox >/dev/null 2>&1; then
        apt_install sox
    fi
    # tests/web_media.rs checks the recordings zip with `unzip -t`.
    if ! command -v unzip >/dev/null 2>&1; then
        apt_install unzip
    fi
    # The web admin's browser test (tests/web_ui.rs): Debian's chromium, node, and
    # playwright-core from npm at the version pinned in tests/web_ui/package-lock.json, in a
    # cache dir outside the tree. Never `npx playwright install` (it downloads its own browser).
    if ! command -v chromium >/dev/null 2>&1; then
        apt_install chromium
    fi
    # A Japanese font, so screenshots of the ja pages are readable (not needed to pass).
    if ! fc-list 2>/dev/null | grep -qi "ipa\|noto sans cjk"; then
        apt_install fonts-ipafont-gothic
    fi
    if ! command -v npm >/dev/null 2>&1; then
        apt_install npm
    fi
    install_playwright_core || echo "    playwright-core install failed"
    if command -v rustup >/dev/null 2>&1; then
        local comp
        for comp in clippy rustfmt; do
            if ! rustup component list --installed 2>/dev/null | grep -q "^${comp}"; then
                rustup component add "$comp" || echo "    rustup component add ${comp} failed"
            fi
        done
    fi
    local tool
    for tool in sipp baresip sox chromium node cargo-clippy rustfmt; do
        if command -v "$tool" >/dev/null 2>&1; then
            echo "    ${tool}: $(command -v "$tool")"
        else
            echo "    ${tool}: MISSING"
        fi
    done
}

# Installs tests/web_ui's locked npm packages into HAKODEN_NODE_CACHE when the lock changed.
install_playwright_core() {
    local cache="${HAKODEN_NODE_CACHE:-${HOME}/.cache/hakoden-node}"
    local lock="tests/web_ui/package-lock.json"
    command -v npm >/dev/null 2>&1 || return 1
    if [ -f "${cache}/node_modules/playwright-core/package.json" ] && cmp -s "$lock" "${cache}/package-lock.json"; then
        echo "    playwright-core: ${cache}/node_modules (locked version present)"
        return 0
    fi
    mkdir -p "$cache" || return 1
    cp tests/web_ui/package.json "$lock" "$cache/" || return 1
    (cd "$cache" && npm ci --no-audit --no-fund --ignore-scripts) || return 1
    echo "    playwright-core: installed into ${cache}/node_modules"
}

# Called under `||` by step(), where `set -e` is off: every failure is returned explicitly.
run_tests() {
    if command -v cargo-nextest >/dev/null 2>&1; then
        # nextest does not run doctests; they go first so nextest's summary closes the log.
        cargo test --doc || return $?
        # nextest runs each test in its own process; the harness picks ports per process.
        cargo nextest run --no-fail-fast "$@" || return $?
    else
        cargo test --no-fail-fast "$@" || return $?
    fi
}

# The appliance image (issue 8): installs the cross toolchain and qemu, builds the
# qemu-virt-aarch64 image, then boots it in tests/image_qemu.rs. HAKODEN_IMAGE_STEP=0 skips it.
image_tools() {
    # shellcheck source=image-deps.sh
    . scripts/image-deps.sh
    image_deps --qemu || return $?
    # tests/image_console.rs logs in over SSH with a key it makes.
    if ! command -v ssh >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then
        apt_install openssh-client
    fi
    image_rust_target aarch64-unknown-linux-musl || return $?
}

image_test() {
    HAKODEN_SKIP_IMAGE=0 cargo test --test image_qemu -- --nocapture || return $?
}

# Signed update to slot b (commit), broken update (rollback), power cuts: one more boot of the
# image, about 6-10 minutes under TCG (docs/PERFORMANCE.md, "Updates").
image_update_test() {
    HAKODEN_SKIP_IMAGE=0 cargo test --test image_update -- --nocapture || return $?
}

# SSH into the console, network settings, options-test: one more boot (docs/appliance.md).
image_console_test() {
    HAKODEN_SKIP_IMAGE=0 cargo test --test image_console -- --nocapture || return $?
}

step "install tools" install_tools
step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --all-targets -- -D warnings
step "cargo doc" env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
step "cargo build --tests" cargo test --no-run
# The image test boots QEMU once, in its own step below.
export HAKODEN_SKIP_IMAGE=1
step "tests" run_tests "$@"
if [ "${HAKODEN_IMAGE_STEP:-1}" != 0 ]; then
    step "image tools" image_tools
    step "image build" bash scripts/build-image.sh qemu-virt-aarch64
    step "image reproducible" bash scripts/check-reproducible.sh qemu-virt-aarch64
    step "image test (qemu)" image_test
    step "image update test (qemu)" image_update_test
    step "image console test (qemu)" image_console_test
fi
summary
