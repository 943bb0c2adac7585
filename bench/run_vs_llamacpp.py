#!/usr/bin/env python3
"""Decode and prefill speed of `tessera run` next to llama.cpp, in one run.

Both run the same GGUF with the same thread count, greedy, alternating
between the two for --rounds rounds; the best round of each is reported with
the ratio. llama.cpp is llama-cpp-python (scripts/golden/install_reference.sh).

  bench/run_vs_llamacpp.py [--model PATH] [--threads 2] [--tokens 128] [--rounds 3]
"""
import argparse
import os
import re
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = ("The history of the printing press begins in the fifteenth century, when Johannes "
          "Gutenberg combined a screw press with movable metal type.")


def tessera(binary, model, threads, tokens):
    r = subprocess.run([binary, "run", "--model", model, "--prompt", PROMPT, "--temperature", "0",
                        "--max-tokens", str(tokens), "--threads", str(threads)],
                       capture_output=True, text=True, check=True)
    m = re.search(r"prompt tokens: (\d+), generated tokens: (\d+), prefill: ([\d.]+) tok/s, "
                  r"decode: ([\d.]+) tok/s", r.stderr)
    return float(m.group(3)), float(m.group(4)), int(m.group(2))


def llama(llm, tokens):
    prompt = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt)
    t1 = time.perf_counter()
    n = 0
    import numpy as np
    for _ in range(tokens - 1):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([tok])
        n += 1
    t2 = time.perf_counter()
    return len(prompt) / (t1 - t0), n / (t2 - t1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "cli", "tessera"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import llama_cpp
    llm = llama_cpp.Llama(model_path=args.model, n_ctx=512, n_batch=512, n_threads=args.threads,
                          logits_all=False, verbose=False)
    best = {"tessera": [0, 0], "llama.cpp": [0, 0]}
    for _ in range(args.rounds):
        p, d, _n = tessera(args.binary, args.model, args.threads, args.tokens)
        best["tessera"] = [max(best["tessera"][0], p), max(best["tessera"][1], d)]
        p, d = llama(llm, args.tokens)
        best["llama.cpp"] = [max(best["llama.cpp"][0], p), max(best["llama.cpp"][1], d)]
    print(f"model {os.path.basename(args.model)}, threads {args.threads}, "
          f"llama-cpp-python {llama_cpp.__version__}, best of {args.rounds}")
    print(f"{'':12}{'prefill tok/s':>16}{'decode tok/s':>16}")
    for k, (p, d) in best.items():
        print(f"{k:12}{p:16.1f}{d:16.1f}")
    t, l = best["tessera"], best["llama.cpp"]
    print(f"{'ratio':12}{t[0] / l[0]:16.2f}{t[1] / l[1]:16.2f}")


if __name__ == "__main__":
    main()
