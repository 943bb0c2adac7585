#!/usr/bin/env bash
# Run HERE (the development machine, which reaches Debian's archive): downloads
# -- without installing -- the Debian packages the bare build needs beyond the
# CUDA toolkit and CMake, into .gpu-debs/ (git-ignored), for
# scripts/gpu/run_on_device.sh to unpack on the GPU machine, which has no
# network. Name .gpu-debs in the device tool's `carry`.
#   libabsl-dev + libabsl20220623: abseil (Status, strings, flags, ...)
#   nlohmann-json3-dev: header-only JSON; common/safetensors requires it at
#                       configure time even in the bare build.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="$ROOT/.gpu-debs"
mkdir -p "$DEST"
cd "$DEST"
rm -f ./*.deb
PACKAGES=(libabsl-dev libabsl20220623 nlohmann-json3-dev)
# The runtime library abseil's -dev package depends on, as apt resolves it.
for dep in $(apt-cache depends libabsl-dev | awk '/Depends:/ {print $2}'); do
  [[ " ${PACKAGES[*]} " == *" $dep "* ]] || PACKAGES+=("$dep")
done
apt-get download "${PACKAGES[@]}"
ls -l ./*.deb
TOTAL=$(du -cb ./*.deb | tail -1 | cut -f1)
echo "[fetch_debs] ${#PACKAGES[@]} packages, $((TOTAL / 1024)) KiB in $DEST (the device tool carries at most 64 MiB)"
