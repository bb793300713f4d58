"""Loads the compiled ops and says plainly what the build contains."""
import glob
import os
import warnings

import torch

try:
    from . import _C
except ImportError as exc:
    here = os.path.dirname(os.path.abspath(__file__))
    if not glob.glob(os.path.join(here, "_C*")) and \
            os.path.isfile(os.path.join(os.path.dirname(here), "setup.py")):
        # Python puts the current folder first on its path: in the repository root,
        # `import cutmix_ext` finds the sources rather than the installed package.
        raise ImportError(
            f"cutmix_ext: imported from the source folder {here}, which holds no compiled library "
            f"(the current folder comes first on Python's path). Run from another folder to use the "
            f"installed cutmix_ext, or build it in place here: `python setup.py build_ext --inplace` "
            f"(bash scripts/test.sh does)") from None
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
