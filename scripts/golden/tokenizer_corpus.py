#!/usr/bin/env python3
"""Writes tests/golden/tokenizer_corpus.json: the tokenizer golden test inputs.

Deterministic (fixed seed, no dependence on the environment): rerunning it
reproduces the file byte for byte. Each case is a byte string (stored as hex,
with the text alongside when it is valid UTF-8) and a name saying what it
exercises. The cases cover prose, code, many scripts (incl. RTL and CJK),
emoji (incl. ZWJ sequences), combining marks, every Unicode whitespace
character in runs and before digits, numbers, contractions, special-token
text, invalid UTF-8, and random mixtures of all of these.

Excluded on purpose: 4-byte sequences that decode past U+10FFFF (lead F4
with second byte >= 0x90, or leads F5..F7, followed by continuation bytes).
llama.cpp throws an uncaught exception on those and aborts, so there is no
reference output; tests/tokenizer checks our handling of them separately.

Usage: python3 scripts/golden/tokenizer_corpus.py [--out PATH]
"""

import argparse
import json
import os
import random

SEED = 20240917

PROSE = [
    "Hello world",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times.",
    "Tokenizers split text into pieces; models predict the next piece.",
    "  leading spaces",
    "trailing spaces   ",
    "multiple   spaces   between   words",
    "Sentence one. Sentence two! Sentence three? Yes...",
    "\"Quoted text,\" she said, 'and single quotes.'",
    "Parentheses (like these) and [brackets] and {braces}.",
    "Email: someone@example.com, URL: https://example.org/path?q=1&r=2#frag",
    "Hyphenated-words and em\u2014dashes and en\u2013dashes.",
    "ALL CAPS SENTENCE WITH NUMBERS 123 AND SYMBOLS #$%",
    "mixedCase camelCase snake_case kebab-case PascalCase",
    "A sentence with a tab\tin the middle.",
    "Line one\nLine two\nLine three",
    "Windows line\r\nendings\r\nhere",
    "Paragraph one.\n\nParagraph two.\n\n\nParagraph three.",
    "What is the capital of France? The capital of France is Paris.",
    "I like to eat apples, bananas, and cherries.",
    "The year 2024 had 366 days.",
    "Prices: $5.99, \u20ac10, \u00a33.50, \u00a5100.",
    "Temperature: -40\u00b0C equals -40\u00b0F.",
    "Once upon a time, there was a little robot named SmolLM.",
    "Can you help me write a poem about the sea?",
    "Sure! Here is a short poem:\n\nThe sea is wide,\nThe sea is deep.",
    "Ellipsis\u2026 and \u201ccurly quotes\u201d and \u2018single curly\u2019.",
    "Semicolons; colons: commas, periods.",
    "a",
    "A",
    " ",
    "!",
    "?!?!",
    "...",
    "hello",
    " hello",
    "  hello",
    "hello ",
    "Hello World Hello World Hello World",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 100,
    "ab" * 60,
    "The the THE tHe",
]

CODE = [
    "def add(a, b):\n    return a + b\n",
    "for i in range(10):\n\tprint(i)\n",
    "#include <stdio.h>\nint main(void) {\n  printf(\"hi\\n\");\n  return 0;\n}\n",
    "if (x != nullptr && y->z >= 3) { ++count; }",
    "std::vector<int32_t> ids = tok.Encode(text, /*add_special=*/false, true);",
    "{\"key\": \"value\", \"list\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "SELECT name, COUNT(*) FROM users WHERE age > 21 GROUP BY name;",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "ls -la | grep '.txt' > out.log 2>&1 && echo done",
    "x = [i**2 for i in range(100) if i % 3 == 0]",
    "    indented four\n        indented eight\n",
    "\t\ttabs\tand\t\ttabs",
    "a=1;b=2;c=a+b;",
    "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "// comment\n/* block\n   comment */",
    "const f = (a, b) => a ?? b?.c ?? 0;",
    "matrix[i][j] += alpha * A[i][k] * B[k][j];",
    "@decorator\nclass Foo(Base):\n    pass\n",
    "#!/bin/bash\nset -euo pipefail\n",
    "0x1F 0b1010 0o17 1e-9 3.14f 42ULL",
    "__init__ __name__ == '__main__'",
    "git commit -m 'fix: handle \\r\\n endings'",
    "$ echo $HOME ~/path/to/file.txt",
    "key1=value1&key2=value2",
    "   \n   \n",
    "if x:\n    if y:\n        z()\n    \n",
]

UNICODE_TEXT = [
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 co\u00f6perate",
    "\u00c0 la carte, \u00e7a va? Fran\u00e7ais \u00e0 Montr\u00e9al.",
    "Stra\u00dfe \u00fcber \u00e4\u00f6\u00fc \u00c4\u00d6\u00dc",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac: \u03ba\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u03ba\u03cc\u03c3\u03bc\u03b5",
    "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u044f\u0437\u044b\u043a: \u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u0423\u043a\u0440\u0430\u0457\u043d\u0441\u044c\u043a\u0430 \u043c\u043e\u0432\u0430 \u0457\u0436\u0430\u043a",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629: \u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e2\u05d1\u05e8\u05d9\u05ea: \u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "Mixed RTL: hello \u05e9\u05dc\u05d5\u05dd world \u0645\u0631\u062d\u0628\u0627 123",
    "\u0939\u093f\u0928\u094d\u0926\u0940: \u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22: \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
    "\ud55c\uad6d\uc5b4: \uc548\ub155\ud558\uc138\uc694 \uc138\uacc4",
    "\u65e5\u672c\u8a9e: \u3053\u3093\u306b\u3061\u306f\u4e16\u754c\u3002\u30ab\u30bf\u30ab\u30ca\u3082\u3002",
    "\u4e2d\u6587\uff1a\u4f60\u597d\uff0c\u4e16\u754c\uff01\u6211\u7231\u81ea\u7136\u8bed\u8a00\u5904\u7406\u3002",
    "\u7e41\u9ad4\u4e2d\u6587\u6e2c\u8a66",
    "\u4f60\u597d world \u3053\u3093\u306b\u3061\u306f 123 \uc548\ub155",
    "\u0f56\u0f7c\u0f51\u0f0b\u0f61\u0f72\u0f42",
    "\u1200\u121b\u122d\u129b \u134a\u12f0\u120d",
    "\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8",
    "\u0540\u0561\u0575\u0565\u0580\u0565\u0576",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u",
    "T\u00fcrk\u00e7e \u0131\u015f\u0131k \u0130stanbul",
    "\u00c5ngstr\u00f6m \u212b \u212a Kelvin",
    "\ufb01 ligature \ufb02ow",
    "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \uff34\uff45\uff58\uff54",
    "\U0001d400\U0001d401\U0001d402 math bold",
    "\u2160\u2161\u2162 roman numerals \u216b",
    "\u00bd \u00bc \u00be fractions \u2153",
    "x\u00b2 + y\u00b3 = z\u2074",
    "\u2211 \u222b \u221a \u221e \u2260 \u2264 \u2265 \u00b1",
    "\u2190 \u2192 \u2191 \u2193 \u21d2 \u21d4",
    "\u00a9 \u00ae \u2122 \u00a7 \u00b6",
    "\U0002ebf0\U0002ebf1 CJK extension I (Unicode 15.1)",
    "\U00031350 CJK extension H (Unicode 15.0)",
    "\u1c89\u1c8a Unicode 16 Cyrillic (unassigned in 15.1)",
    "\U0001e030 modifier letter (Unicode 15.0)",
    "\u0378\u0379 unassigned",
    "\ue000\uf8ff private use",
    "\U000f0000 supplementary private use",
    "\ufffe\uffff noncharacters",
    "\U0010ffff last code point",
    "\ufeffBOM at start",
    "zero\u200bwidth\u200bspace",
    "soft\u00adhyphen",
    "word\u2060joiner",
    "\u200e\u200f LRM RLM marks",
    "\u202aembedded\u202c",
    "\ufffd replacement char",
]

EMOJI = [
    "\U0001f600",
    "\U0001f600\U0001f603\U0001f604",
    "I love \U0001f355 and \U0001f363!",
    "\U0001f44d\U0001f3fb\U0001f44d\U0001f3fc\U0001f44d\U0001f3fd\U0001f44d\U0001f3fe\U0001f44d\U0001f3ff",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f469\u200d\U0001f4bb coding",
    "\U0001f3f3\ufe0f\u200d\U0001f308 rainbow flag",
    "\U0001f3f4\u200d\u2620\ufe0f pirate",
    "\U0001f1fa\U0001f1f8\U0001f1ef\U0001f1f5\U0001f1eb\U0001f1f7 flags",
    "1\ufe0f\u20e3 #\ufe0f\u20e3 keycaps",
    "\u2764\ufe0f \u2764 hearts",
    "\u263a\ufe0f \u263a text vs emoji",
    "\U0001f9d1\U0001f3fd\u200d\U0001f91d\u200d\U0001f9d1\U0001f3fb",
    "\U0001f926\U0001f3fc\u200d\u2642\ufe0f",
    "emoji\U0001f680at\U0001f30dboundaries",
    " \U0001f525 spaced \U0001f525 ",
    "\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600",
    "\U0001fae0 \U0001fae8 newer emoji",
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Scotland",
    "\u2600\u2601\u2602\u2603 weather",
    "\U0001f44b\U0001f3fe\u200d",
    "\u200d\u200d\u200d",
]

COMBINING = [
    "e\u0301",
    "e\u0301 vs \u00e9",
    "a\u0300\u0301\u0302\u0303\u0304",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333",
    " \u0301 leading combining after space",
    "\u0301 combining at start",
    "n\u0303o\u0308",
    "\u0915\u094d\u0937",
    "\u1100\u1161\u11a8 conjoining jamo",
    "\u0627\u064e\u0644\u0652",
    "q\u0323\u0307",
    "text\u20dd enclosing",
]

WHITESPACE_CHARS = [
    (" ", "space"), ("\t", "tab"), ("\n", "lf"), ("\r", "cr"), ("\r\n", "crlf"),
    ("\x0b", "vt"), ("\x0c", "ff"), ("\x85", "nel"), ("\u00a0", "nbsp"),
    ("\u1680", "ogham"), ("\u2000", "en-quad"), ("\u2002", "en-space"), ("\u2003", "em-space"),
    ("\u2009", "thin"), ("\u200a", "hair"), ("\u2028", "line-sep"), ("\u2029", "para-sep"),
    ("\u202f", "narrow-nbsp"), ("\u205f", "math-space"), ("\u3000", "ideographic"),
    ("\u200b", "zwsp-not-ws"), ("\u180e", "mongolian-vs-not-ws"),
]

WHITESPACE_PATTERNS = [
    "a{w}b", "{w}a", "a{w}", "{w}{w}a", "a{w}{w}", "a{w}{w}b", "a{w}{w}{w}b", "{w}",
    "{w}{w}{w}", "a{w}1", "a{w}{w}1", "1{w}{w}2", "{w}{w}!", "a {w}b", "a{w} b", "x{w}\n",
]

NUMBERS = [
    "0", "1", "12", "123", "1234", "12345", "1234567890", "00000",
    "3.14159265358979323846", "-42", "+7", "1,000,000", "1.000.000,50", "10^6",
    "123456789012345678901234567890", "2024-09-17", "12:34:56", "v1.2.3",
    "1st 2nd 3rd 4th", "100%", "$1,234.56", "1e10", "0.001", "9" * 50,
    "\u0663\u0664\u0665 Arabic-Indic", "\u0967\u0968\u0969 Devanagari", "\uff11\uff12\uff13 fullwidth",
    "\u00b9\u00b2\u00b3 superscripts", "\u2460\u2461\u2462 circled", "abc123def456", "a1b2c3",
    " 1", "  1", "   1", "a 1", "a  1", "a   12", "1 2 3 4 5", "1  2  3", "\u4e00\u4e8c\u4e09 CJK numerals",
    "\U0001d7ce\U0001d7cf math digits", "12\u00a034", "1\u20002",
]

CONTRACTIONS = [
    "I'm", "you're", "he's", "she'd", "we've", "they'll", "it's", "don't", "can't", "won't",
    "I'M YOU'RE DON'T", "It'S", "y'all", "rock'n'roll", "'s", "'", "''", "'''s", "'ll've",
    "o'clock", "the dog's bone's", "I\u2019m curly", "\u2019s", " 's", "'re'", "'t'm'd",
    "don' t", "'S 'T 'RE 'VE 'M 'LL 'D", "'\u00e9", "'1", "''s''", "Don't you think it's time we'd go?",
]

SPECIAL_TEXT = [
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "text<|endoftext|>more text",
    "<|im_start|>",
    "<|im_end|>",
    "<|im_start|><|im_end|>",
    "<|im_start",
    "im_start|>",
    "<|im_start|",
    "<<|im_start|>>",
    "<|im_start|><|im_start|>",
    " <|im_start|> ",
    "\n<|im_end|>\n",
    "<repo_name>my/repo<file_sep>main.py\n<filename>x.py",
    "<reponame><gh_stars>100<issue_start>bug<issue_comment>fix<issue_closed>",
    "<jupyter_start><jupyter_text>md<jupyter_code>print(1)<jupyter_output>1<jupyter_script><empty_output>",
    "<|IM_START|>",
    "<|im_start|>user\n\U0001f600<|im_end|>",
    "<s> </s> <unk> <pad>",
    "<|eot_id|><|start_header_id|>",
    "<|im_start|>assistant\nSure!<|im_end|><|endoftext|>",
    "a<|im_end|>b<|im_start|>c",
    "<|im_end|>  <|im_start|>",
    "<|endoftext|>\u00e9<|endoftext|>",
    "<|im_start|>" * 5,
    "<filename>",
    "<file_sep><file_sep>",
    "<|im_start|>user\n<|im_start|>nested<|im_end|><|im_end|>",
]

INVALID_BYTES = [
    (b"", "empty"),
    (b"\x00", "nul"),
    (b"a\x00b", "nul-inside"),
    (b"\x01\x02\x03\x1f", "c0-controls"),
    (b"\x7f", "del"),
    (b"\x80", "lone-continuation-80"),
    (b"\xbf", "lone-continuation-bf"),
    (b"\x80\x80\x80", "continuations"),
    (b"\xc3", "truncated-2"),
    (b"\xe2\x82", "truncated-3"),
    (b"\xf0\x9f\x98", "truncated-4"),
    (b"\xf0\x9f", "truncated-4b"),
    (b"abc\xe2\x82", "truncated-at-end"),
    (b"\xe2\x82abc", "truncated-then-ascii"),
    (b"\xc0\x80", "overlong-nul"),
    (b"\xc1\xbf", "overlong-7f"),
    (b"\xe0\x80\xaf", "overlong-3"),
    (b"\xf0\x80\x80\xaf", "overlong-4"),
    (b"\xed\xa0\x80", "surrogate-high"),
    (b"\xed\xbf\xbf", "surrogate-low"),
    (b"\xed\xa0\xbd\xed\xb8\x80", "surrogate-pair-cesu"),
    (b"\xf4\x8f\xbf\xbf", "max-codepoint"),
    (b"\xf8\x88\x80\x80\x80", "five-byte"),
    (b"\xfc\x84\x80\x80\x80\x80", "six-byte"),
    (b"\xfe", "fe"),
    (b"\xff", "ff"),
    (b"\xfe\xff", "fe-ff"),
    (b"\xff\xfe", "ff-fe"),
    (b"\xef\xbb\xbf", "bom-bytes"),
    (b"hello\xffworld", "ff-inside-word"),
    (b"hello \xff world", "ff-between-spaces"),
    (b" \xff", "space-ff"),
    (b"\xff\xff\xff", "ff-run"),
    (b"\xc3\xa9\xc3", "valid-then-truncated"),
    (b"\xc3\x28", "bad-continuation"),
    (b"\xe2\x28\xa1", "bad-continuation-3"),
    (b"\xf0\x28\x8c\xbc", "bad-continuation-4"),
    (b"1\x802", "digit-invalid-digit"),
    (b"<|im_start|>\xff<|im_end|>", "special-around-invalid"),
    (b"<|im_\xffstart|>", "invalid-inside-special"),
    (b"\xe4\xbd\xa0\xe5\xa5", "cjk-then-truncated"),
    (b"\xf0\x9f\x98\x80\xf0\x9f\x98", "emoji-then-truncated"),
    (b"\x80\xc3\xa9\x80", "continuation-around-valid"),
    (b"'\xff", "apostrophe-invalid"),
    (b"\r\n\xff\r\n", "crlf-invalid"),
]


def llama_lenient_decode_overflows(data):
    """True if llama.cpp's decoder would produce a code point > U+10FFFF."""
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b < 0x80 or not (b & 0x40):
            i += 1
            continue
        if not (b & 0x20):
            length, cpt = 2, b & 0x1F
        elif not (b & 0x10):
            length, cpt = 3, b & 0x0F
        elif not (b & 0x08):
            length, cpt = 4, b & 0x07
        else:
            i += 1
            continue
        if i + length > n or any((data[i + k] & 0xC0) != 0x80 for k in range(1, length)):
            i += 1
            continue
        for k in range(1, length):
            cpt = (cpt << 6) | (data[i + k] & 0x3F)
        if cpt > 0x10FFFF:
            return True
        i += length
    return False


def random_cases(rng):
    pieces = (
        ["the", "The", " cat", " sat", "on", " mat", "Hello", "world", "token", "izer",
         "a", "I", "x", "QQ", "naïve", "Straße", "привет", "مرحبا", "שלום", "नमस्ते",
         "你好", "世界", "こんにちは", "안녕", "🙂", "👍🏽", "👨‍👩‍👧", "🇫🇷", "é", "e\u0301",
         "'s", "'t", "'re", "'ll", "'", "\"", ",", ".", "!", "?", "...", "-", "_", "(", ")",
         "{", "}", "[", "]", "<", ">", "|", "/", "\\", "#", "@", "$", "%", "^", "&", "*",
         "+", "=", "~", "`", ":", ";", "0", "1", "7", "42", "123", "2024", "3.14", "٣",
         "½", "²", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000", "\u2003",
         "\u200b", "\u2028", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_", "|>",
         "<file_sep>", "user", "assistant", "system", "\ufffd", "\x00", "\x7f", "\u0085"])
    cases = []
    for i in range(220):
        n = rng.randint(1, 14)
        text = "".join(rng.choice(pieces) for _ in range(n))
        cases.append((text.encode("utf-8"), f"random-mix-{i}"))
    byte_pool = list(range(256))
    interesting = [0x00, 0x09, 0x0A, 0x0D, 0x20, 0x27, 0x30, 0x39, 0x41, 0x61, 0x7F, 0x80,
                   0xBF, 0xC0, 0xC2, 0xC3, 0xDF, 0xE0, 0xE2, 0xED, 0xEF, 0xF0, 0xF4, 0xF5,
                   0xF8, 0xFF]
    made = 0
    while made < 70:
        n = rng.randint(1, 16)
        pool = interesting if rng.random() < 0.5 else byte_pool
        data = bytes(rng.choice(pool) for _ in range(n))
        if llama_lenient_decode_overflows(data):
            continue
        cases.append((data, f"random-bytes-{made}"))
        made += 1
    return cases


def long_cases():
    paragraph = (
        "The transformer architecture processes tokens in parallel. Each layer applies "
        "self-attention and a feed-forward network.\n\n"
        "    def forward(self, x):\n        return self.norm(x + self.attn(x))\n\n"
        "Numbers like 1234567 and 3.14159 appear often; so do emoji \U0001f600 and "
        "CJK \u6f22\u5b57 and accents caf\u00e9.\t\tTabs too.\r\n")
    return [
        ((paragraph * 8).encode("utf-8"), "long-mixed-prompt-8x"),
        (("word " * 1000).encode("utf-8"), "long-repeated-words"),
        (("\u4f60\u597d\u4e16\u754c" * 300).encode("utf-8"), "long-cjk"),
        ((" " * 2000 + "x").encode("utf-8"), "long-space-run"),
        (("<|im_start|>user\n" + paragraph + "<|im_end|>\n") * 4).encode("utf-8") ,
    ]


def build_cases():
    rng = random.Random(SEED)
    cases = []

    def add_text(text, name):
        cases.append((text.encode("utf-8"), name))

    for i, t in enumerate(PROSE):
        add_text(t, f"prose-{i}")
    for i, t in enumerate(CODE):
        add_text(t, f"code-{i}")
    for i, t in enumerate(UNICODE_TEXT):
        add_text(t, f"unicode-{i}")
    for i, t in enumerate(EMOJI):
        add_text(t, f"emoji-{i}")
    for i, t in enumerate(COMBINING):
        add_text(t, f"combining-{i}")
    for w, wname in WHITESPACE_CHARS:
        for j, pattern in enumerate(WHITESPACE_PATTERNS):
            add_text(pattern.replace("{w}", w), f"ws-{wname}-{j}")
    mixed_ws = [" \t", "\t ", " \n", "\n ", " \n ", "\n\n ", " \r\n", "\u00a0 ", " \u00a0",
                "\u3000 ", " \u3000", "\t\t\n", "\n\t", " \u2003 "]
    for i, w in enumerate(mixed_ws):
        for j, pattern in enumerate(["a{w}b", "a{w}1", "{w}a", "a{w}"]):
            add_text(pattern.replace("{w}", w), f"ws-mixed-{i}-{j}")
    for n in range(1, 17):
        add_text(" " * n + "x", f"spaces-{n}-then-x")
        add_text("x" + "\n" * n, f"x-then-newlines-{n}")
    for i, t in enumerate(NUMBERS):
        add_text(t, f"number-{i}")
    for i, t in enumerate(CONTRACTIONS):
        add_text(t, f"contraction-{i}")
    for i, t in enumerate(SPECIAL_TEXT):
        add_text(t, f"special-{i}")
    for data, name in INVALID_BYTES:
        cases.append((data, f"bytes-{name}"))
    cases.extend(random_cases(rng))
    for i, case in enumerate(long_cases()):
        if isinstance(case, tuple):
            cases.append(case)
        else:
            cases.append((case, f"long-{i}"))
    for data, name in cases:
        assert not llama_lenient_decode_overflows(data), name
    names = [name for _, name in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--out", default=os.path.join(root, "tests", "golden",
                                                      "tokenizer_corpus.json"))
    args = parser.parse_args()
    entries = []
    for data, name in build_cases():
        entry = {"name": name, "hex": data.hex()}
        try:
            entry["text"] = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        entries.append(entry)
    doc = {
        "description": "Tokenizer golden inputs; generated by scripts/golden/tokenizer_corpus.py",
        "seed": SEED,
        "count": len(entries),
        "cases": entries,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print(f"wrote {args.out}: {len(entries)} cases")


if __name__ == "__main__":
    main()
