"""Loads the compiled ops and says plainly what the build contains."""
import warnings

import torch

try:
    from . import _C
except ImportError as exc:
    raise ImportError(
        f"cutmix_ext: the compiled library cutmix_ext._C could not be loaded ({exc}). Build it "
        f"with `pip install --no-build-isolation -e .` against the installed torch "
        f"{torch.__version__}; a library built for another torch fails like this.") from exc

if _C.TORCH_VERSION != torch.__version__:
    raise ImportError(
        f"cutmix_ext._C was built for torch {_C.TORCH_VERSION}, but torch {torch.__version__} is "
        f"installed: rebuild with `pip install --no-build-isolation -e .`")

WITH_CUDA = bool(_C.WITH_CUDA)
CUDA_ARCHS = _C.CUDA_ARCHS

if not WITH_CUDA and torch.cuda.is_available():
    warnings.warn(
        "cutmix_ext was built without its CUDA kernels (CPU only): calls on CUDA tensors will "
        "raise. Rebuild with nvcc available (or FORCE_CUDA=1) to get them.", stacklevel=2)
