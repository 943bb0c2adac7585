#!/usr/bin/env python3
"""Writes a SmolLM2-135M-shaped model with 4 KV heads, for bench/tp_bench.sh.

SmolLM2-135M has 3 KV heads, which tensor parallelism of degree 2 cannot
split. With 12 query heads of 48 dims and 4 KV heads instead of 9 of 64 and 3,
every tensor keeps its shape (Q and O are 576 x 576, K and V 192 x 576), so
this copies the file and rewrites three integers of its metadata: the same
bytes, read as a model with 4 KV heads. The weights no longer mean anything
as a language model, but each forward pass does the same arithmetic on the
same amount of data as a real model of these dimensions, which is all a speed
measurement needs.

  bench/tp_bench_model.py SRC.gguf DST.gguf
"""
import shutil
import sys

import gguf

NEW = {
    "llama.attention.head_count": 12,
    "llama.attention.head_count_kv": 4,
    "llama.rope.dimension_count": 48,
}


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    shutil.copyfile(src, dst)
    reader = gguf.GGUFReader(dst, "r+")
    for key, value in NEW.items():
        field = reader.fields.get(key)
        if field is None:
            sys.exit(f"{src}: no metadata key {key}")
        # The scalar's storage inside the memory-mapped file.
        field.parts[field.data[0]][0] = value
    reader.data.flush()
    check = gguf.GGUFReader(dst)
    for key, value in NEW.items():
        got = int(check.fields[key].parts[check.fields[key].data[0]][0])
        if got != value:
            sys.exit(f"{dst}: {key} reads {got}, wanted {value}")
    print(f"wrote {dst}: 12 heads of 48, 4 KV heads")


if __name__ == "__main__":
    main()
