#!/usr/bin/env bash
# The test command: installs dependencies, fetches the default model, checks
# the layering, builds everything, checks the lock annotations with clang,
# runs every test with ctest, then builds the parsers' fuzz tests
# and the libFuzzer targets with clang under AddressSanitizer and UBSan and
# runs them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/setup.sh"
# Where nvcc is installed, the CUDA backend compiles (no GPU is needed to build
# it); one architecture is enough to prove that and keeps the 2-core CI quick.
export CUDAARCHS="${CUDAARCHS:-90}"
export TESSERA_MODEL="$("$ROOT/scripts/fetch_model.sh")"
# Dependencies point down the layers (a table in the script).
python3 "$ROOT/scripts/check_layers.py"
"$ROOT/scripts/build.sh"
# The lock annotations, checked by clang (GCC ignores them).
python3 "$ROOT/scripts/check_thread_safety.py" "$ROOT/build"
(cd "$ROOT/build" && ctest --output-on-failure --timeout 900)
# ctest lists skipped tests without their reasons; print each SKIPPED line
# (GPU tests on a machine without a GPU, the network-namespace variant
# without privileges) so no skip goes unexplained.
grep -h "SKIPPED" "$ROOT/build/Testing/Temporary/LastTest.log" | sort -u || true

echo "[test] sanitizer build (clang, AddressSanitizer + UBSan): the parsers' fuzz tests, the"
echo "[test] libFuzzer target over the OpenAI request parser, the scheduler's unit tests and"
echo "[test] the CPU kernels' tests (SIMD loads and stores on every ISA the machine has)"
SAN_BUILD="$ROOT/build-sanitize"
GEN=()
if command -v ninja >/dev/null; then GEN=(-G Ninja); fi
[[ -f "$SAN_BUILD/CMakeCache.txt" ]] ||
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$SAN_BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Debug \
    -DTESSERA_ASAN=ON -DTESSERA_FUZZ=ON -DTESSERA_WITH_GRPC=OFF -DTESSERA_WITH_CUDA=OFF
KERNEL_TESTS=(kernels_dtype_test kernels_isa_test kernels_thread_pool_test kernels_matmul_test
  kernels_matmul_shared_test kernels_batch_invariance_test kernels_norm_rope_test
  kernels_attention_test kernels_activation_test kernels_kquant_test)
cmake --build "$SAN_BUILD" -j "$(nproc)" --target gguf_fuzz_test tokenizer_fuzz_test \
  safetensors_fuzz_test openai_request_fuzzer scheduler_test "${KERNEL_TESTS[@]}"
(cd "$SAN_BUILD" && ctest --output-on-failure -R 'fuzz|scheduler_test|^kernels_')
