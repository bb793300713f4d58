"""The exceptions that GPU-only tests expect, checked without a GPU: CI never runs those tests, so
a `pytest.raises(RuntimeError, match=...)` around a check that raises ValueError would go unseen.
Each literal match is traced to the check whose message produces it (in csrc/ or cutmix_ext/), and
the exception type that check raises must be among the expected ones."""
import ast
import builtins
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
C_CHECKS = {"TORCH_CHECK_VALUE": "ValueError", "TORCH_CHECK_TYPE": "TypeError", "TORCH_CHECK_INDEX": "IndexError",
            "TORCH_CHECK_NOT_IMPLEMENTED": "NotImplementedError", "TORCH_CHECK": "RuntimeError",
            "TORCH_INTERNAL_ASSERT": "RuntimeError", "C10_CUDA_CHECK": "RuntimeError"}
C_TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/|[(),]|[^"\'(),/]+|/', re.S)


def c_checks(text):
    """(type, message) of each check in C++ source; a message is a list of literal strings, with
    None for each streamed value. Adjacent string literals are one literal, as in C++."""
    tokens = [t for t in C_TOKEN.findall(text) if not t.startswith(("//", "/*"))]
    for i, token in enumerate(tokens):
        macro = re.search(r"\b(\w+)\s*$", token)
        if not (macro and macro[1] in C_CHECKS and tokens[i + 1:i + 2] == ["("]):
            continue
        args, depth = [[]], 0
        for t in tokens[i + 1:]:
            depth += (t == "(") - (t == ")")
            if depth == 0:
                break
            if t == "," and depth == 1:
                args.append([])
            elif depth > 1 or t != "(":
                args[-1].append(t)
        message = []
        for arg in args[1:]:  # args[0] is the condition
            parts = [t for t in arg if t.strip()]
            if parts and all(t.startswith('"') for t in parts):
                literal = "".join(ast.literal_eval(t) for t in parts)  # C escapes used here are Python's too
                message.append(message.pop() + literal if message and message[-1] is not None else literal)
            else:
                message.append(None)
        yield C_CHECKS[macro[1]], message


def py_checks(text):
    """(type, message) of each `raise X(<string or f-string>)` in Python source."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name) \
                and node.exc.args and isinstance(node.exc.args[0], (ast.Constant, ast.JoinedStr)):
            msg = node.exc.args[0]
            parts = msg.values if isinstance(msg, ast.JoinedStr) else [msg]
            yield node.exc.func.id, [p.value if isinstance(p, ast.Constant) else None for p in parts]


CHECKS = [c for p in sorted(ROOT.glob("csrc/**/*")) if p.suffix in (".cpp", ".h", ".cu", ".cuh")
          for c in c_checks(p.read_text())] + [c for p in sorted(ROOT.glob("cutmix_ext/*.py"))
                                                 for c in py_checks(p.read_text())]


def leading_literal(pattern):
    """The text every match of the regex starts with: its characters up to the first special one."""
    lead = re.match(r"(?:[^\\.^$*+?{}\[\]|()]|\\[^A-Za-z0-9])*", pattern)[0]
    if re.match(r"[*?{]", pattern[len(lead):]):  # the last character is optional
        lead = lead[:-1]
    return re.sub(r"\\(.)", r"\1", lead)


def how_well(message, lead):
    """How much of `lead` the message produces: 2 if all of it lies in one literal, 1 if a literal
    holds its start up to a streamed value (which may print the rest), 0 if neither."""
    def score(i, literal):
        if lead in literal:
            return 2
        # two words of the lead at least before the value, so that no stray word passes for a match
        return int(i + 1 < len(message) and message[i + 1] is None and any(
            lead.startswith(literal[k:]) and " " in literal[k:].strip() for k in range(len(literal))))
    return max((score(i, literal) for i, literal in enumerate(message) if literal is not None), default=0)


def cuda_skipped(node, names):
    """Whether the expression is, or holds, a skip where CUDA is missing (needs_cuda, DEVICES'
    "cuda" param), given the module-level names already known to be such."""
    return any(isinstance(n, ast.Name) and n.id in names
               or isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "skipif"
               and n.args and ast.unparse(n.args[0]) in ("not CUDA", "not torch.cuda.is_available()")
               for n in ast.walk(node))


def gpu_only_raises():
    """(test file, line, expected exception names, match pattern) of each pytest.raises in GPU-only
    code: modules marked so, functions so decorated or parametrized over a CUDA-skipped param."""
    names = set()
    for path in [TESTS / "conftest.py", *sorted(TESTS.glob("test_*.py"))]:
        tree = ast.parse(path.read_text())
        module_names = set(names)
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and cuda_skipped(stmt.value, module_names):
                module_names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
        if path.name == "conftest.py":
            names = module_names  # imported from there by every test module
            continue
        whole = "pytestmark" in module_names
        scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and (whole or any(cuda_skipped(d, module_names) for d in n.decorator_list))]
        seen = set()
        for scope in scopes:
            for call in ast.walk(scope):
                if id(call) in seen or not (isinstance(call, ast.Call) and ast.unparse(call.func) == "pytest.raises"):
                    continue
                seen.add(id(call))
                match = next((k.value for k in call.keywords if k.arg == "match"), None)
                if not (isinstance(match, ast.Constant) and call.args):  # a pattern from a table of cases
                    continue
                types = call.args[0].elts if isinstance(call.args[0], ast.Tuple) else [call.args[0]]
                yield path.name, call.lineno, [ast.unparse(t) for t in types], match.value


def includes(expected, raised):
    kind = getattr(builtins, raised, None)
    return any(e == raised or isinstance(kind, type) and isinstance(getattr(builtins, e, None), type)
               and issubclass(kind, getattr(builtins, e)) for e in expected)


RAISES = sorted(gpu_only_raises())


def test_the_gpu_only_raises_are_found():
    """Guards the search itself: these expectations are known to sit in GPU-only tests."""
    found = {(f, p) for f, _, _, p in RAISES}
    assert ("test_cuda_graphs.py", "params: drawn on the host, they would be frozen into the CUDA graph") in found
    assert ("test_errors.py", "generator: expected a CPU torch.Generator") in found
    assert ("test_detection.py", r"idx: box 0 belongs to sample \d+, outside the batch") in found
    assert not any(f == "test_errors.py" and p == "params.perm" for f, p in found)  # a CPU test


def test_the_message_reader():
    checks = list(c_checks('TORCH_CHECK_VALUE(f(a, b) > 0, "x: got ", n, " of " "the (N,)",\n'
                           '  g(m), "; done"); // TORCH_CHECK(false, "no")\nC10_CUDA_CHECK(launch(a));'))
    assert checks == [("ValueError", ["x: got ", None, " of the (N,)", None, "; done"]), ("RuntimeError", [])]
    assert list(py_checks('raise TypeError(f"y: {v!r} is not" " {w}")')) == [("TypeError", ["y: ", None, " is not {w}"])]
    assert leading_literal(r"labels: class indices must have shape \(N,\) = \(5,\)") == "labels: class indices must have shape (N,) = (5,)"
    assert leading_literal(r"params.boxes: row 0 .* not") == "params"
    assert leading_literal("a leaf tensors? that") == "a leaf tensor"
    assert how_well(["images: at most ", None, " samples"], "images: at most 1024") == 1
    assert how_well(["images: at most ", None, " samples"], "images: at least 1024") == 0
    assert how_well([None, ": at most ", None], "s: at most") == 0  # a value leading the message is not traced
    assert includes(["Exception"], "ValueError") and not includes(["RuntimeError"], "ValueError")


@pytest.mark.parametrize("where,expected,pattern", [(f"{f}:{line}", e, p) for f, line, e, p in RAISES],
                         ids=[f"{f}:{line}" for f, line, _, _ in RAISES])
def test_expected_exception_is_what_the_check_raises(where, expected, pattern):
    lead = leading_literal(pattern)
    scored = [(how_well(message, lead), kind) for kind, message in CHECKS]
    best = max((score for score, _ in scored), default=0)
    assert best > 0, f"{where}: no check in csrc/ or cutmix_ext/ says {lead!r}"
    wrong = sorted({kind for score, kind in scored if score == best and not includes(expected, kind)})
    assert not wrong, f"{where}: expects {' or '.join(expected)} for {pattern!r}, but the check saying it raises {', '.join(wrong)}"
