#!/usr/bin/env bash
# Request placement over replicas on a shared-prefix workload: a loopback
# cluster of REPLICAS replicas of one stage each (THREADS kernel threads per
# worker), then `tessera bench --shared-prefixes 8` (64 requests, each one of
# 8 long system prompts plus its own question) once per placement policy,
# a fresh cluster each time so no policy inherits another's cache. Prints
# TTFT, throughput and the prefix-cache hit rate side by side.
#
#   bench/placement_bench.sh [REPLICAS=2] [THREADS=1] [CONCURRENCY=8] [POLICIES=cache,round-robin,load]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REPLICAS="${1:-2}"; THREADS="${2:-1}"; CONCURRENCY="${3:-8}"; POLICIES="${4:-cache,round-robin,load}"
MODEL="${TESSERA_MODEL:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
BIN="$ROOT/build"
PORT="${TESSERA_BENCH_PORT:-50671}"
# A plaintext cluster needs a join secret (docs/security.md); a fresh one each run.
SECRET="$(mktemp)"
openssl rand -hex 32 >"$SECRET"
echo "# $REPLICAS replica(s) x 1 stage x $THREADS thread(s), 8 shared prefixes, 64 requests, $(date -u +%F)"
for policy in ${POLICIES//,/ }; do
  LOG="$(mktemp -d)"
  pids=()
  "$BIN/coordinator/tessera-coordinator" --model "$MODEL" --listen "127.0.0.1:$PORT" \
    --join-secret-file "$SECRET" \
    --min-workers 1 --replicas "$REPLICAS" --placement "$policy" --ramp-up-s 0 \
    --max-context 1024 --max-seqs 16 2>"$LOG/coordinator.log" &
  pids+=($!)
  sleep 0.5
  for ((i = 0; i < REPLICAS; i++)); do
    "$BIN/worker/tessera-worker" --coordinator "127.0.0.1:$PORT" --model "$MODEL" \
      --join-secret-file "$SECRET" \
      --threads "$THREADS" 2>"$LOG/worker$i.log" &
    pids+=($!)
    until grep -q joined "$LOG/worker$i.log"; do sleep 0.1; done
  done
  until [[ "$(grep -c 'pipeline ready' "$LOG/coordinator.log")" -ge "$REPLICAS" ]]; do sleep 0.2; done
  echo "## --placement $policy"
  "$BIN/cli/tessera" bench --coordinator "127.0.0.1:$PORT" --concurrency "$CONCURRENCY" \
    --requests 64 --shared-prefixes 8 --max-tokens 16 --temperature 0.8 --seed 1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PORT=$((PORT + 1))
done
