#!/usr/bin/env bash
# The cost of metrics: a 2-stage pipeline (coordinator + 2 workers on
# loopback) in three modes, alternating ROUNDS times in one run, each
# measured with `tessera bench` (decode-dominated: short prompts, MAX_TOKENS
# generated):
#   off      --serving-metrics=false, no metrics port;
#   count    events counted, --metrics-listen on all three, nobody scraping;
#   scraped  the same, with one keep-alive client (a Python loop, as a
#            Prometheus would hold its connections) reading all three
#            /metrics every second, on this same machine.
# Prints output tok/s per concurrency level and mode, and each mode's ratio
# to off (the aim: under 1% lower).
#
#   bench/metrics_bench.sh [ROUNDS=4] [LEVELS=1,4] [MAX_TOKENS=64] [THREADS=1]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${1:-4}"; LEVELS="${2:-1,4}"; MAX_TOKENS="${3:-64}"; THREADS="${4:-1}"
MODEL="${TESSERA_MODEL:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
BIN="$ROOT/build"
PORT="${TESSERA_BENCH_PORT:-50693}"
WORK="$(mktemp -d)"
openssl rand -hex 32 >"$WORK/secret"
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop; rm -rf "$WORK"' EXIT

metrics_port() { grep -o "metrics listening on [0-9.]*:[0-9]*" "$1" | head -1 | awk '{print $4}'; }

run() {  # $1 = off | count | scraped; prints "level tok/s" lines
  local mode="$1" coordinator_flags=() worker_flags=()
  if [[ "$mode" != off ]]; then
    coordinator_flags=(--metrics-listen 127.0.0.1:0)
    worker_flags=(--metrics-listen 127.0.0.1:0)
  else
    coordinator_flags=(--serving-metrics=false)
  fi
  "$BIN/coordinator/tessera-coordinator" --model "$MODEL" --listen "127.0.0.1:$PORT" \
    --join-secret-file "$WORK/secret" --min-workers 2 --max-context 1024 --max-seqs 16 \
    "${coordinator_flags[@]}" 2>"$WORK/coordinator.log" &
  pids+=($!)
  sleep 0.5
  for i in 0 1; do
    "$BIN/worker/tessera-worker" --coordinator "127.0.0.1:$PORT" --model "$MODEL" \
      --join-secret-file "$WORK/secret" --threads "$THREADS" "${worker_flags[@]}" \
      2>"$WORK/worker$i.log" &
    pids+=($!)
    until grep -q joined "$WORK/worker$i.log"; do sleep 0.1; done
  done
  until grep -q "pipeline ready" "$WORK/coordinator.log"; do sleep 0.2; done
  if [[ "$mode" == scraped ]]; then
    local targets=()
    for log in "$WORK/coordinator.log" "$WORK/worker0.log" "$WORK/worker1.log"; do
      targets+=("$(metrics_port "$log")")
    done
    python3 - "${targets[@]}" <<'PY' &
import http.client, sys, time
conns = [http.client.HTTPConnection(t) for t in sys.argv[1:]]
while True:
    for c in conns:
        c.request("GET", "/metrics")
        c.getresponse().read()
    time.sleep(1)
PY
    pids+=($!)
  fi
  "$BIN/cli/tessera" bench --coordinator "127.0.0.1:$PORT" --concurrency "$LEVELS" \
    --max-tokens "$MAX_TOKENS" --temperature 0.8 --seed 1 | awk 'NR > 1 { print $1, $3 }'
  stop
}

echo "# 2 stages x $THREADS thread(s), $MAX_TOKENS tokens per request, $ROUNDS rounds, $(date -u +%F)"
for ((r = 1; r <= ROUNDS; r++)); do
  for mode in off count scraped; do
    run "$mode" | while read -r level tps; do echo "$mode $level $tps"; done >>"$WORK/results"
  done
done
awk '{ sum[$1" "$2] += $3; n[$1" "$2]++ }
     END {
       printf "%-12s %10s %10s %8s %10s %8s\n", "concurrency", "off tok/s", "count", "ratio",
              "scraped", "ratio"
       for (k in n) { split(k, a, " "); if (a[1] == "off") levels[a[2]] = 1 }
       for (l in levels) {
         o = sum["off " l] / n["off " l]; c = sum["count " l] / n["count " l]
         s = sum["scraped " l] / n["scraped " l]
         printf "%-12s %10.1f %10.1f %8.3f %10.1f %8.3f\n", l, o, c, c / o, s, s / o
       }
     }' "$WORK/results" | sort -n
echo "# per round:"
sort -k2,2n -k1,1 "$WORK/results" | awk '{ printf "#   %s %s %s\n", $1, $2, $3 }'
