import os

import pytest
import torch

CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA device"))]
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device")


@pytest.fixture
def gen():
    """A generator with a fresh seed each run; the seed is printed so a failure can be replayed
    with CUTMIX_TEST_SEED=<seed>."""
    seed = int(os.environ.get("CUTMIX_TEST_SEED", int.from_bytes(os.urandom(4), "little")))
    print(f"CUTMIX_TEST_SEED={seed}")
    return torch.Generator().manual_seed(seed)
