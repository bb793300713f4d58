"""The README's snippets run as written: its Python blocks, in order, in one namespace (as a
reader goes through them; the first one makes the batch the others use), and every script and
module its shell blocks name exists."""
import importlib.util
import os
import re
import shlex

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blocks(lang):
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    return [m.group(1) for m in re.finditer(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)]


def test_python_snippets_run():
    code = blocks("python")
    assert code, "the README shows no Python"
    torch.manual_seed(0)
    namespace = {"__name__": "readme"}
    for i, block in enumerate(code):
        try:
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as exc:  # the block, not this test, is what failed
            pytest.fail(f"README python block {i + 1} fails: {type(exc).__name__}: {exc}\n{block}")
        if i == 0:  # the first block's promise: targets that are distributions
            targets = namespace["targets"]
            assert targets.shape == (64, 1000) and targets.dtype == torch.float32
            torch.testing.assert_close(targets.sum(1), torch.ones(64))


def test_shell_snippets_name_what_exists():
    named = 0
    for block in blocks("bash"):
        for line in block.splitlines():
            words = shlex.split(line.split("#")[0])
            for a, b in zip(words, words[1:]):
                if a == "bash" or (a.startswith("python") and b.endswith(".py")):
                    assert os.path.exists(os.path.join(ROOT, b)), f"README names {b}, which is not there"
                    named += 1
                elif a == "-m" and not b.startswith(("pip", "venv", "pytest")):
                    assert importlib.util.find_spec(b) is not None, f"README runs -m {b}, which is not there"
                    named += 1
    assert named >= 3
