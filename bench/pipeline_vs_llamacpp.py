#!/usr/bin/env python3
"""Decode speed of 1, 2 and 3-stage Tessera clusters on loopback, next to
llama.cpp in one process, in one run.

Each stage is a tessera-worker process with --threads (default 1); the
coordinator is a separate process; the client is tessera_pipeline_bench,
which also reads the coordinator's step timing to split a step into stage
compute and per-hop latency, and the bytes each hop carried. llama.cpp is
llama-cpp-python (scripts/golden/install_reference.sh) with the same thread
count as one worker, greedy, on the same prompt and GGUF.

  bench/pipeline_vs_llamacpp.py [--model PATH] [--stages 1,2,3] [--threads 1]
                                [--tokens 128] [--rounds 3]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_vs_llamacpp import PROMPT, ROOT, llama  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "tessera_pipeline_bench"))
    ap.add_argument("--stages", default="1,2,3")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    out = subprocess.run([args.bench, "--model", args.model, "--stages", args.stages,
                          "--threads", str(args.threads), "--tokens", str(args.tokens),
                          "--rounds", str(args.rounds)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"tessera_pipeline_bench failed:\n{out.stderr}")
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]

    peer = None
    try:
        import llama_cpp
        llm = llama_cpp.Llama(model_path=args.model, n_ctx=512, n_batch=512,
                              n_threads=args.threads, logits_all=False, verbose=False)
        peer = max(llama(llm, args.tokens)[1] for _ in range(args.rounds))
        peer_label = f"llama-cpp-python {llama_cpp.__version__}"
    except ImportError:
        peer_label = "llama.cpp: NOT MEASURED (llama-cpp-python not installed; " \
                     "run scripts/golden/install_reference.sh)"

    one = next((r["decode_tok_s"] for r in rows if r["stages"] == 1), None)
    print(f"model {os.path.basename(args.model)}, {args.threads} thread(s) per worker, "
          f"{args.tokens} greedy tokens, best of {args.rounds}; peer: {peer_label}")
    print(f"{'stages':>6}{'decode tok/s':>14}{'vs 1 stage':>12}{'vs llama.cpp':>14}"
          f"{'step us':>10}{'compute us per stage':>26}{'hop us':>9}{'wire B/token':>14}")
    for r in rows:
        compute = "+".join(f"{c:.0f}" for c in r["stage_compute_us"])
        vs_one = f"{r['decode_tok_s'] / one:.2f}" if one else "-"
        vs_peer = f"{r['decode_tok_s'] / peer:.2f}" if peer else "-"
        print(f"{r['stages']:>6}{r['decode_tok_s']:>14.1f}{vs_one:>12}{vs_peer:>14}"
              f"{r['step_round_trip_us']:>10.0f}{compute:>26}{r['per_hop_us']:>9.0f}"
              f"{r['wire_bytes_per_token']:>14.0f}")
    if peer:
        print(f"llama.cpp, one process, {args.threads} thread(s): {peer:.1f} tok/s decode")


if __name__ == "__main__":
    main()
