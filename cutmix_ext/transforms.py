"""Drop-in replacements, mixing in place with cutmix_ext's kernels.

Instead of torchvision.transforms.v2::

    from cutmix_ext.transforms import CutMix, MixUp, RandomChoice
    cutmix_or_mixup = RandomChoice([CutMix(num_classes=NUM_CLASSES), MixUp(num_classes=NUM_CLASSES)])
    images, labels = cutmix_or_mixup(images, labels)

Instead of timm.data::

    from cutmix_ext.transforms import Mixup, FastCollateMixup
    mixup_fn = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=1000)
    images, targets = mixup_fn(images, labels)
"""
import collections.abc
import functools
import importlib.util
import math
import numbers
import warnings
from typing import Any, Callable, Optional, Union

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from . import _sampling
from .detection import _tv_tensors
from ._ops import (MixParams, _check_later, _check_masks, _general, cutmix_, mix_, mix_masks_, mixup_,
                   sample_params)

__all__ = ["CutMix", "FastCollateMixup", "Mixup", "MixUp", "RandomChoice"]

_sample_timm = torch.ops.cutmix_ext.sample_timm.default

# torchvision's tensor subclasses, to recognise images, videos, masks and boxes among the inputs.
# A broken torchvision is taken as absent, and said so: a warning now, and the reason in the error
# for any torchvision type among the inputs, which cannot be told apart.
_tv, _tv_missing = _tv_tensors()
if _tv is None and importlib.util.find_spec("torchvision") is not None:
    warnings.warn(f"cutmix_ext.transforms: {_tv_missing}; the transforms take plain tensors, "
                  f"not torchvision's tensor types")


def _find_labels(inputs: Any) -> torch.Tensor:
    """torchvision's default labels getter: the second item of a tuple or list, either the labels
    tensor or a dict holding it; or a dict. In a dict, the key "labels" (any case), else the first
    key that contains "label"."""
    if isinstance(inputs, (tuple, list)):
        inputs = inputs[1]
    if isinstance(inputs, torch.Tensor) and (_tv is None or not isinstance(inputs, _tv.TVTensor)):
        return inputs
    if not isinstance(inputs, collections.abc.Mapping):
        raise ValueError("labels: the default labels_getter needs a dictionary or a two-tuple whose "
                         f"second item is a dictionary or a tensor, got {type(inputs).__name__}")
    keys = [k for k in inputs if isinstance(k, str)]
    key = next((k for k in keys if k.lower() == "labels"), None) or \
        next((k for k in keys if "label" in k.lower()), None)
    if key is None:
        raise ValueError(f"labels_getter: no label-like key among {list(inputs)}; pass a callable "
                         f"labels_getter")
    return inputs[key]


def _is_image_like(x: Any) -> bool:
    return _tv is not None and isinstance(x, (_tv.Image, _tv.Video))


def _is_plain_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and (_tv is None or not isinstance(x, _tv.TVTensor))


def _refused(x: Any) -> Optional[str]:
    """The name of an input that mixing would leave behind, out of step with its mixed image (as
    torchvision, which refuses them too), or None."""
    if type(x).__module__.startswith("PIL.") and hasattr(x, "getbands"):
        return "a PIL image (mix a batched tensor: convert with transforms.v2.ToImage() and stack)"
    if _tv is not None:
        if isinstance(x, _tv.BoundingBoxes):
            return ("a tv_tensors.BoundingBoxes (the boxes would no longer match their mixed image; "
                    "detection=True mixes them with it)")
        keypoints = getattr(_tv, "KeyPoints", None)  # torchvision >= 0.23
        if keypoints is not None and isinstance(x, keypoints):
            return "a tv_tensors.KeyPoints (the points would no longer match their mixed image)"
    elif type(x).__module__.startswith("torchvision."):
        # Taken for a plain tensor, a mask or boxes would be mixed as an image, or left behind.
        return f"a {type(x).__module__}.{type(x).__name__}: {_tv_missing}"
    return None


def _as_labels(labels: torch.Tensor) -> torch.Tensor:
    """torchvision's label rules: (N, K) labels of any dtype are probabilities, made float32 when
    they are not floating point (one_hot's int64, bool, uint8); (N,) integer class indices of a
    narrow dtype are widened. Floating-point (N, K) labels are taken as they are (the targets come
    back float32 whatever their dtype)."""
    if labels.is_complex():
        raise TypeError(f"labels: expected class indices or probabilities, got dtype {labels.dtype}")
    if labels.ndim == 2 and not labels.is_floating_point():
        return labels.float()
    if labels.ndim == 1 and labels.dtype in (torch.uint8, torch.int8, torch.int16):
        return labels.long()
    return labels


class _State:
    def __init__(self) -> None:
        self.steps = 0
        self.last_params: Optional[MixParams] = None


class _Mix(torch.nn.Module):
    _cutmix: bool

    def __init__(self, *, alpha: float = 1.0, num_classes: Optional[int] = None,
                 labels_getter: Union[str, Callable[[Any], torch.Tensor]] = "default",
                 label_smoothing: float = 0.0, pairing: str = "roll", per_sample: bool = False,
                 generator: Optional[torch.Generator] = None, p: float = 1.0,
                 schedule_steps: Optional[int] = None, detection: bool = False,
                 min_visibility: Optional[float] = None, **variant: Any) -> None:
        super().__init__()
        _sampling.check_probability(p)
        if not isinstance(detection, bool):
            raise TypeError(f"detection: expected a bool, got {type(detection).__name__}")
        # detection: the default draw, with CutMix's rule for the boxes (see cutmix_ext.detection)
        boxes_rule = ("rule", "candidates") if self._cutmix else ()
        if detection and any(k not in boxes_rule for k in variant):
            raise ValueError(f"detection: mixes boxes with the default draw; not with "
                             f"{sorted(k for k in variant if k not in boxes_rule)}")
        if not detection and ("rule" in variant or "candidates" in variant):
            raise ValueError("rule, candidates: the rules for boxes, with detection=True")
        if min_visibility is not None and not (detection and self._cutmix):
            raise ValueError("min_visibility: the share of a box kept by CutMix, with detection=True")
        self.detection = detection
        if min_visibility is not None:
            _sampling.check_probability(min_visibility, "min_visibility")
        self.min_visibility = min_visibility
        if schedule_steps is not None and (isinstance(schedule_steps, bool) or
                                           not isinstance(schedule_steps, int) or schedule_steps <= 0):
            raise ValueError(f"schedule_steps: expected a positive int or None, got {schedule_steps!r}")
        self.p, self.schedule_steps = float(p), schedule_steps
        self._state = _State()
        self._variant = variant
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"alpha: must be a positive number, got {alpha!r}")
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes <= 0):
            raise ValueError(f"num_classes: expected a positive int or None, got {num_classes!r}")
        if labels_getter == "default":
            labels_getter = _find_labels
        elif not callable(labels_getter):
            raise ValueError(f"labels_getter: expected 'default' or a callable, got {labels_getter!r}")
        self.alpha, self.num_classes = float(alpha), num_classes
        self._labels_getter = labels_getter
        _sampling.check_flag(per_sample, "per_sample")
        self.label_smoothing, self.pairing, self.per_sample = label_smoothing, pairing, per_sample
        self.generator = generator

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, num_classes={self.num_classes}, pairing={self.pairing!r}, "
                f"per_sample={self.per_sample}, label_smoothing={self.label_smoothing}")

    # Per-call state in a plain object: nn.Module's __setattr__ costs as much as a small mix.
    @property
    def steps(self) -> int:
        """Calls so far (Scheduled CutMix's clock)."""
        return self._state.steps

    @property
    def last_params(self) -> Optional[MixParams]:
        """The draw of the last call."""
        return self._state.last_params

    def forward(self, *inputs: Any) -> Any:
        """Mixes the batch among ``inputs`` in place and returns the inputs with the labels
        replaced by float32 ``(N, K)`` targets, in the structure they came in (torchvision's
        call: ``(images, labels)``, a dict, or any structure its labels getter reads)."""
        inputs = inputs if len(inputs) > 1 else inputs[0]
        if self.detection:
            return self._detect(inputs)
        if self._labels_getter is _find_labels and type(inputs) is tuple and len(inputs) == 2 and \
                type(inputs[0]) is torch.Tensor and type(inputs[1]) is torch.Tensor:
            # (images, labels), the common call: nothing to look for among the inputs
            return inputs[0], self._apply([inputs[0]], inputs[1], [])
        flat, spec = tree_flatten(inputs)
        for x in flat:
            why = _refused(x)
            if why is not None:
                raise ValueError(f"inputs: {type(self).__name__} cannot mix {why}")
        labels = self._labels_getter(inputs)
        if not isinstance(labels, torch.Tensor):
            raise ValueError(f"labels: must be a tensor, got {type(labels).__name__}")
        label_at = next(i for i, x in enumerate(flat) if x is labels)
        # As torchvision: images and videos; without any, the first plain tensor besides the labels.
        targets = [i for i, x in enumerate(flat) if _is_image_like(x)]
        if not targets:
            targets = [next((i for i, x in enumerate(flat) if i != label_at and _is_plain_tensor(x)), None)]
            if targets[0] is None:
                raise ValueError("images: found no image or video tensor among the inputs")
        masks = [flat[i] for i, x in enumerate(flat) if _tv is not None and isinstance(x, _tv.Mask)]
        flat[label_at] = self._apply([flat[i] for i in targets], labels, masks)
        return tree_unflatten(flat, spec)

    def _detect(self, inputs: Any) -> Any:
        """(images, targets) of a detection batch, targets a list of per-image dicts or the flat
        dict, or a YOLO batch dict alone (see cutmix_ext.detection); the boxes are mixed with
        their images."""
        from . import detection

        yolo = isinstance(inputs, collections.abc.Mapping)
        if not yolo and not (isinstance(inputs, (tuple, list)) and len(inputs) == 2 and
                             isinstance(inputs[0], torch.Tensor)):
            raise ValueError("inputs: with detection=True, expected (images, targets), the images a batch "
                             "tensor and the targets a list of dicts or a flat dict; or a YOLO batch dict")
        kw = dict(alpha=self.alpha, pairing=self.pairing, per_sample=self.per_sample,
                  generator=self.generator, return_params=True, p=self._p())
        fn = detection.mixup_
        if self._cutmix:
            fn = functools.partial(detection.cutmix_, min_visibility=self.min_visibility, **self._variant)
        out = fn(inputs, **kw) if yolo else fn(*inputs, **kw)
        self._state.steps += 1
        self._state.last_params = out[-1]
        return out[0] if yolo else type(inputs)(out[:2])

    def _p(self) -> float:
        """p now: Scheduled CutMix raises it linearly from 0 to p over schedule_steps calls."""
        if self.schedule_steps is None:
            return self.p
        return self.p * min(1.0, self._state.steps / self.schedule_steps)

    def _apply(self, images: list, labels: torch.Tensor, masks: list) -> torch.Tensor:
        """Checks everything, then mixes the images (the first one draws) and masks in place;
        returns the mixed labels."""
        if labels.ndim not in (1, 2):
            raise ValueError(f"labels: expected class indices (N,) or probabilities (N, K), got shape "
                             f"{tuple(labels.shape)}")
        if labels.ndim == 2 and self.num_classes is not None and labels.shape[-1] != self.num_classes:
            raise ValueError(f"labels: (N, K) labels with K = {labels.shape[-1]} != num_classes = "
                             f"{self.num_classes}; leave num_classes None")
        if labels.ndim == 1 and self.num_classes is None:
            raise ValueError("num_classes: required with class-index (1D) labels, got None")
        labels = _as_labels(labels)
        for x in images:
            want = 5 if _tv is not None and isinstance(x, _tv.Video) else 4
            if x.ndim != want:
                raise ValueError(f"images: expected a batched input with {want} dims, got shape "
                                 f"{tuple(x.shape)}")
            if x.shape[0] != labels.shape[0]:
                raise ValueError(f"images: batch size {x.shape[0]} does not match the labels' "
                                 f"{labels.shape[0]}")
        if masks and not self._cutmix:
            raise ValueError("masks: MixUp blends pixels, which has no meaning for a segmentation "
                             "mask; masks go with CutMix only")
        k = self.num_classes if labels.ndim == 1 else None
        fn = cutmix_ if self._cutmix else mixup_
        first = images[0]
        state = self._state
        p = self._p()
        if len(images) == 1 and not masks:
            _, mixed, params = fn(first, labels, k, alpha=self.alpha, label_smoothing=self.label_smoothing,
                                  pairing=self.pairing, per_sample=self.per_sample,
                                  generator=self.generator, return_params=True, p=p, **self._variant)
        else:  # the draw, then every input checked against it, then the mixing
            params = sample_params(first, "cutmix" if self._cutmix else "mixup", alpha=self.alpha,
                                   pairing=self.pairing, per_sample=self.per_sample,
                                   generator=self.generator, p=p, **self._variant)
            plain = [x.as_subclass(torch.Tensor) for x in images]
            masks = [m.as_subclass(torch.Tensor) for m in masks]
            written = [("images", x) for x in plain] + [("masks", m) for m in masks]
            g = _general(params, first)
            for x in plain[1:]:  # the other images of the sample get the same draw
                _check_later(x, "images", g, 0.0, *[w for w in written if w[1] is not x],
                             ("labels", labels))
            for m in masks:
                _check_masks(m, first, g, labels, 0.0, *[w for w in written if w[1] is not m])
            _, mixed = fn(first, labels, k, label_smoothing=self.label_smoothing, params=params)
            for x in plain[1:]:
                fn(x, labels, k, params=params)
            for m in masks:
                mix_masks_(m, first, params)
        state.steps += 1
        state.last_params = params
        return mixed


class CutMix(_Mix):
    """torchvision.transforms.v2.CutMix, in place: the same call, inputs and labels_getter; images
    (uint8 too) keep their layout; labels come back as float32 (N, K). Extra keyword arguments
    give what torchvision lacks: label_smoothing, pairing ("roll" as torchvision, "flip",
    "random"), per_sample boxes, a generator, p (the probability of mixing) and
    schedule_steps (Scheduled CutMix: p rises linearly from 0 to p over that many calls), and
    the paper's variants box=, center_std=, label= (see cutmix_ext.sample_params). A
    tv_tensors.Mask among the inputs ((N, H, W) or (N, 1, H, W)) is cut and pasted with the same
    boxes and partners. detection=True takes (images, targets) of a detection batch, or a YOLO
    batch dict, instead and brings the boxes along (cutmix_ext.detection; min_visibility=,
    rule=, candidates= as there; p and schedule_steps too). `last_params` holds the last
    draw."""

    _cutmix = True


class MixUp(_Mix):
    """torchvision.transforms.v2.MixUp, in place (uint8 rounded once); see CutMix (p and
    schedule_steps too)."""

    _cutmix = False


class _Choice:
    def __init__(self) -> None:
        self.index: Optional[int] = None


class RandomChoice(torch.nn.Module):
    """torchvision.transforms.v2.RandomChoice, without torchvision: each call passes its inputs,
    as they are, to one of ``transforms``, picked with probabilities ``p``; it returns what that
    transform returns. ``RandomChoice([CutMix(...), MixUp(...)])`` is the tutorial's
    ``v2.RandomChoice([cutmix, mixup])``.

    The pick is torchvision's draw, ``torch.multinomial`` over ``p``, from ``generator``: under
    the same ``torch.manual_seed`` it picks as torchvision's does. The picked transform then
    draws its own parameters from its own generator. `Mixup` (timm's rules: partners N-1-i,
    smoothed targets, (images, class indices) calls only) picks between CutMix and MixUp by
    ``switch_prob`` in one call too, per batch, or per sample with ``mode="elem"``.

    Args:
        transforms: the transforms to pick from: a list or tuple of callables (or an
            ``nn.ModuleList``), at least one.
        p: one non-negative weight per transform, normalised to sum to 1 as in torchvision
            (``[2, 1]`` picks the first two times in three); None: all equally likely.
        generator: a CPU ``torch.Generator`` for the pick; default torch's CPU generator.

    Attributes:
        transforms (list): the transforms, in the given order.
        p (list of float): the normalised probabilities.
        generator: as given.
    """

    def __init__(self, transforms: Any, p: Optional[Any] = None, *,
                 generator: Optional[torch.Generator] = None) -> None:
        if not isinstance(transforms, (collections.abc.Sequence, torch.nn.ModuleList)):
            raise TypeError(f"transforms: expected a list or tuple of callables, got {type(transforms).__name__}")
        if not len(transforms):
            raise ValueError(f"transforms: expected at least one transform, got {transforms!r}")
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}]: expected a callable, got {t!r}")
        if p is None:
            weights = [1.0] * len(transforms)
        else:
            if isinstance(p, torch.Tensor):
                p = p.tolist()
            if not isinstance(p, collections.abc.Iterable) or isinstance(p, str):
                raise TypeError(f"p: expected a sequence of numbers or None, got {p!r}")
            weights = list(p)
            if len(weights) != len(transforms):
                raise ValueError(f"p: expected one weight per transform ({len(transforms)}), got "
                                 f"{len(weights)}: {p!r}")
            for i, v in enumerate(weights):
                if isinstance(v, bool) or not isinstance(v, numbers.Real):
                    raise TypeError(f"p[{i}]: expected a number, got {v!r}")
                if not 0 <= v < math.inf:
                    raise ValueError(f"p[{i}]: expected a non-negative finite number, got {v!r}")
        total = sum(map(float, weights))
        if not 0 < total < math.inf:
            raise ValueError(f"p: expected weights with a positive, finite sum, got {p!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator or None, got {generator!r}")
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(f"generator: the pick is drawn on the CPU, got a generator on {generator.device}")
        super().__init__()
        # A copy, never registered as submodules (as torchvision): editing the list passed in
        # cannot put it out of step with p.
        self.transforms = list(transforms)
        self.p = [float(v) / total for v in weights]
        self.generator = generator
        self._choice = _Choice()  # per-call state off nn.Module's __setattr__, as _Mix's

    def extra_repr(self) -> str:
        return f"p={self.p}, transforms={self.transforms}"

    @property
    def last_choice(self) -> Optional[int]:
        """The index in ``transforms`` of the last call's pick (None before the first call); a
        call whose transform raised leaves it as it was."""
        return self._choice.index

    @property
    def last_params(self) -> Optional[MixParams]:
        """The ``last_params`` of the last call's pick: its draw, unless that transform was called
        on its own since (None before the first call, or for a transform that keeps none)."""
        i = self._choice.index
        return None if i is None else getattr(self.transforms[i], "last_params", None)

    def forward(self, *inputs: Any) -> Any:
        """Calls one of the transforms, picked at random, with ``inputs``: ``(images, labels)``, a
        dict, or whatever the transforms take."""
        i = int(torch.multinomial(torch.tensor(self.p), 1, generator=self.generator))
        out = self.transforms[i](*inputs)
        self._choice.index = i
        return out


class Mixup:
    """timm.data.Mixup, in place and in one kernel launch: the same arguments, defaults and
    `mixup_fn(x, target) -> (x, target)` with float32 (N, K) smoothed targets, for modes
    'batch', 'pair' and 'elem'. In 'pair' and 'elem' every sample chooses CutMix or MixUp
    with its own lam and box, and the whole batch is still one launch (timm loops over the
    samples in Python on a clone of the batch). Odd batch sizes work (timm asserts an even
    one); uint8 and channels_last inputs too. Draws come from `generator` (default: torch's
    CPU generator) instead of numpy's global one. `mixup_enabled` turns mixing off, as in
    timm; `last_params` holds the last draw."""

    def __init__(self, mixup_alpha: float = 1.0, cutmix_alpha: float = 0.0,
                 cutmix_minmax: Optional[tuple] = None, prob: float = 1.0, switch_prob: float = 0.5,
                 mode: str = "batch", correct_lam: bool = True, label_smoothing: float = 0.1,
                 num_classes: int = 1000, *, generator: Optional[torch.Generator] = None) -> None:
        for name, v in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < math.inf:
                raise ValueError(f"{name}: must be a non-negative number, got {v!r}")
        if cutmix_minmax is not None:
            if len(cutmix_minmax) != 2 or not 0 <= cutmix_minmax[0] < cutmix_minmax[1] <= 1:
                raise ValueError(f"cutmix_minmax: expected (min, max) with 0 <= min < max <= 1, got "
                                 f"{cutmix_minmax!r}")
            cutmix_alpha = 1.0  # as timm: the box sides come from the range, lam only gates
        if mixup_alpha == 0 and cutmix_alpha == 0:
            raise ValueError("mixup_alpha, cutmix_alpha: one of them must be positive (or "
                             "cutmix_minmax given)")
        if mode not in ("batch", "pair", "elem"):
            raise ValueError(f"mode: expected 'batch', 'pair' or 'elem', got {mode!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
            raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.cutmix_minmax = tuple(map(float, cutmix_minmax)) if cutmix_minmax is not None else None
        self.mix_prob = _sampling.check_probability(prob, "prob")
        self.switch_prob = _sampling.check_probability(switch_prob, "switch_prob")
        self.mode, self.correct_lam = mode, bool(correct_lam)
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or \
                not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing: must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing, self.num_classes = float(label_smoothing), num_classes
        self.generator = generator
        self.mixup_enabled = True
        self.last_params: Optional[MixParams] = None

    def sample(self, x: torch.Tensor) -> MixParams:
        """The parameters of one call for a batch shaped like x (partner of i: N-1-i), drawn as
        timm draws them (the op sample_timm, csrc/sample.cpp)."""
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        perm, boxes, lam, mode = _sample_timm(
            n, h, w, self.mixup_alpha, self.cutmix_alpha, self.cutmix_minmax,
            self.mix_prob if self.mixup_enabled else 0.0, self.switch_prob, self.mode,
            self.correct_lam, self.generator)
        return MixParams(perm, boxes, lam, (h, w), mode)

    def __call__(self, x: torch.Tensor, target: torch.Tensor):
        """Mixes the batch ``x`` in place and returns ``(x, targets)``: float32 ``(N, K)``
        smoothed targets for the class indices ``target``, as timm's ``mixup_fn(x, target)``."""
        if not isinstance(x, torch.Tensor) or x.dim() < 4:
            raise ValueError(f"x: expected a batch tensor (N, C, H, W), got "
                             f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        self.last_params = self.sample(x)
        return mix_(x, target, self.last_params, self.num_classes,
                    label_smoothing=self.label_smoothing)


class FastCollateMixup(Mixup):
    """timm.data.FastCollateMixup: a collate_fn for DataLoader workers that stacks uint8 images
    (numpy CHW arrays or tensors) with their int labels and mixes the batch in place (MixUp
    rounded to nearest, as timm). Returns (uint8 images (N, C, H, W), float32 targets (N, K)).
    timm's 'half' mode is not offered."""

    def __call__(self, batch, _=None):
        """Stacks ``batch``, a list of ``(image, class index)`` pairs, and mixes it in place:
        returns uint8 images ``(N, C, H, W)`` and float32 targets ``(N, K)``."""
        if not batch:
            raise ValueError("batch: empty")
        images = torch.stack([torch.as_tensor(b[0]) for b in batch])
        if images.dtype != torch.uint8:
            raise ValueError(f"batch: expected uint8 images, got {images.dtype}")
        target = torch.as_tensor([int(b[1]) for b in batch], dtype=torch.int64)
        return super().__call__(images, target)
