#!/usr/bin/env python3
"""Regenerates the expected values of the GGUF-layer tests from independent
implementations, so no number in those tests is pasted by hand:

  tests/golden/smollm2_gguf.json   the real SmolLM2-135M-Instruct Q4_1 file as
      gguf-py's GGUFReader reads it (header, keys, hyper-parameters,
      tokenizer arrays, tensor types, shapes, absolute offsets and first
      bytes), and its chat template rendered by jinja2 for one conversation;
      read by tests/gguf/gguf_real_model_test.cc and
      tests/tokenizer/tokenizer_golden_test.cc.
  tests/golden/tensor_encoding.json   gguf-py's quants.quantize() of a fixed
      input to Q8_0 and Q4_1 and numpy's float16 of it, as hex; read by
      tests/gguf/tensor_encoding_test.cc.

Usage: scripts/golden/gen_gguf_golden.py [--model PATH]
The model defaults to $TESSERA_MODEL, then models/SmolLM2-135M-Instruct.Q4_1.gguf.
Needs the PyPI packages gguf, numpy and jinja2.
"""
import argparse
import importlib.metadata
import json
import os

import gguf
import jinja2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests", "golden")

# Tensors whose placement the C++ test checks one by one.
SAMPLE_TENSORS = ["token_embd.weight", "blk.29.ffn_down.weight", "blk.9.attn_v.weight",
                  "output_norm.weight", "blk.0.attn_norm.weight"]
CHAT = [{"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."}]


def field_value(reader, key):
    f = reader.fields[key]
    t = f.types[0]
    if t == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    if t == gguf.GGUFValueType.ARRAY:
        inner = f.types[1]
        if inner == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    v = f.parts[f.data[0]].tolist()[0]
    if t in (gguf.GGUFValueType.FLOAT32, gguf.GGUFValueType.FLOAT64):
        return float(v)
    if t == gguf.GGUFValueType.BOOL:
        return bool(v)
    return int(v)


def smollm2(model):
    r = gguf.GGUFReader(model)
    keys = [k for k in r.fields if not k.startswith("GGUF.")]
    scalars = {}
    for k in keys:
        if r.fields[k].types[0] != gguf.GGUFValueType.ARRAY:
            scalars[k] = field_value(r, k)
    tokens = field_value(r, "tokenizer.ggml.tokens")
    merges = field_value(r, "tokenizer.ggml.merges")
    types = field_value(r, "tokenizer.ggml.token_type")
    type_counts = {}
    for t in r.tensors:
        name = gguf.GGMLQuantizationType(t.tensor_type).name
        type_counts[name] = type_counts.get(name, 0) + 1
    by_name = {t.name: t for t in r.tensors}
    samples = {}
    for name in SAMPLE_TENSORS:
        t = by_name[name]
        raw = np.frombuffer(r.data, dtype=np.uint8, count=16, offset=t.data_offset)
        entry = {"type": gguf.GGMLQuantizationType(t.tensor_type).name,
                 "shape": [int(d) for d in t.shape], "absolute_offset": int(t.data_offset),
                 "bytes": int(t.n_bytes), "first_bytes_hex": raw.tobytes().hex()}
        if t.tensor_type == gguf.GGMLQuantizationType.F32:
            entry["first_floats"] = [float(x) for x in raw.view(np.float32)[:4]]
        samples[name] = entry
    template = jinja2.Environment(loader=jinja2.BaseLoader()).from_string(
        scalars["tokenizer.chat_template"])
    rendered = template.render(messages=CHAT, add_generation_prompt=True,
                               bos_token=tokens[scalars["tokenizer.ggml.bos_token_id"]],
                               eos_token=tokens[scalars["tokenizer.ggml.eos_token_id"]])
    return {
        "header": {"version": int(field_value(r, "GGUF.version")),
                   "file_bytes": os.path.getsize(model), "alignment": int(r.alignment),
                   "data_offset": int(r.data_offset), "tensor_count": len(r.tensors),
                   "key_count": len(keys), "first_key": keys[0], "last_key": keys[-1]},
        "scalars": {k: v for k, v in scalars.items() if k != "tokenizer.chat_template"},
        "tokenizer": {"token_count": len(tokens),
                      "tokens_head": tokens[:3], "token_last": tokens[-1],
                      "merge_count": len(merges), "merges_head": merges[:2],
                      "token_type_count": len(types),
                      "token_types": {str(i): types[i] for i in (0, 16, 17)}},
        "tensor_type_counts": type_counts,
        "last_tensor": r.tensors[-1].name,
        "tensors": samples,
        "chat": {"messages": CHAT, "add_generation_prompt": True, "rendered": rendered},
    }


def encoding_input():
    # 64 values ((i * 7919) % 1000 - 500) / 137 in float32, then a zero block,
    # then a constant block of 1.25; GoldenInput() in tensor_encoding_test.cc.
    x = [np.float32(((i * 7919) % 1000 - 500)) / np.float32(137.0) for i in range(64)]
    x = np.array(x, dtype=np.float32)
    return np.concatenate([x, np.zeros(32, np.float32), np.full(32, 1.25, np.float32)])


def tensor_encoding():
    x = encoding_input()
    q = gguf.quants.quantize
    return {
        "input": "((i * 7919) % 1000 - 500) / 137 for i < 64 (float32), 32 zeros, 32 x 1.25",
        "q8_0_hex": q(x, gguf.GGMLQuantizationType.Q8_0).tobytes().hex(),
        "q4_1_hex": q(x, gguf.GGMLQuantizationType.Q4_1).tobytes().hex(),
        "f16_first16_hex": x[:16].astype(np.float16).tobytes().hex(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.environ.get("TESSERA_MODEL") or os.path.join(
        ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    meta = {"generator": "scripts/golden/gen_gguf_golden.py",
            "gguf": importlib.metadata.version("gguf"), "numpy": np.__version__,
            "jinja2": jinja2.__version__}
    out = smollm2(args.model)
    out["meta"] = dict(meta, model=os.path.basename(args.model))
    with open(os.path.join(GOLDEN, "smollm2_gguf.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    enc = tensor_encoding()
    enc["meta"] = meta
    with open(os.path.join(GOLDEN, "tensor_encoding.json"), "w") as f:
        json.dump(enc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
