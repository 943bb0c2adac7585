#!/usr/bin/env python3
"""CPU forward-pass speed of Tessera next to llama.cpp on the same GGUF (issue 4).

For each mode, alternating Tessera (build-*/bench/tessera_cpu_bench) and
llama.cpp (llama-cpp-python, low-level API, same thread count) for --rounds
rounds, and reporting the best round of each with the ratio:

  decode   batch 1: 32-token prompt, then 128 greedy single-token steps
  prefill  one 512-token prompt in one batch (n_batch = n_ubatch = 512)
  batch8 / batch32  8 or 32 sequences, each a 16-token prompt (untimed), then
           32 steps of one token per sequence; aggregate tok/s

plus the read bandwidth measured on the spot (streaming sum over 1 GiB with the
same thread count) and, at batch 1, the weight bytes read per decoded token and
the fraction of that bandwidth they represent. Both sides see the same
synthetic token ids (token_at mirrors TokenAt in cpu_bench.cc).

llama.cpp settings: its defaults (f16 K/V cache, CPU backend, mmap) except
n_threads = n_threads_batch = --threads and flash attention off.

  bench/cpu_vs_llamacpp.py [--model PATH] [--bench BIN] [--threads 2] [--rounds 3]
      [--formats Q4_0,Q4_K_M,Q5_K_M,Q6_K,Q8_0,IQ4_XS]

--formats requantizes --model with llama.cpp's own quantizer (cached in
models/requant/) and prints one table of every mode for every format.

llama-cpp-python is not installed by scripts/setup.sh (its pip build
compiles llama.cpp, ~15 min on 2 cores). On a CPU with AMX, build it with
AMX off and the same ISA as Tessera's kernels, since its native build's AMX
repack crashed loading Q4_0 (2026-12-05):
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
    -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON
    -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
    -DGGML_AMX_BF16=OFF" pip install llama-cpp-python==0.3.36
"""
import argparse
import ctypes
import json
import os
import subprocess
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def token_at(seq, i):
    return 100 + (i * 7919 + seq * 104729) % 30000


def tessera(binary, model, threads, mode, batch=0):
    args = [binary, "--model", model, "--threads", str(threads), "--rounds", "1"]
    if mode.startswith("batch"):
        args += ["--mode", "batch", "--batch", str(batch)]
    else:
        args += ["--mode", mode]
    r = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


class Llama:
    def __init__(self, model, threads):
        import llama_cpp as L
        self.L = L
        # Silence llama.cpp's loader log; keep the callback alive on self.
        self._log = L.llama_log_callback(lambda level, text, user: None)
        L.llama_log_set(self._log, ctypes.c_void_p(0))
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(model.encode(), mp)
        cp = L.llama_context_default_params()
        cp.n_ctx = 4096
        cp.n_batch = 512
        cp.n_ubatch = 512
        cp.n_seq_max = 32
        cp.kv_unified = True  # one 4096-cell cache shared by all sequences
        cp.n_threads = threads
        cp.n_threads_batch = threads
        cp.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        cp.no_perf = True
        self.ctx = L.llama_init_from_model(self.model, cp)
        self.vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.batch = L.llama_batch_init(512, 0, 1)

    def _decode(self, items):
        """items: (token, pos, seq, want_logits)."""
        b = self.batch
        b.n_tokens = len(items)
        for i, (tok, pos, seq, lg) in enumerate(items):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = 1 if lg else 0
        if self.L.llama_decode(self.ctx, b) != 0:
            raise RuntimeError("llama_decode failed")

    def _argmax(self, i):
        p = self.L.llama_get_logits_ith(self.ctx, i)
        return int(np.argmax(np.ctypeslib.as_array(p, shape=(self.vocab,))))

    def run(self, nseq, prompt, steps):
        """Returns tok/s of the prompt step (steps == 0) or of the decode steps."""
        self.L.llama_memory_clear(self.L.llama_get_memory(self.ctx), True)
        items = [(token_at(s, i), i, s, i == prompt - 1) for s in range(nseq) for i in range(prompt)]
        assert steps == 0 or len(items) <= 512
        t0 = time.perf_counter()
        for k in range(0, len(items), 512):
            self._decode(items[k:k + 512])
        t1 = time.perf_counter()
        if steps == 0:
            return prompt * nseq / (t1 - t0)
        # Logits of each sequence's last prompt token, in batch order.
        # Batch indices of each sequence's last prompt token (one chunk here).
        nxt = [self._argmax(s * prompt + prompt - 1) for s in range(nseq)]
        t2 = time.perf_counter()
        for step in range(steps):
            self._decode([(nxt[s], prompt + step, s, True) for s in range(nseq)])
            nxt = [self._argmax(s) for s in range(nseq)]
        return steps * nseq / (time.perf_counter() - t2)


MODES = [("decode", 1, 32, 128), ("prefill", 1, 512, 0), ("batch8", 8, 16, 32),
         ("batch32", 32, 16, 32)]


def requantize(source, fmt, threads):
    """SOURCE requantized by llama.cpp's own quantizer to FMT (a llama_ftype
    name such as Q4_K_M), cached in models/requant/."""
    import llama_cpp as L
    out_dir = os.path.join(ROOT, "models", "requant")
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.basename(source).split(".")[0]
    out = os.path.join(out_dir, f"{stem}.{fmt}.gguf")
    if os.path.exists(out):
        return out
    p = L.llama_model_quantize_default_params()
    p.ftype = getattr(L, "LLAMA_FTYPE_MOSTLY_" + fmt)
    p.allow_requantize = True  # the shipped file is already quantized
    p.nthread = threads
    if L.llama_model_quantize(source.encode(), (out + ".tmp").encode(), ctypes.byref(p)) != 0:
        raise RuntimeError(f"llama.cpp could not quantize {source} to {fmt}")
    os.rename(out + ".tmp", out)
    return out


def measure(model, args):
    """Best-of-rounds tok/s of both engines per mode on MODEL."""
    ll = Llama(model, args.threads)
    best = {}
    decode_info = None
    for r in range(args.rounds):
        for mode, nseq, prompt, steps in MODES:
            t = tessera(args.bench, model, args.threads, mode, nseq)
            l = ll.run(nseq, prompt, steps)
            print(f"{os.path.basename(model)} round {r} {mode:8} tessera {t['tok_s']:9.1f}  "
                  f"llama.cpp {l:9.1f}  ratio {t['tok_s'] / l:5.2f}", flush=True)
            bt, bl = best.get(mode, (0, 0))
            best[mode] = (max(bt, t["tok_s"]), max(bl, l))
            if mode == "decode" and (decode_info is None or t["tok_s"] >= decode_info["tok_s"]):
                decode_info = t
    return best, decode_info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "tessera_cpu_bench"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--formats", default="",
                    help="comma-separated llama.cpp file types (Q4_0,Q4_K_M,Q5_K_M,Q6_K,Q8_0,"
                         "IQ4_XS): requantize --model to each with llama.cpp's quantizer and "
                         "print one table of ratios per format")
    args = ap.parse_args()
    import llama_cpp

    bw = max(tessera(args.bench, args.model, args.threads, "bandwidth")["gbps"]
             for _ in range(2))
    if args.formats:
        rows = []
        for fmt in args.formats.split(","):
            model = requantize(args.model, fmt, args.threads)
            best, info = measure(model, args)
            rows.append((fmt, best, info))
        print(f"\nrequantized from {os.path.basename(args.model)} by llama.cpp's quantizer, "
              f"threads {args.threads}, llama-cpp-python {llama_cpp.__version__} (flash_attn "
              f"off, f16 KV), best of {args.rounds} rounds; measured read bandwidth {bw:.1f} GB/s")
        print(f"{'format':8}" + "".join(f"{m:>22}" for m, _, _, _ in MODES) +
              f"{'MB/token':>10}{'% of bw':>9}")
        for fmt, best, info in rows:
            cells = "".join(f"{best[m][0]:8.0f}/{best[m][1]:<7.0f}{best[m][0] / best[m][1]:5.2f}x "
                            for m, _, _, _ in MODES)
            bpt = info["bytes_per_token"]
            print(f"{fmt:8}{cells}{bpt / 1e6:10.1f}{100 * best['decode'][0] * bpt / 1e9 / bw:8.0f}%")
        print("(each cell: Tessera tok/s / llama.cpp tok/s, ratio)")
        return

    best, decode_info = measure(args.model, args)
    bw = max(bw, tessera(args.bench, args.model, args.threads, "bandwidth")["gbps"])

    print(f"\nmodel {os.path.basename(args.model)}, threads {args.threads}, "
          f"llama-cpp-python {llama_cpp.__version__} (flash_attn off, f16 KV, unified KV), "
          f"best of {args.rounds} rounds")
    print(f"{'mode':10}{'tessera tok/s':>15}{'llama.cpp tok/s':>17}{'ratio':>8}")
    for mode, _, _, _ in MODES:
        t, l = best[mode]
        print(f"{mode:10}{t:15.1f}{l:17.1f}{t / l:8.2f}")
    bpt = decode_info["bytes_per_token"]
    achieved = best["decode"][0] * bpt / 1e9
    print(f"\nmeasured read bandwidth ({args.threads} threads): {bw:.1f} GB/s")
    print(f"batch-1 decode reads {bpt / 1e6:.1f} MB of weights per token: "
          f"{achieved:.1f} GB/s = {100 * achieved / bw:.0f}% of measured bandwidth "
          f"(llama.cpp: {100 * best['decode'][1] * bpt / 1e9 / bw:.0f}%)")


if __name__ == "__main__":
    main()
