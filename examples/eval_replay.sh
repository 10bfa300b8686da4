#!/usr/bin/env bash
# calguard eval on recorded real-model behaviour, no key: the README's `calguard eval` table.
#   bash examples/eval_replay.sh            (DATA, PORT, LIMIT, OUT may be set)
set -euo pipefail
DATA=${DATA:-../shared/data}
PORT=${PORT:-8001}
OUT=${OUT:-arc-eval.json}
ARC=$DATA/recorded/arc_0s_Llama-2-13b-chat-hf.jsonl

calguard replay-upstream "$ARC" --port "$PORT" &
REPLAY=$!
trap 'kill $REPLAY' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && break
  sleep 0.1
done
calguard eval "$ARC" --base-url "http://127.0.0.1:$PORT/v1" --model Llama-2-13b-chat \
  --calibration none pride adaptive cyclic --concurrency 1 --seed 0 --out "$OUT" \
  ${LIMIT:+--limit "$LIMIT"}
calguard report --eval "$OUT" --store "sqlite:///${OUT%.json}.db" --out-dir "${REPORT:-arc-report}"
