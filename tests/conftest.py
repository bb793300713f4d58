import importlib
import importlib.metadata
import importlib.util
import os

import pytest
import torch

CUDA = torch.cuda.is_available()
NO_CUDA = "no CUDA device" + ("" if torch.version.cuda else f" (torch {torch.__version__} is a CPU-only build)")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason=NO_CUDA))]
needs_cuda = pytest.mark.skipif(not CUDA, reason=NO_CUDA)
TORCH_RELEASE = importlib.metadata.version("torch")  # as pip knows it: 2.13.0+cpu, 2.14.1


def import_or_skip(name):
    """pytest.importorskip, saying why the module is missing: mostly torchvision (timm needs it
    too), which has no release on PyPI that works beside a torch from PyTorch's own index."""
    __tracebackhide__ = True  # the skip is reported at the test module's line
    try:
        return importlib.import_module(name)
    except Exception as exc:  # torchvision built for another torch raises RuntimeError
        why = f"{type(exc).__name__}: {exc}"
        if name.split(".")[0] in ("torchvision", "timm") and importlib.util.find_spec("torchvision") is None:
            if "+" in TORCH_RELEASE:
                why = (f"no torchvision: torch {TORCH_RELEASE} is a build of PyTorch's own index and PyPI's "
                       f"torchvision fails to import beside it, so scripts/env.sh installs none")
            else:
                why = (f"no torchvision for torch {TORCH_RELEASE} (scripts/env.sh installs the release built "
                       f"with it where pip can get it)")
        elif "torchvision::" in str(exc):
            why += f" (torchvision {importlib.metadata.version('torchvision')} is built for another torch than {TORCH_RELEASE})"
        pytest.skip(f"{name} unavailable: {why}", allow_module_level=True)


def pytest_report_header(config):
    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "none"
    return (f"torch {TORCH_RELEASE} ({f'CUDA {torch.version.cuda}' if torch.version.cuda else 'CPU-only'}), "
            f"torchvision {version('torchvision')}, timm {version('timm')}")


@pytest.fixture
def gen():
    """A generator with a fresh seed each run; the seed is printed so a failure can be replayed
    with CUTMIX_TEST_SEED=<seed>."""
    seed = int(os.environ.get("CUTMIX_TEST_SEED", int.from_bytes(os.urandom(4), "little")))
    print(f"CUTMIX_TEST_SEED={seed}")
    return torch.Generator().manual_seed(seed)
