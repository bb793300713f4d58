"""The front door: thin wrappers over the cutmix_ext ops. The C++ side checks every argument
before it writes anything; what is checked here is only what the dispatcher would otherwise
report unclearly (wrong types, devices, a build without CUDA kernels)."""
from typing import Optional, Sequence, Union

import torch

from . import _sampling
from ._library import WITH_CUDA, _C
from ._params import BLEND, PASTE, MixParams
from ._sampling import BoxKind

_ops = torch.ops.cutmix_ext
_compiling = torch.compiler.is_compiling

__all__ = ["MixParams", "cutmix", "cutmix_", "cutout_", "mix_", "mix_targets", "mixed_cross_entropy",
           "mixup", "mixup_", "sample_params"]


Pairing = Union[str, torch.Tensor]


def sample_params(size: Union[torch.Tensor, Sequence[int]], mode: str = "cutmix", *,
                  alpha: float = 1.0, pairing: Pairing = "roll", per_sample: bool = False,
                  generator: Optional[torch.Generator] = None, box: BoxKind = "uniform",
                  center_std: float = 0.125, label: str = "area", p: float = 1.0) -> MixParams:
    """Draws the parameters `cutmix_`/`mixup_`/`cutout_` would use for a batch of `size` (a
    tensor or its shape (N, ..., H, W)), from `generator` (default: torch's CPU generator).

    lam ~ Beta(alpha, alpha). CutMix boxes follow the paper and torchvision: centre uniform over
    the pixels, half-sides int(0.5 * sqrt(1 - lam) * W) and int(0.5 * sqrt(1 - lam) * H), clipped
    to the image; lam is then the exact area left. per_sample=False draws one lam and box for the
    batch. pairing: "roll" (i takes from i-1), "flip" (from N-1-i), "random" (a random
    permutation) or an int64 tensor of partners.

    The paper's ablation variants (CutMix; ``box`` and ``p`` also for CutOut):

    - ``box="center_gaussian"``: the centre ~ Gaussian at the image centre, standard deviation
      ``center_std * side``, rounded and kept on the image.
    - ``box=16`` or ``(h, w)``: a fixed-size box, centre uniform, clipped (lam is its area left).
    - ``label="onehot"``: the target is the label that covers more of the image (a tie keeps the
      sample's own); ``label="complete"``: 0.5 / 0.5 wherever something was pasted.
    - ``p``: the probability of mixing at all, per sample with ``per_sample=True``, else per batch
      (Scheduled CutMix raises it from 0 to 1 over training; see `transforms.CutMix`).

    Parameters from a label variant carry a per-sample ``mode``, applied as drawn by `mix_`.
    """
    if mode not in ("cutmix", "mixup", "cutout"):
        raise ValueError(f"mode: expected 'cutmix', 'mixup' or 'cutout', got {mode!r}")
    shape = tuple(size.shape) if isinstance(size, torch.Tensor) else \
        tuple(size) if isinstance(size, (tuple, list, torch.Size)) else None
    if shape is None or len(shape) < 4 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                  for v in shape):
        raise ValueError(f"size: expected a batch shape (N, C, H, W) or (N, ..., H, W), got {size!r}")
    n, h, w = shape[0], shape[-2], shape[-1]
    if h == 0 or w == 0:
        raise ValueError(f"size: height and width must be positive, got {shape}")
    _sampling.check_flag(per_sample, "per_sample")
    p = _sampling.check_probability(p)
    _sampling.check_box(box, center_std, "size" if mode == "cutout" else "box")
    _sampling.target_lam(torch.ones(0, dtype=torch.float64), label)
    name, perm = _check_sampling(alpha, pairing, generator, n)
    if mode == "cutout":
        return _sampling.cutout(n, h, w, size=box, alpha=float(alpha), per_sample=per_sample, p=p,
                                generator=generator)
    if mode == "mixup" and (box != "uniform" or label != "area"):
        raise ValueError("box, label: the box and label variants are CutMix's; MixUp takes p")
    cutmix = mode == "cutmix"
    if cutmix and (box != "uniform" or label != "area" or p < 1.0):
        drawn = perm.to("cpu", torch.int64, copy=True) if perm is not None else \
            _sampling.partners(n, name, generator)
        return _sampling.cutmix_variant(n, h, w, alpha=float(alpha), perm=drawn,
                                        per_sample=per_sample, box=box, center_std=center_std,
                                        label=label, p=p, generator=generator)
    drawn, boxes, lam = _ops.sample(n, h, w, float(alpha), cutmix, bool(per_sample), name, generator)
    if perm is not None:
        drawn = perm.to("cpu", torch.int64, copy=True)
    if not cutmix and p < 1.0:
        keep = _sampling.applied(n if per_sample else min(n, 1), p, generator)
        lam = torch.where(keep.expand(n) if not per_sample else keep, lam, 1.0)
    return MixParams(drawn, boxes if cutmix else None, lam, (h, w))


def _check_sampling(alpha, pairing, generator, n=None):
    """Returns (pairing name, explicit partner tensor or None). With n, a partner tensor is
    checked to be a permutation of range(n)."""
    _sampling.check_alpha(alpha)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    if isinstance(pairing, torch.Tensor):
        if pairing.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"pairing: expected an int64 tensor of partners, got dtype {pairing.dtype}")
        if pairing.device.type not in ("cpu", "cuda"):
            raise ValueError(f"pairing: expected a CPU or CUDA tensor, got one on {pairing.device}")
        if n is not None:
            _check_partners(pairing, n)
        return "roll", pairing
    if not isinstance(pairing, str):
        raise TypeError(f"pairing: expected 'roll', 'flip', 'random' or an int64 tensor, got "
                        f"{type(pairing).__name__}")
    return pairing, None


def _check_partners(pairing, n):
    if tuple(pairing.shape) != (n,):
        raise ValueError(f"pairing: expected shape (N,) = ({n},), got {tuple(pairing.shape)}")
    if not _compiling():
        _C.check_pairs_(pairing.to("cpu", torch.int64), None, n, "pairing")


def _check_batch(images, name="images"):
    """What sampling needs of the images before the op checks the rest: a batch tensor."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name}: expected a tensor, got {type(images).__name__}")
    if images.dim() < 4:
        raise ValueError(f"{name}: expected a batch of shape (N, C, H, W) or (N, ..., H, W), got "
                         f"shape {list(images.shape)}")
    if images.shape[-1] == 0 or images.shape[-2] == 0:
        raise ValueError(f"{name}: height and width must be positive, got shape {list(images.shape)}")


def _check_class_indices(labels, n, num_classes):
    if labels.shape != (n,):
        raise ValueError(f"labels: class indices must have shape (N,) = ({n},), got {tuple(labels.shape)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
        raise ValueError(f"num_classes: a positive int is required with class-index labels, got "
                         f"{num_classes!r}")
    # A device-side check would cost a host sync: on CUDA the kernels write NaN targets instead.
    if labels.device.type == "cpu" and n and not _compiling() and (
            int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        i = int(((labels < 0) | (labels >= num_classes)).nonzero()[0])
        raise ValueError(f"labels: class index {int(labels[i])} at position {i} is outside [0, "
                         f"num_classes = {num_classes})")



def _check_call(images, labels, num_classes, label_smoothing, params, cutmix):
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a tensor, got {type(images).__name__}")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels: expected a tensor, got {type(labels).__name__}")
    if labels.device != images.device:
        raise ValueError(f"labels: expected on the images' device {images.device}, got {labels.device}")
    _check_kernels(images)
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)):
        raise TypeError(f"num_classes: expected an int or None, got {type(num_classes).__name__}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        raise TypeError(f"label_smoothing: expected a number, got {type(label_smoothing).__name__}")
    _check_batch(images)
    if params is not None:
        _check_params(params, images, cutmix)


def _check_kernels(x, name="images"):
    if x.is_cuda and not WITH_CUDA:
        raise RuntimeError(f"{name}: on CUDA, but cutmix_ext was built without its CUDA kernels; "
                           "rebuild it with nvcc available (or FORCE_CUDA=1)")


def _check_params(params, x, cutmix, name="images"):
    if not isinstance(params, MixParams):
        raise TypeError(f"params: expected a cutmix_ext.MixParams, got {type(params).__name__}")
    if cutmix and params.boxes is None:
        raise ValueError("params: these are MixUp parameters (boxes is None); CutMix needs boxes")
    _check_fields(params, ("perm", "boxes", "lam") if cutmix else ("perm", "lam"))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a tensor, got {type(x).__name__}")
    _check_kernels(x, name)
    grid = tuple(x.shape[-2:])
    if cutmix and params.size is not None and tuple(params.size) != grid:
        raise ValueError(f"params: boxes drawn on a {params.size[0]}x{params.size[1]} grid, but "
                         f"{name} is {grid[0]}x{grid[1]}; pass params.at({grid[0]}, {grid[1]}) "
                         f"and take the targets from its lam")


def _check_fields(params, fields):
    # The kernels read the parameters on the host; elsewhere they would dispatch oddly.
    for field in fields:
        t = getattr(params, field)
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"params.{field}: expected a tensor, got {type(t).__name__}")
        if t.device.type != "cpu":
            raise ValueError(f"params.{field}: expected a CPU tensor, got {t.device}")


def _general(params: MixParams, images: torch.Tensor, labels: bool = True) -> MixParams:
    """params with every sample's mode set, as the op `mix_` takes them. labels=False: for a
    call without labels, where lam weighs nothing and CutMix's is kept as it is."""
    if params.mode is not None:
        return params
    n = params.perm.shape[0]
    if params.boxes is None:
        h, w = images.shape[-2:]
        return params._replace(boxes=torch.tensor([[0, 0, w, h]]).expand(n, 4).contiguous(),
                               mode=torch.full((n,), BLEND, dtype=torch.int8))
    if not labels or params.boxes.dim() != 2 or params.boxes.shape[1] != 4:  # the op says what is wrong
        return params._replace(mode=torch.full((n,), PASTE, dtype=torch.int8))
    lam = 1.0 - ((params.boxes[:, 2] - params.boxes[:, 0]) *
                 (params.boxes[:, 3] - params.boxes[:, 1])).double() / float(images.shape[-2] * images.shape[-1])
    return params._replace(lam=lam, mode=torch.full((n,), PASTE, dtype=torch.int8))


def _check_masks(masks, images, params, labels=None, fill=0.0, *others):
    """Everything mixing `masks` with the (general) params would check, and that they share no
    memory with the images, the labels or `others` ((name, tensor) pairs): before the images
    are written."""
    if not isinstance(masks, torch.Tensor):
        raise TypeError(f"masks: expected a tensor, got {type(masks).__name__}")
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    if masks.shape not in ((n, h, w), (n, 1, h, w)):
        raise ValueError(f"masks: expected shape (N, H, W) = ({n}, {h}, {w}) or (N, 1, H, W), got "
                         f"{tuple(masks.shape)}")
    if masks.device != images.device:
        raise ValueError(f"masks: expected on the images' device {images.device}, got {masks.device}")
    if params.mode is not None and bool((params.mode == BLEND).any()):
        raise ValueError("masks: a MixUp sample blends pixels, which has no meaning for a "
                         "segmentation mask; masks go with CutMix only")
    _check_later(masks.unsqueeze(1) if masks.dim() == 3 else masks, "masks", params, fill,
                 ("images", images), ("labels", labels), *others)


def _check_later(x, name, g, fill, *others):
    """The op's own checks of a tensor that a later call mixes with the general params `g`,
    made now, with the tensors it must not share memory with as (name, tensor) pairs."""
    if _compiling():
        return  # fake tensors: the op checks when it runs
    _C.check_mix_(name, x, g.perm, g.boxes, g.lam, g.mode, float(fill),
                  tuple((k, t) for k, t in others if isinstance(t, torch.Tensor)))


def _check_targets_kind(targets, labels):
    if targets not in ("dense", "compact"):
        raise ValueError(f"targets: expected 'dense' or 'compact', got {targets!r}")
    if targets == "compact" and labels.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"targets: 'compact' needs class-index labels (int64/int32), got dtype "
                         f"{labels.dtype}")


# Every public call takes one of two routes. The direct one (csrc/module.cpp) calls the op with
# plain arguments, without torch.ops' schema parsing or the checks below: on a small batch those
# cost as much as the mixing. It declines (NotImplemented) anything unusual: a tensor subclass, a
# torch function mode, torch.compile, an argument of another type, a variant. The general route
# checks everything, draws the parameters unless given, and applies them with `_apply`.

def _direct(cut, images, labels, num_classes, label_smoothing, alpha, pairing, per_sample,
            generator, params, return_params):
    """cutmix_/mixup_ through the direct entry points, or NotImplemented."""
    if _compiling():
        return NotImplemented
    if params is None:
        out = _C.sampled_(cut, images, labels, num_classes, label_smoothing, alpha, pairing,
                          per_sample, generator, bool(return_params))
        if out is NotImplemented or not return_params:
            return out if out is NotImplemented else (images, out)
        targets, perm, boxes, lam = out
        return images, targets, MixParams(perm, boxes if cut else None, lam, tuple(images.shape[-2:]))
    if type(params) is not MixParams or params.mode is not None or (cut and params.boxes is None) or (
            cut and params.size is not None and (not isinstance(images, torch.Tensor) or
                                                 tuple(params.size) != images.shape[-2:])):
        return NotImplemented
    targets = _C.given_(cut, images, labels, params.perm, params.boxes if cut else params.lam,
                        num_classes, label_smoothing)
    if targets is NotImplemented:
        return targets
    return (images, targets, params) if return_params else (images, targets)


def _mix(mode, images, labels, num_classes, label_smoothing, params, return_params, sampling,
         masks, targets, draw):
    """The general route of cutmix_ and mixup_: check, draw (on the host or in the kernel)
    unless params are given, apply."""
    cut = mode == "cutmix"
    _check_call(images, labels, num_classes, label_smoothing, params, cut)
    _check_targets_kind(targets, labels)
    if sampling not in ("host", "device"):
        raise ValueError(f"sampling: expected 'host' or 'device', got {sampling!r}")
    if sampling == "device":
        _check_device_sampling(mode, images, params, masks, targets, draw)
        _check_sampling(draw["alpha"], draw["pairing"], draw["generator"])
        out, perm, boxes, lam = _ops.mix_device_sampled_(
            images, labels, num_classes, float(label_smoothing), float(draw["alpha"]), cut,
            bool(draw["per_sample"]), draw["pairing"], draw["generator"])
        params = MixParams(perm, boxes if cut else None, lam, tuple(images.shape[-2:]))
    else:
        if params is None:
            params = sample_params(images, mode, **draw)
        elif not cut:  # mixup_ blends by params.lam, whatever else the params hold
            params = params._replace(boxes=None, mode=None)
        images, out = _apply(images, labels, params, num_classes, label_smoothing, 0.0, masks, targets)
    return (images, out, params) if return_params else (images, out)


def _check_device_sampling(mode, images, params, masks, targets, draw):
    if not images.is_cuda:
        raise ValueError(f"sampling: 'device' draws inside the CUDA kernel; images are on {images.device}")
    if params is not None:
        raise ValueError("sampling: 'device' draws the parameters, so params must be None")
    if not isinstance(draw["pairing"], str):
        raise TypeError("pairing: sampling='device' takes 'roll', 'flip' or 'random', not a tensor")
    variant = draw.get("box", "uniform") != "uniform" or draw.get("label", "area") != "area" or \
        draw["p"] != 1.0 or masks is not None or targets != "dense"
    if variant:
        raise ValueError(f"sampling: 'device' draws the default {'CutMix' if mode == 'cutmix' else 'MixUp'}; "
                         f"box, label, p, masks and compact targets need sampling='host'")


def _apply(images, labels, params, num_classes, label_smoothing, fill, masks, targets):
    """Applies params, after checking them and everything else, in one launch (and one more for
    masks). Plain CutMix or MixUp params go to the op of their kind, whose CUDA kernels are made
    for it; per-sample modes, masks and compact targets to the general op mix_. The caller has
    checked the labels and the other arguments; the params are checked here, by the route."""
    dense = labels is not None and targets == "dense"
    if params.mode is None and masks is None and dense:
        cut = params.boxes is not None
        _check_params(params, images, cut)
        k, eps = num_classes, float(label_smoothing)
        if cut:
            return images, _ops.cutmix_(images, labels, params.perm, params.boxes, k, eps)
        return images, _ops.mixup_(images, labels, params.perm, params.lam, k, eps)
    # The given fields first (per-sample modes need boxes), then the mode, given or derived.
    _check_params(params, images, params.boxes is not None or params.mode is not None)
    g = _general(params, images)
    _check_fields(g, ("mode",))
    if labels is not None and not dense:  # compact targets: the op does not see the labels
        _check_class_indices(labels, images.shape[0], num_classes)
        _check_later(images, "images", g, fill, ("labels", labels))
    if masks is not None:
        _check_masks(masks, images, g, labels, fill)
    out = _ops.mix_(images, labels if dense else None, g.perm, g.boxes, g.lam, g.mode, float(fill),
                    num_classes, float(label_smoothing))
    if masks is not None:
        _mix_masks(masks, g, fill)
    if labels is None:
        return images, None
    return images, out if dense else _compact(labels, g)


def mix_(images: torch.Tensor, labels: Optional[torch.Tensor], params: MixParams,
         num_classes: Optional[int] = None, *, label_smoothing: float = 0.0, fill: float = 0.0,
         masks: Optional[torch.Tensor] = None, targets: str = "dense"):
    """Applies any MixParams in place in one launch: each sample pastes (CutMix), blends (MixUp)
    or fills (CutOut) inside its own box, by params.mode (derived from the params when None),
    and the targets weigh each sample's own label by params.lam as given.

    labels: as in `cutmix_`, or None for no targets. masks: an (N, H, W) or (N, 1, H, W)
    segmentation mask (any integer dtype) that gets the same boxes and partners (CutMix samples
    only; CutOut fills it with `fill`). targets="compact" returns (y_a, y_b, lam) = (labels,
    labels[perm], lam) instead of the dense (N, K), and the kernel writes no targets at all.
    Returns (images, targets)."""
    if masks is None and targets == "dense" and type(params) is MixParams and params.mode is not None \
            and type(images) is torch.Tensor and not _compiling() and \
            (params.size is None or params.size == (images.shape[-2], images.shape[-1])):
        out = _C.mix_(images, labels, params.perm, params.boxes, params.lam, params.mode, fill,
                      num_classes, label_smoothing)
        if out is not NotImplemented:
            return images, None if labels is None else out
    if not isinstance(params, MixParams):
        raise TypeError(f"params: expected a cutmix_ext.MixParams, got {type(params).__name__}")
    if labels is not None:
        _check_call(images, labels, num_classes, label_smoothing, None, True)
        _check_targets_kind(targets, labels)
    if isinstance(fill, bool) or not isinstance(fill, (int, float)):
        raise TypeError(f"fill: expected a number, got {type(fill).__name__}")
    return _apply(images, labels, params, num_classes, label_smoothing, fill, masks, targets)


def _mix_masks(masks, g, fill=0.0):
    _ops.mix_(masks.unsqueeze(1) if masks.dim() == 3 else masks, None, g.perm, g.boxes, g.lam, g.mode,
              float(fill), None, 0.0)


def mix_masks_(masks: torch.Tensor, images: torch.Tensor, params: MixParams) -> None:
    """Cuts and pastes an (N, H, W) or (N, 1, H, W) mask with the boxes and partners that
    `params` applied to `images`."""
    g = _general(params, images)
    _check_masks(masks, images, g)
    _mix_masks(masks, g)


def _compact(labels, params):
    perm = params.perm.to(labels.device, non_blocking=True)
    return labels, labels[perm], params.lam.to(labels.device, non_blocking=True)


def cutmix_(images: torch.Tensor, labels: torch.Tensor, num_classes: Optional[int] = None, *,
            alpha: float = 1.0, label_smoothing: float = 0.0, pairing: Pairing = "roll",
            per_sample: bool = False, generator: Optional[torch.Generator] = None,
            params: Optional[MixParams] = None, return_params: bool = False,
            sampling: str = "host", box: BoxKind = "uniform", center_std: float = 0.125,
            label: str = "area", p: float = 1.0, masks: Optional[torch.Tensor] = None,
            targets: str = "dense"):
    """CutMix in place: ``images[i][..., y1:y2, x1:x2] = images[perm[i]][..., y1:y2, x1:x2]``.

    :param images: ``(N, C, H, W)`` or ``(N, ..., H, W)``; uint8, float16, bfloat16, float32 or
        float64 (or an integer mask); contiguous or channels_last; CPU or CUDA. Mutated in place
        and returned.
    :param labels: class indices ``(N,)`` (int64 or int32, with ``num_classes``) or soft targets
        ``(N, K)``, on the images' device.
    :param num_classes: K; may be None with soft targets.
    :param alpha: lam ~ Beta(alpha, alpha).
    :param label_smoothing: eps in [0, 1): ``s(y) = (1 - eps) * y + eps / K``.
    :param pairing: ``"roll"`` (i takes from i - 1), ``"flip"`` (from N - 1 - i), ``"random"`` (a
        random permutation) or an int64 tensor of partners.
    :param per_sample: an independent lam and box for every sample instead of one for the batch.
    :param generator: the CPU generator to draw from (default: torch's default CPU generator).
    :param params: a `MixParams` from an earlier call, applied exactly; nothing is then sampled.
    :param return_params: also return the `MixParams` that were applied.
    :param sampling: ``"host"`` (drawn on the CPU) or ``"device"``: drawn inside the kernel from
        torch's CUDA generator (CUDA images, N <= 1024), so that a captured CUDA graph draws anew
        on every replay; the returned params are then CUDA tensors, the ``"random"`` pairing is
        a keyed pseudo-random permutation and there is no gradient.
    :param box: ``"uniform"`` (the paper's), ``"center_gaussian"``, or a fixed size ``16`` or
        ``(h, w)``; see `sample_params`.
    :param center_std: the spread of ``box="center_gaussian"``, as a fraction of the side.
    :param label: ``"area"`` (the exact area), ``"onehot"`` or ``"complete"``; see `sample_params`.
    :param p: the probability of mixing at all (per sample with ``per_sample=True``).
    :param masks: an ``(N, H, W)`` or ``(N, 1, H, W)`` integer segmentation mask, cut and pasted
        with the same boxes and partners.
    :param targets: ``"dense"``, or ``"compact"`` for ``(y_a, y_b, lam)`` in place of the
        ``(N, K)`` targets (for very large K, with `mixed_cross_entropy`).
    :returns: ``(images, targets)``, or ``(images, targets, params)``; targets are float32
        ``(N, K)`` on the images' device,
        ``targets[i] = lam[i] * s(labels[i]) + (1 - lam[i]) * s(labels[perm[i]])``, with lam the
        exact area left to sample i.
    """
    if return_params is not True and return_params is not False:  # inline: the hot path
        _sampling.check_flag(return_params, "return_params")
    if sampling == "host" and box == "uniform" and label == "area" and p == 1.0 and p is not True \
            and masks is None and targets == "dense":
        out = _direct(True, images, labels, num_classes, label_smoothing, alpha, pairing, per_sample,
                      generator, params, return_params)
        if out is not NotImplemented:
            return out
    return _mix("cutmix", images, labels, num_classes, label_smoothing, params, return_params,
                sampling, masks, targets,
                dict(alpha=alpha, pairing=pairing, per_sample=per_sample, generator=generator,
                     box=box, center_std=center_std, label=label, p=p))


def mixup_(images: torch.Tensor, labels: torch.Tensor, num_classes: Optional[int] = None, *,
           alpha: float = 1.0, label_smoothing: float = 0.0, pairing: Pairing = "roll",
           per_sample: bool = False, generator: Optional[torch.Generator] = None,
           params: Optional[MixParams] = None, return_params: bool = False,
           sampling: str = "host", p: float = 1.0, targets: str = "dense"):
    """MixUp in place: ``images[i] = lam[i] * images[i] + (1 - lam[i]) * images[perm[i]]``,
    computed in float32 (float64 for float64 images) and rounded once (to nearest even, clamped,
    for uint8).

    The arguments, the targets and the return value are those of `cutmix_`; lam ~ Beta(alpha,
    alpha) and ``params.boxes`` is None (given params are applied by their perm and lam alone).

    :param p: the probability of mixing at all (per sample with ``per_sample=True``, else per
        batch).
    """
    if return_params is not True and return_params is not False:  # inline: the hot path
        _sampling.check_flag(return_params, "return_params")
    if sampling == "host" and p == 1.0 and p is not True and targets == "dense":
        out = _direct(False, images, labels, num_classes, label_smoothing, alpha, pairing,
                      per_sample, generator, params, return_params)
        if out is not NotImplemented:
            return out
    return _mix("mixup", images, labels, num_classes, label_smoothing, params, return_params,
                sampling, None, targets,
                dict(alpha=alpha, pairing=pairing, per_sample=per_sample, generator=generator, p=p))


def cutout_(images: torch.Tensor, *, size: BoxKind = 16, fill: float = 0.0, per_sample: bool = True,
            p: float = 1.0, generator: Optional[torch.Generator] = None,
            params: Optional[MixParams] = None, return_params: bool = False):
    """CutOut (DeVries & Taylor, 2017), the baseline of the CutMix paper, in place: a size x size
    (or (h, w)) box, centre uniform over the pixels and clipped, is set to `fill`; labels do not
    change. size="uniform" draws the box as CutMix does, from lam ~ Beta(1, 1). One box per
    sample (per_sample=True) or for the batch; p: the probability per box.
    Returns images, or (images, params)."""
    _check_batch(images)
    _sampling.check_flag(return_params, "return_params")
    if params is None:
        params = sample_params(images, "cutout", per_sample=per_sample, generator=generator, box=size,
                               p=p)
    mix_(images, None, params, fill=fill)
    return (images, params) if return_params else images


def cutmix(x: torch.Tensor, params: MixParams) -> torch.Tensor:
    """CutMix out of place and differentiable, for activations inside a model's forward:
    out[i] = x[i] with x[perm[i]] inside box i. x is (N, ..., H, W) on the CPU or CUDA, any
    float dtype (uint8 too, without gradient); params from `sample_params` for this grid, or
    `params.at(H, W)` of a draw made for another one. The gradient flows to x[i] outside its
    box and to x[perm[i]] inside box i; it is computed by one kernel, not by autograd's index ops.
    The output is channels_last when x is, else contiguous."""
    _check_params(params, x, True, "x")
    return _ops.cutmix(x, params.perm, params.boxes, False)


def mixup(x: torch.Tensor, params: MixParams) -> torch.Tensor:
    """MixUp out of place and differentiable: out[i] = lam[i] * x[i] + (1 - lam[i]) * x[perm[i]],
    in float32 (float64 for float64) and rounded once, as `mixup_` does."""
    _check_params(params, x, False, "x")
    return _ops.mixup(x, params.perm, params.lam, False)


def mix_targets(labels: torch.Tensor, params: MixParams, num_classes: Optional[int] = None, *,
                label_smoothing: float = 0.0) -> torch.Tensor:
    """The targets that go with `params`: lam[i] * s(y[i]) + (1 - lam[i]) * s(y[perm[i]]),
    s(y) = (1 - label_smoothing) * y + label_smoothing / K, in float64 and rounded once to
    float32 on the labels' device (where the two labels are equal, that label itself), exactly
    as `cutmix_`/`mixup_` return them. Use the lam of the grid that was mixed
    (`params.at(h, w)`)."""
    if not isinstance(params, MixParams):
        raise TypeError(f"params: expected a cutmix_ext.MixParams, got {type(params).__name__}")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels: expected a tensor, got {type(labels).__name__}")
    if labels.device.type == "meta":
        raise ValueError("labels: expected a tensor with values (CPU or CUDA), got one on meta")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or \
            not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing: must be a number in [0, 1), got {label_smoothing!r}")
    n = labels.shape[0] if labels.dim() else 0
    if labels.dtype in (torch.int64, torch.int32):
        _check_class_indices(labels, n, num_classes)
        y = torch.zeros((n, num_classes), dtype=torch.float64, device=labels.device)
        y.scatter_(1, labels.long().view(n, 1), 1.0)
    elif labels.is_floating_point():
        if labels.dim() != 2:
            raise ValueError(f"labels: soft targets must have shape (N, K), got {tuple(labels.shape)}")
        if num_classes is not None and num_classes != labels.shape[1]:
            raise ValueError(f"num_classes: {num_classes} does not match the labels' K = "
                             f"{labels.shape[1]}")
        y = labels.double()
    else:
        raise TypeError(f"labels: expected int64/int32 class indices or floating-point targets, "
                        f"got dtype {labels.dtype}")
    _check_fields(params, ("perm", "lam"))
    if params.perm.shape != (n,):
        raise ValueError(f"labels, params.perm: {n} labels, but partners for "
                         f"{tuple(params.perm.shape)} samples")
    if not _compiling():
        _C.check_pairs_(params.perm, params.lam, n, "params.perm")
    k = y.shape[1]
    s = y * (1.0 - label_smoothing) + label_smoothing / k
    lam = params.lam.to(labels.device, torch.float64, non_blocking=True).view(n, 1)
    other = s[params.perm.to(labels.device, non_blocking=True)]
    return torch.where(s == other, s, lam * s + (1.0 - lam) * other).float()  # as the kernels


def mixed_cross_entropy(logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor,
                        lam: torch.Tensor, *, label_smoothing: float = 0.0,
                        reduction: str = "mean") -> torch.Tensor:
    """Cross entropy against the mixed target lam * s(y_a) + (1 - lam) * s(y_b) without building
    it: (1 - eps) * (lam * nll(y_a) + (1 - lam) * nll(y_b)) + eps * mean_k(-log p_k), with
    s(y) = (1 - eps) * onehot(y) + eps / K. Compact targets for large K: y_a = labels,
    y_b = labels[params.perm], lam = params.lam (of the grid that was mixed)."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits: expected a tensor, got {type(logits).__name__}")
    if logits.dim() != 2:
        raise ValueError(f"logits: expected shape (N, K), got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits: expected floating-point scores, got dtype {logits.dtype}")
    n, k = logits.shape
    for name, y in (("y_a", y_a), ("y_b", y_b)):
        if not isinstance(y, torch.Tensor) or y.shape != (n,) or y.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"{name}: expected int64/int32 class indices of shape ({n},), got "
                             f"{getattr(y, 'dtype', type(y).__name__)} {tuple(getattr(y, 'shape', ()))}")
        if y.device != logits.device:
            raise ValueError(f"{name}: expected on the logits' device {logits.device}, got {y.device}")
        # On CUDA the check would cost a host sync; gather reports it there.
        bad = (y < 0) | (y >= k) if y.device.type == "cpu" and n and not _compiling() else None
        if bad is not None and bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(f"{name}: class index {int(y[i])} at position {i} is outside [0, K = {k})")
    if not isinstance(lam, torch.Tensor) or lam.shape != (n,) or not lam.is_floating_point():
        raise ValueError(f"lam: expected a floating-point tensor of shape ({n},), got "
                         f"{getattr(lam, 'dtype', type(lam).__name__)} {tuple(getattr(lam, 'shape', ()))}")
    if lam.device.type != "cpu" and lam.device != logits.device:
        raise ValueError(f"lam: expected on the CPU or on {logits.device}, got {lam.device}")
    if lam.device.type == "cpu" and not _compiling() and not bool(((lam >= 0) & (lam <= 1)).all()):
        i = int((~((lam >= 0) & (lam <= 1))).nonzero()[0])
        raise ValueError(f"lam: entry {i} is {float(lam[i])}, outside [0, 1]")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or \
            not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing: must be in [0, 1), got {label_smoothing!r}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
    logp = torch.log_softmax(logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, 1)
    w = lam.to(logp.device, logp.dtype, non_blocking=True)
    nll_a = -logp.gather(1, y_a.long().view(n, 1)).view(n)
    nll_b = -logp.gather(1, y_b.long().view(n, 1)).view(n)
    loss = (1.0 - label_smoothing) * (w * nll_a + (1.0 - w) * nll_b)
    if label_smoothing:
        loss = loss + label_smoothing * -logp.mean(1)
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss
