# Drives the official client (PyPI hf-xet 1.8.0) against a xet CAS server, the way
# huggingface_hub does: a user token is exchanged for CAS tokens at the Hub-style
# token endpoint, then upload_files / upload_bytes / download_files run with a token
# refresher. Also driven by crates/xet-cli/tests/it/interop.rs (one driver, not a copy).
#
# argv[1] = JSON {"base": url, "user_token": str,
#                 "hash": [paths], "upload": [paths],
#                 "upload_bytes": [paths whose contents go up as one upload_bytes call],
#                 "download": [[dest, hash, size], ...]}   (every key but base optional)
# Prints one JSON line: {"hashed": [[hash, size], ...], "uploaded": [[hash, size], ...],
# "uploaded_bytes": [[hash, size], ...]}. Route selection comes from the HF_XET_*
# environment variables (CLIENT-WIRE.md).
import json
import sys
import urllib.request

import hf_xet

job = json.loads(sys.argv[1])


def token(kind):
    req = urllib.request.Request(
        f"{job['base']}/api/models/me/repo/xet-{kind}-token/main",
        headers={"Authorization": f"Bearer {job['user_token']}"},
    )
    d = json.load(urllib.request.urlopen(req))
    return d["casUrl"], d["accessToken"], d["exp"]


def pairs(infos):
    return [[r.hash, r.file_size] for r in infos]


out = {"hashed": [], "uploaded": [], "uploaded_bytes": []}
if job.get("hash"):
    out["hashed"] = pairs(hf_xet.hash_files(job["hash"]))
if job.get("upload"):
    cas, tok, exp = token("write")
    res = hf_xet.upload_files(job["upload"], cas, (tok, exp), lambda: token("write")[1:], None, "model")
    out["uploaded"] = pairs(res)
if job.get("upload_bytes"):
    cas, tok, exp = token("write")
    buffers = []
    for p in job["upload_bytes"]:
        with open(p, "rb") as f:
            buffers.append(f.read())
    res = hf_xet.upload_bytes(buffers, cas, (tok, exp), lambda: token("write")[1:], None, "model")
    out["uploaded_bytes"] = pairs(res)
if job.get("download"):
    cas, tok, exp = token("read")
    infos = [hf_xet.PyXetDownloadInfo(d, h, s) for d, h, s in job["download"]]
    hf_xet.download_files(infos, cas, (tok, exp), lambda: token("read")[1:], None)
print(json.dumps(out))
