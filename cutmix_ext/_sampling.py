"""Host-side draws beyond the paper's default box (which the C++ `sample` op draws): the paper's
ablation variants, CutOut and timm's Mixup. Each returns MixParams with a per-sample `mode`,
which the general op `mix_` applies in one launch, whatever mix of kinds the batch holds.

Every draw comes from a torch.Generator (default: torch's CPU generator), so torch.manual_seed
or a per-rank generator reproduces it. Beta draws reuse the `sample` op's exact sampler."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch

from ._params import PASTE, BLEND, FILL, MixParams

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
    if isinstance(box, int) and not isinstance(box, bool):
        box = (box, box)
    if not (isinstance(box, (tuple, list)) and len(box) == 2 and
            all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in box)):
        raise ValueError(f"{name}: expected 'uniform', 'center_gaussian', a positive int or an "
                         f"(h, w) pair of positive ints, got {box!r}")
    return int(box[0]), int(box[1])


def check_box(box: BoxKind, center_std: float) -> None:
    if isinstance(box, str) and box not in ("uniform", "center_gaussian"):
        raise ValueError(f"box: expected 'uniform', 'center_gaussian', a positive int or an "
                         f"(h, w) pair, got {box!r}")
    fixed_size(box)
    if isinstance(center_std, bool) or not isinstance(center_std, (int, float)) or \
            not center_std > 0 or not math.isfinite(center_std):
        raise ValueError(f"center_std: must be a positive number, got {center_std!r}")


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


def timm(n: int, height: int, width: int, *, mixup_alpha: float, cutmix_alpha: float,
         cutmix_minmax: Optional[Tuple[float, float]], prob: float, switch_prob: float, mode: str,
         correct_lam: bool, generator: Optional[torch.Generator]) -> MixParams:
    """timm.data.Mixup's draws, per batch ('batch'), per pair i, N-1-i ('pair') or per sample
    ('elem'): with probability prob, CutMix (probability switch_prob when both alphas are set)
    or MixUp with lam ~ Beta(alpha, alpha); the partner of i is N-1-i. timm's box: sides
    int(H * sqrt(1 - lam)), centre uniform, each half-side cut // 2 and clipped; with
    cutmix_minmax, sides uniform in [int(H * lo), int(H * hi)) placed inside the image. lam
    becomes the exact area left when correct_lam or cutmix_minmax. An odd batch's middle sample
    of 'pair' mode, its own partner, is left as it is."""
    d = {"batch": min(n, 1), "pair": n // 2, "elem": n}[mode]
    if cutmix_alpha > 0 and mixup_alpha > 0:
        use_cut = torch.rand(d, generator=generator, dtype=torch.float64) < switch_prob
    else:
        use_cut = torch.full((d,), cutmix_alpha > 0 or cutmix_minmax is not None)
    lam = torch.ones(d, dtype=torch.float64)
    if use_cut.any():
        lam = torch.where(use_cut, beta(d, cutmix_alpha if cutmix_alpha > 0 else 1.0, generator), lam)
    if (~use_cut).any():
        lam = torch.where(use_cut, lam, beta(d, mixup_alpha, generator))
    keep = applied(d, prob, generator)
    if keep is not None:
        lam = torch.where(keep, lam, 1.0)
    cut = use_cut & (lam < 1.0)
    b = torch.zeros((d, 4), dtype=torch.int64)
    if cutmix_minmax is not None:
        lo, hi = cutmix_minmax
        ch = _randint_between(int(height * lo), int(height * hi), d, generator)
        cw = _randint_between(int(width * lo), int(width * hi), d, generator)
        y1 = (torch.rand(d, generator=generator, dtype=torch.float64) * (height - ch)).long()
        x1 = (torch.rand(d, generator=generator, dtype=torch.float64) * (width - cw)).long()
        drawn = torch.stack((x1, y1, x1 + cw, y1 + ch), 1)
    else:
        ratio = torch.sqrt(1.0 - lam)
        ch, cw = (height * ratio).long(), (width * ratio).long()
        cy = torch.randint(0, height, (d,), generator=generator)
        cx = torch.randint(0, width, (d,), generator=generator)
        x1, x2 = _clip(cx - cw // 2, cx + cw // 2, width)
        y1, y2 = _clip(cy - ch // 2, cy + ch // 2, height)
        drawn = torch.stack((x1, y1, x2, y2), 1)
    b[cut] = drawn[cut]
    if correct_lam or cutmix_minmax is not None:
        lam = torch.where(cut, area_lam(b, height, width), lam)
    mixup = ~use_cut & (lam < 1.0)
    b[mixup] = torch.tensor([0, 0, width, height])
    m = torch.where(mixup, BLEND, PASTE).to(torch.int8)
    if mode == "batch":
        b, lam, m = b.expand(n, 4).contiguous(), lam.expand(n).contiguous(), m.expand(n).contiguous()
    elif mode == "pair":  # i and N-1-i share one draw; an odd middle sample stays as it is
        mid = n - 2 * d
        b = torch.cat((b, torch.zeros((mid, 4), dtype=torch.int64), b.flip(0)))
        lam = torch.cat((lam, torch.ones(mid, dtype=torch.float64), lam.flip(0)))
        m = torch.cat((m, torch.zeros(mid, dtype=torch.int8), m.flip(0)))
    perm = torch.arange(n - 1, -1, -1)
    return MixParams(perm, b, lam, (height, width), m)


def _randint_between(lo: int, hi: int, d: int, generator: Optional[torch.Generator]) -> torch.Tensor:
    if hi <= lo:
        raise ValueError(f"cutmix_minmax: gives box sides in [{lo}, {hi}), an empty range")
    return torch.randint(lo, hi, (d,), generator=generator)
