#!/usr/bin/env bash
# Starts a real S3-compatible server on loopback for the S3 backend tests: moto's
# standalone server (PyPI `moto[server]`), in its own process. Prints the endpoint.
#   scripts/s3-server.sh start PIDFILE   -> prints http://127.0.0.1:PORT
#   scripts/s3-server.sh stop PIDFILE
set -euo pipefail

PY=${XET_PYTHON:-python3}
MOTO_VERSION=5.2.1

case "${1:-}" in
start)
    pidfile=${2:?pidfile}
    if ! "$PY" -c "import moto.server, flask, flask_cors" 2>/dev/null; then
        echo "s3-server: installing moto[server]==$MOTO_VERSION" >&2
        "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "moto[server]==$MOTO_VERSION" >&2
    fi
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$PY" -m moto.server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    echo $! >"$pidfile"
    # Up to ~60 s: moto's first start on a fresh machine imports a lot.
    for _ in $(seq 600); do
        if "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
            echo "http://127.0.0.1:$port"
            exit 0
        fi
        sleep 0.1
    done
    echo "s3-server: moto did not start on port $port" >&2
    exit 1
    ;;
stop)
    pidfile=${2:?pidfile}
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
    ;;
*)
    echo "usage: $0 start|stop PIDFILE" >&2
    exit 2
    ;;
esac
