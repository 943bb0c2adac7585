#!/usr/bin/env python3
"""Regenerates openai_request_seeds/ and openai_request.dict for
openai_request_fuzzer: valid completions and chat bodies that together use
every field the parser knows (the first byte of a seed picks the endpoint:
'0' completions, '1' chat), and a dictionary of JSON syntax and field names.

Usage: tests/fuzz/make_seeds.py   (writes next to itself)
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

SEEDS = {
    "completion_min": (0, {"prompt": "Hello"}),
    "completion_full": (0, {
        "model": "smol", "prompt": "The capital of France is", "max_tokens": 8,
        "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
        "repetition_penalty": 1.1, "seed": -3, "stop": ["\n", "."], "stop_token_ids": [2],
        "logprobs": 3, "stream": True, "ignore_eos": False, "n": 1, "user": "u",
        "stream_options": {"include_usage": True}, "echo": False, "best_of": 1, "suffix": "",
        "presence_penalty": 0, "frequency_penalty": 0.0, "logit_bias": {}}),
    "completion_ids": (0, {"prompt": [1, 2, 3, 4000], "max_tokens": 2}),
    "completion_one_string": (0, {"prompt": ["<|im_start|>hi"], "stop": "x"}),
    "chat_min": (1, {"messages": [{"role": "user", "content": "Hi"}]}),
    "chat_full": (1, {
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": [{"type": "text", "text": "Name a colour."},
                                         {"type": "text", "text": "Now."}]},
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "user", "content": "Again", "name": "bob"}],
        "max_completion_tokens": 12, "logprobs": True, "top_logprobs": 5, "temperature": 0,
        "seed": 7, "response_format": {"type": "text"}, "tool_choice": "none", "tools": [],
        "parallel_tool_calls": False, "modalities": ["text"], "metadata": {"a": "b"},
        "store": False, "stream": False}),
    "chat_refused": (1, {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": {"type": "function"},
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
    "chat_parts_odd": (1, {"messages": [{"role": "user", "content": [
        {"type": 5, "text": "x"}, {}, {"type": "image_url", "image_url": {"url": "data:"}}]}]}),
}

SYNTAX = ['{', '}', '[', ']', ':', ',', 'null', 'true', 'false', '-0', '1e999', '\\u0000', '"']
FIELDS = [
    "model", "stream", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed",
    "max_tokens", "max_completion_tokens", "stop", "stop_token_ids", "ignore_eos", "logprobs",
    "top_logprobs", "n", "messages", "prompt", "user", "metadata", "store", "service_tier",
    "stream_options", "parallel_tool_calls", "tools", "tool_choice", "functions",
    "function_call", "response_format", "logit_bias", "presence_penalty", "frequency_penalty",
    "best_of", "echo", "suffix", "prediction", "audio", "modalities", "web_search_options",
    "role", "content", "type", "text", "tool_calls", "name", "system", "assistant",
    "developer", "tool", "json_schema", "json_object", "image_url", "none", "auto"]


def dict_entry(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def main():
    seeds = os.path.join(HERE, "openai_request_seeds")
    os.makedirs(seeds, exist_ok=True)
    for name, (kind, body) in SEEDS.items():
        with open(os.path.join(seeds, name), "wb") as f:
            f.write(bytes([ord("0") + kind]) + json.dumps(body).encode())
    with open(os.path.join(HERE, "openai_request.dict"), "w") as f:
        f.write("# JSON syntax and the field names the OpenAI request parser knows\n")
        f.write("# (written by make_seeds.py).\n")
        for w in SYNTAX:
            f.write(dict_entry(w) + "\n")
        for x in FIELDS:
            f.write(dict_entry('"%s"' % x) + "\n")


if __name__ == "__main__":
    main()
