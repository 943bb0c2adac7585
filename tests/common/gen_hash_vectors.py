#!/usr/bin/env python3
"""Known-answer vectors for tessera::ContentHash64 (common/model_identity.h).

An independent, pure-Python transcription of the algorithm as documented, so
that the C++ test checks the implementation against a second one rather than
against itself. Run it and paste the output into model_identity_test.cc
whenever the algorithm changes (which changes every model identity).

Input bytes for a vector of length n: byte i = (i * 31 + 7) & 0xff.
"""

M = (1 << 64) - 1
P1 = 0x9E3779B97F4A7C15
P2 = 0xBF58476D1CE4E5B9
P3 = 0x94D049BB133111EB
P4 = 0xFF51AFD7ED558CCD


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M


def le(b):
    return int.from_bytes(b, "little")


def fold_word(h, k):
    return (rotl(h ^ k, 27) * P1 + P4) & M


def content_hash64(data, seed=0):
    n = len(data)
    lanes = [(seed + p) & M for p in (P1, P2, P3, P4)]
    pos = 0
    while n - pos >= 32:
        for j in range(4):
            w = le(data[pos + 8 * j:pos + 8 * j + 8])
            lanes[j] = (rotl(lanes[j] ^ ((w * P2) & M), 29) * P1) & M
        pos += 32
    h = seed ^ P4
    for v in lanes:
        h = fold_word(h, (rotl((v * P3) & M, 31) * P1) & M)
    h = (h + n) & M
    while n - pos >= 8:
        h = fold_word(h, (rotl((le(data[pos:pos + 8]) * P2) & M, 31) * P1) & M)
        pos += 8
    if n - pos >= 4:
        h = (rotl(h ^ ((le(data[pos:pos + 4]) * P1) & M), 23) * P2 + P3) & M
        pos += 4
    while pos < n:
        h = (rotl(h ^ ((data[pos] * P4) & M), 11) * P1) & M
        pos += 1
    h ^= h >> 33
    h = (h * P2) & M
    h ^= h >> 29
    h = (h * P3) & M
    h ^= h >> 32
    return h


def pattern(n):
    return bytes((i * 31 + 7) & 0xFF for i in range(n))


def main():
    cases = [(n, 0) for n in (0, 1, 3, 4, 7, 8, 31, 32, 33, 63, 64, 100, 1000)]
    cases += [(n, 0x0123456789ABCDEF) for n in (0, 1, 32, 33, 1000)]
    for n, seed in cases:
        print("    {%d, 0x%016xull, 0x%016xull}," % (n, seed, content_hash64(pattern(n), seed)))
    # Text inputs, to catch a byte-order mistake that a pattern might hide.
    for s in (b"a", b"token_embd.weight", b"blk.5.attn_q.weight"):
        print('    // "%s": 0x%016xull' % (s.decode(), content_hash64(s)))


if __name__ == "__main__":
    main()
