#!/usr/bin/env python3
"""Writes tests/golden/hf_tokenizers/<kind>/: small Hugging Face tokenizer.json
files and the Hugging Face `tokenizers` library's encodings of the corpus.

Reference: the `tokenizers` Python package, version 0.23.3
(pip install tokenizers==0.23.3). The version actually used is recorded in
every golden.json header.

For each kind the script trains a tiny BPE (vocab_size VOCAB_SIZE) on the
valid-UTF-8 strings of tests/golden/tokenizer_corpus.json, configured the way
the named model family ships its tokenizer.json:
  gpt2     ByteLevel(use_regex=true) pre-tokenizer, ByteLevel decoder.
  llama3   Sequence[Split(Llama-3 regex, Isolated), ByteLevel(use_regex=false)],
           ignore_merges=true, TemplateProcessing "<|begin_of_text|> $A".
  qwen2    NFC normalizer, Sequence[Split(Qwen2 regex), ByteLevel(false)].
  smollm2  Sequence[Digits(individual_digits=true), ByteLevel(use_regex=true)]
           (SmolLM2's own tokenizer.json layout).
  llama2   SentencePiece-style BPE: normalizer Sequence[Prepend("▁"),
           Replace(" ", "▁")], no pre-tokenizer, byte_fallback with the 256
           <0xXX> tokens, decoder Sequence[Replace("▁", " "), ByteFallback,
           Fuse, Strip(" ", 1, 0)], TemplateProcessing "<s> $A".
  llama2_metaspace  the same vocabulary with the newer (legacy=false) layout:
           no normalizer, Metaspace(prepend_scheme="first", split=false)
           pre-tokenizer and decoder.
Training for llama2 splits on ▁ (Metaspace) so that pieces stay word-like;
the saved tokenizer has no pre-tokenizer, as Llama-2's does.

Each directory gets tokenizer.json, tokenizer_config.json (bos/eos/add_bos and
a chat_template) and golden.json with, for every case:
  ids          encode(text, add_special_tokens=False).ids
  ids_special  encode(text, add_special_tokens=True).ids
  decoded      decode(ids, skip_special_tokens=True)
Deterministic: rerunning reproduces the files.

Usage: python3 scripts/golden/gen_hf_tokenizer_golden.py [--corpus PATH] [--out DIR]
"""

import argparse
import json
import os

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers import Regex

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB_SIZE = 1500
# For llama2: keeps rare characters (CJK, emoji) out of the vocabulary so
# that byte fallback is exercised. (Byte-level kinds need all 256 bytes.)
LIMIT_ALPHABET = 120

GPT2_PATTERN = (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"
                r"|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                 "<|im_end|>\n{% endfor %}")


def load_corpus(path):
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    out = []
    for case in cases:
        try:
            text = bytes.fromhex(case["hex"]).decode("utf-8")
        except UnicodeDecodeError:
            continue  # tokenizers takes str; invalid UTF-8 has no reference
        out.append((case["name"], text))
    return out


def byte_level_tokenizer(kind, texts):
    specials = {
        "gpt2": ["<|endoftext|>"],
        "llama3": ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
        "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        "smollm2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    }[kind]
    tok = Tokenizer(models.BPE(ignore_merges=(kind == "llama3")))
    if kind == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    elif kind == "smollm2":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    else:
        pattern = LLAMA3_PATTERN if kind == "llama3" else QWEN2_PATTERN
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    if kind == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    if kind == "llama3":
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
            special_tokens=[("<|begin_of_text|>", bos)])
        config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        config = {
            "gpt2": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                     "add_bos_token": False},
            "qwen2": {"bos_token": None, "eos_token": "<|im_end|>"},
            "smollm2": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                        "add_bos_token": False},
        }[kind]
    return tok, config


def llama2_tokenizer(texts, metaspace=False):
    specials = ["<unk>", "<s>", "</s>"]
    bytes_tokens = ["<0x%02X>" % b for b in range(256)]
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    trainer_tok.normalizer = normalizers.Replace(" ", "\u2581")
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581",
                                                         prepend_scheme="first", split=True)
    # The trainer breaks ties at the limit_alphabet cut in hash order; giving
    # it exactly the alphabet to keep (most frequent first, then by code
    # point) keeps the output reproducible.
    counts = {}
    for text in texts:
        for ch in "\u2581" + text.replace(" ", "\u2581"):
            counts[ch] = counts.get(ch, 0) + 1
    alphabet = sorted(counts, key=lambda ch: (-counts[ch], ord(ch)))[:LIMIT_ALPHABET]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials + bytes_tokens,
                                  initial_alphabet=alphabet, limit_alphabet=len(alphabet),
                                  show_progress=False)
    trainer_tok.train_from_iterator(texts, trainer)
    model = json.loads(trainer_tok.to_str())["model"]
    # Rebuild as Llama-2 ships it: <unk> <s> </s>, the byte tokens as
    # ordinary vocabulary entries, then the learned pieces.
    vocab = {t: i for i, t in enumerate(specials + bytes_tokens)}
    for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True,
                               fuse_unk=True))
    tok.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False)
                            for t in specials])
    if metaspace:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first",
                                                     split=False)
        tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="\u2581",
                                                            prepend_scheme="first", split=False),
                                         decoders.ByteFallback(), decoders.Fuse()])
    else:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"),
                                               normalizers.Replace(" ", "\u2581")])
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])])
    config = {"add_bos_token": True, "add_eos_token": False,
              "bos_token": {"content": "<s>", "lstrip": False, "normalized": False},
              "eos_token": {"content": "</s>", "lstrip": False, "normalized": False}}
    return tok, config


def write_kind(out_dir, kind, tok, config, corpus):
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"), pretty=False)
    config = dict(config)
    config["chat_template"] = CHAT_TEMPLATE
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1, ensure_ascii=False)
        f.write("\n")
    # Reload from disk so the goldens come from exactly the saved file.
    tok = Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
    cases = []
    for name, text in corpus:
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append({
            "name": name,
            "text": text,
            "ids": ids,
            "ids_special": tok.encode(text, add_special_tokens=True).ids,
            "decoded": tok.decode(ids, skip_special_tokens=True),
        })
    golden = {
        "header": {
            "generator": "scripts/golden/gen_hf_tokenizer_golden.py",
            "tokenizers_version": tokenizers.__version__,
            "kind": kind,
            "vocab_size": tok.get_vocab_size(),
            "settings": "encode(text, add_special_tokens=False|True); "
                        "decode(ids, skip_special_tokens=True)",
        },
        "cases": cases,
    }
    with open(os.path.join(out_dir, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=os.path.join(ROOT, "tests/golden/tokenizer_corpus.json"))
    parser.add_argument("--out", default=os.path.join(ROOT, "tests/golden/hf_tokenizers"))
    args = parser.parse_args()
    corpus = load_corpus(args.corpus)
    texts = [text for _, text in corpus]
    for kind in ["gpt2", "llama3", "qwen2", "smollm2"]:
        tok, config = byte_level_tokenizer(kind, texts)
        write_kind(os.path.join(args.out, kind), kind, tok, config, corpus)
    tok, config = llama2_tokenizer(texts)
    write_kind(os.path.join(args.out, "llama2"), "llama2", tok, config, corpus)
    tok, config = llama2_tokenizer(texts, metaspace=True)
    write_kind(os.path.join(args.out, "llama2_metaspace"), "llama2_metaspace", tok, config, corpus)
    print("wrote %d cases per kind to %s" % (len(corpus), args.out))


if __name__ == "__main__":
    main()
