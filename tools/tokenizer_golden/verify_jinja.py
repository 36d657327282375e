"""Cross-checks the chat-template goldens of tests/data/tokenizer/golden.json (rendered by
@huggingface/jinja in gen_golden.mjs) against Python's jinja2 configured the way transformers'
apply_chat_template does (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
raise_exception). Needs only `jinja2` (pip install jinja2). Exit status 1 on any difference."""
import json
import os
import sys

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise Exception(message)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../tests/data/tokenizer/golden.json")
    with open(path, encoding="utf-8") as f:
        golden = json.load(f)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals["raise_exception"] = raise_exception
    bad = 0
    for case in golden["chat"] + golden["chat_errors"]:
        template = env.from_string(golden["templates"][case["template"]])
        kwargs = dict(messages=case["messages"], add_generation_prompt=case["add_generation_prompt"],
                      **golden["special_tokens"])
        try:
            got = template.render(**kwargs)
        except Exception as e:  # noqa: BLE001 - templates raise plain Exceptions
            got = ("error", str(e))
        want = case["rendered"] if "rendered" in case else ("error", case["error"])
        if got != want:
            bad += 1
            print(f"DIFF {case['name']}:\n  jinja2: {got!r}\n  golden: {want!r}")
    total = len(golden["chat"]) + len(golden["chat_errors"])
    print(f"{total - bad}/{total} chat cases agree with Python jinja2")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
