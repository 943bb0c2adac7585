#!/usr/bin/env bash
# Installs every system and Python dependency Tessera needs to build, test and
# run its demo. Idempotent: packages already present are not reinstalled, and
# apt's index is refreshed only when something is missing.
set -euo pipefail

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git unzip python3 python3-pip
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  nlohmann-json3-dev libspdlog-dev
  libboost-dev  # Boost.Beast and Asio (header-only): the OpenAI HTTP server
  libssl-dev openssl  # TLS on every listener, API-key hashes; openssl makes development certificates
  curl  # the HTTP tests' independent client
  libicu-dev  # NFC for tokenizer.json files that ask for it (Qwen2)
  iproute2  # ip and tc: the network-namespace variant of the pipeline test
  clang libclang-rt-14-dev  # the sanitizer build and its libFuzzer targets
  prometheus-cpp-dev  # the metrics registry, text format and --metrics-listen exposer
  prometheus  # the real Prometheus server and promtool for the metrics tests
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[setup] system packages present"
fi

# Python packages, as IMPORT_NAME[:PIP_NAME]. Debian's python3 is "externally
# managed" (PEP 668), so a --user install falls back to
# --break-system-packages.
PIP_PACKAGES=(
  openai  # tests/cluster/openai_client_check.py: the official client against our HTTP API
  grpc:grpcio  # tests/cluster/tls_client_check.py: an independent gRPC client over TLS
  nvidia.cu13:nvidia-nvml-dev==13.5.37  # NVIDIA's nvml.h, for the fake NVML the GPU telemetry tests load
)
for entry in "${PIP_PACKAGES[@]}"; do
  module="${entry%%:*}"
  p="${entry#*:}"
  if python3 -c "import $module" 2>/dev/null; then
    continue
  fi
  echo "[setup] pip installing: $p"
  python3 -m pip install -q --user "$p" 2>/dev/null ||
    python3 -m pip install -q --user --break-system-packages "$p" ||
    echo "[setup] warning: could not pip install $p; the tests that need it will skip"
done
