"""The front door: thin wrappers over the cutmix_ext ops. The C++ side checks every argument
before it writes anything; what is checked here is only what the dispatcher would otherwise
report unclearly (wrong types, devices, a build without CUDA kernels)."""
from typing import NamedTuple, Optional, Sequence, Union

import torch

from ._library import WITH_CUDA

_ops = torch.ops.cutmix_ext

__all__ = ["MixParams", "cutmix_", "mixup_", "sample_params"]


class MixParams(NamedTuple):
    """What one call applied, on the CPU.

    perm:  int64 (N,), sample i took from sample perm[i].
    boxes: int64 (N, 4) as (x1, y1, x2, y2), half-open pixel coordinates; None for MixUp.
    lam:   float64 (N,), the exact weight of each sample's own label.
    """

    perm: torch.Tensor
    boxes: Optional[torch.Tensor]
    lam: torch.Tensor


Pairing = Union[str, torch.Tensor]


def sample_params(size: Union[torch.Tensor, Sequence[int]], mode: str = "cutmix", *,
                  alpha: float = 1.0, pairing: Pairing = "roll", per_sample: bool = False,
                  generator: Optional[torch.Generator] = None) -> MixParams:
    """Draws the parameters `cutmix_`/`mixup_` would use for a batch of `size` (a tensor or its
    shape (N, ..., H, W)), from `generator` (default: torch's default CPU generator).

    lam ~ Beta(alpha, alpha). CutMix boxes follow the paper and torchvision: centre uniform over
    the pixels, half-sides int(0.5 * sqrt(1 - lam) * W) and int(0.5 * sqrt(1 - lam) * H), clipped
    to the image; lam is then the exact area left. per_sample=False draws one lam and box for the
    batch. pairing: "roll" (i takes from i-1), "flip" (from N-1-i), "random" (a random
    permutation) or an int64 tensor of partners.
    """
    if mode not in ("cutmix", "mixup"):
        raise ValueError(f"mode: expected 'cutmix' or 'mixup', got {mode!r}")
    shape = tuple(size.shape) if isinstance(size, torch.Tensor) else tuple(size)
    if len(shape) < 4:
        raise ValueError(f"size: expected a batch shape (N, C, H, W) or (N, ..., H, W), got {shape}")
    cutmix = mode == "cutmix"
    name, perm = _check_sampling(alpha, pairing, generator)
    drawn, boxes, lam = _ops.sample(shape[0], shape[-2], shape[-1], float(alpha), cutmix,
                                    bool(per_sample), name, generator)
    if perm is not None:
        drawn = perm.to("cpu", torch.int64, copy=True)
    return MixParams(drawn, boxes if cutmix else None, lam)


def _check_sampling(alpha, pairing, generator):
    """Returns (pairing name, explicit partner tensor or None)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"alpha: expected a number, got {type(alpha).__name__}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    if isinstance(pairing, torch.Tensor):
        if pairing.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"pairing: expected an int64 tensor of partners, got dtype {pairing.dtype}")
        return "roll", pairing
    if not isinstance(pairing, str):
        raise TypeError(f"pairing: expected 'roll', 'flip', 'random' or an int64 tensor, got "
                        f"{type(pairing).__name__}")
    return pairing, None


def _check_call(images, labels, num_classes, label_smoothing, params, cutmix):
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a tensor, got {type(images).__name__}")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels: expected a tensor, got {type(labels).__name__}")
    if labels.device != images.device:
        raise ValueError(f"labels: expected on the images' device {images.device}, got {labels.device}")
    if images.is_cuda and not WITH_CUDA:
        raise RuntimeError("images: on CUDA, but cutmix_ext was built without its CUDA kernels; "
                           "rebuild it with nvcc available (or FORCE_CUDA=1)")
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)):
        raise TypeError(f"num_classes: expected an int or None, got {type(num_classes).__name__}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        raise TypeError(f"label_smoothing: expected a number, got {type(label_smoothing).__name__}")
    if params is not None:
        if not isinstance(params, MixParams):
            raise TypeError(f"params: expected a cutmix_ext.MixParams, got {type(params).__name__}")
        if cutmix and params.boxes is None:
            raise ValueError("params: these are MixUp parameters (boxes is None); CutMix needs boxes")


def cutmix_(images: torch.Tensor, labels: torch.Tensor, num_classes: Optional[int] = None, *,
            alpha: float = 1.0, label_smoothing: float = 0.0, pairing: Pairing = "roll",
            per_sample: bool = False, generator: Optional[torch.Generator] = None,
            params: Optional[MixParams] = None, return_params: bool = False):
    """CutMix in place: images[i][..., y1:y2, x1:x2] = images[perm[i]][..., y1:y2, x1:x2].

    images: (N, C, H, W) or (N, ..., H, W); uint8, float16, bfloat16, float32 or float64;
        contiguous or channels_last; CPU or CUDA. Mutated and returned.
    labels: class indices (N,) (int64/int32, with num_classes) or soft targets (N, K).
    Returns (images, targets[, params]): targets float32 (N, K) on the images' device,
    targets[i] = lam[i] * s(labels[i]) + (1 - lam[i]) * s(labels[perm[i]]) with
    s(y) = (1 - label_smoothing) * y + label_smoothing / K and lam the exact area left to i.
    params replays a previous call's MixParams exactly; nothing is then sampled.
    """
    _check_call(images, labels, num_classes, label_smoothing, params, True)
    if params is None:
        name, perm = _check_sampling(alpha, pairing, generator)
        targets, *drawn = _ops.cutmix_sampled_(images, labels, num_classes, float(label_smoothing),
                                               float(alpha), name, perm, bool(per_sample), generator)
        params = MixParams(*drawn)
    else:
        targets = _ops.cutmix_(images, labels, params.perm, params.boxes, num_classes,
                               float(label_smoothing))
    return (images, targets, params) if return_params else (images, targets)


def mixup_(images: torch.Tensor, labels: torch.Tensor, num_classes: Optional[int] = None, *,
           alpha: float = 1.0, label_smoothing: float = 0.0, pairing: Pairing = "roll",
           per_sample: bool = False, generator: Optional[torch.Generator] = None,
           params: Optional[MixParams] = None, return_params: bool = False):
    """MixUp in place: images[i] = lam[i] * images[i] + (1 - lam[i]) * images[perm[i]], computed
    in float32 (float64 for float64 images) and rounded once (to nearest, clamped, for uint8).

    Arguments and targets as in `cutmix_`; lam ~ Beta(alpha, alpha), params.boxes is None.
    """
    _check_call(images, labels, num_classes, label_smoothing, params, False)
    if params is None:
        name, perm = _check_sampling(alpha, pairing, generator)
        targets, perm, _, lam = _ops.mixup_sampled_(images, labels, num_classes,
                                                    float(label_smoothing), float(alpha), name,
                                                    perm, bool(per_sample), generator)
        params = MixParams(perm, None, lam)
    else:
        targets = _ops.mixup_(images, labels, params.perm, params.lam, num_classes,
                              float(label_smoothing))
    return (images, targets, params) if return_params else (images, targets)
