#!/usr/bin/env bash
# Run THERE (the lent GPU machine: CUDA toolkit, CMake, ninja; no abseil, no
# network), from the repository root, after scripts/gpu/fetch_debs.sh ran
# here and .gpu-debs was carried along:
#
#   bash scripts/gpu/run_on_device.sh [build|test|bench|all]   (default all)
#
# build: unpacks the .debs into a private prefix (never into /), configures
#        the bare build (no gRPC, no GoogleTest; CUDA for sm_90) and builds the
#        CUDA tests, the benchmark and the random-model generator;
# test:  runs the CUDA tests through ctest (label "cuda");
# bench: writes a random Llama-3-8B-shaped bf16 model and runs the benchmark.
# Logs go to $OUT (the device tool brings them back) or ./gpu-out; the last
# lines printed are a summary. Each stage needs the previous one's build dir.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
STAGE="${1:-all}"
OUT="${OUT:-$ROOT/gpu-out}"
PREFIX="${TESSERA_GPU_PREFIX:-/tmp/tessera-gpu-deps}"
BUILD="${TESSERA_GPU_BUILD:-$ROOT/build-gpu}"
MODELS="${TESSERA_GPU_MODELS:-/tmp/tessera-gpu-models}"
export CUDAARCHS="${CUDAARCHS:-90}"
mkdir -p "$OUT" "$MODELS"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
note() { echo "[gpu] $*" | tee -a "$SUMMARY"; }

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

build() {
  unpack_debs || return 1
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  {
    nvcc --version; cmake --version | head -1; g++ --version | head -1
    cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DTESSERA_WITH_GRPC=OFF -DTESSERA_WITH_TESTS=OFF -DTESSERA_WITH_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES="$CUDAARCHS" -DCMAKE_PREFIX_PATH="$PREFIX/usr" &&
      cmake --build "$BUILD" -j "$(nproc)" --target \
        cuda_matmul_test cuda_elementwise_test cuda_attention_test cuda_sampling_test \
        cuda_runner_test tessera_cuda_bench tessera_make_random_model tessera
  } >"$OUT/build.log" 2>&1
  local rc=$?
  note "build: exit $rc (log: build.log)"
  [[ $rc -eq 0 ]] || tail -40 "$OUT/build.log"
  return $rc
}

run_tests() {
  export LD_LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
  (cd "$BUILD" && ctest -L cuda -V --timeout 900) >"$OUT/tests.log" 2>&1
  local rc=$?
  note "tests: exit $rc (log: tests.log)"
  grep -E "^\s*[0-9]+/[0-9]+ Test|SKIPPED|FAILURE|PASSED|FAILED|worst row error|draws" \
    "$OUT/tests.log" | tee -a "$SUMMARY"
  return $rc
}

run_bench() {
  export LD_LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local model="$MODELS/llama3-8b-bf16.gguf"
  if [[ ! -f "$model" ]]; then
    df -h "$MODELS" >>"$OUT/bench.log" 2>&1
    /usr/bin/time -v "$BUILD/tests/cuda/tessera_make_random_model" --shape=llama3-8b \
      --type=bf16 --seed=1 --out="$model" >>"$OUT/bench.log" 2>&1 ||
      "$BUILD/tests/cuda/tessera_make_random_model" --shape=llama3-8b --type=bf16 --seed=1 \
        --out="$model" >>"$OUT/bench.log" 2>&1
  fi
  "$BUILD/bench/cuda/tessera_cuda_bench" --model="$model" --steps=64 --batch=32 \
    >>"$OUT/bench.log" 2>&1
  local rc=$?
  note "bench: exit $rc (log: bench.log)"
  sed -n '/^device/,$p' "$OUT/bench.log" | tee -a "$SUMMARY"
  return $rc
}

rc=0
case "$STAGE" in
  build) build || rc=$? ;;
  test) run_tests || rc=$? ;;
  bench) run_bench || rc=$? ;;
  all)
    build || exit $?
    run_tests || rc=$?
    run_bench || rc=$?
    ;;
  *) echo "usage: $0 [build|test|bench|all]" >&2; exit 2 ;;
esac
note "done: $STAGE, exit $rc ($(date -u +%FT%TZ))"
exit $rc
