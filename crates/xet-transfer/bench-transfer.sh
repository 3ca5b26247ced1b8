#!/bin/bash
# Side-by-side whole-process timings of `xet` and the official client (hf-xet 1.8.0),
# each on a fresh `xet serve` (no auth) per round. The server keeps its objects on
# tmpfs (BENCH_SERVE_DATA, default /dev/shm/xet-bench-srv): it fsyncs every object,
# and on a disk that syncs ~200 MB/s that would time the disk, not the clients.
#
# ROUNDS rounds (default 3); the order of the two clients alternates between rounds
# (this VM makes whoever first touches fresh memory pay for it: see BENCHMARKS.md),
# and each figure is the median over the rounds (wall time, peak RSS).
#
# Needs in $BENCH_DIR (default /tmp/bench): big.bin = first 2^30 bytes of the vector
# stream (`cargo run --release -p xet-format --example xorshift -- 1073741824`) and
# edited.bin = big.bin with 20 bytes inserted at offset 500,000,000. With BIG4=1,
# also ours alone on big4.bin (the first 2^32 bytes of the stream): upload and cold
# download, for the peak RSS of a 4 GiB file. Build first:
#   cargo build --release -p xet-cli      (XET=path/to/xet to time another build)
set -e
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "${BENCH_DIR:-/tmp/bench}"
XET=${XET:-${CARGO_TARGET_DIR:-$ROOT/target}/release/xet}
ROUNDS=${ROUNDS:-3}
export HF_XET_TELEMETRY_ENABLED=false
PORT=${BENCH_PORT:-18181}
URL=http://127.0.0.1:$PORT
SRV=${BENCH_SERVE_DATA:-/dev/shm/xet-bench-srv}
STEPS="up cold coldnosync warm warmnosync edit"
start() {
    rm -rf $SRV; $XET serve --data $SRV --addr 127.0.0.1:$PORT --no-auth 2> serve.log & SPID=$!
    for _ in $(seq 50); do curl -s -o /dev/null $URL/health && break; sleep 0.1; done
}
stop() { kill $SPID; wait $SPID 2>/dev/null || true; rm -rf $SRV; }
# Each step starts with nothing dirty in the page cache: otherwise the kernel's
# writeback of an earlier step's files (the chunk cache, a downloaded file) lands,
# 30 s later, in whatever step is running then, whichever client's it is.
timed() { local out=$1; shift; sync; /usr/bin/time -v "$@" 2> "$out"; }
ours() { # $1 = round
    start
    rm -rf c1; export HF_XET_CACHE=$PWD/c1
    timed o-up.$1 $XET upload --endpoint $URL big.bin > o.txt
    H=$(awk '{print $1}' o.txt)
    rm -f out1; timed o-cold.$1 $XET download $H -o out1 --endpoint $URL
    rm -rf c1/*/chunk-cache out1; HF_XET_SYNC_DOWNLOADS=false timed o-coldnosync.$1 $XET download $H -o out1 --endpoint $URL
    rm -f out1; timed o-warm.$1 $XET download $H -o out1 --endpoint $URL
    rm -f out1; HF_XET_SYNC_DOWNLOADS=false timed o-warmnosync.$1 $XET download $H -o out1 --endpoint $URL
    cmp out1 big.bin
    timed o-edit.$1 $XET upload --endpoint $URL edited.bin > o2.txt
    rm -rf c1 out1; unset HF_XET_CACHE
    stop
}
theirs() { # $1 = round
    start
    rm -rf c2; export HF_XET_CACHE=$PWD/c2 HF_XET_CHUNK_CACHE_SIZE_BYTES=10000000000
    timed t-up.$1 python3 -c "
import sys, hf_xet
i = hf_xet.upload_files(['big.bin'], sys.argv[1], ('t', 4000000000), None, None, 'model')
print(i[0].hash)" $URL > t.txt
    H=$(cat t.txt)
    DL="import sys, hf_xet; hf_xet.download_files([hf_xet.PyXetDownloadInfo('out2', sys.argv[2], 1073741824)], sys.argv[1], ('t', 4000000000), None, None)"
    rm -f out2; timed t-cold.$1 python3 -c "$DL" $URL $H
    rm -f out2; timed t-warm.$1 python3 -c "$DL" $URL $H
    cmp out2 big.bin
    timed t-edit.$1 python3 -c "
import sys, hf_xet
i = hf_xet.upload_files(['edited.bin'], sys.argv[1], ('t', 4000000000), None, None, 'model')
print(i[0].hash)" $URL > t2.txt
    # The official client never syncs: its cold/warm figures stand for both columns.
    cp t-cold.$1 t-coldnosync.$1; cp t-warm.$1 t-warmnosync.$1
    rm -rf c2 out2; unset HF_XET_CACHE HF_XET_CHUNK_CACHE_SIZE_BYTES
    stop
}
cat big.bin edited.bin > /dev/null # inputs in the page cache for both clients
for r in $(seq $ROUNDS); do
    if [ $((r % 2)) = 1 ]; then ours $r; theirs $r; else theirs $r; ours $r; fi
done
if [ "${BIG4:-0}" = 1 ]; then
    start
    rm -rf c4; export HF_XET_CACHE=$PWD/c4
    timed o-up4 $XET upload --endpoint $URL big4.bin > o4.txt
    rm -f out4; timed o-cold4 $XET download $(awk '{print $1}' o4.txt) -o out4 --endpoint $URL
    cmp out4 big4.bin
    rm -rf c4 out4; unset HF_XET_CACHE
    stop
fi
secs() { awk '/Elapsed/ {n = split($NF, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s}' "$1"; }
rss() { awk '/Maximum resident/ {print $NF}' "$1"; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
printf "%-12s %9s %9s %7s %12s %12s   %s\n" step ours_s theirs_s ratio ours_rss_kB theirs_rss_kB "ours/theirs per round (s)"
for s in $STEPS; do
    o=$(for r in $(seq $ROUNDS); do secs o-$s.$r; done | median)
    t=$(for r in $(seq $ROUNDS); do secs t-$s.$r; done | median)
    orss=$(for r in $(seq $ROUNDS); do rss o-$s.$r; done | median)
    trss=$(for r in $(seq $ROUNDS); do rss t-$s.$r; done | median)
    each=$(for r in $(seq $ROUNDS); do printf "%s/%s " $(secs o-$s.$r) $(secs t-$s.$r); done)
    printf "%-12s %9.2f %9.2f %6.2fx %12s %12s   %s\n" $s $o $t $(echo "$t $o" | awk '{print $1 / $2}') $orss $trss "$each"
done
if [ "${BIG4:-0}" = 1 ]; then
    for s in up4 cold4; do
        printf "%-12s %9.2f s, peak RSS %s KiB (ours, 4 GiB)\n" $s $(secs o-$s) $(rss o-$s)
    done
fi
