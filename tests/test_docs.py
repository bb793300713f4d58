"""The README and every page of the documentation (docs/) as a reader meets them: their Python
blocks run as written, in order, one namespace per page (the first block makes what the later
ones use); every script and module their shell blocks name exists; every public name has a
docstring and a place in the API reference; and nothing a user reads speaks of particular build
machines. A block whose first line is `# requires: cuda` (or torchvision, timm) is skipped, saying
why, where that is missing."""
import glob
import importlib
import importlib.util
import inspect
import os
import re
import shlex

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"),
                                                                            recursive=True))


def blocks(page, lang):
    with open(os.path.join(ROOT, page)) as f:
        text = f.read()
    # A fence may be indented (a block inside a list item); its lines lose that indentation.
    return [re.sub(rf"^{m.group(1)}", "", m.group(2), flags=re.M)
            for m in re.finditer(rf"^( *)```{lang}\n(.*?)^\1```", text, re.S | re.M)]


def missing(requirement):
    if requirement == "cuda":
        return None if torch.cuda.is_available() else "no GPU"
    try:
        importlib.import_module(requirement)
    except Exception as exc:  # a broken install is as absent as a missing one, for a reader
        return f"{requirement} does not import ({type(exc).__name__})"
    return None


def test_every_page_is_found():
    assert "docs/index.md" in PAGES and "docs/guides/torchvision.md" in PAGES and len(PAGES) >= 12


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")])
def test_python_blocks_run(page):
    torch.manual_seed(0)
    namespace = {"__name__": page.replace("/", ".")}
    skipped = []
    for i, block in enumerate(blocks(page, "python")):
        first = block.splitlines()[0]
        if first.startswith("# requires:"):
            why = [w for w in (missing(r.strip()) for r in first.split(":", 1)[1].split(",")) if w]
            if why:
                skipped.append(f"block {i + 1}: {', '.join(why)}")
                continue
        try:
            exec(compile(block, f"{page} python block {i + 1}", "exec"), namespace)
        except Exception as exc:  # the block, not this test, is what failed
            pytest.fail(f"{page} python block {i + 1} fails: {type(exc).__name__}: {exc}\n{block}")
        if page == "README.md" and "detection.cutmix_(batch" in block:  # the example does mix
            assert bool((namespace["params"].lam < 1).any()) and "weights" in namespace["batch"]
        if page == "README.md" and i == 0:  # the front door's promise: targets that are distributions
            targets = namespace["targets"]
            assert targets.shape == (64, 1000) and targets.dtype == torch.float32
            torch.testing.assert_close(targets.sum(1), torch.ones(64))
    if skipped:
        pytest.skip("; ".join(skipped))


def test_shell_blocks_name_what_exists():
    named = 0
    for page in PAGES:
        for block in blocks(page, "bash"):
            for line in block.splitlines():
                words = shlex.split(line.split("#")[0])
                for a, b in zip(words, words[1:]):
                    if a == "bash" or (a.startswith("python") and b.endswith(".py")):
                        assert os.path.exists(os.path.join(ROOT, b)), f"{page} names {b}, which is not there"
                        named += 1
                    elif a == "-m" and not b.startswith(("pip", "venv", "pytest", "sphinx")):
                        assert importlib.util.find_spec(b) is not None, f"{page} runs -m {b}, which is not there"
                        named += 1
    assert named >= 10


def public_names():
    import cutmix_ext

    for module in ["cutmix_ext", "cutmix_ext.transforms", "cutmix_ext.nn", "cutmix_ext.detection",
                   "cutmix_ext.reference"]:
        m = importlib.import_module(module)
        for name in m.__all__:
            obj = getattr(m, name)
            if not inspect.ismodule(obj):
                yield module, name, obj
    assert cutmix_ext.__all__


def test_every_public_name_is_in_the_api_reference():
    with open(os.path.join(ROOT, "docs", "api.md")) as f:
        api = f.read()
    documented = set()
    current = None
    lines = [line.strip() for line in api.splitlines()]
    for line, after in zip(lines, lines[1:] + [""]):
        m = re.match(r"\.\. (currentmodule|automodule|autofunction|autoclass|autodata):: (\S+)", line)
        if not m:
            continue
        if m.group(1) in ("currentmodule", "automodule"):
            current = m.group(2)
            if m.group(1) == "automodule" and after == ":members:":  # the whole module's __all__
                documented.update((current, n) for n in importlib.import_module(current).__all__)
        else:
            documented.add((current, m.group(2)))
    for module, name, obj in public_names():
        assert (module, name) in documented, f"{module}.{name} is not in docs/api.md"
        if callable(obj):
            assert (inspect.getdoc(obj) or "").strip(), f"{module}.{name} has no docstring"


def test_the_members_the_api_reference_lists_have_docstrings_of_their_own():
    """A member without one would show torch.nn.Module's ("Define the computation performed at
    every call") or object's."""
    with open(os.path.join(ROOT, "docs", "api.md")) as f:
        lines = [line.strip() for line in f]
    module, listed = None, 0
    for line, after in zip(lines, lines[1:] + [""]):
        m = re.match(r"\.\. (currentmodule|automodule|autoclass):: (\S+)", line)
        if not m:
            continue
        if m.group(1) != "autoclass":
            module = m.group(2)
        elif after.startswith(":members:") and after != ":members:":
            cls = getattr(importlib.import_module(module), m.group(2))
            for member in after.split(":", 2)[2].split(","):
                member = member.strip()
                owner = next(c for c in cls.__mro__ if member in vars(c))
                assert owner.__module__.startswith("cutmix_ext") and (getattr(cls, member).__doc__ or "").strip(), \
                    f"{m.group(2)}.{member} has no docstring of its own"
                listed += 1
    assert listed >= 8


# What a user reads speaks to users: no build machines of ours, no CI internals.
MACHINE_WORDS = re.compile(r"CI machine|this project's machines|machine kind|On this project|\$OUT|lent GPU", re.I)


@pytest.mark.parametrize("page", PAGES)
def test_pages_speak_to_users(page):
    with open(os.path.join(ROOT, page)) as f:
        text = f.read()
    found = MACHINE_WORDS.findall(text)
    assert not found, f"{page}: {found}"


def test_readme_is_short():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    assert len(text.splitlines()) <= 120 and len(text) <= 8000, (len(text.splitlines()), len(text))
    for heading in ["## Install", "## Quick start", "## Two commands", "## Documentation"]:
        assert heading in text
