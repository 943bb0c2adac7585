#!/usr/bin/env python3
"""Regenerates tests/golden/arch/: one tiny random-weight model per supported
architecture, as a Hugging Face directory and as an F32 GGUF, with llama.cpp's
teacher-forced logits for each.

For every variant below it:
  * draws random weights (numpy, fixed seed) in Hugging Face layout and writes
    <name>_hf/{config.json, model.safetensors, tokenizer.json} (the
    safetensors file is written here by hand: 8-byte header length, JSON
    header, raw little-endian data; the tokenizer is the GGUF's byte-level
    vocabulary);
  * converts them the way llama.cpp's convert_hf_to_gguf.py does (Llama Q/K
    rows permuted for its "normal" RoPE; glm4 and qwen2 unpermuted; Llama 3
    RoPE scaling as a rope_freqs.weight tensor) and writes <name>.gguf with the
    `gguf` package;
  * runs the GGUF through llama.cpp (llama-cpp-python, pinned) teacher-forced
    over a fixed token sequence and records, per position, the top-10 ids and
    logits and the top-1/top-2 margin into <name>_logits.json, together with
    the settings used.

tests/engine/arch_golden_test.cc checks Tessera's top-1 against these where
the margin exceeds 0.02, and that the HF directory and the GGUF give bitwise
identical logits.

Usage: scripts/golden/gen_arch_golden.py [--out-dir DIR]
Needs llama-cpp-python (scripts/golden/install_reference.sh) and gguf.
"""
import argparse
import hashlib
import json
import math
import os
import struct
import sys

import numpy as np

PINNED = "0.3.36"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GGML_TYPE_F32 = 0
N_THREADS = 2
N_TOKENS = 64
N_CTX = 128

# Shapes are tiny so the files stay small; heads, GQA ratios, RoPE bases and
# features follow each family's real configuration.
VARIANTS = [
    # Llama 3: GQA 4:1, RoPE base 500000 with llama3 frequency scaling.
    dict(name="llama3", hf_arch="LlamaForCausalLM", arch="llama", n_embd=64, n_ff=160,
         n_head=8, n_kv_head=2, n_layer=2, vocab=320, rope_theta=500000.0, tied=False,
         rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                           high_freq_factor=4.0, original_max_position_embeddings=64)),
    # Llama 2: multi-head attention, RoPE base 10000.
    dict(name="llama2", hf_arch="LlamaForCausalLM", arch="llama", n_embd=64, n_ff=176,
         n_head=4, n_kv_head=4, n_layer=2, vocab=320, rope_theta=10000.0, tied=False),
    # Mistral: GQA 4:1, RoPE base 1e6, no sliding window (v0.2 and later).
    dict(name="mistral", hf_arch="MistralForCausalLM", arch="llama", n_embd=64, n_ff=192,
         n_head=8, n_kv_head=2, n_layer=2, vocab=320, rope_theta=1000000.0, tied=False),
    # Qwen2: Q/K/V biases, rotate-half RoPE, tied embeddings (as the 0.5B).
    dict(name="qwen2", hf_arch="Qwen2ForCausalLM", arch="qwen2", n_embd=64, n_ff=160,
         n_head=4, n_kv_head=2, n_layer=2, vocab=320, rope_theta=1000000.0, tied=True,
         qkv_bias=True),
    # GLM-4 (0414): Q/K/V biases, RoPE on half of each head, post-attention and
    # post-MLP norms, fused gate/up.
    dict(name="glm4", hf_arch="Glm4ForCausalLM", arch="glm4", n_embd=64, n_ff=160,
         n_head=4, n_kv_head=2, n_layer=2, vocab=320, rope_theta=10000.0, tied=False,
         qkv_bias=True, partial_rotary=0.5),
]


def llama3_factors(rot_dim, theta, s):
    """Hugging Face's llama3 frequency divisors, as convert_hf_to_gguf writes them."""
    lo, hi, factor = s["low_freq_factor"], s["high_freq_factor"], s["factor"]
    old = s["original_max_position_embeddings"]
    out = []
    for i in range(rot_dim // 2):
        freq = 1.0 / theta ** (2 * i / rot_dim)
        wavelen = 2 * math.pi / freq
        if wavelen < old / hi:
            out.append(1.0)
        elif wavelen > old / lo:
            out.append(factor)
        else:
            smooth = (old / wavelen - lo) / (hi - lo)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def byte_level_vocab(n):
    """GPT-2 byte-level tokens: the 256 byte symbols, merged pairs, two specials."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    k = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + k)
            k += 1
    sym = {b: chr(c) for b, c in zip(bs, cs)}
    tokens = [sym[b] for b in range(256)]
    merges = []
    letters = "etaoinshrdlucmfwypvbgk"
    for a in letters:
        for b in letters:
            if len(tokens) >= n - 2:
                break
            tokens.append(a + b)
            merges.append(f"{a} {b}")
    tokens += ["<|bos|>", "<|eos|>"]
    types = [1] * (len(tokens) - 2) + [3, 3]
    return tokens, types, merges


def random_weights(v, rng):
    """HF-layout tensors (name -> float32 array [rows, cols])."""
    d, ff, hd = v["n_embd"], v["n_ff"], v["n_embd"] // v["n_head"]
    q_dim, kv_dim = v["n_head"] * hd, v["n_kv_head"] * hd

    def mat(rows, cols, gain=1.0):
        return (rng.standard_normal((rows, cols)) * gain / math.sqrt(cols)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    t = {"model.embed_tokens.weight": rng.standard_normal((v["vocab"], d)).astype(np.float32),
         "model.norm.weight": norm(d)}
    if not v["tied"]:
        t["lm_head.weight"] = mat(v["vocab"], d, 4.0)
    for l in range(v["n_layer"]):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = norm(d)
        t[p + "post_attention_layernorm.weight"] = norm(d)
        t[p + "self_attn.q_proj.weight"] = mat(q_dim, d, 2.0)
        t[p + "self_attn.k_proj.weight"] = mat(kv_dim, d, 2.0)
        t[p + "self_attn.v_proj.weight"] = mat(kv_dim, d)
        t[p + "self_attn.o_proj.weight"] = mat(d, q_dim)
        if v.get("qkv_bias"):
            for n, rows in (("q", q_dim), ("k", kv_dim), ("v", kv_dim)):
                t[p + f"self_attn.{n}_proj.bias"] = (0.5 * rng.standard_normal(rows)).astype(
                    np.float32)
        if v["arch"] == "glm4":
            t[p + "mlp.gate_up_proj.weight"] = mat(2 * ff, d)
            t[p + "post_self_attn_layernorm.weight"] = norm(d)
            t[p + "post_mlp_layernorm.weight"] = norm(d)
        else:
            t[p + "mlp.gate_proj.weight"] = mat(ff, d)
            t[p + "mlp.up_proj.weight"] = mat(ff, d)
        t[p + "mlp.down_proj.weight"] = mat(d, ff)
    return t


def hf_config(v):
    hd = v["n_embd"] // v["n_head"]
    c = {
        "architectures": [v["hf_arch"]],
        # What transformers' AutoConfig keys on, as in every real config.json.
        "model_type": {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
                       "Qwen2ForCausalLM": "qwen2", "Glm4ForCausalLM": "glm4"}[v["hf_arch"]],
        "hidden_size": v["n_embd"],
        "intermediate_size": v["n_ff"],
        "num_attention_heads": v["n_head"],
        "num_key_value_heads": v["n_kv_head"],
        "num_hidden_layers": v["n_layer"],
        "vocab_size": v["vocab"],
        "max_position_embeddings": N_CTX,
        "rms_norm_eps": 1e-5,
        "rope_theta": v["rope_theta"],
        "tie_word_embeddings": v["tied"],
        "head_dim": hd,
        "torch_dtype": "float32",
        "bos_token_id": v["vocab"] - 2,
        "eos_token_id": v["vocab"] - 1,
    }
    if "rope_scaling" in v:
        c["rope_scaling"] = v["rope_scaling"]
    if v["hf_arch"] == "MistralForCausalLM":
        c["sliding_window"] = None
    if v["arch"] == "glm4":
        c["partial_rotary_factor"] = v["partial_rotary"]
        c["attention_bias"] = True
        # Glm4Config's default (151329) lies outside a tiny vocabulary.
        c["pad_token_id"] = v["vocab"] - 1
    return c


def write_tokenizer_json(path, vocab_size):
    """The GGUF's byte-level vocabulary as a GPT-2 style tokenizer.json."""
    tokens, _, merges = byte_level_vocab(vocab_size)
    specials = tokens[-2:]
    doc = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": len(tokens) - 2 + i, "content": t, "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False, "special": True}
                         for i, t in enumerate(specials)],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)},
                  "merges": [m.split(" ") for m in merges]},
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def permute(w, n_head):
    """convert_hf_to_gguf's Llama Q/K reordering: rotate-half -> adjacent pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
        w.shape)


def write_gguf(path, v, hf):
    import gguf
    hd = v["n_embd"] // v["n_head"]
    rot = int(hd * v.get("partial_rotary", 1.0))
    w = gguf.GGUFWriter(path, v["arch"])
    w.add_name(f"tiny-{v['name']}")
    w.add_context_length(N_CTX)
    w.add_embedding_length(v["n_embd"])
    w.add_block_count(v["n_layer"])
    w.add_feed_forward_length(v["n_ff"])
    w.add_head_count(v["n_head"])
    w.add_head_count_kv(v["n_kv_head"])
    w.add_rope_dimension_count(rot)
    w.add_rope_freq_base(v["rope_theta"])
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(v["vocab"])
    tokens, types, merges = byte_level_vocab(v["vocab"])
    assert len(tokens) == v["vocab"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(v["vocab"] - 2)
    w.add_eos_token_id(v["vocab"] - 1)
    w.add_add_bos_token(False)

    def add(name, a):
        w.add_tensor(name, np.ascontiguousarray(a, dtype=np.float32))

    add("token_embd.weight", hf["model.embed_tokens.weight"])
    add("output_norm.weight", hf["model.norm.weight"])
    if not v["tied"]:
        add("output.weight", hf["lm_head.weight"])
    if "rope_scaling" in v:
        add("rope_freqs.weight", llama3_factors(rot, v["rope_theta"], v["rope_scaling"]))
    for l in range(v["n_layer"]):
        p, b = f"model.layers.{l}.", f"blk.{l}."
        q = hf[p + "self_attn.q_proj.weight"]
        k = hf[p + "self_attn.k_proj.weight"]
        if v["arch"] == "llama":
            q, k = permute(q, v["n_head"]), permute(k, v["n_kv_head"])
        add(b + "attn_norm.weight", hf[p + "input_layernorm.weight"])
        add(b + "attn_q.weight", q)
        add(b + "attn_k.weight", k)
        add(b + "attn_v.weight", hf[p + "self_attn.v_proj.weight"])
        add(b + "attn_output.weight", hf[p + "self_attn.o_proj.weight"])
        if v.get("qkv_bias"):
            for n in "qkv":
                add(b + f"attn_{n}.bias", hf[p + f"self_attn.{n}_proj.bias"])
        add(b + "ffn_norm.weight", hf[p + "post_attention_layernorm.weight"])
        if v["arch"] == "glm4":
            add(b + "ffn_up.weight", hf[p + "mlp.gate_up_proj.weight"])
            add(b + "post_attention_norm.weight", hf[p + "post_self_attn_layernorm.weight"])
            add(b + "post_ffw_norm.weight", hf[p + "post_mlp_layernorm.weight"])
        else:
            add(b + "ffn_gate.weight", hf[p + "mlp.gate_proj.weight"])
            add(b + "ffn_up.weight", hf[p + "mlp.up_proj.weight"])
        add(b + "ffn_down.weight", hf[p + "mlp.down_proj.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def teacher_forced(path, tokens):
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=N_CTX, n_batch=N_CTX, n_threads=N_THREADS,
                logits_all=True, verbose=False, seed=0, type_k=GGML_TYPE_F32,
                type_v=GGML_TYPE_F32, flash_attn=False)
    llm.eval(tokens)
    scores = np.array(llm.scores[:len(tokens)], dtype=np.float64)
    rows = []
    for row in scores:
        order = np.lexsort((np.arange(len(row)), -row))[:10]
        rows.append({"ids": [int(i) for i in order],
                     "logits": [float(row[i]) for i in order],
                     "margin": float(row[order[0]] - row[order[1]])})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "tests", "golden", "arch"))
    args = ap.parse_args()
    import llama_cpp
    if llama_cpp.__version__ != PINNED:
        sys.exit(f"llama-cpp-python {llama_cpp.__version__} found, {PINNED} pinned")
    os.makedirs(args.out_dir, exist_ok=True)
    for i, v in enumerate(VARIANTS):
        rng = np.random.default_rng(1000 + i)
        hf = random_weights(v, rng)
        hf_dir = os.path.join(args.out_dir, v["name"] + "_hf")
        os.makedirs(hf_dir, exist_ok=True)
        write_safetensors(os.path.join(hf_dir, "model.safetensors"), hf)
        with open(os.path.join(hf_dir, "config.json"), "w") as f:
            json.dump(hf_config(v), f, indent=2)
        write_tokenizer_json(os.path.join(hf_dir, "tokenizer.json"), v["vocab"])
        gguf_path = os.path.join(args.out_dir, v["name"] + ".gguf")
        write_gguf(gguf_path, v, hf)
        tokens = [int(t) for t in rng.integers(0, v["vocab"] - 2, N_TOKENS)]
        rows = teacher_forced(gguf_path, tokens)
        with open(gguf_path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        decisive = sum(r["margin"] > 0.02 for r in rows)
        out = {"generator": "scripts/golden/gen_arch_golden.py",
               "reference": f"llama-cpp-python {PINNED}",
               "settings": {"n_threads": N_THREADS, "n_ctx": N_CTX, "n_batch": N_CTX,
                            "kv_cache_type": "f32", "flash_attn": False, "logits_all": True},
               "variant": v, "gguf_sha256": sha, "tokens": tokens, "teacher_forced": rows}
        with open(os.path.join(args.out_dir, v["name"] + "_logits.json"), "w") as f:
            json.dump(out, f, indent=1)
        print(f"{v['name']}: {decisive}/{len(rows)} positions with margin > 0.02")


if __name__ == "__main__":
    main()
