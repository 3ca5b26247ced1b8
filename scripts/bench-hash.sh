#!/usr/bin/env bash
# Whole-process benchmark of `xet hash` against the official client's `hash_files`
# on the same 1 GiB file, in the same run (BENCHMARKS.md records the output).
# Needs hyperfine (apt-get install hyperfine) and scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
FILE=${1:-/tmp/xet-bench-1g.bin}
RUNS=${RUNS:-5}
cargo build --release -q -p xet-cli -p xet-format --example xorshift
T=${CARGO_TARGET_DIR:-target}
if [ ! -s "$FILE" ]; then
    echo "writing the 1 GiB benchmark file (vector stream, seed 42) to $FILE" >&2
    "$T"/release/examples/xorshift 1073741824 > "$FILE"
fi
cat > /tmp/xet-bench-hf-hash.py <<'PY'
import sys, hf_xet
for info in hf_xet.hash_files(sys.argv[1:]):
    print(info.hash, info.file_size)
PY
# Warm the page cache so every contender reads from memory.
cat "$FILE" > /dev/null
echo "expected xet hash: 924c9b0a9a992e0503d06872bd3feacb63e5b7fa6e562232d35dcb9d4fb169e4" >&2
"$T"/release/xet hash --no-sha256 "$FILE" >&2
python3 /tmp/xet-bench-hf-hash.py "$FILE" >&2
hyperfine --warmup 1 --runs "$RUNS" --export-markdown /tmp/xet-bench-hash.md \
    -n "official hash_files (no SHA-256)" "python3 /tmp/xet-bench-hf-hash.py $FILE" \
    -n "xet hash --no-sha256" "$T/release/xet hash --no-sha256 $FILE" \
    -n "xet hash (with SHA-256)" "$T/release/xet hash $FILE"
cat /tmp/xet-bench-hash.md
