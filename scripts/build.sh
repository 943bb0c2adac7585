#!/usr/bin/env bash
# Configures and builds Tessera into build/ (Release). Extra arguments go to
# CMake's configure step, e.g. -DTESSERA_WITH_GRPC=OFF for a bare machine.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${TESSERA_BUILD_DIR:-$ROOT/build}"
GEN=()
if command -v ninja >/dev/null; then GEN=(-G Ninja); fi
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
elif (($#)); then
  cmake "$BUILD" "$@"
fi
cmake --build "$BUILD" -j "$(nproc)"
