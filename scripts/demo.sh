#!/usr/bin/env bash
# The demo on a fresh machine: installs dependencies, fetches the default
# model, builds, and asks SmolLM2 a question through `tessera run`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/setup.sh"
MODEL="$("$ROOT/scripts/fetch_model.sh")"
"$ROOT/scripts/build.sh" >&2
PROMPT="${1:-What is the capital of France? Answer in one sentence.}"
exec "$ROOT/build/cli/tessera" run --model "$MODEL" --chat --prompt "$PROMPT" \
  --temperature 0 --max-tokens 96
