#!/usr/bin/env python3
"""Writes tests/golden/chat_templates.json: chat templates in the formats of
the model families Tessera renders natively, and what Jinja renders for a set
of conversations with each.

The templates are written here for this test (none is a model's template
copied verbatim); each follows its family's published format and uses the
markers common/tokenizer/chat_template.h detects:
  chatml_plain    ChatML with no default system prompt
  chatml_qwen2    ChatML that adds "You are a helpful assistant." as a system
                  turn when the conversation does not open with one (Qwen2)
  chatml_smollm2  the same with SmolLM2's longer default prompt
  llama3          Llama-3: BOS before the first turn, headers, trimmed content,
                  <|eot_id|>
  mistral_v3      Mistral v0.3 style: BOS, [INST] ... [/INST] turns, the system
                  message prepended to the final user turn, assistant turns as
                  " " + trimmed content + EOS
  glm4            GLM-4: [gMASK]<sop>, <|role|>\\n content, "<|assistant|>"
  glm4_newline    the same with "<|assistant|>\\n" as the generation prompt
  llama31         Llama-3.1/3.3 without tools: BOS, a system turn that always
                  holds "Cutting Knowledge Date: December 2023\\n", "Today Date:
                  " + date_string + "\\n\\n" (date_string defaulting to
                  "26 Jul 2024") and the trimmed system message, then Llama-3
                  turns; an "Environment: ipython" line only with tools (never
                  passed here)
  llama32         the same with 3.2's date rule: strftime_now(...) if defined,
                  else the literal; no strftime_now is passed, as Tessera
                  renders the literal
  llama2          Llama-2-chat: BOS + "[INST] " + stripped turn + " [/INST]" per
                  user turn, the system message in a <<SYS>> block at the head
                  of the first (stripped as a whole), assistant turns " " +
                  stripped content + " " + EOS
  mistral_v1      original Mistral-7B-Instruct-v0.1: BOS, "[INST] C [/INST]",
                  assistant C + EOS + " ", no system role
  mistral_v2      original v0.2 / Mixtral-8x7B-Instruct: the same without the
                  space after EOS
  mistral_v1_sys  v0.1/v0.2 as revised in 2024: BOS, " [INST] C [/INST]", the
                  system message + "\\n\\n" before the first user content,
                  assistant " " + C + EOS
Rendering uses jinja2 (version recorded in the header) with
trim_blocks/lstrip_blocks off; Hugging Face's apply_chat_template turns both
on, and since the templates below are written without newlines between
statements, both settings give the same text (the script checks that).

Each case: template name, messages, add_generation_prompt, bos/eos text, the
rendered string (or the exception message for conversations the template
rejects), and for rendered cases `placed`: for each message, whether the
template writes its content at all (found by rendering again with that
content replaced by a sentinel), so that the test can check content spans
without knowing each family's rules.

Usage: python3 scripts/golden/gen_chat_template_golden.py [--out PATH]
"""

import argparse
import json
import os

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHATML_TURN = ("{{- '<|im_start|>' ~ m['role'] ~ '\\n' ~ m['content'] ~ '<|im_end|>' ~ '\\n' -}}")
CHATML_GEN = "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"


def chatml_with_default(default_system):
    return (
        "{%- for m in messages -%}"
        "{%- if loop.first and messages[0]['role'] != 'system' -%}"
        "{{- '<|im_start|>system\\n" + default_system + "<|im_end|>\\n' -}}"
        "{%- endif -%}" + CHATML_TURN + "{%- endfor -%}" + CHATML_GEN)


# Llama-3.1: BOS, then the system turn is written whatever the conversation.
LLAMA31_HEAD = "{{- bos_token -}}"
LLAMA31_BODY = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system_text = messages[0]['content'] | trim -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set system_text = '' -%}{%- set turns = messages -%}{%- endif -%}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' -}}"
    "{%- if tools is defined and tools is not none -%}{{- \"Environment: ipython\\n\" -}}"
    "{%- endif -%}"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" -}}"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" -}}"
    "{{- system_text ~ '<|eot_id|>' -}}"
    "{%- for m in turns -%}"
    "{{- '<|start_header_id|>' ~ m['role'] ~ '<|end_header_id|>\\n\\n' ~ (m['content'] | trim)"
    " ~ '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}"
    "{%- endif -%}")

ALTERNATE = (
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{- raise_exception('turns must alternate user/assistant') -}}"
    "{%- endif -%}")


def mistral_legacy(assistant_turn):
    return (
        "{{- bos_token -}}"
        "{%- for message in messages -%}"
        + ALTERNATE +
        "{%- if message['role'] == 'user' -%}"
        "{{- '[INST] ' + message['content'] + ' [/INST]' -}}"
        "{%- elif message['role'] == 'assistant' -%}{{- " + assistant_turn + " -}}"
        "{%- else -%}{{- raise_exception('only user and assistant turns') -}}"
        "{%- endif -%}"
        "{%- endfor -%}")


TEMPLATES = {
    "chatml_plain": "{%- for m in messages -%}" + CHATML_TURN + "{%- endfor -%}" + CHATML_GEN,
    "chatml_qwen2": chatml_with_default("You are a helpful assistant."),
    "chatml_smollm2": chatml_with_default(
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
    "llama3": (
        "{%- for m in messages -%}"
        "{%- set turn = '<|start_header_id|>' ~ m['role'] ~ '<|end_header_id|>\\n\\n'"
        " ~ (m['content'] | trim) ~ '<|eot_id|>' -%}"
        "{%- if loop.index0 == 0 -%}{%- set turn = bos_token ~ turn -%}{%- endif -%}"
        "{{- turn -}}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}"
        "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}"
        "{%- endif -%}"),
    "mistral_v3": (
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set system_message = messages[0]['content'] -%}"
        "{%- set loop_messages = messages[1:] -%}"
        "{%- else -%}{%- set loop_messages = messages -%}{%- endif -%}"
        "{{- bos_token -}}"
        "{%- for m in loop_messages -%}"
        "{%- if (m['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
        "{{- raise_exception('roles must alternate user/assistant after an optional system "
        "message') -}}"
        "{%- endif -%}"
        "{%- if m['role'] == 'user' -%}"
        "{%- if loop.last and system_message is defined -%}"
        "{{- '[INST] ' ~ system_message ~ '\\n\\n' ~ m['content'] ~ '[/INST]' -}}"
        "{%- else -%}{{- '[INST] ' ~ m['content'] ~ '[/INST]' -}}{%- endif -%}"
        "{%- elif m['role'] == 'assistant' -%}"
        "{{- ' ' ~ (m['content'] | trim) ~ eos_token -}}"
        "{%- else -%}{{- raise_exception('only user and assistant turns may follow the "
        "system message') -}}"
        "{%- endif -%}"
        "{%- endfor -%}"),
    "glm4": (
        "[gMASK]<sop>{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"),
    "glm4_newline": (
        "[gMASK]<sop>{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"),
    "llama31": LLAMA31_HEAD + (
        "{%- if date_string is not defined -%}{%- set date_string = \"26 Jul 2024\" -%}"
        "{%- endif -%}") + LLAMA31_BODY,
    "llama32": LLAMA31_HEAD + (
        "{%- if date_string is not defined -%}"
        "{%- if strftime_now is defined -%}{%- set date_string = strftime_now('%d %b %Y') -%}"
        "{%- else -%}{%- set date_string = \"26 Jul 2024\" -%}{%- endif -%}"
        "{%- endif -%}") + LLAMA31_BODY,
    "llama2": (
        "{%- if messages[0]['role'] == 'system' -%}"
        "{%- set system_message = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
        "{%- else -%}{%- set system_message = false -%}{%- set turns = messages -%}{%- endif -%}"
        "{%- for message in turns -%}"
        + ALTERNATE +
        "{%- if loop.first and system_message != false -%}"
        "{%- set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] -%}"
        "{%- else -%}{%- set content = message['content'] -%}{%- endif -%}"
        "{%- if message['role'] == 'user' -%}"
        "{{- bos_token + '[INST] ' + content.strip() + ' [/INST]' -}}"
        "{%- elif message['role'] == 'assistant' -%}"
        "{{- ' ' + content.strip() + ' ' + eos_token -}}"
        "{%- endif -%}"
        "{%- endfor -%}"),
    "mistral_v1": mistral_legacy("message['content'] + eos_token + ' '"),
    "mistral_v2": mistral_legacy("message['content'] + eos_token"),
    "mistral_v1_sys": (
        "{%- if messages[0]['role'] == 'system' -%}"
        "{%- set system_message = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
        "{%- else -%}{%- set turns = messages -%}{%- endif -%}"
        "{{- bos_token -}}"
        "{%- for message in turns -%}"
        + ALTERNATE +
        "{%- if message['role'] == 'user' -%}"
        "{%- if loop.first and system_message is defined -%}"
        "{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' -}}"
        "{%- else -%}{{- ' [INST] ' + message['content'] + ' [/INST]' -}}{%- endif -%}"
        "{%- elif message['role'] == 'assistant' -%}{{- ' ' + message['content'] + eos_token -}}"
        "{%- else -%}{{- raise_exception('only user and assistant turns after the system "
        "message') -}}"
        "{%- endif -%}"
        "{%- endfor -%}"),
}

TOKENS = {  # bos_token, eos_token each family's vocabulary uses
    "chatml_plain": ("", "<|im_end|>"),
    "chatml_qwen2": ("", "<|endoftext|>"),
    "chatml_smollm2": ("<|im_start|>", "<|im_end|>"),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>"),
    "mistral_v3": ("<s>", "</s>"),
    "glm4": ("", "<|endoftext|>"),
    "glm4_newline": ("", "<|endoftext|>"),
    "llama31": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama32": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama2": ("<s>", "</s>"),
    "mistral_v1": ("<s>", "</s>"),
    "mistral_v2": ("<s>", "</s>"),
    "mistral_v1_sys": ("<s>", "</s>"),
}

S = {"role": "system", "content": "You are terse. Answer in one line."}
U1 = {"role": "user", "content": "What is 2 + 2?"}
A1 = {"role": "assistant", "content": "  4, of course.\n"}
U2 = {"role": "user", "content": "  And 3 + 3?\n\nThanks \u2014 caf\u00e9 \u4f60\u597d  "}
A2 = {"role": "assistant", "content": "6"}
U3 = {"role": "user", "content": "Line one\nLine two\t"}

CONVERSATIONS = {
    "user_only": [U1],
    "system_user": [S, U1],
    "multi_turn": [U1, A1, U2],
    "system_multi_turn": [S, U1, A1, U2],
    "ends_with_assistant": [U1, A1, U2, A2],
    "system_ends_with_assistant": [S, U1, A1, U2, A2],
    "long": [S, U1, A1, U2, A2, U3],
    "empty_content": [{"role": "user", "content": ""}],
    "whitespace_content": [{"role": "user", "content": " \u00a0\u3000x\u2003\n"}],
    "no_messages": [],
    "not_alternating": [U1, U2],
    # Where a template strips a whole turn (Llama-2's <<SYS>> + user) or only
    # some of it.
    "padded_system": [{"role": "system", "content": "\n  Be brief. \t"},
                      {"role": "user", "content": "  Hi there \n"},
                      {"role": "assistant", "content": " Hello! "},
                      {"role": "user", "content": "\u3000Bye\u00a0"}],
    "system_blank_user": [S, {"role": "user", "content": " \n\t"}],
    "system_only": [S],
}


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def render(env, template, messages, add_generation_prompt, bos, eos):
    t = env.from_string(template)
    return t.render(messages=messages, add_generation_prompt=add_generation_prompt,
                    bos_token=bos, eos_token=eos, raise_exception=raise_exception)


def placed(env, template, messages, index, add_generation_prompt, bos, eos):
    sentinel = f"\u2603{index}\u2603"
    marked = [dict(m) for m in messages]
    marked[index]["content"] = sentinel
    return sentinel in render(env, template, marked, add_generation_prompt, bos, eos)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "golden",
                                                      "chat_templates.json"))
    args = parser.parse_args()
    plain = ImmutableSandboxedEnvironment()
    hf_like = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    cases = []
    for name, template in TEMPLATES.items():
        bos, eos = TOKENS[name]
        for conv_name, messages in CONVERSATIONS.items():
            for gen in (True, False):
                case = {"template": name, "conversation": conv_name, "messages": messages,
                        "add_generation_prompt": gen, "bos_token": bos, "eos_token": eos}
                try:
                    out = render(plain, template, messages, gen, bos, eos)
                    if out != render(hf_like, template, messages, gen, bos, eos):
                        raise SystemExit(f"{name}: output depends on trim_blocks")
                    case["rendered"] = out
                    case["placed"] = [placed(plain, template, messages, i, gen, bos, eos)
                                      for i in range(len(messages))]
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                except (IndexError, jinja2.exceptions.UndefinedError) as e:
                    case["error"] = f"{type(e).__name__}: {e}"
                cases.append(case)
    doc = {
        "header": {
            "generator": "scripts/golden/gen_chat_template_golden.py",
            "jinja2_version": jinja2.__version__,
        },
        "templates": TEMPLATES,
        "cases": cases,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    errors = sum(1 for c in cases if "error" in c)
    print(f"wrote {args.out}: {len(TEMPLATES)} templates, {len(cases)} cases "
          f"({errors} rejected by their template)")


if __name__ == "__main__":
    main()
