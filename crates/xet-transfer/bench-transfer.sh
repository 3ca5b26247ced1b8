#!/bin/bash
# Side-by-side whole-process timings of `xet` and the official client (hf-xet 1.8.0)
# on one fresh `xet serve` per client (no auth). The server keeps its objects on
# tmpfs (BENCH_SERVE_DATA, default /dev/shm/xet-bench-srv): it fsyncs every object,
# and on a disk that syncs ~200 MB/s that would time the disk, not the clients.
# Needs in $BENCH_DIR (default /tmp/bench): big.bin = first 2^30 bytes of the vector
# stream (`cargo run --release -p xet-format --example xorshift -- 1073741824`) and
# edited.bin = big.bin with 20 bytes inserted at offset 500,000,000. Build first:
#   cargo build --release -p xet-cli
set -e
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "${BENCH_DIR:-/tmp/bench}"
XET=${XET:-${CARGO_TARGET_DIR:-$ROOT/target}/release/xet}
export HF_XET_TELEMETRY_ENABLED=false
PORT=${BENCH_PORT:-18181}
URL=http://127.0.0.1:$PORT
SRV=${BENCH_SERVE_DATA:-/dev/shm/xet-bench-srv}
start() {
    rm -rf $SRV; $XET serve --data $SRV --addr 127.0.0.1:$PORT --no-auth 2> serve.log & SPID=$!
    for _ in $(seq 50); do curl -s -o /dev/null $URL/health && break; sleep 0.1; done
}
stop() { kill $SPID; wait $SPID 2>/dev/null || true; rm -rf $SRV; }
t() { grep -E "Elapsed" $1 | awk '{print $NF}'; }
r() { grep -E "Maximum resident" $1 | awk '{print $NF}'; }
cat big.bin edited.bin > /dev/null # inputs in the page cache for both clients
# ours
start
rm -rf c1; export HF_XET_CACHE=$PWD/c1
/usr/bin/time -v $XET upload --endpoint $URL big.bin > o.txt 2> o-up.time
H=$(awk '{print $1}' o.txt)
rm -f out1; /usr/bin/time -v $XET download $H -o out1 --endpoint $URL 2> o-cold.time
rm -rf c1/chunk-cache out1; HF_XET_SYNC_DOWNLOADS=false /usr/bin/time -v $XET download $H -o out1 --endpoint $URL 2> o-coldnosync.time
rm -f out1; /usr/bin/time -v $XET download $H -o out1 --endpoint $URL 2> o-warm.time
rm -f out1; HF_XET_SYNC_DOWNLOADS=false /usr/bin/time -v $XET download $H -o out1 --endpoint $URL 2> o-warmnosync.time
cmp out1 big.bin
/usr/bin/time -v $XET upload --endpoint $URL edited.bin > o2.txt 2> o-edit.time
stop
# theirs
start
rm -rf c2; export HF_XET_CACHE=$PWD/c2 HF_XET_CHUNK_CACHE_SIZE_BYTES=10000000000
/usr/bin/time -v python3 -c "
import sys, hf_xet
i = hf_xet.upload_files(['big.bin'], sys.argv[1], ('t', 4000000000), None, None, 'model')
print(i[0].hash)" $URL > t.txt 2> t-up.time
H=$(cat t.txt)
DL="import sys, hf_xet; hf_xet.download_files([hf_xet.PyXetDownloadInfo('out2', sys.argv[2], 1073741824)], sys.argv[1], ('t', 4000000000), None, None)"
rm -f out2; /usr/bin/time -v python3 -c "$DL" $URL $H 2> t-cold.time
rm -f out2; /usr/bin/time -v python3 -c "$DL" $URL $H 2> t-warm.time
cmp out2 big.bin
/usr/bin/time -v python3 -c "
import sys, hf_xet
i = hf_xet.upload_files(['edited.bin'], sys.argv[1], ('t', 4000000000), None, None, 'model')
print(i[0].hash)" $URL > t2.txt 2> t-edit.time
stop
printf "%-22s %10s %10s %12s %12s\n" step ours_s theirs_s ours_rss_kB theirs_rss_kB
cp t-warm.time t-warmnosync.time; cp t-cold.time t-coldnosync.time
for s in up cold coldnosync warm warmnosync edit; do printf "%-22s %10s %10s %12s %12s\n" $s $(t o-$s.time) $(t t-$s.time) $(r o-$s.time) $(r t-$s.time); done
