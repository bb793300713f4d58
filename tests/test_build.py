"""What the build contains, and that it says so."""
import os
import re

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


def test_pyproject_metadata_matches_the_package_and_setup():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["version"] == cutmix_ext.__version__
    with open(os.path.join(ROOT, "setup.py")) as f:
        min_torch = re.search(r"MIN_TORCH = \((\d+), (\d+)\)", f.read()).groups()
    assert project["dependencies"] == [f"torch>={'.'.join(min_torch)}"]
    # the torch under test is in the supported range
    assert tuple(int(x) for x in re.findall(r"\d+", torch.__version__)[:2]) >= tuple(map(int, min_torch))
