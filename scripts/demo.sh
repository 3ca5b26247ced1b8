#!/usr/bin/env bash
# The main job on one machine, with no account: upload a file and download it back by
# its Xet hash, then compare the bytes.
#
#   scripts/demo.sh [FILE]           the embedded store (in process, no server)
#   scripts/demo.sh --serve [FILE]   through our CAS server: `xet serve` on loopback, CAS
#                                    tokens from its Hub-style token endpoint
#
# Everything (store, caches, server data) lives in a temporary directory, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVE=0
if [ "${1:-}" = "--serve" ]; then SERVE=1; shift; fi
FILE=${1:-README.md}
cargo build --release -q -p xet-cli
XET=${CARGO_TARGET_DIR:-$PWD/target}/release/xet
WORK=$(mktemp -d)
SERVER=
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
export HF_XET_CACHE=$WORK/cache
CAS=()
if [ "$SERVE" = 1 ]; then
    TOKEN=demo-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    URL=http://127.0.0.1:$PORT
    "$XET" serve --data "$WORK/data" --addr "127.0.0.1:$PORT" --user-token "$TOKEN" >"$WORK/serve.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do
        curl -fsS "$URL/health" >/dev/null 2>&1 && break
        kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
        sleep 0.1
    done
    export HF_TOKEN=$TOKEN
    CAS=(--hub "$URL" --repo model/demo/files)
    echo "== server $URL (data in $WORK/data)"
else
    echo "== embedded store in $HF_XET_CACHE/local-store"
fi
echo "== xet upload $FILE"
LINE=$("$XET" upload "${CAS[@]}" "$FILE")
echo "$LINE"
read -r HASH SIZE _ <<<"$LINE"
echo "== xet download $HASH:$SIZE"
"$XET" download "${CAS[@]}" "$HASH:$SIZE" -o "$WORK/downloaded"
cmp "$FILE" "$WORK/downloaded"
echo "ok: $FILE uploaded and downloaded back byte-identical ($SIZE bytes, xet hash $HASH)"
