#!/usr/bin/env bash
# Whole-process benchmark of the CAS server: the official client (hf-xet 1.8.0)
# uploads a 1 GiB pseudo-random file to `xet serve` (release build) on loopback, then
# downloads it; prints wall times, MiB/s and the server's requests/s during the
# download (counted from its per-request debug log), and the server's peak RSS
# (VmHWM) through the upload and, reset in between, during the download. Run from the repository root:
#   cargo build --release -p xet-cli && scripts/bench-server-download.sh [SIZE_MIB]
set -euo pipefail
SIZE_MIB=${1:-1024}
PY=${XET_PYTHON:-python3}
work=$(mktemp -d)
trap 'kill $srv 2>/dev/null || true; rm -rf "$work"' EXIT
head -c $((SIZE_MIB << 20)) /dev/urandom >"$work/file"
RUST_LOG=xet_server=debug "${CARGO_TARGET_DIR:-target}"/release/xet serve --data "$work/data" --addr 127.0.0.1:0 \
    --user-token bench >"$work/serve.out" 2>"$work/serve.log" &
srv=$!
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(head -1 "$work/serve.out" | awk '{print $NF}')
HF_HOME="$work/home" "$PY" - "$url" "$work" "$SIZE_MIB" "$srv" <<'PYEOF'
import json, os, subprocess, sys, time, urllib.request
import hf_xet
url, work, size_mib, srv = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def peak_rss_mib():
    for l in open(f"/proc/{srv}/status"):
        if l.startswith("VmHWM:"):
            return int(l.split()[1]) // 1024
def tok(kind):
    r = urllib.request.Request(f"{url}/api/models/b/b/xet-{kind}-token/main", headers={"Authorization": "Bearer bench"})
    d = json.load(urllib.request.urlopen(r))
    return d["casUrl"], d["accessToken"], d["exp"]
def fetches():
    return sum(1 for l in open(os.path.join(work, "serve.log")) if "/v1/fetch/" in l)
cas, t, e = tok("write")
t0 = time.time()
[info] = hf_xet.upload_files([os.path.join(work, "file")], cas, (t, e), lambda: tok("write")[1:], None, "model")
up = time.time() - t0
up_peak = peak_rss_mib()
# Reset the peak RSS (Linux clear_refs 5) so the next reading covers the download only.
open(f"/proc/{srv}/clear_refs", "w").write("5")
cas, t, e = tok("read")
n0 = fetches()
t0 = time.time()
hf_xet.download_files([hf_xet.PyXetDownloadInfo(os.path.join(work, "down"), info.hash, info.file_size)], cas, (t, e), lambda: tok("read")[1:], None)
down = time.time() - t0
time.sleep(0.5)
n = fetches() - n0
assert open(os.path.join(work, "file"), "rb").read() == open(os.path.join(work, "down"), "rb").read(), "download differs"
print(f"upload   {size_mib} MiB in {up:.2f} s = {size_mib / up:.0f} MiB/s")
print(f"download {size_mib} MiB in {down:.2f} s = {size_mib / down:.0f} MiB/s, {n} fetch requests = {n / down:.1f} req/s")
print(f"server peak RSS: {up_peak} MiB through the upload, {peak_rss_mib()} MiB during the download")
PYEOF
