"""Drop-in replacements for torchvision.transforms.v2.CutMix and MixUp: the same call and input
handling, mixing in place with cutmix_ext's kernels.

    from cutmix_ext.transforms import CutMix, MixUp   # instead of torchvision.transforms.v2
    cutmix = CutMix(num_classes=NUM_CLASSES)
    images, labels = cutmix(images, labels)
"""
import collections.abc
from typing import Any, Callable, Optional, Union

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from ._ops import MixParams, cutmix_, mixup_

__all__ = ["CutMix", "MixUp"]

try:  # torchvision's tensor subclasses, only to recognise images and videos among the inputs
    from torchvision import tv_tensors as _tv
except ImportError:  # pragma: no cover - torchvision is optional
    _tv = None


def _find_labels(inputs: Any) -> torch.Tensor:
    """torchvision's default labels getter: the second item of a tuple or list, either the labels
    tensor or a dict holding it; or a dict. In a dict, the key "labels" (any case), else the first
    key that contains "label"."""
    if isinstance(inputs, (tuple, list)):
        inputs = inputs[1]
    if isinstance(inputs, torch.Tensor) and (_tv is None or not isinstance(inputs, _tv.TVTensor)):
        return inputs
    if not isinstance(inputs, collections.abc.Mapping):
        raise ValueError("labels_getter: the default one needs a dictionary or a two-tuple whose second "
                         f"item is a dictionary or a tensor, got {type(inputs).__name__}")
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


class _Mix(torch.nn.Module):
    _cutmix: bool

    def __init__(self, *, alpha: float = 1.0, num_classes: Optional[int] = None,
                 labels_getter: Union[str, Callable[[Any], torch.Tensor]] = "default",
                 label_smoothing: float = 0.0, pairing: str = "roll", per_sample: bool = False,
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
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
        self.label_smoothing, self.pairing, self.per_sample = label_smoothing, pairing, per_sample
        self.generator = generator
        self.last_params: Optional[MixParams] = None

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, num_classes={self.num_classes}, pairing={self.pairing!r}, "
                f"per_sample={self.per_sample}, label_smoothing={self.label_smoothing}")

    def forward(self, *inputs: Any) -> Any:
        inputs = inputs if len(inputs) > 1 else inputs[0]
        flat, spec = tree_flatten(inputs)
        labels = self._labels_getter(inputs)
        if not isinstance(labels, torch.Tensor):
            raise ValueError(f"labels: must be a tensor, got {type(labels).__name__}")
        if labels.ndim not in (1, 2):
            raise ValueError(f"labels: expected class indices (N,) or probabilities (N, K), got shape "
                             f"{tuple(labels.shape)}")
        if labels.ndim == 2 and self.num_classes is not None and labels.shape[-1] != self.num_classes:
            raise ValueError(f"labels: (N, K) labels with K = {labels.shape[-1]} != num_classes = "
                             f"{self.num_classes}; leave num_classes None")
        if labels.ndim == 1 and self.num_classes is None:
            raise ValueError("num_classes: required with class-index (1D) labels, got None")
        label_at = next(i for i, x in enumerate(flat) if x is labels)
        # As torchvision: images and videos; without any, the first plain tensor besides the labels.
        targets = [i for i, x in enumerate(flat) if _is_image_like(x)]
        if not targets:
            targets = [next((i for i, x in enumerate(flat) if i != label_at and _is_plain_tensor(x)), None)]
            if targets[0] is None:
                raise ValueError("images: found no image or video tensor among the inputs")
        for i in targets:
            x = flat[i]
            want = 5 if _tv is not None and isinstance(x, _tv.Video) else 4
            if x.ndim != want:
                raise ValueError(f"images: expected a batched input with {want} dims, got shape "
                                 f"{tuple(x.shape)}")
            if x.shape[0] != labels.shape[0]:
                raise ValueError(f"images: batch size {x.shape[0]} does not match the labels' "
                                 f"{labels.shape[0]}")
        k = self.num_classes if labels.ndim == 1 else None
        fn = cutmix_ if self._cutmix else mixup_
        first = flat[targets[0]]
        _, mixed, params = fn(first, labels, k, alpha=self.alpha, label_smoothing=self.label_smoothing,
                              pairing=self.pairing, per_sample=self.per_sample,
                              generator=self.generator, return_params=True)
        for i in targets[1:]:  # the other images of the sample get the same draw
            fn(flat[i], labels, k, params=params)
        self.last_params = params
        flat[label_at] = mixed
        return tree_unflatten(flat, spec)


class CutMix(_Mix):
    """torchvision.transforms.v2.CutMix, in place: the same call, inputs and labels_getter; images
    (uint8 too) keep their layout; labels come back as float32 (N, K). Extra keyword arguments
    give what torchvision lacks: label_smoothing, pairing ("roll" as torchvision, "flip",
    "random"), per_sample boxes and a generator. `last_params` holds the last draw."""

    _cutmix = True


class MixUp(_Mix):
    """torchvision.transforms.v2.MixUp, in place (uint8 rounded once); see CutMix."""

    _cutmix = False
