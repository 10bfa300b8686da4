#!/usr/bin/env bash
# calguard eval on recorded real-model behaviour, no key: the README's `calguard eval` table.
#   bash examples/eval_replay.sh            (DATA, PORT, LIMIT, OUT may be set)
set -euo pipefail
DATA=${DATA:-../shared/data}
PORT=${PORT:-8001}
OUT=${OUT:-arc-eval.json}
ARC=$DATA/recorded/arc_0s_Llama-2-13b-chat-hf.jsonl

URL=http://127.0.0.1:$PORT/v1
in_use() { echo "eval_replay.sh: port $PORT is in use (a replay-upstream still running?); set PORT" >&2; exit 1; }
# Something already answering there would be asked instead of this replay.
curl -sf "$URL/models" >/dev/null && in_use
calguard replay-upstream "$ARC" --port "$PORT" &
REPLAY=$!
trap 'kill $REPLAY 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  kill -0 $REPLAY 2>/dev/null || {
    echo "eval_replay.sh: calguard replay-upstream exited (see above: port $PORT in use? set PORT)" >&2
    exit 1
  }
  curl -sf "$URL/models" >/dev/null && break
  sleep 0.1
done
calguard eval "$ARC" --base-url "$URL" --model Llama-2-13b-chat \
  --calibration none pride adaptive cyclic --concurrency 1 --seed 0 --out "$OUT" \
  ${LIMIT:+--limit "$LIMIT"}
calguard report --eval "$OUT" --store "sqlite:///${OUT%.json}.db" --out-dir "${REPORT:-arc-report}"
