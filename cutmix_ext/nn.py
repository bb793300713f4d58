"""Mixing inside a model's forward: CutMix or MixUp of activations (the paper's feature-level
CutMix, Manifold MixUp), differentiable, with the targets to match."""
from typing import Optional, Union

import torch

from . import _sampling
from ._ops import MixParams, _check_batch, _check_sampling, cutmix, mix_targets, mixup, sample_params
from ._sampling import BoxKind

__all__ = ["FeatureMix"]


class FeatureMix(torch.nn.Module):
    """Mixes the activation passing through it, in train() mode; the identity in eval().

    ::

        self.mix = cutmix_ext.nn.FeatureMix("cutmix", alpha=1.0)
        ...
        def forward(self, x):
            x = self.mix(self.stage1(x))            # mixes here
            return self.head(self.stage2(x))
        loss = soft_cross_entropy(model(images), model.mix.targets(labels, num_classes))

    Several candidate layers, one of which mixes each step (Manifold MixUp, feature-level CutMix):
    give `sites=n` and call `self.mix(x, site=k)` at candidate k = 0 .. n-1 in forward order.
    A forward pass draws once, at its first candidate: the chosen site (uniform; none with
    probability 1 - p), the partners, lam and, for CutMix, a box on that first candidate's grid.
    The chosen site rasterises the box onto its own grid (MixParams.at) with the exact lam there.
    The other sites pass x through untouched.

    After forward, `params` is what was applied (identity partners and lam = 1 if nothing was
    mixed) and `choice` the chosen site (a 0-dim int64 tensor, -1 for none); `targets(labels, K)`
    mixes the labels to match. The mixing is out of place (activations such as a ReLU's output are
    saved for the backward) and its gradient is the transposed mix, one kernel on CPU and CUDA.
    Everything stays in tensors, so a model that holds it compiles with
    torch.compile(fullgraph=True) (with generator=None: Dynamo cannot pass a Generator object to
    an op); eagerly, sites that do not mix return x itself. Compiled, `params` keeps only perm and
    lam, which is what targets() needs: which site mixed stays a tensor there.

    A new pass starts when a site is called that is not after the last one called. With
    activation checkpointing, the recomputation draws again: leave generator=None, whose state
    checkpointing restores, so that it draws the same.
    """

    def __init__(self, mode: str = "cutmix", alpha: float = 1.0, p: float = 1.0, *, sites: int = 1,
                 pairing: Union[str, torch.Tensor] = "roll", per_sample: bool = False,
                 label_smoothing: float = 0.0, generator: Optional[torch.Generator] = None,
                 box: BoxKind = "uniform", center_std: float = 0.125, label: str = "area"):
        super().__init__()
        if mode not in ("cutmix", "mixup"):
            raise ValueError(f"mode: expected 'cutmix' or 'mixup', got {mode!r}")
        _sampling.check_box(box, center_std)
        _sampling.target_lam(torch.ones(0, dtype=torch.float64), label)
        if mode != "cutmix" and (box != "uniform" or label != "area"):
            raise ValueError("box, label: the box and label variants are CutMix's")
        self.box, self.center_std, self.label = box, float(center_std), label
        _check_sampling(alpha, pairing, generator)
        if isinstance(pairing, str) and pairing not in ("roll", "flip", "random"):
            raise ValueError(f"pairing: expected 'roll', 'flip', 'random' or an int64 tensor, got "
                             f"{pairing!r}")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p: must be a probability in [0, 1], got {p!r}")
        if isinstance(sites, bool) or not isinstance(sites, int) or sites < 1:
            raise ValueError(f"sites: must be a positive int, got {sites!r}")
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or \
                not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing: must be in [0, 1), got {label_smoothing!r}")
        self.mode, self.alpha, self.p, self.sites = mode, float(alpha), float(p), sites
        self.pairing, self.per_sample = pairing, _sampling.check_flag(per_sample, "per_sample")
        self.label_smoothing, self.generator = float(label_smoothing), generator
        self.params: Optional[MixParams] = None
        self.choice: Optional[torch.Tensor] = None
        self._drawn: Optional[MixParams] = None
        self._last_site = sites - 1  # so that the first call of a pass draws

    def extra_repr(self) -> str:
        return (f"mode={self.mode!r}, alpha={self.alpha}, p={self.p}, sites={self.sites}, "
                f"pairing={self.pairing!r}, per_sample={self.per_sample}, "
                f"label_smoothing={self.label_smoothing}")

    def forward(self, x: torch.Tensor, site: int = 0) -> torch.Tensor:
        """``x`` mixed out of place if this pass mixes at ``site`` (in train() mode), else ``x``
        itself; ``params`` and ``choice`` then say what was applied."""
        if isinstance(site, bool) or not isinstance(site, int) or not 0 <= site < self.sites:
            raise ValueError(f"site: expected an int in [0, sites = {self.sites}), got {site!r}")
        if not self.training:
            self.params, self.choice = None, None
            return x
        _check_batch(x, "x")
        if site <= self._last_site:
            self._draw(x)
        self._last_site = site
        if not torch.compiler.is_compiling() and int(self.choice) != site:
            return x
        cut = self.mode == "cutmix"
        h, w = x.shape[-2], x.shape[-1]
        drawn = self._drawn.at(h, w)
        # Under compile the choice stays a tensor: a site that does not mix applies the identity.
        active = self.choice == site
        n = x.shape[0]
        perm = torch.where(active, drawn.perm, torch.arange(n))
        lam = torch.where(active, drawn.lam, torch.ones(n, dtype=torch.float64))
        boxes = torch.where(active, drawn.boxes, torch.zeros_like(drawn.boxes)) if cut else None
        applied = MixParams(perm, boxes, lam, (h, w))
        out = cutmix(x, applied) if cut else mixup(x, applied)
        if torch.compiler.is_compiling():
            prev = self.params
            self.params = MixParams(torch.where(active, perm, prev.perm), None,
                                    torch.where(active, lam, prev.lam), None)
        else:
            self.params = applied
        return out

    def _draw(self, x: torch.Tensor) -> None:
        n = x.shape[0]
        self.choice = torch.ops.cutmix_ext.choose(self.sites, self.p, self.generator)
        variant = {} if self.box == "uniform" else dict(box=self.box, center_std=self.center_std)
        self._drawn = sample_params(x, self.mode, alpha=self.alpha, pairing=self.pairing,
                                    per_sample=self.per_sample, generator=self.generator, **variant)
        self.params = MixParams(torch.arange(n), None, torch.ones(n, dtype=torch.float64), None)

    def targets(self, labels: torch.Tensor, num_classes: Optional[int] = None) -> torch.Tensor:
        """The (N, K) float32 targets of the last forward: labels mixed with the lam of the grid
        that was mixed, smoothed by label_smoothing; plain (smoothed) one-hot when nothing was
        mixed or in eval()."""
        params = self.params
        if params is None:
            n = labels.shape[0]
            params = MixParams(torch.arange(n), None, torch.ones(n, dtype=torch.float64), None)
        if self.label != "area":  # One-hot / Complete-label CutMix, on the grid that was mixed
            params = params._replace(lam=_sampling.target_lam(params.lam, self.label))
        return mix_targets(labels, params, num_classes, label_smoothing=self.label_smoothing)
