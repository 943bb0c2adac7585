#!/usr/bin/env bash
# Failover trials on a real loopback cluster (2 replicas x 2 stages,
# SmolLM2-135M): TRIALS random SIGKILLs, then TRIALS random SIGSTOPs, of a
# random worker at a random moment of four sampled streams; every stream must
# end with exactly the tokens of an undisturbed run. Prints each trial and how
# long each stream waited for its next token after the fault. Then the same
# faults on a single replica (no spare): every stream must end UNAVAILABLE
# within 2 s of detection.
#
#   bench/failover_trials.sh [TRIALS=20] [SEED=1]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TESSERA_FAILOVER_TRIALS="${1:-20}" TESSERA_FAILOVER_SEED="${2:-1}" \
  "$ROOT/build/tests/cluster/failover_test" --gtest_filter='*RandomFaults*'
