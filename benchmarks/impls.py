"""The implementations the suite times: each is built for one batch and returns the function that
one timed call runs. Every call draws its own parameters, as a training loop does, except the
`fixed box` row, whose known patch is what the patch-copy floor copies.

Arguments are the same everywhere: alpha 1 (torchvision's default), K classes, and for timm and
its drop-in timm's defaults (label_smoothing 0.1) with the other mix turned off.
"""
import math
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

import cutmix_ext
import cutmix_ext.transforms as ours_t

try:
    from torchvision.transforms import v2 as tv
except ImportError:
    tv = None
try:
    import timm.data.mixup as timm_mixup
except ImportError:
    timm_mixup = None
try:
    warnings.filterwarnings("ignore", module="kornia")
    from kornia.augmentation import RandomCutMixV2, RandomMixUpV2
except ImportError:
    RandomCutMixV2 = RandomMixUpV2 = None

CUTMIX, MIXUP = "CutMix", "MixUp"


@dataclass(eq=False)  # each implementation is its own key in the timing tables
class Impl:
    name: str
    op: str
    family: str  # groups the chart's bars: cutmix_ext, torchvision, timm, kornia, torch, floor
    make: Optional[Callable]  # (x, y, K, box) -> fn(x, y); None: the library is not installed
    missing: str = ""
    in_place: bool = False  # mixes x itself: a differentiable call mixes a clone of x
    floor: bool = False  # a bandwidth reference, not a mix

    @property
    def installed(self):
        return self.floor or self.make is not None


def half_box(h, w):
    """A centred box of half the image: the fixed workload whose patch bytes the floor copies."""
    bh, bw = max(1, round(h / math.sqrt(2))), max(1, round(w / math.sqrt(2)))
    y1, x1 = (h - bh) // 2, (w - bw) // 2
    return x1, y1, x1 + bw, y1 + bh


def fixed_params(n, box):
    return cutmix_ext.MixParams(torch.arange(n).roll(1), torch.tensor([list(box)] * n),
                                torch.full((n,), 0.5, dtype=torch.float64))


def torch_cutmix(x, y, num_classes, alpha=1.0):
    """The shortest correct CutMix in plain torch: the paper's box, partner roll(1), exact lam,
    only the patch copied."""
    h, w = x.shape[-2:]
    r = math.sqrt(1 - np.random.beta(alpha, alpha))
    cy, cx = np.random.randint(h), np.random.randint(w)
    y1, y2 = np.clip([cy - int(h * r) // 2, cy + int(h * r) // 2], 0, h)
    x1, x2 = np.clip([cx - int(w * r) // 2, cx + int(w * r) // 2], 0, w)
    x[..., y1:y2, x1:x2] = x[..., y1:y2, x1:x2].roll(1, 0)
    t = F.one_hot(y, num_classes).float()
    return x, t.lerp_(t.roll(1, 0), float((y2 - y1) * (x2 - x1) / (h * w)))


def torch_mixup(x, y, num_classes, alpha=1.0):
    """The shortest correct MixUp in plain torch (uint8 through float32, rounded)."""
    lam = float(np.random.beta(alpha, alpha))
    t = F.one_hot(y, num_classes).float()
    if x.is_floating_point():
        x.lerp_(x.roll(1, 0), 1 - lam)
    else:
        x.copy_(x.float().lerp_(x.roll(1, 0).float(), 1 - lam).round_())
    return x, t.lerp_(t.roll(1, 0), 1 - lam)


def _timm(cls, op, mode):
    if cls is None:
        return None
    alphas = dict(mixup_alpha=0.0, cutmix_alpha=1.0) if op == CUTMIX else dict(mixup_alpha=1.0, cutmix_alpha=0.0)
    return lambda x, y, k, box: cls(**alphas, mode=mode, num_classes=k)


def _kornia(cls):
    if cls is None:
        return None
    extra = dict(use_correct_lambda=True) if cls is RandomCutMixV2 else {}
    return lambda x, y, k, box: cls(data_keys=["input", "class"], **extra)


def _tv(cls):
    return None if tv is None else (lambda x, y, k, box: cls(num_classes=k))


def implementations(device="cpu"):
    """Every implementation, CutMix's then MixUp's (the same set for each), the floor last. On
    CUDA also the form that draws its parameters in the kernel (sampling="device")."""
    no_tv, no_timm, no_kornia = "torchvision not installed", "timm not installed", "kornia not installed"
    tm = timm_mixup and timm_mixup.Mixup
    kornia = {CUTMIX: RandomCutMixV2, MIXUP: RandomMixUpV2}
    impls = []
    for op in (CUTMIX, MIXUP):
        cut = op == CUTMIX
        ours, name = (cutmix_ext.cutmix_, "cutmix_") if cut else (cutmix_ext.mixup_, "mixup_")
        impls += [
            Impl(f"cutmix_ext {name}", op, "cutmix_ext",
                 lambda x, y, k, box, f=ours: lambda x, y: f(x, y, k), in_place=True),
            Impl(f"cutmix_ext {name} per-sample", op, "cutmix_ext per-sample",
                 lambda x, y, k, box, f=ours: lambda x, y: f(x, y, k, per_sample=True, pairing="random"),
                 in_place=True)]
        if device == "cuda":
            impls.append(Impl(f"cutmix_ext {name} sampling=device", op, "cutmix_ext device",
                              lambda x, y, k, box, f=ours: lambda x, y: f(x, y, k, per_sample=True, pairing="random",
                                                                          sampling="device"), in_place=True))
        if cut:
            impls.append(Impl("cutmix_ext cutmix_ fixed box", op, "cutmix_ext fixed",
                              lambda x, y, k, box: (lambda p: lambda x, y: cutmix_ext.cutmix_(x, y, k, params=p))(
                                  fixed_params(x.shape[0], box)), in_place=True))
        impls += [
            Impl(f"cutmix_ext transforms.{op}", op, "cutmix_ext drop-in",
                 lambda x, y, k, box, t=getattr(ours_t, op): t(num_classes=k), in_place=True),
            Impl("cutmix_ext transforms.Mixup batch", op, "cutmix_ext drop-in", _timm(ours_t.Mixup, op, "batch"),
                 in_place=True),
            Impl("cutmix_ext transforms.Mixup elem", op, "cutmix_ext drop-in", _timm(ours_t.Mixup, op, "elem"),
                 in_place=True),
            Impl(f"torchvision v2.{op}", op, "torchvision", _tv(tv and getattr(tv, op)), no_tv),
            Impl("timm Mixup batch", op, "timm batch", _timm(tm, op, "batch"), no_timm, in_place=True),
            Impl("timm Mixup elem", op, "timm elem", _timm(tm, op, "elem"), no_timm, in_place=True),
            Impl(f"kornia Random{op}V2", op, "kornia", _kornia(kornia[op]), no_kornia),
            Impl("plain torch", op, "plain torch",
                 lambda x, y, k, box, f=torch_cutmix if cut else torch_mixup: lambda x, y: f(x, y, k),
                 in_place=True),
            Impl("patch copy_ (floor)" if cut else "batch copy_ (floor)", op, "floor", None, floor=True),
        ]
    return impls


def differentiable(impl, fn, x, box):
    """The call as a layer inside a model makes it on an activation x that requires grad: the
    out-of-place ops for cutmix_ext (a fresh draw each call), a clone first for the libraries
    that mix in place (the activation a layer returns). None where the call has no such use."""
    if impl.family in ("cutmix_ext drop-in", "cutmix_ext device"):
        return None  # input batches only: inside a model the out-of-place ops are the API
    if impl.family.startswith("cutmix_ext"):
        mix = cutmix_ext.cutmix if impl.op == CUTMIX else cutmix_ext.mixup
        if impl.family == "cutmix_ext fixed":
            params = fixed_params(x.shape[0], box)
            return lambda x, y: mix(x, params)
        per_sample = impl.family == "cutmix_ext per-sample"
        kw = dict(per_sample=True, pairing="random") if per_sample else {}
        mode = "cutmix" if impl.op == CUTMIX else "mixup"
        return lambda x, y: mix(x, cutmix_ext.sample_params(x.shape, mode, **kw))
    if impl.in_place:
        return lambda x, y: fn(x.clone(), y)
    return fn
