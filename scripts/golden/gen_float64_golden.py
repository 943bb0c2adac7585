#!/usr/bin/env python3
"""Writes tests/golden/smollm2_float64_logits.json: SmolLM2-135M's exact
logits, computed in float64 on its dequantized Q4_1 weights with nothing
quantized on the way (no int8 activations, no float32 rounding), for every
teacher-forced position of the cases in tests/golden/smollm2_logits.json, at
the ten ids llama.cpp ranked highest there.

It is the yardstick the Q4_1 fidelity test holds both engines to: llama.cpp's
logits (in smollm2_logits.json) and Tessera's are each compared with these,
and Tessera must be no further from them than llama.cpp is. The file also
records llama.cpp's own distance from them, computed here, so the bound the
test applies can be read without running anything.

Usage: scripts/golden/gen_float64_golden.py [--model PATH]
The model defaults to $TESSERA_MODEL, then models/SmolLM2-135M-Instruct.Q4_1.gguf.
Needs the PyPI packages gguf and numpy. About a minute on two cores.
"""
import argparse
import hashlib
import importlib.metadata
import json
import os

import gguf
import numpy as np
from gguf import quants

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests", "golden")


class Model:
    def __init__(self, path):
        self.reader = gguf.GGUFReader(path)
        self.tensors = {t.name: t for t in self.reader.tensors}
        f = self.reader.fields

        def scalar(key):
            return f[key].parts[f[key].data[0]].tolist()[0]

        self.n_layer = int(scalar("llama.block_count"))
        self.n_embd = int(scalar("llama.embedding_length"))
        self.n_head = int(scalar("llama.attention.head_count"))
        self.n_kv = int(scalar("llama.attention.head_count_kv"))
        self.eps = float(scalar("llama.attention.layer_norm_rms_epsilon"))
        self.base = float(scalar("llama.rope.freq_base"))
        self.head_dim = self.n_embd // self.n_head
        self.cache = {}

    def w(self, name):
        if name not in self.cache:
            t = self.tensors[name]
            a = quants.dequantize(t.data, t.tensor_type).astype(np.float64)
            shape = [int(x) for x in reversed(t.shape)]
            self.cache[name] = a.reshape(shape) if len(shape) > 1 else a.reshape(-1)
        return self.cache[name]

    def logits(self, tokens):
        n, hd = len(tokens), self.head_dim
        x = self.w("token_embd.weight")[tokens]

        def rms(v, weight):
            return v / np.sqrt((v * v).mean(-1, keepdims=True) + self.eps) * weight

        inv = self.base ** (-np.arange(0, hd, 2) / hd)
        ang = np.arange(n)[:, None] * inv[None, :]
        c, s = np.cos(ang), np.sin(ang)

        def rope(v):  # [n, heads, hd], adjacent pairs (llama.cpp's "normal" RoPE)
            a, b = v[..., 0::2], v[..., 1::2]
            out = np.empty_like(v)
            out[..., 0::2] = a * c[:, None, :] - b * s[:, None, :]
            out[..., 1::2] = a * s[:, None, :] + b * c[:, None, :]
            return out

        mask = np.triu(np.full((n, n), -np.inf), 1)
        group = self.n_head // self.n_kv
        for layer in range(self.n_layer):
            p = f"blk.{layer}."
            h = rms(x, self.w(p + "attn_norm.weight"))
            q = rope((h @ self.w(p + "attn_q.weight").T).reshape(n, self.n_head, hd))
            k = rope((h @ self.w(p + "attn_k.weight").T).reshape(n, self.n_kv, hd))
            v = (h @ self.w(p + "attn_v.weight").T).reshape(n, self.n_kv, hd)
            out = np.zeros((n, self.n_head, hd))
            for head in range(self.n_head):
                sc = q[:, head] @ k[:, head // group].T / np.sqrt(hd) + mask
                sc = np.exp(sc - sc.max(-1, keepdims=True))
                sc /= sc.sum(-1, keepdims=True)
                out[:, head] = sc @ v[:, head // group]
            x = x + out.reshape(n, -1) @ self.w(p + "attn_output.weight").T
            h = rms(x, self.w(p + "ffn_norm.weight"))
            gate = h @ self.w(p + "ffn_gate.weight").T
            up = h @ self.w(p + "ffn_up.weight").T
            x = x + ((gate / (1 + np.exp(-gate))) * up) @ self.w(p + "ffn_down.weight").T
        head = self.w("output.weight") if "output.weight" in self.tensors else \
            self.w("token_embd.weight")
        return rms(x, self.w("output_norm.weight")) @ head.T


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.environ.get("TESSERA_MODEL") or os.path.join(
        ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    with open(os.path.join(GOLDEN, "smollm2_logits.json")) as f:
        golden = json.load(f)
    with open(args.model, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    if sha != golden["model_sha256"]:
        raise SystemExit("the model's sha256 is not the one smollm2_logits.json was made with")
    model = Model(args.model)
    cases, deltas = [], []
    for case in golden["cases"]:
        exact = model.logits(case["tokens"])
        positions = []
        for pos, tf in enumerate(case["teacher_forced"]):
            values = [float(exact[pos, i]) for i in tf["ids"]]
            positions.append(values)
            deltas.extend(abs(a - b) for a, b in zip(tf["logits"], values))
        cases.append({"positions": positions})
    deltas = np.array(deltas)
    out = {
        "about": "float64 logits on the dequantized weights at llama.cpp's top-10 ids of each "
                 "teacher-forced position of smollm2_logits.json",
        "generator": "scripts/golden/gen_float64_golden.py",
        "gguf": importlib.metadata.version("gguf"),
        "numpy": np.__version__,
        "model_sha256": sha,
        "llama_cpp_vs_float64": {"max_abs_dlogit": float(deltas.max()),
                                 "p99_abs_dlogit": float(np.quantile(deltas, 0.99)),
                                 "mean_abs_dlogit": float(deltas.mean()),
                                 "values": int(deltas.size)},
        "cases": cases,
    }
    with open(os.path.join(GOLDEN, "smollm2_float64_logits.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(json.dumps(out["llama_cpp_vs_float64"]))


if __name__ == "__main__":
    main()
