"""MixParams: what one call applied, and the per-sample modes of the general op `mix_`."""
from typing import NamedTuple, Optional, Tuple

import torch

# What sample i does inside its box (params.mode, the SampleMode of csrc/mix.h).
PASTE, BLEND, FILL = 0, 1, 2


class MixParams(NamedTuple):
    """What one call applied, on the CPU (CUDA tensors from sampling="device").

    - ``perm``: int64 ``(N,)``, sample i took from sample ``perm[i]``.
    - ``boxes``: int64 ``(N, 4)`` as ``(x1, y1, x2, y2)``, half-open pixel coordinates; None for
      MixUp.
    - ``lam``: float64 ``(N,)``, the weight of each sample's own label (the exact area left to it).
    - ``size``: ``(H, W)``, the grid the boxes are on; None if unknown (parameters built by hand).
    - ``mode``: int8 ``(N,)`` or None. Set, each sample acts by its own mode inside its box: 0
      pastes the partner's pixels (CutMix), 1 blends ``lam * own + (1 - lam) * partner`` (MixUp;
      the box is then the whole image), 2 writes a fill value (CutOut); lam is then taken as
      given, not recomputed from the box (the paper's label variants, timm's
      ``correct_lam=False``). Applied by `cutmix_ext.mix_`.
    """

    perm: torch.Tensor
    boxes: Optional[torch.Tensor]
    lam: torch.Tensor
    size: Optional[Tuple[int, int]] = None
    mode: Optional[torch.Tensor] = None

    def at(self, height: int, width: int) -> "MixParams":
        """The same draw on a height x width grid (a feature map): every box edge, as a fraction
        of the grid, is rounded to the nearest line of the new grid (halves round up), and lam
        becomes the exact area left on that grid. A box can vanish on a coarse grid (lam = 1).
        MixUp parameters only change their size."""
        for name, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        if self.boxes is None:
            return self._replace(size=(height, width))
        if self.mode is not None:
            raise ValueError("params.mode: per-sample modes are for input batches; at() moves "
                             "CutMix boxes (mode None) to another grid")
        if self.size is None:
            raise ValueError("params.size: unknown, so the boxes cannot be moved to another grid; "
                             "build MixParams with size=(H, W) of the grid the boxes are on")
        h0, w0 = self.size
        b = self.boxes
        x = torch.div(2 * b[:, 0::2] * width + w0, 2 * w0, rounding_mode="floor")
        y = torch.div(2 * b[:, 1::2] * height + h0, 2 * h0, rounding_mode="floor")
        boxes = torch.stack((x[:, 0], y[:, 0], x[:, 1], y[:, 1]), 1)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        lam = 1.0 - area.double() / float(height * width)
        return MixParams(self.perm, boxes, lam, (height, width))
