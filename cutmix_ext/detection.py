"""CutMix and MixUp for object-detection batches: the images mixed in place by the same kernels
as `cutmix_`/`mixup_`, and the boxes brought along with them::

    images, targets = cutmix_ext.detection.cutmix_(images, targets)   # (N, C, H, W), boxes
    images, targets = cutmix_ext.detection.mixup_(images, targets)
    batch = cutmix_ext.detection.cutmix_(batch)                       # a YOLO batch

``targets`` takes each form detection code uses:

- a list of N dicts (torchvision's): ``"boxes"`` a ``tv_tensors.BoundingBoxes`` (XYXY, XYWH or
  CXCYWH) or an ``(M_i, 4)`` tensor in ``box_format`` (XYXY by default), ``"labels"``
  ``(M_i,)``; ``"masks"`` ``(M_i, H, W)`` instance masks and the keys named by ``per_box``
  follow their boxes; every other key passes through unchanged;
- the flat form: a dict with ``"boxes"`` ``(M, 4)`` in ``box_format``, ``"labels"`` ``(M,)``
  and ``"batch_idx"`` ``(M,)`` (and ``"masks"`` ``(M, H, W)``), worked on by one op on the
  boxes' device (CPU or CUDA), without a loop over the samples;
- ultralytics' collated YOLO batch, passed alone in place of the images: ``"img"`` ``(N, 3, H,
  W)``, ``"cls"`` ``(M, 1)``, ``"bboxes"`` ``(M, 4)`` normalized centre-x, centre-y, width,
  height, ``"batch_idx"`` ``(M,)``; its other keys (``im_file``, ``ori_shape``, ...) pass
  through.

It comes back in the same form, boxes in their type and format, with a float32 "weights" per box
(1 for CutMix; lam for a sample's own boxes and 1 - lam for its partner's under MixUp). The
image-level lam is params.lam.

Sample i with patch box B and partner j = perm[i] (pixels, half-open): under CutMix, i keeps each
own box b whose visible part b \\ B is nonempty and at least min_visibility of b's area, shrunk to
the tightest box around that part; then come j's boxes b cut to b & B, kept when nonempty and at
least min_visibility of b's area. Under MixUp, i's boxes, then j's; a box of weight 0 is dropped
(a sample left alone, lam = 1, gets none of its partner's). Boxes are clipped to the image first;
those of zero area are dropped. A sample paired with itself keeps its image, boxes and weights
(1) as they were. A box with x2 < x1 or y2 < y1 (a negative width or height) is refused.

``rule="avoid"`` (CutMix) is ultralytics' rule, which keeps the image's own objects whole: each
sample draws ``candidates`` patches and takes the first that overlaps none of its own boxes,
when it pastes at least one partner box (``min_visibility``, 0.1 by default, of the box inside
the patch); otherwise it is left alone, an empty box and lam = 1 in the returned params.

Not mixed, and refused: keypoints, polygon segments and rotated boxes."""
import collections.abc
import functools
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

from . import _sampling
from ._ops import (MixParams, _check_batch, _check_kernels, _check_later, _check_masks, _check_params,
                   _check_sampling, _general, _mix_masks, mix_, sample_params)

__all__ = ["MixCollate", "collate", "cutmix_", "mixup_"]

_ops = torch.ops.cutmix_ext  # a module attribute, where the emulation's tests put the CUDA kernels

_AXIS_ALIGNED = ("XYXY", "XYWH", "CXCYWH")
_FIELDS = {"XYXY": "(x1, y1, x2, y2)", "XYWH": "(x, y, w, h)", "CXCYWH": "(cx, cy, w, h)"}
# What a box cannot carry through a cut: refused wherever it appears.
_NOT_MIXED = {"keypoints": "keypoints", "segments": "polygon segments", "polygons": "polygon segments"}
_RULES = ("occlude", "avoid")
Targets = Union[List[dict], dict]


def cutmix_(images: Union[torch.Tensor, dict], targets: Optional[Targets] = None, *, alpha: float = 1.0,
            min_visibility: Optional[float] = None, rule: str = "occlude", candidates: int = 3,
            pairing: Union[str, torch.Tensor] = "roll", per_sample: bool = True, p: float = 1.0,
            generator: Optional[torch.Generator] = None, params: Optional[MixParams] = None,
            return_params: bool = False, normalized: bool = False, box_format: Optional[str] = None,
            per_box: Sequence[str] = ("iscrowd",), masks: Optional[torch.Tensor] = None):
    """CutMix of a detection batch in place.

    :param images: as `cutmix_ext.cutmix_` takes them, or a YOLO batch dict (then no targets).
    :param targets: the list or the flat form (see the module).
    :param min_visibility: the share of a box's area that must stay visible (own boxes) or be
        pasted (the partner's) for it to be kept; None: 0.25, or 0.1 with ``rule="avoid"``.
    :param rule: ``"occlude"`` (patches fall anywhere; own boxes are shrunk or dropped by
        min_visibility) or ``"avoid"`` (ultralytics': patches never cover the image's own boxes).
    :param candidates: with ``rule="avoid"``, the patches each sample draws to choose from.
        Given ``params``, their patches apply as they are; ``rule`` then only sets
        min_visibility's default.
    :param p: the probability that a sample is mixed at all; the others keep everything.
    :param normalized: box coordinates are fractions of the image's width and height.
    :param box_format: of plain box tensors: ``"XYXY"`` (default), ``"XYWH"`` or ``"CXCYWH"``.
    :param per_box: other keys of the list form whose ``(M_i, ...)`` tensors follow their boxes.
    :param masks: an ``(N, H, W)`` or ``(N, 1, H, W)`` semantic mask, cut and pasted with the
        images.
    :returns: ``(images, new_targets[, params])``, or ``new_batch[, params]`` for a YOLO batch.
    """
    if rule not in _RULES:
        raise ValueError(f"rule: expected 'occlude' or 'avoid', got {rule!r}")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or not 1 <= candidates <= 64:
        raise ValueError(f"candidates: expected an int in [1, 64], got {candidates!r}")
    if min_visibility is None:
        min_visibility = 0.1 if rule == "avoid" else 0.25
    _sampling.check_probability(min_visibility, "min_visibility")
    return _run("cutmix", images, targets, alpha, pairing, per_sample, p, generator, params,
                return_params, normalized, box_format, per_box, float(min_visibility), masks,
                rule, candidates)


def mixup_(images: Union[torch.Tensor, dict], targets: Optional[Targets] = None, *, alpha: float = 1.0,
           pairing: Union[str, torch.Tensor] = "roll", per_sample: bool = True, p: float = 1.0,
           generator: Optional[torch.Generator] = None, params: Optional[MixParams] = None,
           return_params: bool = False, normalized: bool = False, box_format: Optional[str] = None,
           per_box: Sequence[str] = ("iscrowd",), masks: Optional[torch.Tensor] = None):
    """MixUp of a detection batch in place: sample i keeps its boxes with weight lam[i] and gets
    its partner's with weight 1 - lam[i]. A semantic ``masks`` ``(N, H, W)`` or ``(N, 1, H, W)``
    takes the label of the image that weighs more: sample i gets its partner's mask where
    lam[i] < 0.5 (ultralytics' rule). Other arguments as in `cutmix_`."""
    return _run("mixup", images, targets, alpha, pairing, per_sample, p, generator, params,
                return_params, normalized, box_format, per_box, 0.0, masks, "occlude", 1)


class _Flat(NamedTuple):
    """Every box of the batch in one tensor: XYXY pixels in float64 (exact for float32 and for
    integer coordinates below 2**53), the sample each belongs to, its labels, its masks; and
    where its rows came from, (name, tensor, format, first row), to name a bad one."""
    boxes: torch.Tensor
    idx: torch.Tensor
    labels: torch.Tensor
    masks: Optional[torch.Tensor]
    extra: dict  # per_box key -> (M, ...) tensor
    origins: list


def _run(op, images, targets, alpha, pairing, per_sample, p, generator, params, return_params,
         normalized, box_format, per_box, min_vis, masks, rule, candidates):
    yolo = isinstance(images, collections.abc.Mapping)
    if yolo:
        if targets is not None:
            raise ValueError("targets: a YOLO batch carries its targets; pass the batch alone")
        batch, images, normalized = images, _yolo_images(images), True
    elif targets is None:
        raise TypeError("targets: required with an images tensor (or pass a YOLO batch dict alone)")
    _check_batch(images)
    _check_kernels(images)
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    for name, flag in (("per_sample", per_sample), ("return_params", return_params),
                       ("normalized", normalized)):
        _sampling.check_flag(flag, name)
    p = _sampling.check_probability(p)
    if box_format is not None and box_format not in _AXIS_ALIGNED:
        raise ValueError(f"box_format: expected one of {', '.join(_AXIS_ALIGNED)} or None, got {box_format!r}")
    if isinstance(per_box, str) or not all(isinstance(k, str) for k in per_box):
        raise TypeError(f"per_box: expected a sequence of key names, got {per_box!r}")
    refused = [k for k in per_box if k in _NOT_MIXED]
    if refused:
        raise ValueError(f"per_box: {refused[0]!r} holds {_NOT_MIXED[refused[0]]}, which CutMix and "
                         f"MixUp do not carry through a cut")
    listed = not yolo and isinstance(targets, (list, tuple))
    if yolo:
        flat = _from_yolo(batch, n)
    elif listed:
        flat = _from_list(targets, n, h, w, per_box, box_format)
    else:
        flat = _from_flat(targets, n, box_format)
    if flat.boxes.device != images.device:
        raise ValueError(f"targets: boxes on {flat.boxes.device}, images on {images.device}")
    boxes = flat.boxes
    if normalized:
        size = torch.tensor([w, h, w, h], dtype=torch.float64, device=boxes.device)
        boxes = boxes * size
    if params is None:
        if op == "cutmix" and rule == "avoid":
            params = _named(flat, _avoid, boxes, flat.idx, n, h, w, alpha, pairing, per_sample, p,
                            generator, candidates, min_vis)
        else:
            params = sample_params(images, op, alpha=alpha, pairing=pairing, per_sample=per_sample,
                                   generator=generator, p=p)
    else:
        if p != 1.0:
            raise ValueError(f"p: the params say which samples mix; pass p=1 with them, got {p!r}")
        _check_params(params, images, op == "cutmix")
        if params.perm.shape != (n,):
            raise ValueError(f"params.perm: drawn for {params.perm.shape[0]} samples, the batch has {n}")
        if op == "mixup" and (params.boxes is not None or params.mode is not None):
            params = MixParams(params.perm, None, params.lam, params.size)
        elif op == "cutmix" and params.mode is not None:
            raise ValueError("params: per-sample modes (mix_'s) are not for detection batches; "
                             "pass CutMix parameters (mode None)")
    general = _general(params, images, labels=False)  # for the images and the masks alike
    inputs = _target_tensors(batch, "batch", ("img",)) if yolo else _target_tensors(targets, "targets")
    mask_params = None
    if masks is not None:
        mask_params = general if op == "cutmix" else _larger_weight(params, images)
        _check_masks(masks, images, mask_params, None, 0.0, *inputs)
    _check_later(images, "images", general, 0.0, *inputs)
    rows = _named(flat, _select, boxes, flat.idx, params, op == "cutmix", h, w, min_vis)
    if normalized:
        rows = (rows[0] / size,) + rows[1:]
    out, weights = _assemble(flat, *rows, params if op == "cutmix" else None, h, w)
    mix_(images, None, general)  # last: everything that can fail has been checked
    if masks is not None:
        _mix_masks(masks, mask_params)
    if yolo:
        new = _to_yolo(out, weights, batch)
        return (new, params) if return_params else new
    new = _to_list(out, weights, targets, n, box_format) if listed else _to_flat(out, weights, targets, box_format)
    return (images, new, params) if return_params else (images, new)


def _larger_weight(params, images):
    """MixUp's params for a semantic mask, as CutMix general params: the whole partner mask
    where lam < 0.5, nothing elsewhere (nor for a sample paired with itself)."""
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    take = (params.lam < 0.5) & (params.perm != torch.arange(n))
    boxes = torch.where(take.view(n, 1), torch.tensor([0, 0, w, h]), torch.zeros(4, dtype=torch.int64))
    return _general(MixParams(params.perm, boxes, _sampling.area_lam(boxes, h, w), (h, w)), images,
                    labels=False)


def _avoid(boxes, idx, n, h, w, alpha, pairing, per_sample, p, generator, candidates, min_vis):
    """rule="avoid": the partners, `candidates` patches per sample drawn by the default sampler,
    the op's choice among them, and p's."""
    if not per_sample:
        raise ValueError("per_sample: rule='avoid' picks a patch per image, which needs "
                         "per_sample=True")
    name, perm = _check_sampling(alpha, pairing, generator, n)
    perm = perm.to("cpu", torch.int64, copy=True) if perm is not None else \
        _sampling.partners(n, name, generator)
    drawn = _ops.sample(n * candidates, h, w, float(alpha), True, True, "roll",
                                        generator)[1]
    chosen = _ops.detection_choose(boxes, idx, perm, drawn.view(n, candidates, 4), h, w, min_vis)
    keep = _sampling.applied(n, p, generator)
    if keep is not None:
        chosen[~keep] = 0
    return MixParams(perm, chosen, _sampling.area_lam(chosen, h, w), (h, w))


def _named(flat, fn, *args):
    """fn(*args), with a box refused by the op named as the caller wrote it."""
    try:
        return fn(*args)
    except ValueError as exc:
        if str(exc).startswith("boxes: row "):
            _refuse_bad_box(flat)
        raise


def _refuse_bad_box(flat):
    b = flat.boxes.cpu()
    bad = ~((b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1]))
    if not bool(bad.any()):
        return
    k = int(bad.nonzero()[0, 0])
    name, t, fmt, first = next(o for o in reversed(flat.origins) if o[3] <= k)
    j = k - first
    values = ", ".join(f"{float(v):g}" for v in t[j].tolist())
    why = "x2 < x1 or y2 < y1" if fmt == "XYXY" else "a negative width or height"
    raise ValueError(f"{name}: box {j} {_FIELDS[fmt]} = ({values}) is not a box ({why}; NaN "
                     f"neither); nothing was changed") from None


def _target_tensors(targets, name, skip=()):
    """The targets' tensors as (name, tensor) pairs, which must not share the images' memory."""
    if isinstance(targets, (list, tuple)):
        return tuple((f"{name}[{i}][{k!r}]", v) for i, t in enumerate(targets) for k, v in t.items()
                     if isinstance(v, torch.Tensor))
    return tuple((f"{name}[{k!r}]", v) for k, v in targets.items()
                 if isinstance(v, torch.Tensor) and k not in skip)


def _rows(t, i):
    """t's rows i. Not t[i]: on the CPU, advanced indexing of a 2-D tensor runs in parallel and
    costs milliseconds where another process holds a core; index_select takes microseconds."""
    return t.index_select(0, i)


def _select(boxes, idx, params, cutmix, h, w, min_vis):
    """The rows each sample keeps and gets: (boxes, source rows, samples, own?, weights), ordered
    by sample, then its own before its partner's, then source row. The op
    cutmix_ext::detection_boxes: two passes over the boxes on the CPU, one launch on CUDA (and
    one wait, for the number of rows)."""
    return _ops.detection_boxes(boxes, idx, params.perm, params.boxes if cutmix else None, params.lam,
                                h, w, min_vis)


def _inside(p, h, w, device):
    """(M, H, W): where each row's patch p covers the image."""
    ys = torch.arange(h, device=device, dtype=torch.float64).view(1, h, 1)
    xs = torch.arange(w, device=device, dtype=torch.float64).view(1, 1, w)
    return ((ys >= p[:, 1].view(-1, 1, 1)) & (ys < p[:, 3].view(-1, 1, 1)) &
            (xs >= p[:, 0].view(-1, 1, 1)) & (xs < p[:, 2].view(-1, 1, 1)))


def _assemble(flat: _Flat, boxes, src, dst, own, weights, cutmix_params, h, w):
    """The new _Flat: the selected rows with the labels, masks and per-box keys of their source
    rows; under CutMix an own instance mask loses the patch, a pasted one keeps only the patch."""
    masks = None if flat.masks is None else _rows(flat.masks, src)
    if masks is not None and cutmix_params is not None:
        inside = _inside(_rows(cutmix_params.boxes.to(boxes.device, torch.float64), dst), h, w, boxes.device)
        masks = masks * torch.where(own.view(-1, 1, 1), ~inside, inside).to(masks.dtype)
    extra = {k: _rows(v, src) for k, v in flat.extra.items()}
    return _Flat(boxes, dst, _rows(flat.labels, src), masks, extra, []), weights


# ---- the two forms ----

def _box_tensor(b, name):
    if not isinstance(b, torch.Tensor) or b.dim() != 2 or b.shape[1] != 4:
        raise ValueError(f"{name}: expected an (M, 4) tensor, got "
                         f"{tuple(getattr(b, 'shape', ())) if isinstance(b, torch.Tensor) else type(b).__name__}")
    if b.dtype == torch.bool or b.is_complex():
        raise TypeError(f"{name}: expected real coordinates, got dtype {b.dtype}")
    return b


@functools.lru_cache(maxsize=None)  # a broken torchvision fails slowly: once is enough
def _tv_tensors():
    """(torchvision.tv_tensors, None), or (None, why not): torchvision absent, or installed but
    failing to import (built for another torch, it raises RuntimeError "operator torchvision::nms
    does not exist"), which is taken as absent. Shared with transforms, which says so."""
    try:
        from torchvision import tv_tensors
        return tv_tensors, None
    except Exception as exc:  # noqa: BLE001
        if isinstance(exc, ModuleNotFoundError) and exc.name == "torchvision":
            return None, "torchvision was not installed when cutmix_ext was imported"
        return None, (f"torchvision is installed but `from torchvision import tv_tensors` failed "
                      f"({type(exc).__name__}: {exc})")


def _tv():
    return _tv_tensors()[0]


def _to_xyxy(b, fmt):
    b = b.double()
    if fmt == "XYWH":
        return torch.cat((b[:, :2], b[:, :2] + b[:, 2:]), 1)
    if fmt == "CXCYWH":
        return torch.cat((b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2), 1)
    return b


def _from_xyxy(b, fmt):
    if fmt == "XYWH":
        return torch.cat((b[:, :2], b[:, 2:] - b[:, :2]), 1)
    if fmt == "CXCYWH":
        return torch.cat(((b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]), 1)
    return b


def _format(boxes, name, h, w, tv, box_format):
    """The format name of a BoundingBoxes (checked against the image and box_format), or
    box_format (default XYXY) for a tensor."""
    if tv is None or not isinstance(boxes, tv.BoundingBoxes):
        return box_format or "XYXY"
    fmt = boxes.format.name
    if box_format is not None and fmt != box_format:
        raise ValueError(f"{name}: a BoundingBoxes in {fmt}, but box_format={box_format!r}; a "
                         f"BoundingBoxes states its own format (leave box_format None)")
    if fmt not in _AXIS_ALIGNED:
        raise ValueError(f"{name}: format {fmt} is rotated; CutMix and MixUp of boxes take the "
                         f"axis-aligned formats {', '.join(_AXIS_ALIGNED)}")
    if tuple(boxes.canvas_size) != (h, w):
        raise ValueError(f"{name}: canvas_size {tuple(boxes.canvas_size)} is not the images' "
                         f"{(h, w)}")
    return fmt


def _refuse_not_mixed(t, name, tv):
    for k, v in t.items():
        if k in _NOT_MIXED or (tv is not None and hasattr(tv, "KeyPoints") and isinstance(v, tv.KeyPoints)):
            what = _NOT_MIXED.get(k, "keypoints")
            raise ValueError(f"{name}[{k!r}]: {what} are not mixed (CutMix would cut them, MixUp "
                             f"would leave them beside the partner's); drop them before mixing")


def _from_list(targets, n, h, w, per_box, box_format) -> _Flat:
    if len(targets) != n:
        raise ValueError(f"targets: {len(targets)} dicts for a batch of {n} images")
    boxes, formats, labels, masks, extra = [], [], [], [], {k: [] for k in per_box}
    with_masks = n > 0 and isinstance(targets[0], collections.abc.Mapping) and "masks" in targets[0]
    tv = _tv()
    for i, t in enumerate(targets):
        if not (type(t) is dict or isinstance(t, collections.abc.Mapping)) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"targets[{i}]: expected a dict with 'boxes' and 'labels', got "
                             f"{list(t) if isinstance(t, collections.abc.Mapping) else type(t).__name__}")
        _refuse_not_mixed(t, f"targets[{i}]", tv)
        b = t["boxes"]
        if type(b) is torch.Tensor and b.dim() == 2 and b.shape[1] == 4 and b.is_floating_point():
            fmt = box_format or "XYXY"  # as usual: a plain tensor of float coordinates
        else:
            name = f"targets[{i}]['boxes']"
            fmt = _format(_box_tensor(b, name), name, h, w, tv, box_format)
        m = b.shape[0]
        lab = t["labels"]
        if not isinstance(lab, torch.Tensor) or lab.shape != (m,):
            raise ValueError(f"targets[{i}]['labels']: expected shape ({m},) for its {m} boxes, got "
                             f"{tuple(getattr(lab, 'shape', ())) or type(lab).__name__}")
        for k in extra:
            if k in t:
                v = t[k]
                if not isinstance(v, torch.Tensor) or v.dim() < 1 or v.shape[0] != m:
                    raise ValueError(f"targets[{i}][{k!r}]: a per-box key needs ({m}, ...) rows, got "
                                     f"{tuple(getattr(v, 'shape', ())) or type(v).__name__}")
                extra[k].append(v)
        if ("masks" in t) != with_masks:
            raise ValueError(f"targets[{i}]: 'masks' must be in every dict or in none")
        if with_masks:
            mk = t["masks"]
            if not isinstance(mk, torch.Tensor) or tuple(mk.shape) != (m, h, w):
                raise ValueError(f"targets[{i}]['masks']: expected instance masks ({m}, {h}, {w}), got "
                                 f"{tuple(getattr(mk, 'shape', ())) or type(mk).__name__}")
            masks.append(mk)
        boxes.append(b if type(b) is torch.Tensor else b.as_subclass(torch.Tensor))
        formats.append(fmt)
        labels.append(lab)
    for k, vs in extra.items():
        if vs and len(vs) != n:
            raise ValueError(f"targets: per-box key {k!r} is in some dicts and not in others")
    devices = {b.device for b in boxes} | {lab.device for lab in labels}
    if len(devices) > 1:
        raise ValueError(f"targets: boxes and labels on several devices {sorted(map(str, devices))}")
    dev = boxes[0].device if boxes else torch.device("cpu")
    sizes = [b.shape[0] for b in boxes]
    counts = torch.tensor(sizes, dtype=torch.int64, device=dev)
    firsts = [0]
    for m in sizes[:-1]:
        firsts.append(firsts[-1] + m)
    origins = [(f"targets[{i}]['boxes']", b, f, first) for i, (b, f, first) in enumerate(zip(boxes, formats, firsts))]
    idx = torch.repeat_interleave(torch.arange(n, device=dev), counts)
    if not boxes:
        xyxy = torch.zeros(0, 4, dtype=torch.float64)
    elif len(set(formats)) == 1:  # as usual: one conversion for the batch
        xyxy = _to_xyxy(torch.cat(boxes), formats[0])
    else:
        xyxy = torch.cat([_to_xyxy(b, f) for b, f in zip(boxes, formats)])
    return _Flat(xyxy, idx, torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64),
                 torch.cat(masks) if with_masks else None,
                 {k: torch.cat(v) for k, v in extra.items() if v}, origins)


def _from_flat(targets, n, box_format) -> _Flat:
    if not isinstance(targets, collections.abc.Mapping):
        raise TypeError(f"targets: expected a list of N dicts or a dict with 'boxes', 'labels' and "
                        f"'batch_idx', got {type(targets).__name__}")
    if "bboxes" in targets or "cls" in targets:
        raise ValueError("targets: 'bboxes'/'cls' are a YOLO batch's; pass the whole batch (with "
                         "'img') alone, in place of the images")
    missing = [k for k in ("boxes", "labels", "batch_idx") if k not in targets]
    if missing:
        raise ValueError(f"targets: the flat form needs 'boxes', 'labels' and 'batch_idx'; missing "
                         f"{missing}")
    _refuse_not_mixed(targets, "targets", _tv())
    b = _box_tensor(targets["boxes"], "targets['boxes']")
    idx = _batch_idx(targets, "targets", b, ("labels",), n)
    m = b.shape[0]
    masks = targets.get("masks")
    if masks is not None and (not isinstance(masks, torch.Tensor) or masks.dim() != 3 or masks.shape[0] != m):
        raise ValueError(f"targets['masks']: expected (M, H, W) instance masks for the {m} boxes")
    fmt = box_format or "XYXY"
    return _Flat(_to_xyxy(b, fmt), idx, targets["labels"], masks, {}, [("targets['boxes']", b, fmt, 0)])


def _batch_idx(d, name, b, keys, n):
    """d['batch_idx'] as int64, after checking it and the other per-box `keys` against b."""
    m = b.shape[0]
    for k in keys + ("batch_idx",):
        v = d[k]
        if not isinstance(v, torch.Tensor) or v.shape[:1] != (m,) or v.device != b.device or \
                (v.dim() != 1 and k != "cls"):
            raise ValueError(f"{name}[{k!r}]: expected shape ({m},) on {b.device} like the boxes, got "
                             f"{tuple(getattr(v, 'shape', ())) or type(v).__name__}"
                             f"{'' if not isinstance(v, torch.Tensor) else ' on ' + str(v.device)}")
    bi = d["batch_idx"]
    if bi.is_floating_point():  # ultralytics keeps it float
        if m and not bool((bi == bi.round()).all()):
            raise ValueError(f"{name}['batch_idx']: expected whole numbers")
    elif bi.dtype == torch.bool or bi.is_complex():
        raise TypeError(f"{name}['batch_idx']: expected integers, got dtype {bi.dtype}")
    idx = bi.long()
    if m and (int(idx.min()) < 0 or int(idx.max()) >= n):
        bad = idx[(idx < 0) | (idx >= n)][0]
        raise ValueError(f"{name}['batch_idx']: sample {int(bad)} is outside the batch of {n}")
    return idx


# ---- ultralytics' batch ----

_YOLO_REFUSED = {"keypoints": "keypoints (pose)", "masks": "segmentation masks at the model's mask "
                 "resolution", "segments": "polygon segments"}


def _yolo_images(batch):
    missing = [k for k in ("img", "cls", "bboxes", "batch_idx") if k not in batch]
    if missing:
        raise ValueError(f"batch: a YOLO batch needs 'img', 'cls', 'bboxes' and 'batch_idx'; missing "
                         f"{missing}")
    for k, what in _YOLO_REFUSED.items():
        if k in batch:
            raise ValueError(f"batch[{k!r}]: {what} are not mixed; CutMix and MixUp of a YOLO batch "
                             f"take detection batches (boxes and classes)")
    img = batch["img"]
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"batch['img']: expected a tensor, got {type(img).__name__}")
    return img


def _from_yolo(batch, n) -> _Flat:
    b = batch["bboxes"]
    if isinstance(b, torch.Tensor) and b.dim() == 2 and b.shape[1] == 5:
        raise ValueError("batch['bboxes']: (M, 5) rotated boxes (OBB) are not mixed; CutMix and "
                         "MixUp take axis-aligned boxes")
    b = _box_tensor(b, "batch['bboxes']")
    cls = batch["cls"]
    idx = _batch_idx(batch, "batch", b, ("cls",), n)
    if cls.dim() not in (1, 2) or cls.numel() != b.shape[0]:
        raise ValueError(f"batch['cls']: expected ({b.shape[0]}, 1) or ({b.shape[0]},), got {tuple(cls.shape)}")
    return _Flat(_to_xyxy(b, "CXCYWH"), idx, cls.reshape(-1), None, {}, [("batch['bboxes']", b, "CXCYWH", 0)])


def _to_yolo(out: _Flat, weights, batch):
    d = dict(batch)
    b0, cls0 = batch["bboxes"], batch["cls"]
    d.update(bboxes=_from_xyxy(out.boxes, "CXCYWH").to(b0.dtype),
             cls=out.labels.reshape((-1,) + tuple(cls0.shape[1:])),
             batch_idx=out.idx.to(batch["batch_idx"].dtype), weights=weights)
    return d


def _to_list(out: _Flat, weights, targets, n, box_format):
    counts = torch.bincount(out.idx, minlength=n).tolist()
    tv = _tv()
    first = targets[0]["boxes"] if n else None
    kinds = {(type(b), None if type(b) is torch.Tensor else getattr(b, "format", None), b.dtype)
             for b in (t["boxes"] for t in targets)}
    typed = tv is not None and isinstance(first, tv.BoundingBoxes)
    plain = box_format or "XYXY"
    if len(kinds) == 1:  # as usual: one conversion for the batch
        boxes = _from_xyxy(out.boxes, first.format.name if typed else plain).to(first.dtype).split(counts)
    else:
        boxes = out.boxes.split(counts)
    labels = out.labels.split(counts)
    masks = out.masks.split(counts) if out.masks is not None else None
    extra = {k: v.split(counts) for k, v in out.extra.items()}
    ws = weights.split(counts)
    new = []
    for i, t in enumerate(targets):
        b0 = t["boxes"]
        b = boxes[i]
        is_tv = tv is not None and isinstance(b0, tv.BoundingBoxes)
        if len(kinds) > 1:
            b = _from_xyxy(b, b0.format.name if is_tv else plain).to(b0.dtype)
        if is_tv:
            b = tv.wrap(b, like=b0)
        d = dict(t)
        d.update(boxes=b, labels=labels[i], weights=ws[i])
        if masks is not None:
            d["masks"] = tv.Mask(masks[i]) if tv is not None and isinstance(t["masks"], tv.Mask) else masks[i]
        for k, v in extra.items():
            d[k] = v[i]
        new.append(d)
    return new


def _to_flat(out: _Flat, weights, targets, box_format):
    d = dict(targets)
    b0 = targets["boxes"]
    d.update(boxes=_from_xyxy(out.boxes, box_format or "XYXY").to(b0.dtype), labels=out.labels,
             batch_idx=out.idx.to(targets["batch_idx"].dtype), weights=weights)
    if out.masks is not None:
        d["masks"] = out.masks
    return d


# ---- batches ----

def collate(batch: Sequence[Tuple[torch.Tensor, dict]], flat: bool = False):
    """collate_fn for detection samples of one size: (image (C, H, W), target dict) pairs become
    (images (N, C, H, W), targets), the targets a list of dicts or, with flat=True, one dict with
    'boxes', 'labels' and 'batch_idx' (the dicts' other keys are dropped there)."""
    if not batch:
        raise ValueError("batch: empty")
    sizes = {tuple(b[0].shape) for b in batch}
    if len(sizes) > 1:
        raise ValueError(f"batch: images of several sizes {sorted(sizes)}; resize or crop them to one "
                         f"size first (batched mixing needs one)")
    images = torch.stack([torch.as_tensor(b[0]) for b in batch])
    targets = [b[1] for b in batch]
    if not flat:
        return images, targets
    boxes = [t["boxes"].as_subclass(torch.Tensor) for t in targets]
    counts = torch.tensor([b.shape[0] for b in boxes])
    return images, {"boxes": torch.cat(boxes), "labels": torch.cat([t["labels"] for t in targets]),
                    "batch_idx": torch.repeat_interleave(torch.arange(len(batch)), counts)}


class MixCollate:
    """A collate_fn that stacks a detection batch (see `collate`) and mixes it in the worker:
    `DataLoader(..., collate_fn=MixCollate(cutmix_ext.transforms.CutMix(detection=True)))`, or
    any callable (images, targets) -> (images, targets). Picklable when `mix` is."""

    def __init__(self, mix: Any, flat: bool = False) -> None:
        if not callable(mix):
            raise TypeError(f"mix: expected a callable (images, targets) -> (images, targets), got "
                            f"{type(mix).__name__}")
        self.mix, self.flat = mix, bool(flat)

    def __call__(self, batch):
        return self.mix(*collate(batch, self.flat))
