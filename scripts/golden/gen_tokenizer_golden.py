#!/usr/bin/env python3
"""Writes tests/golden/tokenizer_smollm2.json: llama.cpp's tokenization of the
corpus (tests/golden/tokenizer_corpus.json) with the SmolLM2 vocabulary.

The reference is llama-cpp-python (which bundles llama.cpp), loaded with
vocab_only=True. For every corpus case it records:
  ids          Llama.tokenize(bytes, add_bos=False, special=True)
  ids_plain    Llama.tokenize(bytes, add_bos=False, special=False)
  decoded_hex  the concatenated llama_token_to_piece(special=False) of `ids`
and, for the vocabulary as a whole: its size, BOS/EOS, add_bos, the
end-of-generation set (llama_vocab_is_eog over every id), and the pieces of
every token (llama_token_to_piece with special=True and False) as an FNV-1a
hash plus a sample, so the C++ test can check the detokenizer's tables too.

It also writes tests/golden/tokenizer_smollm2_alt_pre.json: the same corpus
tokenized (special=True, add_bos=False) by llama.cpp with SmolLM2's
vocabulary but tokenizer.ggml.pre replaced by each of "gpt-2", "default" and
"llama-bpe", to check the other pre-tokenizers. For that it writes temporary
tensor-less copies of the model's metadata (loaded with vocab_only=True).

Usage: python3 scripts/golden/gen_tokenizer_golden.py --model PATH [--corpus PATH] [--out PATH]
The model defaults to $TESSERA_MODEL, then models/SmolLM2-135M-Instruct.Q4_1.gguf.
"""

import argparse
import ctypes
import hashlib
import json
import os
import sys
import tempfile

import gguf

import llama_cpp
from llama_cpp import Llama

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def token_piece(vocab, token, special):
    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, special)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def pieces_digest(pieces):
    """FNV-1a (64-bit) over each piece's 4-byte little-endian length, then its
    bytes: simple enough to recompute in the C++ test without a crypto
    library, and the length prefix makes different splits differ."""
    h = 0xCBF29CE484222325
    for p in pieces:
        for b in len(p).to_bytes(4, "little") + p:
            h ^= b
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


ALT_PRES = ["gpt-2", "default", "llama-bpe"]


def write_vocab_copy(src, dst, pre):
    """Copies every metadata key of `src` into a tensor-less GGUF at `dst`,
    with tokenizer.ggml.pre set to `pre`."""
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, reader.fields["general.architecture"].contents())
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value = pre if key == "tokenizer.ggml.pre" else field.contents()
        sub_type = field.types[1] if len(field.types) > 1 else None
        writer.add_key_value(key, value, field.types[0], sub_type=sub_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def alt_pre_golden(model, corpus, header):
    variants = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pre in ALT_PRES:
            path = os.path.join(tmp, f"vocab-{pre}.gguf")
            write_vocab_copy(model, path, pre)
            llm = Llama(model_path=path, vocab_only=True, verbose=False)
            variants[pre] = {
                "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(llm._model.vocab)),
                "cases": [{"name": c["name"],
                           "ids": llm.tokenize(bytes.fromhex(c["hex"]), add_bos=False,
                                               special=True)}
                          for c in corpus["cases"]],
            }
            del llm
    return {"header": dict(header, flags={"ids": {"add_bos": False, "special": True}}),
            "variants": variants}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    default_model = os.environ.get("TESSERA_MODEL") or os.path.join(
        ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--model", default=default_model)
    parser.add_argument("--corpus", default=os.path.join(ROOT, "tests", "golden",
                                                         "tokenizer_corpus.json"))
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "golden",
                                                      "tokenizer_smollm2.json"))
    parser.add_argument("--alt-out", default=os.path.join(ROOT, "tests", "golden",
                                                          "tokenizer_smollm2_alt_pre.json"))
    args = parser.parse_args()
    if not os.path.exists(args.model):
        sys.exit(f"model not found: {args.model}")

    llm = Llama(model_path=args.model, vocab_only=True, verbose=False)
    vocab = llm._model.vocab
    with open(args.corpus, encoding="utf-8") as f:
        corpus = json.load(f)

    cases = []
    for case in corpus["cases"]:
        data = bytes.fromhex(case["hex"])
        ids = llm.tokenize(data, add_bos=False, special=True)
        ids_plain = llm.tokenize(data, add_bos=False, special=False)
        decoded = b"".join(token_piece(vocab, t, False) for t in ids)
        cases.append({"name": case["name"], "ids": ids, "ids_plain": ids_plain,
                      "decoded_hex": decoded.hex()})

    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    pieces_special = [token_piece(vocab, t, True) for t in range(n_vocab)]
    pieces_plain = [token_piece(vocab, t, False) for t in range(n_vocab)]
    sample_ids = sorted(set(list(range(0, 300)) + list(range(300, n_vocab, 97)) +
                            [n_vocab - 1]))
    doc = {
        "header": {
            "generator": "scripts/golden/gen_tokenizer_golden.py",
            "llama_cpp_python_version": llama_cpp.__version__,
            "model_file": os.path.basename(args.model),
            "model_sha256": sha256_file(args.model),
            "corpus_sha256": sha256_file(args.corpus),
            "flags": {"ids": {"add_bos": False, "special": True},
                      "ids_plain": {"add_bos": False, "special": False},
                      "decoded_hex": {"special": False}},
        },
        "vocab": {
            "n_vocab": n_vocab,
            "bos": llama_cpp.llama_vocab_bos(vocab),
            "eos": llama_cpp.llama_vocab_eos(vocab),
            "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
            "eog_ids": [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)],
            "pieces_special_fnv1a64": pieces_digest(pieces_special),
            "pieces_plain_fnv1a64": pieces_digest(pieces_plain),
            "piece_samples": [{"id": t, "special_hex": pieces_special[t].hex(),
                               "plain_hex": pieces_plain[t].hex()} for t in sample_ids],
        },
        "cases": cases,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}: {len(cases)} cases, {n_vocab} tokens, "
          f"eog={doc['vocab']['eog_ids']}")

    alt = alt_pre_golden(args.model, corpus, {k: v for k, v in doc["header"].items()
                                              if k != "flags"})
    with open(args.alt_out, "w", encoding="utf-8") as f:
        json.dump(alt, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.alt_out}: pre-tokenizers {', '.join(ALT_PRES)}")


if __name__ == "__main__":
    main()
