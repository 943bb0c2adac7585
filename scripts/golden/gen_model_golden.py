#!/usr/bin/env python3
"""Regenerates tests/golden/smollm2_logits.json and smollm2_f32_logits.json from llama.cpp.

For each of 20 varied prompts (>= 64 tokens) it records, from llama.cpp run
through llama-cpp-python:
  * the prompt's token ids;
  * teacher-forced logits: at every position, the top-10 token ids with their
    logits and the top-1/top-2 margin;
  * a free-running greedy continuation of 64 tokens (end-of-generation tokens
    do not stop it), with the margin at each step.
smollm2_logits.json is the default model as shipped and also records
llama.cpp's own noise floor on it (f16 vs f32 KV cache; its token-by-token
path vs its batched prefill). smollm2_f32_logits.json is the same weights
dequantized to F32 by Tessera's make_f32_model, where neither side quantizes
activations. The header records the llama-cpp-python version, the model's sha256, threads,
context, batch size, KV cache type and tokenizer flags.

Usage: scripts/golden/gen_model_golden.py [--model PATH] [--make-f32 BIN] [--out-dir DIR]
Needs llama-cpp-python (pinned below; scripts/golden/install_reference.sh).
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

PINNED = "0.3.36"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

IM = "<|im_start|>"
END = "<|im_end|>"

PROMPTS = [
    "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg "
    "combined a screw press with movable metal type. Within fifty years, presses had spread across "
    "Europe, and the cost of books fell sharply. Cheaper books meant that more people learned to read, "
    "and ideas travelled faster than ever before. Historians argue about the consequences, but most",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number using iteration.\"\"\"\n"
    "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\n"
    "def is_prime(n):\n    if n < 2:\n        return False\n    for i in range(2, int(n ** 0.5) + 1):\n",
    f"{IM}system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face{END}\n"
    f"{IM}user\nCan you explain why the sky is blue in two or three sentences? Please keep it "
    f"simple enough for a ten year old to follow, and mention what happens at sunset too.{END}\n"
    f"{IM}assistant\n",
    "Recipe: classic pancakes. Ingredients: 200 g flour, 2 eggs, 300 ml milk, 1 tablespoon sugar, "
    "a pinch of salt and 30 g melted butter. Step 1: whisk the flour, sugar and salt together. "
    "Step 2: make a well in the centre and add the eggs. Step 3:",
    "Q: If a train leaves the station at 3:15 pm and travels 240 kilometres at an average speed of "
    "80 kilometres per hour, at what time does it arrive?\nA: The journey takes 240 / 80 = 3 hours, "
    "so the train arrives at 6:15 pm.\nQ: A rectangle has a perimeter of 36 cm and a width of 7 cm. "
    "What is its area?\nA:",
    "SELECT customers.name, COUNT(orders.id) AS order_count, SUM(orders.total) AS revenue\n"
    "FROM customers\nLEFT JOIN orders ON orders.customer_id = customers.id\n"
    "WHERE orders.created_at >= '2024-01-01'\nGROUP BY customers.name\nHAVING COUNT(orders.id) > 5\n"
    "ORDER BY revenue DESC\nLIMIT 10;\n\n-- The query above returns",
    "Dear hiring manager,\n\nI am writing to apply for the position of junior data analyst that "
    "was advertised on your website last week. Over the past two years I have worked with "
    "spreadsheets, SQL databases and Python notebooks to clean, explore and visualise data for a "
    "small logistics company, and I have presented my findings to managers every month. In that role I",
    "The mitochondrion is a double-membrane-bound organelle found in most eukaryotic organisms. "
    "Mitochondria generate most of the cell's supply of adenosine triphosphate (ATP), which is "
    "used as a source of chemical energy. They were first discovered by Albert von Kolliker in "
    "1857 in the voluntary muscles of insects. The term",
    f"{IM}user\nWrite a haiku about autumn leaves falling in a quiet park, then explain the "
    f"imagery you chose line by line. Keep the explanation short, warm and easy to read, and avoid "
    f"technical words about poetry, because my grandmother will read it too.{END}\n{IM}assistant\nHere is a haiku about autumn:\n\n",
    "Once upon a time, in a small village at the edge of a great forest, there lived an old "
    "clockmaker named Elias. Every morning he opened his shop at seven o'clock sharp, and every "
    "evening he closed it as the church bell struck six, and the villagers set their watches by him. "
    "One winter night, a stranger knocked",
    "1. Mercury\n2. Venus\n3. Earth\n4. Mars\n5. Jupiter\n6. Saturn\n7. Uranus\n8. Neptune\n\n"
    "The planets listed above are ordered by their distance from the Sun. The four inner planets "
    "are rocky and small, with thin or no atmospheres at all, while the four outer planets are",
    "#include <stdio.h>\n\nint main(void) {\n    int numbers[] = {4, 8, 15, 16, 23, 42};\n"
    "    int sum = 0;\n    for (int i = 0; i < 6; i++) {\n        sum += numbers[i];\n    }\n"
    "    printf(\"sum = %d\\n\", sum);\n    return 0;\n}\n\n/* Explanation: this program",
    "Paris est la capitale de la France. La ville est connue pour la tour Eiffel, le musée du "
    "Louvre et la cathédrale Notre-Dame. Chaque année, des millions de touristes visitent Paris "
    "pour découvrir son histoire, sa cuisine et son art. En été, les rues",
    "The quarterly report shows revenue of $4.2 million, up 12% from the previous quarter, while "
    "operating expenses rose 7% to $3.1 million. Net income was $640,000, compared with $410,000 "
    "a year ago. Management attributed the improvement to",
    f"{IM}system\nYou are a concise assistant.{END}\n{IM}user\nList three practical tips for "
    f"improving sleep quality, each in one short sentence. I work night shifts twice a week and "
    f"often drink coffee in the late afternoon, so please take both of those habits into account when you answer.{END}\n{IM}assistant\n1.",
    "In mathematics, a prime number is a natural number greater than 1 that is not a product of "
    "two smaller natural numbers. The first primes are 2, 3, 5, 7, 11, 13, 17, 19, 23 and 29. "
    "Euclid proved that there are infinitely many primes, and his argument goes as follows:",
    "User reviews:\n- \"Great battery life, lasts two full days!\" (5 stars)\n"
    "- \"The screen scratches too easily.\" (2 stars)\n- \"Fast shipping, works as described.\" "
    "(4 stars)\n- \"Camera is mediocre in low light.\" (3 stars)\n\nSummary of the reviews:",
    "To install the package, first create a virtual environment with `python -m venv .venv`, "
    "activate it with `source .venv/bin/activate`, and then run `pip install -r requirements.txt`. "
    "If you see an error about missing compilers, or a message saying that a wheel could not be built "
    "for one of the packages, make sure that",
    "The Amazon rainforest covers much of the Amazon basin of South America. This basin "
    "encompasses seven million square kilometres, of which five and a half million square "
    "kilometres are covered by the rainforest. This region includes territory belonging to nine "
    "nations and 3,344 formally acknowledged indigenous territories. The majority of the forest is contained within",
    "{\"name\": \"tessera\", \"version\": \"0.1.0\", \"description\": \"distributed inference\", "
    "\"dependencies\": {\"grpc\": \"1.51\", \"abseil\": \"20220623\"}, \"scripts\": {\"test\": "
    "\"ctest\", \"build\": \"cmake --build build\"}, \"license\": \"Apache-2.0\", \"authors\": [",
]

N_CTX = 512
N_BATCH = 512
N_THREADS = 2
TOP = 10
GGML_TYPE_F32 = 0
CONTINUATION = 64


def margin(row):
    top2 = np.partition(row, -2)[-2:]
    return float(abs(top2[1] - top2[0]))


def load(path, **kw):
    from llama_cpp import Llama
    # Tessera keeps its KV cache in float32, so llama.cpp is asked to do the
    # same and to use its plain attention path (flash attention rounds Q to f16).
    args = dict(model_path=path, n_ctx=N_CTX, n_batch=N_BATCH, n_threads=N_THREADS,
                logits_all=True, verbose=False, seed=0, type_k=GGML_TYPE_F32,
                type_v=GGML_TYPE_F32, flash_attn=False)
    args.update(kw)
    return Llama(**args)


def prompt_logits(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def reference_cases(llm):
    cases = []
    for text in PROMPTS:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if len(tokens) < 64:
            sys.exit(f"prompt too short ({len(tokens)} tokens): {text[:40]!r}")
        scores = prompt_logits(llm, tokens)
        positions = []
        for row in scores:
            top = np.argsort(-row, kind="stable")[:TOP]
            positions.append({"ids": [int(i) for i in top],
                              "logits": [round(float(row[i]), 6) for i in top],
                              "margin": round(margin(row), 6)})
        # Free-running greedy continuation.
        cont, margins = [], []
        row = scores[-1]
        for _ in range(CONTINUATION):
            tok = int(np.argmax(row))
            cont.append(tok)
            margins.append(round(margin(row), 6))
            llm.eval([tok])
            row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        cases.append({"text": text, "tokens": [int(t) for t in tokens], "teacher_forced": positions,
                      "greedy": cont, "greedy_margins": margins})
    return cases


def deviation(a_llm, b_llm, cases):
    """How far two llama.cpp configurations are from each other (teacher-forced)."""
    diffs, agree, decisive = [], 0, 0
    for c in cases:
        a = prompt_logits(a_llm, c["tokens"])
        b = prompt_logits(b_llm, c["tokens"])
        diffs.append(np.abs(a - b).ravel())
        for p, tf in enumerate(c["teacher_forced"]):
            if tf["margin"] > 0.02:
                decisive += 1
                agree += int(np.argmax(a[p]) == np.argmax(b[p]))
    d = np.concatenate(diffs)
    return {"max_abs_dlogit": round(float(d.max()), 5), "mean_abs_dlogit": round(float(d.mean()), 5),
            "top1_agreement_margin_gt_0.02": round(agree / decisive, 5)}


def header(model, sha):
    import llama_cpp
    return {
        "reference": "llama.cpp via llama-cpp-python",
        "llama_cpp_python_version": llama_cpp.__version__,
        "model": os.path.basename(model), "model_sha256": sha,
        "n_threads": N_THREADS, "n_ctx": N_CTX, "n_batch": N_BATCH,
        "kv_cache_type": "f32", "flash_attn": False,
        "tokenizer_flags": {"add_bos": False, "special": True},
        "top_ids_per_position": TOP, "greedy_tokens": CONTINUATION,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--make-f32", default=os.path.join(ROOT, "build", "tests", "engine", "make_f32_model"),
                    help="Tessera's converter (built by scripts/build.sh)")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "tests", "golden"))
    args = ap.parse_args()

    import llama_cpp
    if llama_cpp.__version__ != PINNED:
        sys.exit(f"llama-cpp-python {llama_cpp.__version__} found, {PINNED} pinned")
    sha = hashlib.sha256(open(args.model, "rb").read()).hexdigest()

    # 1. The default model as shipped (Q4_1 + Q8_0), plus llama.cpp's own noise
    #    floor on it: the same weights through two of llama.cpp's own paths.
    llm = load(args.model)
    out = header(args.model, sha)
    out["cases"] = reference_cases(llm)
    out["noise_floor"] = {
        "about": "llama.cpp against itself on this model, teacher-forced over these prompts",
        "f16_kv_vs_f32_kv": deviation(llm, load(args.model, type_k=1, type_v=1), out["cases"]),
        "decode_path_vs_prefill_path": deviation(llm, load(args.model, n_batch=1, n_ubatch=1),
                                                 out["cases"]),
    }
    path = os.path.join(args.out_dir, "smollm2_logits.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {path}: {len(out['cases'])} prompts, noise floor {out['noise_floor']}")

    # 2. The same weights dequantized to F32 by Tessera's converter: no
    #    activation quantization on either side.
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "smollm2-f32.gguf")
        subprocess.run([args.make_f32, args.model, f32], check=True)
        out = header(args.model, sha)
        out["weights"] = "every tensor of the model above dequantized to F32 by make_f32_model"
        out["cases"] = reference_cases(load(f32))
    path = os.path.join(args.out_dir, "smollm2_f32_logits.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {path}: {len(out['cases'])} prompts")


if __name__ == "__main__":
    main()
