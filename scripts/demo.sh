#!/usr/bin/env bash
# The demo on a fresh machine: installs dependencies, fetches the default
# model, builds, then brings up a coordinator and two workers on loopback and
# streams an answer through `tessera generate`. The plan and each worker's
# load progress are shown as they come up; the processes are stopped at exit.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/setup.sh"
MODEL="$("$ROOT/scripts/fetch_model.sh")"
"$ROOT/scripts/build.sh" >&2
BIN="$ROOT/build"
PROMPT="${1:-What is the capital of France? Answer in one sentence.}"
PORT="${TESSERA_DEMO_PORT:-50551}"
# A plaintext cluster needs a join secret (docs/security.md); a fresh one each run.
SECRET="$(mktemp)"
openssl rand -hex 32 >"$SECRET"
LOGS="$(mktemp -d)"
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "[demo] coordinator on 127.0.0.1:$PORT, waiting for 2 workers" >&2
"$BIN/coordinator/tessera-coordinator" --model "$MODEL" --listen "127.0.0.1:$PORT" \
  --join-secret-file "$SECRET" \
  --min-workers 2 --max-context 2048 --max-seqs 4 2>"$LOGS/coordinator.log" &
PIDS+=($!)
for i in 1 2; do
  "$BIN/worker/tessera-worker" --coordinator "127.0.0.1:$PORT" --model "$MODEL" \
    --join-secret-file "$SECRET" \
    --listen 127.0.0.1:0 --threads 1 2>"$LOGS/worker$i.log" &
  PIDS+=($!)
  sleep 0.5  # join order is pipeline order
done
# Show the coordinator's log (the plan, load progress) until the pipeline is up.
tail -n +1 -f "$LOGS/coordinator.log" >&2 &
TAIL=$!
for _ in $(seq 1 120); do
  grep -q "pipeline ready" "$LOGS/coordinator.log" && break
  if grep -q "cannot plan" "$LOGS/coordinator.log"; then break; fi
  sleep 0.5
done
kill "$TAIL" 2>/dev/null || true
echo "[demo] tessera generate --chat --prompt \"$PROMPT\"" >&2
"$BIN/cli/tessera" generate --coordinator "127.0.0.1:$PORT" --chat --prompt "$PROMPT" \
  --temperature 0 --max-tokens 96
echo
