#!/usr/bin/env bash
# The cost of TLS: a 2-stage pipeline (coordinator + 2 workers on loopback)
# served plaintext (join secret) and with mTLS everywhere (dev certificates),
# alternating ROUNDS times in one run, each measured with `tessera bench`.
# Prints output tok/s per concurrency level and mode, and the ratio TLS /
# plaintext of the means.
#
#   bench/tls_bench.sh [ROUNDS=4] [LEVELS=1,4] [MAX_TOKENS=64] [THREADS=1]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${1:-4}"; LEVELS="${2:-1,4}"; MAX_TOKENS="${3:-64}"; THREADS="${4:-1}"
MODEL="${TESSERA_MODEL:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
BIN="$ROOT/build"
PORT="${TESSERA_BENCH_PORT:-50691}"
WORK="$(mktemp -d)"
"$ROOT/scripts/security/make_dev_certs.sh" "$WORK/certs" coordinator worker-0 worker-1 >/dev/null
openssl rand -hex 32 >"$WORK/secret"
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop; rm -rf "$WORK"' EXIT

run() {  # $1 = plain | tls; prints "level tok/s" lines
  local mode="$1" c="$WORK/certs" node_flags client_flags
  for ((i = -1; i < 2; i++)); do
    local name=coordinator
    ((i >= 0)) && name="worker-$i"
    if [[ "$mode" == tls ]]; then
      node_flags[$((i + 1))]="--tls-cert $c/$name.pem --tls-key $c/$name.key --tls-ca $c/ca.pem"
    else
      node_flags[$((i + 1))]="--join-secret-file $WORK/secret"
    fi
  done
  client_flags=""
  [[ "$mode" == tls ]] && client_flags="--tls-ca $c/ca.pem"
  # shellcheck disable=SC2086
  "$BIN/coordinator/tessera-coordinator" --model "$MODEL" --listen "127.0.0.1:$PORT" \
    --min-workers 2 --max-context 1024 --max-seqs 16 ${node_flags[0]} 2>"$WORK/coordinator.log" &
  pids+=($!)
  sleep 0.5
  for i in 0 1; do
    # shellcheck disable=SC2086
    "$BIN/worker/tessera-worker" --coordinator "localhost:$PORT" --model "$MODEL" \
      --threads "$THREADS" ${node_flags[$((i + 1))]} 2>"$WORK/worker$i.log" &
    pids+=($!)
    until grep -q joined "$WORK/worker$i.log"; do sleep 0.1; done
  done
  until grep -q "pipeline ready" "$WORK/coordinator.log"; do sleep 0.2; done
  # shellcheck disable=SC2086
  "$BIN/cli/tessera" bench --coordinator "localhost:$PORT" $client_flags --concurrency "$LEVELS" \
    --max-tokens "$MAX_TOKENS" --temperature 0.8 --seed 1 | awk 'NR > 1 { print $1, $3 }'
  stop
}

echo "# 2 stages x $THREADS thread(s), $MAX_TOKENS tokens per request, $ROUNDS rounds, $(date -u +%F)"
for ((r = 1; r <= ROUNDS; r++)); do
  for mode in plain tls; do
    run "$mode" | while read -r level tps; do echo "$mode $level $tps"; done >>"$WORK/results"
  done
done
awk '{ sum[$1" "$2] += $3; n[$1" "$2]++ }
     END {
       printf "%-12s %14s %14s %8s\n", "concurrency", "plain tok/s", "mTLS tok/s", "ratio"
       for (k in n) { split(k, a, " "); if (a[1] == "plain") levels[a[2]] = 1 }
       for (l in levels) {
         p = sum["plain " l] / n["plain " l]; t = sum["tls " l] / n["tls " l]
         printf "%-12s %14.1f %14.1f %8.3f\n", l, p, t, t / p
       }
     }' "$WORK/results" | sort -n
