#!/usr/bin/env bash
# The test command: installs dependencies, fetches the default model, builds
# everything, runs every test with ctest, then rebuilds the parsers' fuzz
# tests under AddressSanitizer and runs them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/setup.sh"
# Where nvcc is installed, the CUDA backend compiles (no GPU is needed to build
# it); one architecture is enough to prove that and keeps the 2-core CI quick.
export CUDAARCHS="${CUDAARCHS:-90}"
export TESSERA_MODEL="$("$ROOT/scripts/fetch_model.sh")"
"$ROOT/scripts/build.sh"
(cd "$ROOT/build" && ctest --output-on-failure --timeout 900)
# ctest lists skipped tests without their reasons; print each SKIPPED line
# (GPU tests on a machine without a GPU, the network-namespace variant
# without privileges) so no skip goes unexplained.
grep -h "SKIPPED" "$ROOT/build/Testing/Temporary/LastTest.log" | sort -u || true

echo "[test] AddressSanitizer build of the GGUF, tokenizer and safetensors fuzz tests"
ASAN_BUILD="$ROOT/build-asan"
GEN=()
if command -v ninja >/dev/null; then GEN=(-G Ninja); fi
[[ -f "$ASAN_BUILD/CMakeCache.txt" ]] ||
  cmake -S "$ROOT" -B "$ASAN_BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Debug -DTESSERA_ASAN=ON \
    -DTESSERA_WITH_GRPC=OFF -DTESSERA_WITH_CUDA=OFF
cmake --build "$ASAN_BUILD" -j "$(nproc)" --target gguf_fuzz_test tokenizer_fuzz_test safetensors_fuzz_test
(cd "$ASAN_BUILD" && ctest --output-on-failure -R 'fuzz')
