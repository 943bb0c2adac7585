#!/usr/bin/env python3
"""Checks Tessera's reading of Hugging Face checkpoints against Hugging Face's
own implementation, `transformers`, for every tiny architecture model in
tests/golden/arch/, and gives the F16 and BF16 checkpoint paths a test.

For each <name> of llama3, llama2, mistral, qwen2 and glm4 it:
  * writes <name>_hf_f16/ and <name>_hf_bf16/: <name>_hf/'s weights converted
    by torch (round to nearest even) to float16 and bfloat16, in a
    model.safetensors written by the `safetensors` package, with the same
    config.json (torch_dtype set to match) and tokenizer.json;
  * loads each of <name>_hf (F32), _hf_f16 and _hf_bf16 with transformers'
    AutoModelForCausalLM in float32 (half weights are widened exactly, as
    Tessera widens them), runs it teacher-forced over the tokens of
    <name>_logits.json, and records at every position its ten highest ids,
    their logits and the top-1/top-2 margin in <name>_transformers.json.

tests/engine/arch_golden_test.cc compares Tessera's logits on the three
directories with these.

Usage: scripts/golden/gen_hf_transformers_golden.py
Needs torch, transformers and safetensors (a virtual environment is fine:
the test command never runs this).
"""
import importlib.metadata
import json
import os
import shutil

import torch
import transformers
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARCH = os.path.join(ROOT, "tests", "golden", "arch")
NAMES = ["llama3", "llama2", "mistral", "qwen2", "glm4"]
DTYPES = {"f16": (torch.float16, "float16"), "bf16": (torch.bfloat16, "bfloat16")}
TOP = 10


def write_half(name, suffix, dtype, dtype_name):
    src = os.path.join(ARCH, name + "_hf")
    dst = os.path.join(ARCH, f"{name}_hf_{suffix}")
    os.makedirs(dst, exist_ok=True)
    tensors = {k: v.to(dtype).contiguous() for k, v in
               load_file(os.path.join(src, "model.safetensors")).items()}
    save_file(tensors, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    config["torch_dtype"] = dtype_name
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    shutil.copyfile(os.path.join(src, "tokenizer.json"), os.path.join(dst, "tokenizer.json"))
    return dst


def teacher_forced(directory, tokens):
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([tokens])).logits[0].double()
    rows = []
    for row in logits:
        values, ids = torch.topk(row, TOP)
        rows.append({"ids": ids.tolist(), "logits": [round(float(v), 6) for v in values],
                     "margin": round(float(values[0] - values[1]), 6)})
    return rows


def main():
    torch.manual_seed(0)
    for name in NAMES:
        with open(os.path.join(ARCH, name + "_logits.json")) as f:
            tokens = json.load(f)["tokens"]
        dirs = {"f32": os.path.join(ARCH, name + "_hf")}
        for suffix, (dtype, dtype_name) in DTYPES.items():
            dirs[suffix] = write_half(name, suffix, dtype, dtype_name)
        out = {
            "generator": "scripts/golden/gen_hf_transformers_golden.py",
            "reference": "transformers AutoModelForCausalLM, float32, teacher-forced",
            "transformers": importlib.metadata.version("transformers"),
            "torch": torch.__version__,
            "tokens": tokens,
            "directories": {k: os.path.relpath(v, ARCH) for k, v in dirs.items()},
            "teacher_forced": {k: teacher_forced(v, tokens) for k, v in dirs.items()},
        }
        with open(os.path.join(ARCH, name + "_transformers.json"), "w") as f:
            json.dump(out, f, separators=(",", ":"))
            f.write("\n")
        print(name, "done")


if __name__ == "__main__":
    main()
