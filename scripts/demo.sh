#!/usr/bin/env bash
# The demo: set up, start the model server, transfer part labels and a texture between
# real chairs in Blender (headless), write .blend, .ply and rendered .png files.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/setup.sh
echo "[demo] setup: $((SECONDS - start)) s"
out=${1:-out/demo}
port=${CORR_DEMO_PORT:-5561}
psb=../shared/data/psb
if [ ! -d "$psb/chair" ]; then
    echo "[demo] no PSB meshes in $(cd .. && pwd)/shared/data/psb: the demo's chairs are the Princeton"
    echo "[demo] Segmentation Benchmark's (README, Data); put its chair folder there and run again"
    exit 1
fi
address="tcp://127.0.0.1:$port"
mkdir -p "$out"
.venv/bin/python -m server --bind "$address" --log-level WARNING > "$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
t=$SECONDS
until .venv/bin/python -m server.client --address "$address" --timeout 1 ping >/dev/null 2>&1; do
    kill -0 $server 2>/dev/null || { echo "[demo] the server failed to start (port $port taken? CORR_DEMO_PORT=6000 scripts/demo.sh):"; cat "$out/server.log"; exit 1; }
    sleep 1
done
echo "[demo] server ready on $address: $((SECONDS - t)) s"
# the demo's own lines as it goes; everything (Blender's too) in demo.log, shown on a failure
if ! .venv/bin/python scripts/demo.py --address "$address" --out "$out" 2>&1 | tee "$out/demo.log" | grep --line-buffered '^\[demo\]'; then
    echo "[demo] failed; the end of $out/demo.log:"
    tail -n 20 "$out/demo.log"
    exit 1
fi
echo "[demo] total: $((SECONDS - start)) s"
