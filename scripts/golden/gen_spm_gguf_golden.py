#!/usr/bin/env python3
"""Writes tests/golden/spm_gguf/: a SentencePiece-style ("llama") GGUF
vocabulary and llama.cpp's tokenization of the tokenizer corpus with it.

The vocabulary is built here, deterministically and without SentencePiece:
  ids 0..2      <unk> (unknown), <s> (control, BOS), </s> (control, EOS)
  ids 3..8      [INST] [/INST] <|im_start|> <|im_end|> (control),
                <|tool|> <sep> (user-defined)
  ids 9..264    <0x00>..<0xFF> (byte tokens)
  then          "\u2581" and every printable character of the corpus's text
                cases that occurs at least twice, except CJK, kana, Hangul,
                emoji and a few accented Latin letters (ä ö ü ñ ç), which are
                left out so that byte fallback is exercised;
  then          NUM_MERGES pieces learnt by a small BPE count over the
                corpus after SentencePiece normalisation (spaces as U+2581,
                one U+2581 prepended), so that every piece is the
                concatenation of two earlier pieces.
Scores: a learnt piece gets -(its merge rank // 3), so pieces tie in threes
and the tie-breaking (leftmost pair first) matters; single characters get
-1000 minus their order; specials and bytes 0.

Two GGUF files with the same vocabulary (tiny: no tensors, loaded by
llama.cpp with vocab_only=True):
  spm_llama.gguf           no tokenizer.ggml.add_space_prefix key (llama.cpp's
                           default: true), add_bos_token true
  spm_llama_noprefix.gguf  add_space_prefix false

golden.json records, for every corpus case (llama-cpp-python's tokenize and
llama.cpp's llama_detokenize):
  ids          tokenize(bytes, add_bos=False, special=False)
  ids_bos      tokenize(bytes, add_bos=True, special=False)
  ids_special  tokenize(bytes, add_bos=False, special=True)
  decoded_hex  llama_detokenize(ids, remove_special=False, unparse_special=False)
  decoded_bos_hex   the same of ids_bos
  noprefix_ids, noprefix_decoded_hex   ids / decoded_hex with the second file
plus the settings used, the llama-cpp-python version and the corpus hash.
To keep the file small, a field is left out of a case where it equals what
it usually equals (OMITTED below; the header's "omitted_when" says so too).

Cases whose text is not valid UTF-8 are included (llama.cpp's SentencePiece
path works on bytes).

Usage: python3 scripts/golden/gen_spm_gguf_golden.py [--corpus PATH] [--out-dir DIR]
"""

import argparse
import collections
import ctypes
import hashlib
import json
import os
import unicodedata

import gguf

import llama_cpp
from llama_cpp import Llama

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
META = "\u2581"
NUM_MERGES = 420
SPECIALS = [  # text, GGUF token type
    ("<unk>", gguf.TokenType.UNKNOWN),
    ("<s>", gguf.TokenType.CONTROL),
    ("</s>", gguf.TokenType.CONTROL),
    ("[INST]", gguf.TokenType.CONTROL),
    ("[/INST]", gguf.TokenType.CONTROL),
    ("<|im_start|>", gguf.TokenType.CONTROL),
    ("<|im_end|>", gguf.TokenType.CONTROL),
    ("<|tool|>", gguf.TokenType.USER_DEFINED),
    ("<sep>", gguf.TokenType.USER_DEFINED),
]
EXCLUDED_LETTERS = set("äöüñç")


# Fields left out of a case when they equal this function of the case.
OMITTED = {
    "ids_bos": lambda c: [1] + c["ids"],
    "ids_special": lambda c: c["ids"],
    "noprefix_ids": lambda c: c["ids"],
    "decoded_bos_hex": lambda c: "20" + c["decoded_hex"],
    "noprefix_decoded_hex": lambda c: c["decoded_hex"],
}


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def excluded(ch):
    cp = ord(ch)
    if ch in EXCLUDED_LETTERS:
        return True
    if cp < 0x20 or 0x7F <= cp < 0xA0:
        return True  # control characters: byte tokens, as Llama-2 has them
    if 0x2E80 <= cp <= 0xD7FF or 0xF900 <= cp <= 0xFAFF or 0xFF00 <= cp <= 0xFFEF:
        return True  # CJK, kana, Hangul, full-width forms
    if cp >= 0x1F000 or 0x2600 <= cp <= 0x27BF:
        return True  # emoji and pictographs
    return unicodedata.category(ch) in ("Cs", "Co", "Cn")


def normalize(text):
    return META + text.replace(" ", META)


def build_vocab(texts):
    tokens = [t for t, _ in SPECIALS] + [f"<0x{b:02X}>" for b in range(256)]
    types = [k for _, k in SPECIALS] + [gguf.TokenType.BYTE] * 256
    scores = [0.0] * len(tokens)

    normalized = [normalize(t) for t in texts]
    counts = collections.Counter(ch for t in normalized for ch in t)
    chars = [META] + sorted(ch for ch, n in counts.items()
                            if n >= 2 and ch != META and not excluded(ch))
    for i, ch in enumerate(chars):
        tokens.append(ch)
        types.append(gguf.TokenType.NORMAL)
        scores.append(-1000.0 - i)
    known = set(tokens)

    # A plain BPE count over words (split before each U+2581); symbols
    # outside the vocabulary stay unmergeable.
    words = collections.Counter()
    for t in normalized:
        word = ""
        for ch in t:
            if ch == META and word:
                words[word] += 1
                word = ""
            word += ch
        if word:
            words[word] += 1
    seqs = {w: [ch if ch in known else None for ch in w] for w in words}
    for rank in range(NUM_MERGES):
        pairs = collections.Counter()
        for w, n in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                if a is not None and b is not None:
                    pairs[(a, b)] += n
        candidates = [(n, a + b) for (a, b), n in pairs.items() if a + b not in known]
        if not candidates:
            break
        # Most frequent; ties by the piece text, for determinism.
        n, piece = max(candidates, key=lambda c: (c[0], [-ord(ch) for ch in c[1]]))
        best = next((a, b) for (a, b), m in pairs.items() if a + b == piece and m == n)
        tokens.append(piece)
        types.append(gguf.TokenType.NORMAL)
        scores.append(-float(rank // 3))
        known.add(piece)
        for w in words:
            s = seqs[w]
            out = []
            i = 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == best[0] and s[i + 1] == best[1]:
                    out.append(piece)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return tokens, scores, types


def write_gguf(path, tokens, scores, types, add_space_prefix):
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tessera-spm-golden")
    # llama.cpp reads these hyperparameters even with vocab_only.
    w.add_context_length(256)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types([int(t) for t in types])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    if add_space_prefix is not None:
        w.add_add_space_prefix(add_space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def detokenize(vocab, ids):
    arr = (llama_cpp.llama_token * max(len(ids), 1))(*ids)
    size = 64 + 16 * len(ids)
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, False)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=os.path.join(ROOT, "tests", "golden",
                                                         "tokenizer_corpus.json"))
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "tests", "golden", "spm_gguf"))
    args = parser.parse_args()
    with open(args.corpus, encoding="utf-8") as f:
        corpus = json.load(f)
    os.makedirs(args.out_dir, exist_ok=True)

    texts = [c["text"] for c in corpus["cases"] if "text" in c]
    tokens, scores, types = build_vocab(texts)
    main_path = os.path.join(args.out_dir, "spm_llama.gguf")
    noprefix_path = os.path.join(args.out_dir, "spm_llama_noprefix.gguf")
    write_gguf(main_path, tokens, scores, types, None)
    write_gguf(noprefix_path, tokens, scores, types, False)

    llm = Llama(model_path=main_path, vocab_only=True, verbose=False)
    nop = Llama(model_path=noprefix_path, vocab_only=True, verbose=False)
    vocab = llm._model.vocab
    cases = []
    for c in corpus["cases"]:
        data = bytes.fromhex(c["hex"])
        ids = llm.tokenize(data, add_bos=False, special=False)
        ids_bos = llm.tokenize(data, add_bos=True, special=False)
        nop_ids = nop.tokenize(data, add_bos=False, special=False)
        ids_special = llm.tokenize(data, add_bos=False, special=True)
        case = {
            "name": c["name"],
            "ids": ids,
            "ids_bos": ids_bos,
            "ids_special": ids_special,
            "decoded_hex": detokenize(vocab, ids).hex(),
            "decoded_bos_hex": detokenize(vocab, ids_bos).hex(),
            "noprefix_ids": nop_ids,
            "noprefix_decoded_hex": detokenize(nop._model.vocab, nop_ids).hex(),
        }
        # Keeps the file small: a list equal to the one it is usually equal
        # to is left out (see OMITTED).
        for key, same_as in OMITTED.items():
            if case[key] == same_as(case):
                del case[key]
        cases.append(case)
    doc = {
        "header": {
            "generator": "scripts/golden/gen_spm_gguf_golden.py",
            "llama_cpp_python_version": llama_cpp.__version__,
            "gguf_files": {os.path.basename(p): sha256_file(p)
                           for p in (main_path, noprefix_path)},
            "corpus_sha256": sha256_file(args.corpus),
            "omitted_when": {"ids_bos": "equal to [bos] + ids",
                             "ids_special": "equal to ids",
                             "noprefix_ids": "equal to ids",
                             "decoded_bos_hex": "equal to a space + decoded",
                             "noprefix_decoded_hex": "equal to decoded"},
            "flags": {
                "ids": {"add_bos": False, "special": False},
                "ids_bos": {"add_bos": True, "special": False},
                "ids_special": {"add_bos": False, "special": True},
                "decoded_hex": {"of": "ids", "remove_special": False, "unparse_special": False},
                "decoded_bos_hex": {"of": "ids_bos", "remove_special": False,
                                    "unparse_special": False},
                "noprefix_ids": {"file": "spm_llama_noprefix.gguf", "add_bos": False,
                                 "special": False},
                "noprefix_decoded_hex": {"of": "noprefix_ids", "remove_special": False,
                                         "unparse_special": False},
            },
        },
        "vocab": {
            "n_vocab": llama_cpp.llama_vocab_n_tokens(vocab),
            "bos": llama_cpp.llama_vocab_bos(vocab),
            "eos": llama_cpp.llama_vocab_eos(vocab),
            "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
            "eog_ids": [t for t in range(len(tokens)) if llama_cpp.llama_vocab_is_eog(vocab, t)],
        },
        "cases": cases,
    }
    out = os.path.join(args.out_dir, "golden.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    byte_fallback = sum(1 for c in cases for t in c["ids"] if 9 <= t < 265)
    print(f"wrote {args.out_dir}: {len(tokens)} tokens, {len(cases)} cases, "
          f"{byte_fallback} byte-fallback tokens in ids, "
          f"gguf sizes {os.path.getsize(main_path)} / {os.path.getsize(noprefix_path)} bytes")


if __name__ == "__main__":
    main()
