#!/usr/bin/env bash
# Tensor parallelism inside one worker on CPU (issue 6): decode and prefill
# speed of a one-stage cluster at `--tp 1` and `--tp 2` with the same kernel
# threads, so TP 2 runs one thread per rank where TP 1 runs one rank with
# THREADS threads. SmolLM2-135M's 3 KV heads do not split in two, so the model
# is a copy with 4 KV heads (bench/tp_bench_model.py).
#
#   bench/tp_bench.sh [THREADS=2] [REQUESTS=4] [MAX_TOKENS=128]
#
# Decode tok/s is 1 / TPOT at concurrency 1; prefill tok/s is the prompt's
# tokens / TTFT (TTFT includes one decode-free round trip through the
# coordinator, small next to a ~400-token prefill). Set TESSERA_BUILD to the
# build directory (default: build).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
THREADS="${1:-2}"; REQUESTS="${2:-4}"; MAX_TOKENS="${3:-128}"
SRC="${TESSERA_MODEL:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
BIN="${TESSERA_BUILD:-$ROOT/build}"
PORT="${TESSERA_BENCH_PORT:-50671}"
# A plaintext cluster needs a join secret (docs/security.md); a fresh one each run.
SECRET="$(mktemp)"
openssl rand -hex 32 >"$SECRET"
WORK="$(mktemp -d)"
MODEL="$WORK/smol_kv4.gguf"
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop; rm -rf "$WORK"' EXIT
python3 "$ROOT/bench/tp_bench_model.py" "$SRC" "$MODEL" >/dev/null

# A prompt of about 400 tokens: prefill is one large step.
PROMPT="$(for i in $(seq 1 40); do printf 'The quick brown fox jumps over the lazy dog %d. ' "$i"; done)"

# Prints "decode_tok_s prefill_tok_s" for one --tp value.
run_one() {
  local tp="$1"
  "$BIN/coordinator/tessera-coordinator" --model "$MODEL" --listen "127.0.0.1:$PORT" \
    --join-secret-file "$SECRET" \
    --min-workers 1 --max-context 1024 --max-seqs 4 --max-batch-tokens 512 \
    2>"$WORK/coordinator.log" &
  pids+=($!)
  until grep -q "listening on" "$WORK/coordinator.log"; do sleep 0.1; done
  "$BIN/worker/tessera-worker" --coordinator "127.0.0.1:$PORT" --model "$MODEL" \
      --join-secret-file "$SECRET" \
    --threads "$THREADS" --tp "$tp" 2>"$WORK/worker.log" &
  pids+=($!)
  until grep -q "pipeline ready" "$WORK/coordinator.log"; do sleep 0.2; done
  "$BIN/cli/tessera" bench --coordinator "127.0.0.1:$PORT" --concurrency 1 \
    --requests "$REQUESTS" --prompt "$PROMPT" --max-tokens "$MAX_TOKENS" --temperature 0 \
    >"$WORK/bench_tp$tp.txt" 2>&1
  stop
  cat "$WORK/bench_tp$tp.txt" >&2
}

NPROMPT="$("$BIN/cli/tessera" run --model "$MODEL" --prompt "$PROMPT" --max-tokens 1 --threads 1 2>&1 |
  sed -n 's/.*prompt tokens: \([0-9]*\).*/\1/p')"
echo "# tp_bench: 1 stage, $THREADS threads, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $NPROMPT-token prompt, $REQUESTS requests x $MAX_TOKENS tokens, $(date -u +%F)"
# Columns of `tessera bench`'s table: TTFT p50 is $4, TPOT p50 is $6 (ms).
declare -A decode prefill
for tp in 1 2; do
  echo "## --tp $tp" >&2
  run_one "$tp"
  row="$(awk '$1 == "1" {print $4, $6}' "$WORK/bench_tp$tp.txt" | tr -d 'ms')"
  decode[$tp]="$(awk -v t="${row#* }" 'BEGIN {printf "%.1f", 1000 / t}')"
  prefill[$tp]="$(awk -v t="${row% *}" -v n="$NPROMPT" 'BEGIN {printf "%.1f", n * 1000 / t}')"
  echo "tp $tp: decode ${decode[$tp]} tok/s, prefill ${prefill[$tp]} tok/s"
done
awk -v d1="${decode[1]}" -v d2="${decode[2]}" -v p1="${prefill[1]}" -v p2="${prefill[2]}" \
  'BEGIN {printf "TP2 / TP1: decode %.2fx, prefill %.2fx\n", d2 / d1, p2 / p1}'
