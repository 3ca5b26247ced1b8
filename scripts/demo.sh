#!/usr/bin/env bash
# The main job on one machine, with no account: start our CAS server (`xet serve`) on
# loopback with a fresh data directory, upload a file with `xet upload` (CAS tokens
# come from the server's Hub-style token endpoint), download it back by its Xet hash
# with `xet download`, and compare the bytes.
#
#   scripts/demo.sh [FILE]        (default: README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
FILE=${1:-README.md}
cargo build --release -q -p xet-cli
XET=${CARGO_TARGET_DIR:-$PWD/target}/release/xet
WORK=$(mktemp -d)
TOKEN=demo-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT

"$XET" serve --data "$WORK/data" --addr "127.0.0.1:$PORT" --user-token "$TOKEN" >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
    curl -fsS "$URL/health" >/dev/null 2>&1 && break
    kill -0 $SERVER 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.1
done

export HF_TOKEN=$TOKEN HF_XET_CACHE=$WORK/cache
echo "== xet upload $FILE  (server $URL, data in $WORK/data)"
LINE=$("$XET" upload --hub "$URL" --repo model/demo/files "$FILE")
echo "$LINE"
read -r HASH SIZE _ <<<"$LINE"
echo "== xet download $HASH:$SIZE"
"$XET" download --hub "$URL" --repo model/demo/files "$HASH:$SIZE" -o "$WORK/downloaded"
cmp "$FILE" "$WORK/downloaded"
echo "ok: $FILE uploaded and downloaded back byte-identical ($SIZE bytes, xet hash $HASH)"
