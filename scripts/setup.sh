#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh machine (Debian, with the
# Rust toolchain and CPython already there): the official Xet client, used as the
# test oracle. Idempotent.
set -euo pipefail

PY=${XET_PYTHON:-python3}
HF_XET_VERSION=1.8.0

if ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('hf-xet') != '$HF_XET_VERSION')" 2>/dev/null; then
    echo "setup: installing hf-xet==$HF_XET_VERSION (official client, test oracle)" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "hf-xet==$HF_XET_VERSION"
fi
"$PY" -c "import hf_xet" || { echo "setup: hf_xet did not import" >&2; exit 1; }
