#!/usr/bin/env bash
# Installs the pinned reference implementation used to regenerate golden files:
# llama-cpp-python, which builds llama.cpp from source. -fno-tree-dse -fno-dse
# work around GCC 12 dropping the AMX tile-config stores (see docs/perf.md), so
# llama.cpp gets its fastest path on CPUs that have AMX. CI never runs this.
set -euo pipefail
VERSION=0.3.36
if python3 -c "import llama_cpp,sys; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null; then
  echo "llama-cpp-python $VERSION present"; exit 0
fi
CMAKE_ARGS="-DGGML_NATIVE=ON -DCMAKE_C_FLAGS='-fno-tree-dse -fno-dse' -DCMAKE_CXX_FLAGS='-fno-tree-dse -fno-dse'" \
  python3 -m pip install --no-cache-dir "llama-cpp-python==$VERSION" numpy
