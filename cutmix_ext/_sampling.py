"""Host-side draws beyond the paper's default box (which the C++ `sample` op draws) and timm's
Mixup (the C++ `sample_timm` op): the paper's ablation variants and CutOut. Each returns
MixParams with a per-sample `mode`, which the general op `mix_` applies in one launch, whatever
mix of kinds the batch holds.

Every draw comes from a torch.Generator (default: torch's CPU generator), so torch.manual_seed
or a per-rank generator reproduces it. Beta draws reuse the `sample` op's exact sampler."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch

from ._params import FILL, PASTE, MixParams

_ops = torch.ops.cutmix_ext

BoxKind = Union[str, int, Sequence[int]]


def beta(n: int, alpha: float, generator: Optional[torch.Generator]) -> torch.Tensor:
    """n draws of Beta(alpha, alpha), float64."""
    return _ops.sample(n, 1, 1, float(alpha), False, True, "roll", generator)[2]


def partners(n: int, pairing: str, generator: Optional[torch.Generator]) -> torch.Tensor:
    return _ops.sample(n, 1, 1, 1.0, False, False, pairing, generator)[0]


def _clip(lo: torch.Tensor, hi: torch.Tensor, size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    return lo.clamp(0, size), hi.clamp(0, size)


def fixed_size(box: BoxKind, name: str = "box") -> Optional[Tuple[int, int]]:
    """(h, w) for a fixed-size box (an int or an (h, w) pair), None for a named kind."""
    if isinstance(box, str):
        return None
    hw = (box, box) if isinstance(box, int) and not isinstance(box, bool) else box
    if not (isinstance(hw, (tuple, list)) and len(hw) == 2 and
            all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in hw)):
        raise ValueError(f"{name}: expected 'uniform', 'center_gaussian', a positive int or an "
                         f"(h, w) pair of positive ints, got {box!r}")
    return int(hw[0]), int(hw[1])


def check_box(box: BoxKind, center_std: float, name: str = "box") -> None:
    if isinstance(box, str) and box not in ("uniform", "center_gaussian"):
        raise ValueError(f"{name}: expected 'uniform', 'center_gaussian', a positive int or an "
                         f"(h, w) pair, got {box!r}")
    fixed_size(box, name)
    if isinstance(center_std, bool) or not isinstance(center_std, (int, float)) or \
            not center_std > 0 or not math.isfinite(center_std):
        raise ValueError(f"center_std: must be a positive number, got {center_std!r}")


def check_flag(v: bool, name: str) -> bool:
    if v is not True and v is not False:
        raise TypeError(f"{name}: expected True or False, got {v!r}")
    return v


def check_alpha(alpha: float, name: str = "alpha") -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(alpha).__name__}")
    if not 0 < alpha < math.inf:
        raise ValueError(f"{name}: must be a positive number, got {alpha!r}")
    return float(alpha)


def check_probability(p: float, name: str = "p") -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: must be a number in [0, 1], got {p!r}")
    return float(p)


def boxes(lam: torch.Tensor, height: int, width: int, box: BoxKind, center_std: float,
          generator: Optional[torch.Generator]) -> torch.Tensor:
    """One box per entry of lam, as (x1, y1, x2, y2) int64, clipped to the image. The centre is
    uniform over the pixels ('uniform', the paper's) or Gaussian around the image centre with
    standard deviation center_std * side ('center_gaussian'), rounded and kept on the image.
    Sides: W * sqrt(1 - lam) and H * sqrt(1 - lam), as the default sampler, or a fixed (h, w)."""
    d = lam.shape[0]
    if box == "center_gaussian":
        z = torch.randn((2, d), generator=generator, dtype=torch.float64)
        cx = ((width - 1) / 2 + center_std * width * z[0]).round().clamp(0, width - 1).long()
        cy = ((height - 1) / 2 + center_std * height * z[1]).round().clamp(0, height - 1).long()
    else:
        cx = torch.randint(0, width, (d,), generator=generator)
        cy = torch.randint(0, height, (d,), generator=generator)
    size = fixed_size(box)
    if size is None:  # the default sampler's rule: half-sides int(0.5 * sqrt(1 - lam) * side)
        r = 0.5 * torch.sqrt(1.0 - lam)
        hw, hh = (r * width).long(), (r * height).long()
        x1, x2 = _clip(cx - hw, cx + hw, width)
        y1, y2 = _clip(cy - hh, cy + hh, height)
    else:
        fh, fw = size
        x1, x2 = _clip(cx - fw // 2, cx - fw // 2 + fw, width)
        y1, y2 = _clip(cy - fh // 2, cy - fh // 2 + fh, height)
    return torch.stack((x1, y1, x2, y2), 1)


def area_lam(b: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return 1.0 - ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).double() / float(height * width)


def target_lam(lam: torch.Tensor, label: str) -> torch.Tensor:
    """The weight of each sample's own label: the exact area ('area'), all of it to the label
    that covers more of the image ('onehot'; a tie keeps the sample's own), or half and half
    wherever something was pasted ('complete')."""
    if label == "area":
        return lam
    if label == "onehot":
        return (lam >= 0.5).double()
    if label == "complete":
        return torch.where(lam < 1.0, 0.5, 1.0).double()
    raise ValueError(f"label: expected 'area', 'onehot' or 'complete', got {label!r}")


def applied(d: int, p: float, generator: Optional[torch.Generator]) -> Optional[torch.Tensor]:
    """Which of d draws apply (probability p each), or None when all do."""
    if p >= 1.0:
        return None
    return torch.rand(d, generator=generator, dtype=torch.float64) < p


def cutmix_variant(n: int, height: int, width: int, *, alpha: float, perm: torch.Tensor,
                   per_sample: bool, box: BoxKind, center_std: float, label: str, p: float,
                   generator: Optional[torch.Generator]) -> MixParams:
    d = n if per_sample else min(n, 1)
    lam = beta(d, alpha, generator) if fixed_size(box) is None else torch.zeros(d, dtype=torch.float64)
    b = boxes(lam, height, width, box, center_std, generator)
    keep = applied(d, p, generator)
    if keep is not None:
        b[~keep] = 0
    b = b.expand(n, 4).contiguous() if d < n else b
    lam = target_lam(area_lam(b, height, width), label)
    # lam other than the area must be applied as given; area boxes stay plain (and movable by at())
    mode = None if label == "area" else torch.full((n,), PASTE, dtype=torch.int8)
    return MixParams(perm, b, lam, (height, width), mode)


def cutout(n: int, height: int, width: int, *, size: BoxKind, alpha: float, per_sample: bool,
           p: float, generator: Optional[torch.Generator]) -> MixParams:
    d = n if per_sample else min(n, 1)
    lam = beta(d, alpha, generator) if fixed_size(size) is None else torch.zeros(d, dtype=torch.float64)
    b = boxes(lam, height, width, size, 0.125, generator)
    keep = applied(d, p, generator)
    if keep is not None:
        b[~keep] = 0
    b = b.expand(n, 4).contiguous() if d < n else b
    return MixParams(torch.arange(n), b, torch.ones(n, dtype=torch.float64), (height, width),
                     torch.full((n,), FILL, dtype=torch.int8))
