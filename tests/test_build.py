"""What the build contains, and that it says so."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

import cutmix_ext
from cutmix_ext import _library

OPS = ["cutmix_ext::cutmix_", "cutmix_ext::mixup_"]


def has_kernel(op, key):
    return torch._C._dispatch_has_kernel_for_dispatch_key(op, key)


def test_cpu_kernels_registered():
    for op in OPS:
        assert has_kernel(op, "CPU")


def test_cuda_kernels_registered_exactly_when_built():
    for op in OPS:
        assert has_kernel(op, "CUDA") == cutmix_ext.WITH_CUDA
    if cutmix_ext.WITH_CUDA:  # the architectures it was built for, as TORCH_CUDA_ARCH_LIST spells them
        archs = cutmix_ext.CUDA_ARCHS.replace(",", ";").split(";")
        assert archs and all(re.fullmatch(r"\d+\.\d+a?(\+PTX)?", a.strip()) for a in archs), archs


@pytest.mark.skipif(os.environ.get("CUTMIX_EXPECT_CUDA") != "1", reason="CUTMIX_EXPECT_CUDA=1 not set")
def test_build_has_cuda_kernels():
    """CI sets CUTMIX_EXPECT_CUDA=1: there, a build that silently dropped CUDA must fail."""
    assert cutmix_ext.WITH_CUDA, "the CUDA kernels were not built"
    for op in OPS:
        assert has_kernel(op, "CUDA")


def test_built_for_this_torch():
    assert _library._C.TORCH_VERSION == torch.__version__


def test_cuda_tensor_without_cuda_kernels_is_an_error(monkeypatch):
    """A build without CUDA kernels refuses CUDA tensors plainly instead of falling back."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    monkeypatch.setattr(cutmix_ext._ops, "WITH_CUDA", False)
    with FakeTensorMode(allow_non_fake_inputs=True):
        images = torch.empty(2, 3, 4, 4, device="cuda")
        labels = torch.zeros(2, dtype=torch.int64, device="cuda")
        with pytest.raises(RuntimeError, match="images: on CUDA, but cutmix_ext was built without its CUDA kernels"):
            cutmix_ext.cutmix_(images, labels, 2)


def test_check_command_passes_and_reports(capsys):
    """`python -m cutmix_ext.check`: the build, then every case on every device bit for bit."""
    from cutmix_ext import check

    assert check.main(["--reps", "2"]) == 0
    out = capsys.readouterr().out
    assert f"built for torch {torch.__version__}" in out
    rows = [ln for ln in out.splitlines() if ln.startswith(("cpu ", "cuda:"))]
    devices = 1 + (torch.cuda.device_count() if cutmix_ext.WITH_CUDA else 0)
    assert len(rows) == 24 * devices and all("equal to" in r for r in rows), out
    assert "all bit for bit" in out


def test_check_command_fails_on_a_wrong_result(monkeypatch, capsys):
    from cutmix_ext import check

    real = check.cutmix_reference

    def off_by_one(images, *args):
        out, targets, lam = real(images, *args)
        out.view(-1)[0] ^= 1 if out.dtype == torch.uint8 else 0
        return out, targets + (0 if out.dtype == torch.uint8 else 1), lam
    monkeypatch.setattr(check, "cutmix_reference", off_by_one)
    assert check.main(["--reps", "1"]) == 1
    assert "FAILED" in capsys.readouterr().out


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_setup_without_torch_says_what_to_run():
    """pip's isolated build environment has no torch: setup.py stops at once, no traceback, naming
    the command to run instead (a plain `pip install .` shows this in its first lines)."""
    import subprocess
    import sys

    code = "import runpy, sys; sys.modules['torch'] = None; sys.argv = ['setup.py', '--version']; " \
           "runpy.run_path('setup.py', run_name='__main__')"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r
    assert "pip install --no-build-isolation ." in r.stderr and "Traceback" not in r.stderr, r.stderr


def setup_helpers():
    """setup.py's module-level names, without building anything."""
    import runpy

    return runpy.run_path(os.path.join(ROOT, "setup.py"), run_name="setup")


def test_supported_torch_range_is_stated_alike():
    """setup.py, pyproject.toml, the README and CI name the same range, and the torch under test
    is in it."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["version"] == cutmix_ext.__version__
    helpers = setup_helpers()
    low, high = helpers["MIN_TORCH"], helpers["MAX_TESTED_TORCH"]
    assert project["dependencies"] == [f"torch>={low[0]}.{low[1]}"]
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert f"torch {low[0]}.{low[1]} to {high[0]}.{high[1]}" in readme
    # the README installs whatever torch of that range pip finds, not one pinned release
    assert f'pip install "torch>={low[0]}.{low[1]},<{high[0]}.{high[1] + 1}"' in readme
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    tested = {tuple(map(int, v)) for v in re.findall(r"TORCH=(\d+)\.(\d+)\.\d+", ci)}
    assert low in tested and (2, 13) in tested, tested
    assert tuple(int(x) for x in re.findall(r"\d+", torch.__version__)[:2]) >= low


TINY_LIBRARY = r"""
#include <cstdio>
#include <sstream>
extern "C" int format_number(long v, char* out, int cap) {
  std::ostringstream ss;
  ss << "n = " << v;
  return std::snprintf(out, cap, "%s", ss.str().c_str());
}
"""


def test_libstdcxx_is_linked_dynamically_even_by_a_static_driver(tmp_path):
    """Some environments' CXX links libstdc++ statically. Such a copy beside torch's has
    std::locale facets of its own, and streaming a number into an error message crashed (on a
    GPU machine; here it may print nothing). setup.py's link flags make the shared libstdc++
    define every symbol first, and its check tells the two apart."""
    import shutil
    import subprocess
    import sys

    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("no g++")
    helpers = setup_helpers()
    src = tmp_path / "tiny.cpp"
    src.write_text(TINY_LIBRARY)
    libs = {}
    for name, extra in [("static", []), ("fixed", helpers["LINK_SHARED_LIBSTDCXX"])]:
        libs[name] = tmp_path / f"{name}.so"
        subprocess.run([gxx, "-shared", "-fPIC", "-O2", "-static-libstdc++", str(src), *extra,
                        "-o", str(libs[name])], check=True)
    assert helpers["own_libstdcxx"](str(libs["static"])) is True
    assert helpers["own_libstdcxx"](str(libs["fixed"])) is False
    run = ("import ctypes, sys, torch; b = ctypes.create_string_buffer(64); "
           "ctypes.CDLL(sys.argv[1]).format_number(123456789, b, 64); print(b.value.decode())")
    r = subprocess.run([sys.executable, "-c", run, str(libs["fixed"])], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "n = 123456789", r


def test_the_built_library_uses_the_shared_libstdcxx():
    assert setup_helpers()["own_libstdcxx"](_library._C.__file__) is False


def test_the_source_folder_without_a_library_says_so(tmp_path):
    """Run in the repository root before a build, `import cutmix_ext` finds the sources (the
    current folder comes first on Python's path): the error says that, not a circular import."""
    shutil.copytree(os.path.join(ROOT, "cutmix_ext"), tmp_path / "cutmix_ext",
                    ignore=shutil.ignore_patterns("_C*", "__pycache__"))
    shutil.copy(os.path.join(ROOT, "setup.py"), tmp_path / "setup.py")
    # An editable install's finder (pip install -e) would find the installed tree before the
    # current folder: set it aside, as a folder without that install is what is tested.
    code = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path "
            "if not getattr(f, '__module__', '').startswith('__editable__')]; import cutmix_ext")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert run.returncode != 0
    assert "imported from the source folder" in run.stderr and "no compiled library" in run.stderr, run.stderr
    assert "circular import" not in run.stderr, run.stderr


def test_build_progress_lines_are_short(tmp_path):
    """torch runs ninja verbosely: each progress line is a whole compiler command. The build
    shortens those to `[n/m] compiling <source> (t s)` and passes everything else through."""
    source = os.path.join(ROOT, "csrc", "plan.cpp")
    command = " ".join(["-I/include/dir"] * 200)
    script = f"""
import runpy, subprocess, sys
helpers = runpy.run_path({os.path.join(ROOT, "setup.py")!r}, run_name="setup")
with helpers["compact_progress"]():
    subprocess.run(["printf", "%s\\\\n", "[3/9] c++ -MMD {command} -c {source} -o /b/plan.o",
                    "csrc/plan.cpp:1:1: error: something", "[4/9] nvcc {command} -c /x/csrc/cuda/k.cu -o k.o"])
    print("after", flush=True)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert re.fullmatch(r"\[3/9\] compiling csrc/plan\.cpp \(\d+ s\)", lines[0]), lines[0]
    assert lines[1] == "csrc/plan.cpp:1:1: error: something"
    assert re.fullmatch(r"\[4/9\] compiling \S*k\.cu \(\d+ s\)", lines[2]), lines[2]
    assert lines[3] == "after" and len(lines) == 4
