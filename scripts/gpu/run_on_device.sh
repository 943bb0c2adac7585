#!/usr/bin/env bash
# Run THERE (the lent GPU machine: CUDA toolkit, CMake, ninja; no abseil, no
# network), from the repository root, after scripts/gpu/fetch_debs.sh ran
# here and .gpu-debs was carried along:
#
#   bash scripts/gpu/run_on_device.sh [all|build|test|bench]   (default all)
#
# `all` fits one device call (at most 600 s; a second call usually lands on a
# fresh machine and would rebuild everything). The stages share one deadline,
# TESSERA_GPU_BUDGET_S seconds from the start (default 560), and each runs
# under `timeout` with the smaller of its own cap and what is left:
#   build  (cap 240 s) unpacks the .debs into a private prefix (never into /),
#          configures the bare build (no gRPC, no GoogleTest; CUDA for sm_90)
#          and builds the CUDA tests, the benchmark and the model generator;
#   model  (in the background from the end of the build) writes a random
#          Llama-3-8B-shaped bf16 model (16 GB), streamed tensor by tensor
#          by every core, while the tests run;
#   test   (cap 240 s) runs the CUDA tests, each under its own timeout;
#   bench  (cap 150 s) waits for the model and runs the benchmark.
# Before each stage starts, summary.txt says which stage, when and with what
# budget, so a run cut short still tells where it was. Logs go to $OUT (the
# device tool brings them back) or ./gpu-out; the summary is printed last.
# Without a GPU (a dry run on a development machine) the model has 2 layers.
# TESSERA_GPU_{BUILD,TEST,BENCH}_S override the caps (a 2-core dry run builds
# for longer than 240 s).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
STAGE="${1:-all}"
OUT="${OUT:-$ROOT/gpu-out}"
PREFIX="${TESSERA_GPU_PREFIX:-/tmp/tessera-gpu-deps}"
BUILD="${TESSERA_GPU_BUILD:-$ROOT/build-gpu}"
MODELS="${TESSERA_GPU_MODELS:-/tmp/tessera-gpu-models}"
BUDGET="${TESSERA_GPU_BUDGET_S:-560}"
BUILD_CAP="${TESSERA_GPU_BUILD_S:-240}"
TEST_CAP="${TESSERA_GPU_TEST_S:-240}"
BENCH_CAP="${TESSERA_GPU_BENCH_S:-150}"
export CUDAARCHS="${CUDAARCHS:-90}"
mkdir -p "$OUT" "$MODELS"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
START=$(date +%s)
DEADLINE=$((START + BUDGET))
MODEL="$MODELS/llama3-8b-bf16.gguf"
MODEL_PID=""

note() { echo "[gpu +$(($(date +%s) - START))s] $*" | tee -a "$SUMMARY"; }

# Seconds stage may use: its cap, or what is left of the call's budget.
budget_for() {
  local cap=$1 left=$((DEADLINE - $(date +%s)))
  ((left < cap)) && cap=$left
  ((cap < 1)) && cap=1
  echo "$cap"
}

have_gpu() { nvidia-smi -L >/dev/null 2>&1; }

unpack_debs() {
  local debs=("$ROOT"/.gpu-debs/*.deb)
  if [[ ! -e "${debs[0]}" ]]; then
    note "no .gpu-debs/*.deb: run scripts/gpu/fetch_debs.sh here and carry .gpu-debs"
    return 1
  fi
  mkdir -p "$PREFIX"
  for deb in "${debs[@]}"; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$deb" "$PREFIX"
    else  # no dpkg: a .deb is an ar archive holding data.tar.*
      local tmp
      tmp="$(mktemp -d)"
      (cd "$tmp" && ar x "$deb" && tar -xf data.tar.* -C "$PREFIX")
      rm -rf "$tmp"
    fi
  done
  note "unpacked ${#debs[@]} packages into $PREFIX"
}

# Where NCCL is when the CUDA toolkit has none: PyTorch's pip copy
# (nvidia-nccl-cu*: include/nccl.h, lib/libnccl.so.2). Empty if neither.
nccl_root() {
  local d
  for d in /usr/local/cuda/include /usr/include; do
    [[ -f "$d/nccl.h" ]] && return 0
  done
  python3 -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null
}

build() {
  local secs
  secs=$(budget_for "$BUILD_CAP")
  note "stage build: starting, budget ${secs}s"
  unpack_debs || return 1
  NCCL_ROOT="$(nccl_root)"
  note "NCCL root: ${NCCL_ROOT:-(none given: the toolkit's or the system's, if any)}"
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  {
    nvcc --version; cmake --version | head -1; g++ --version | head -1; nproc
    timeout "$secs" bash -c '
      cmake -S "$1" -B "$2" $3 -DCMAKE_BUILD_TYPE=Release \
        -DTESSERA_WITH_GRPC=OFF -DTESSERA_WITH_TESTS=OFF -DTESSERA_WITH_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="$4" -DCMAKE_PREFIX_PATH="$5/usr" \
        ${6:+-DTESSERA_NCCL_ROOT="$6"} &&
      cmake --build "$2" -j "$(nproc)" --target \
        cuda_matmul_test cuda_elementwise_test cuda_attention_test cuda_sampling_test \
        cuda_runner_test cuda_device_test cuda_tp_test tessera_cuda_bench \
        tessera_make_random_model tessera' \
      _ "$ROOT" "$BUILD" "${gen[*]}" "$CUDAARCHS" "$PREFIX" "$NCCL_ROOT"
  } >"$OUT/build.log" 2>&1
  local rc=$?
  note "stage build: exit $rc$([[ $rc -eq 124 ]] && echo ' (timed out)') (log: build.log)"
  grep -E "^-- NCCL" "$OUT/build.log" | tee -a "$SUMMARY"
  [[ $rc -eq 0 ]] || tail -40 "$OUT/build.log"
  return $rc
}

runtime_env() {
  export LD_LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local nccl
  nccl="$(nccl_root)"
  [[ -n "$nccl" ]] && export LD_LIBRARY_PATH="$nccl/lib:$LD_LIBRARY_PATH"
  return 0
}

# Starts writing the bench model in the background (nice'd, so the tests'
# CPU oracle keeps most of the cores).
start_model() {
  runtime_env
  [[ -f "$MODEL" ]] && return 0
  local layers=()
  if ! have_gpu; then
    layers=(--layers=2)
    MODEL="$MODELS/llama3-8b-2layers-bf16.gguf"
  fi
  note "model: writing $(basename "$MODEL") in the background (${layers[*]:-all layers})"
  (
    df -h "$MODELS"
    /usr/bin/time -v nice -n 10 "$BUILD/tests/cuda/tessera_make_random_model" \
      --shape=llama3-8b --type=bf16 --seed=1 "${layers[@]}" --out="$MODEL.tmp" &&
      mv "$MODEL.tmp" "$MODEL"
  ) >"$OUT/model.log" 2>&1 &
  MODEL_PID=$!
}

run_tests() {
  runtime_env
  local secs
  secs=$(budget_for "$TEST_CAP")
  note "stage test: starting, budget ${secs}s"
  nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
  # Each test under its own limit (the runner test, which writes and checks
  # 5 GB of models against the CPU, gets the most), all within the stage's.
  (cd "$BUILD" && timeout "$secs" ctest -L cuda -V --timeout "$((secs * 2 / 3))") \
    >"$OUT/tests.log" 2>&1
  local rc=$?
  note "stage test: exit $rc$([[ $rc -eq 124 ]] && echo ' (timed out)') (log: tests.log)"
  grep -E "^\s*[0-9]+/[0-9]+ Test|SKIPPED|FAILURE|PASSED|FAILED|worst row error|draws|replays|NCCL|note:" \
    "$OUT/tests.log" | tee -a "$SUMMARY"
  return $rc
}

run_bench() {
  runtime_env
  local secs
  secs=$(budget_for "$BENCH_CAP")
  note "stage bench: starting, budget ${secs}s"
  [[ -z "$MODEL_PID" && ! -f "$MODEL" ]] && start_model
  if [[ -n "$MODEL_PID" ]]; then
    if ! timeout "$secs" tail --pid="$MODEL_PID" -f /dev/null; then
      note "stage bench: the model was not written in time (log: model.log)"
      return 124
    fi
    wait "$MODEL_PID"
    local mrc=$?
    grep -E "Elapsed|Maximum resident|Percent of CPU" "$OUT/model.log" | sed 's/^\s*/  model: /' |
      tee -a "$SUMMARY"
    if [[ $mrc -ne 0 ]]; then
      note "stage bench: writing the model failed (exit $mrc; log: model.log)"
      return $mrc
    fi
    secs=$(budget_for "$BENCH_CAP")
  fi
  timeout "$secs" "$BUILD/bench/cuda/tessera_cuda_bench" --model="$MODEL" --steps=64 --batch=32 \
    >>"$OUT/bench.log" 2>&1
  local rc=$?
  note "stage bench: exit $rc$([[ $rc -eq 124 ]] && echo ' (timed out)') (log: bench.log)"
  sed -n '/^device/,$p;/SKIPPED/p' "$OUT/bench.log" | tee -a "$SUMMARY"
  return $rc
}

note "run_on_device.sh $STAGE: budget ${BUDGET}s, $(nproc) cores, $(have_gpu && nvidia-smi -L | head -1 || echo 'no GPU')"
rc=0
case "$STAGE" in
  build) build || rc=$? ;;
  test) run_tests || rc=$? ;;
  bench) run_bench || rc=$? ;;
  all)
    build || { note "done: all, build failed"; cat "$SUMMARY" >/dev/null; exit 1; }
    start_model
    run_tests || rc=$?
    run_bench || rc=$?
    ;;
  *) echo "usage: $0 [all|build|test|bench]" >&2; exit 2 ;;
esac
note "done: $STAGE, exit $rc ($(date -u +%FT%TZ)), wall $(($(date +%s) - START))s"
exit $rc
