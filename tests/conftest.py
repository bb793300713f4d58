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
                       f"torchvision fails to import beside it, so scripts/env.sh installs none (its setup line says which one matches)")
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


def pytest_collection_modifyitems(items):
    """A test asking for an argument that is neither a fixture nor a parameter fails only when it
    runs, and GPU-only tests never run on CI: refuse such tests at collection, skipped or not."""
    unknown = {}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)  # None for items that are not test functions
        if info is None:
            continue
        params = getattr(item, "callspec", None)  # indirect ones too; direct ones are pseudo-fixtures
        known = {"request", *info.name2fixturedefs, *(params.params if params else ())}
        missing = [name for name in info.names_closure if name not in known]
        if missing:
            unknown[item.nodeid.split("[")[0]] = missing
    if unknown:
        raise pytest.UsageError("tests ask for arguments that are neither a fixture nor a parameter:\n" + "\n".join(
            f"  {test}: {', '.join(names)}" for test, names in unknown.items()))
