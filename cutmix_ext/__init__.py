"""In-place CutMix and MixUp for PyTorch batches, with exact-area lambdas and mixed targets.

    images, targets = cutmix_ext.cutmix_(images, labels, num_classes=1000)
    images, targets = cutmix_ext.mixup_(images, labels, num_classes=1000)

Inside a model, out of place and differentiable: cutmix_ext.cutmix(x, params),
cutmix_ext.mixup(x, params), or the module cutmix_ext.nn.FeatureMix. Detection batches, the
boxes brought along: cutmix_ext.detection.cutmix_ / mixup_.
"""
from ._library import CUDA_ARCHS, WITH_CUDA  # loads the compiled ops first
from . import _fake  # noqa: F401, I001  (registers their fake kernels)
from ._ops import (MixParams, cutmix, cutmix_, cutout_, mix_, mix_targets, mixed_cross_entropy, mixup,
                   mixup_, sample_params)
from . import detection, nn  # noqa: E402

__all__ = ["MixParams", "cutmix", "cutmix_", "cutout_", "detection", "mix_", "mix_targets", "mixed_cross_entropy",
           "mixup", "mixup_", "nn",
           "sample_params", "transforms", "WITH_CUDA", "CUDA_ARCHS"]
__version__ = "0.1.0"


def __getattr__(name):
    # transforms imports torchvision, so it loads on first use only
    if name == "transforms":
        import importlib

        return importlib.import_module(".transforms", __name__)
    raise AttributeError(f"module 'cutmix_ext' has no attribute {name!r}")
