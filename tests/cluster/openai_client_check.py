#!/usr/bin/env python3
"""Drives the coordinator's OpenAI-compatible HTTP API with the official
`openai` client, unchanged, and exits non-zero on any mismatch.

usage: openai_client_check.py BASE_URL PROMPT EXPECTED_TEXT MAX_TOKENS [API_KEY [CA_PEM]]

API_KEY is sent as the client's key (default: a placeholder the server
ignores when it requires none); CA_PEM, for an https:// BASE_URL, is the CA
bundle the client trusts instead of the system's.

EXPECTED_TEXT is the greedy continuation of PROMPT as the gRPC Generate API
returns it; the completions endpoint must give exactly that text, streamed
or not. Chat completions must agree between streamed and not. Top-N logprobs
must come in the client's types, most likely first, holding the greedy token. An
unknown model is the client's NotFoundError. Exit status 3 means the `openai`
package is not installed, which the caller counts as a failure: the test command
installs it.
"""
import sys

try:
    import openai
except ImportError:
    print("openai_client_check.py: the openai package is not installed "
          "(scripts/setup.sh installs it)")
    sys.exit(3)


def fail(msg):
    print("MISMATCH: " + msg)
    sys.exit(1)


def main():
    base_url, prompt, expected, max_tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    api_key = sys.argv[5] if len(sys.argv) > 5 else "unused"
    extra = {}
    if len(sys.argv) > 6:
        import ssl
        extra["http_client"] = openai.DefaultHttpxClient(
            verify=ssl.create_default_context(cafile=sys.argv[6]))
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120,
                           **extra)

    models = [m.id for m in client.models.list()]
    if not models:
        fail("models: %r" % models)
    model = models[-1]  # an alias (--served-model-name) where the server has one
    try:
        client.completions.create(model="no-such-model", prompt=prompt, max_tokens=1)
        fail("an unknown model was served")
    except openai.NotFoundError as e:
        if e.status_code != 404 or getattr(e, "code", None) != "model_not_found":
            fail("unknown model gave %d %r" % (e.status_code, getattr(e, "code", None)))

    c = client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens,
                                  temperature=0, logprobs=1)
    if c.model != model:
        fail("completion names model %r, asked for %r" % (c.model, model))
    if c.choices[0].text != expected:
        fail("completion text %r != gRPC text %r" % (c.choices[0].text, expected))
    if c.usage.completion_tokens != len(c.choices[0].logprobs.token_logprobs):
        fail("usage %r vs %d logprobs" % (c.usage, len(c.choices[0].logprobs.token_logprobs)))
    if any(lp > 0 for lp in c.choices[0].logprobs.token_logprobs):
        fail("positive logprob: %r" % c.choices[0].logprobs.token_logprobs)

    streamed, finish = "", None
    for chunk in client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens,
                                           temperature=0, stream=True):
        streamed += chunk.choices[0].text
        finish = chunk.choices[0].finish_reason or finish
    if streamed != expected:
        fail("streamed completion %r != %r" % (streamed, expected))
    if finish != c.choices[0].finish_reason:
        fail("finish_reason %r != %r" % (finish, c.choices[0].finish_reason))

    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Name a colour."}]
    chat = client.chat.completions.create(model=model, messages=messages, max_tokens=8,
                                          temperature=0, seed=7)
    text = chat.choices[0].message.content
    if not text or chat.choices[0].message.role != "assistant":
        fail("chat reply %r" % chat.choices[0].message)
    streamed = ""
    for chunk in client.chat.completions.create(model=model, messages=messages, max_tokens=8,
                                                temperature=0, seed=7, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            streamed += chunk.choices[0].delta.content
    if streamed != text:
        fail("streamed chat %r != %r" % (streamed, text))

    # Seeded sampling is reproducible; stop strings cut the text.
    a = client.completions.create(model=model, prompt=prompt, max_tokens=12, temperature=1.0,
                                  seed=1234)
    b = client.completions.create(model=model, prompt=prompt, max_tokens=12, temperature=1.0,
                                  seed=1234)
    if a.choices[0].text != b.choices[0].text:
        fail("same seed, different text: %r vs %r" % (a.choices[0].text, b.choices[0].text))

    try:
        client.completions.create(model=model, prompt=prompt, n=2)
        fail("n=2 was accepted")
    except openai.BadRequestError as e:
        if e.status_code != 400:
            fail("n=2 gave %d" % e.status_code)

    # Top-N logprobs in both shapes, read through the client's own types.
    chat = client.chat.completions.create(model=model, messages=messages, max_tokens=6,
                                          temperature=0, logprobs=True, top_logprobs=3)
    content = chat.choices[0].logprobs.content
    if len(content) != chat.usage.completion_tokens:
        fail("chat logprobs: %d entries for %d tokens"
             % (len(content), chat.usage.completion_tokens))
    for t in content:
        top = t.top_logprobs
        if len(top) != 3 or top[0].token != t.token or top[0].logprob != t.logprob:
            fail("chat top_logprobs %r for greedy token %r" % (top, t))
        if any(a.logprob < b.logprob for a, b in zip(top, top[1:])):
            fail("chat top_logprobs out of order: %r" % top)
        if any(not isinstance(e.bytes, list) for e in top):
            fail("chat top_logprobs without bytes: %r" % top)
    c = client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens,
                                  temperature=0, logprobs=3)
    lp = c.choices[0].logprobs
    if len(lp.top_logprobs) != len(lp.tokens):
        fail("completion top_logprobs %r for tokens %r" % (lp.top_logprobs, lp.tokens))
    for token, value, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        if not 3 <= len(top) <= 4 or top.get(token) != value or max(top.values()) != value:
            fail("completion top_logprobs %r for greedy token %r (%r)" % (top, token, value))
    try:
        client.chat.completions.create(model=model, messages=messages, max_tokens=2,
                                       top_logprobs=2)
        fail("top_logprobs without logprobs was accepted")
    except openai.BadRequestError as e:
        if e.status_code != 400 or "top_logprobs" not in str(e):
            fail("top_logprobs without logprobs gave %d: %s" % (e.status_code, e))

    if api_key != "unused":
        # The server requires keys: a wrong one is the client's AuthenticationError.
        wrong = openai.OpenAI(base_url=base_url, api_key="tsk-wrong", max_retries=0, timeout=30,
                              **extra)
        try:
            wrong.completions.create(model=model, prompt=prompt, max_tokens=1)
            fail("a wrong API key was served")
        except openai.AuthenticationError as e:
            if e.status_code != 401 or getattr(e, "code", None) != "invalid_api_key":
                fail("a wrong key gave %d %r" % (e.status_code, getattr(e, "code", None)))

    print("OK: completions, chat, streaming, seed, top logprobs and errors agree (%r)" % expected)
    return 0


if __name__ == "__main__":
    sys.exit(main())
