#!/usr/bin/env bash
# Serving throughput of a real cluster on loopback: starts a coordinator and
# STAGES workers (THREADS kernel threads each), runs `tessera bench` at the
# given concurrency levels, and stops the cluster.
#
#   bench/serving_bench.sh [STAGES=1] [THREADS=2] [LEVELS=1,4,16,32] [MAX_TOKENS=64]
#
# Compare 1 stage x 2 threads with 2 stages x 1 thread for the same cores.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STAGES="${1:-1}"; THREADS="${2:-2}"; LEVELS="${3:-1,4,16,32}"; MAX_TOKENS="${4:-64}"
MODEL="${TESSERA_MODEL:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
BIN="$ROOT/build"
PORT="${TESSERA_BENCH_PORT:-50651}"
# A plaintext cluster needs a join secret (docs/security.md); a fresh one each run.
SECRET="$(mktemp)"
openssl rand -hex 32 >"$SECRET"
LOG="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$BIN/coordinator/tessera-coordinator" --model "$MODEL" --listen "127.0.0.1:$PORT" \
    --join-secret-file "$SECRET" \
  --min-workers "$STAGES" --max-context 1024 --max-seqs 64 --max-batch-tokens 512 \
  2>"$LOG/coordinator.log" &
pids+=($!)
sleep 0.5
for ((i = 0; i < STAGES; i++)); do
  "$BIN/worker/tessera-worker" --coordinator "127.0.0.1:$PORT" --model "$MODEL" \
      --join-secret-file "$SECRET" \
    --threads "$THREADS" 2>"$LOG/worker$i.log" &
  pids+=($!)
  until grep -q joined "$LOG/worker$i.log"; do sleep 0.1; done
done
until grep -q "pipeline ready" "$LOG/coordinator.log"; do sleep 0.2; done
echo "# $STAGES stage(s) x $THREADS thread(s), $MAX_TOKENS tokens per request, $(date -u +%F)"
"$BIN/cli/tessera" bench --coordinator "127.0.0.1:$PORT" --concurrency "$LEVELS" \
  --max-tokens "$MAX_TOKENS" --temperature 0.8 --seed 1
