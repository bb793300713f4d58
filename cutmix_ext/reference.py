"""A slow, plainly written pure-PyTorch statement of what the kernels compute: the test oracle.
Out of place; shares no code with the kernels."""
from typing import Optional

import torch

__all__ = ["cutmix_reference", "detection_boxes_reference", "detection_choose_reference",
           "mix_reference", "mixup_reference", "mixed_targets_reference"]


def mixed_targets_reference(labels: torch.Tensor, perm: torch.Tensor, lam: torch.Tensor,
                            num_classes: Optional[int] = None,
                            label_smoothing: float = 0.0) -> torch.Tensor:
    """lam[i] * s(y[i]) + (1 - lam[i]) * s(y[perm[i]]), s(y) = (1 - eps) * y + eps / K, in
    float64, rounded once to float32; where the two terms' labels are equal (always so for a
    sample paired with itself), that label itself."""
    if labels.dtype in (torch.int64, torch.int32):
        y = torch.nn.functional.one_hot(labels.long().cpu(), num_classes).double()
    else:
        y = labels.cpu().double()
    k = y.shape[1]
    s = y * (1.0 - label_smoothing) + label_smoothing / k
    lam = lam.cpu().double()[:, None]
    other = s[perm.cpu()]
    return torch.where(s == other, s, lam * s + (1.0 - lam) * other).float()


def cutmix_reference(images: torch.Tensor, labels: torch.Tensor, perm: torch.Tensor,
                     boxes: torch.Tensor, num_classes: Optional[int] = None,
                     label_smoothing: float = 0.0):
    """Returns (mixed copy of images, targets, exact lam)."""
    out = images.clone()
    h, w = images.shape[-2:]
    lam = torch.empty(images.shape[0], dtype=torch.float64)
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        out[i, ..., y1:y2, x1:x2] = images[int(perm[i]), ..., y1:y2, x1:x2]
        lam[i] = 1.0 - (x2 - x1) * (y2 - y1) / (w * h)
    return out, mixed_targets_reference(labels, perm, lam, num_classes, label_smoothing), lam


def mixup_reference(images: torch.Tensor, labels: torch.Tensor, perm: torch.Tensor,
                    lam: torch.Tensor, num_classes: Optional[int] = None,
                    label_smoothing: float = 0.0):
    """Returns (mixed copy of images, targets): lam * x + (1 - lam) * x[perm] in float32
    (float64 for float64), rounded once; uint8 rounds half to even and clamps. A sample paired
    with itself is kept as it is."""
    compute = torch.float64 if images.dtype == torch.float64 else torch.float32
    shape = (-1,) + (1,) * (images.dim() - 1)
    lam64 = lam.double().to(images.device)
    wa = lam64.to(compute).view(shape)
    wb = (1.0 - lam64).to(compute).view(shape)
    x = images.to(compute)
    out = x * wa + x[perm.to(images.device)] * wb
    if images.dtype == torch.uint8:
        out = out.round().clamp(0, 255)
    out = out.to(images.dtype)
    own = (perm.cpu() == torch.arange(len(perm))).to(images.device)
    out[own] = images[own]
    return out, mixed_targets_reference(labels, perm, lam, num_classes, label_smoothing)


def mix_reference(images: torch.Tensor, labels: Optional[torch.Tensor], perm: torch.Tensor,
                  boxes: torch.Tensor, lam: torch.Tensor, mode: torch.Tensor,
                  num_classes: Optional[int] = None, label_smoothing: float = 0.0,
                  fill: float = 0.0):
    """The general op, sample by sample: inside box i, mode 0 pastes images[perm[i]], mode 1
    blends lam[i] * own + (1 - lam[i]) * partner (rounded as mixup_reference), mode 2 writes
    fill; a sample paired with itself changes only by a fill. Returns (mixed copy, targets with
    lam as given, or None without labels)."""
    out = images.clone()
    compute = torch.float64 if images.dtype == torch.float64 else torch.float32
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        j, kind = int(perm[i]), int(mode[i])
        if j == i and kind != 2:
            continue
        if kind == 0:
            out[i, ..., y1:y2, x1:x2] = images[j, ..., y1:y2, x1:x2]
        elif kind == 1:
            wa = torch.tensor(float(lam[i]), dtype=torch.float64).to(compute)
            wb = torch.tensor(1.0 - float(lam[i]), dtype=torch.float64).to(compute)
            v = images[i, ..., y1:y2, x1:x2].to(compute) * wa + images[j, ..., y1:y2, x1:x2].to(compute) * wb
            if images.dtype == torch.uint8:
                v = v.round().clamp(0, 255)
            out[i, ..., y1:y2, x1:x2] = v.to(images.dtype)
        else:
            out[i, ..., y1:y2, x1:x2] = fill
    if labels is None:
        return out, None
    return out, mixed_targets_reference(labels, perm, lam, num_classes, label_smoothing)


def detection_boxes_reference(op: str, boxes, labels, perm, patches, lam, height: int, width: int,
                              min_visibility: float = 0.25):
    """The boxes of a mixed detection batch, sample by sample, in plain arithmetic on Python
    floats. boxes[i]: sample i's (x1, y1, x2, y2) pixel boxes; labels[i] theirs; patches[i]:
    sample i's CutMix box (ignored for MixUp). Returns, per sample, a list of (box, label,
    weight, own): i's own boxes (own True) then its partner's. The part of a box b outside
    patch P is cut into at most four rectangles (the strips left and right of P, and above and
    below it between them); a kept box is the bounding box of the nonempty ones. A sample
    paired with itself keeps its boxes, weight 1; MixUp leaves out boxes of weight 0."""
    def clip(b):
        return (min(max(b[0], 0.0), width), min(max(b[1], 0.0), height),
                min(max(b[2], 0.0), width), min(max(b[3], 0.0), height))

    def area(b):
        return max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)

    def valid(i):
        return [(clip(b), lab) for b, lab in zip(boxes[i], labels[i]) if area(clip(b)) > 0]

    out = []
    for i in range(len(boxes)):
        j = int(perm[i])
        own, theirs = valid(i), valid(j)
        if j == i:
            out.append([(b, lab, 1.0, True) for b, lab in own])
            continue
        if op == "mixup":
            li = float(lam[i])
            out.append([(b, lab, li, True) for b, lab in own if li > 0] +
                       [(b, lab, 1.0 - li, False) for b, lab in theirs if li < 1])
            continue
        px1, py1, px2, py2 = (float(v) for v in patches[i])
        kept = []
        for b, lab in own:
            x1, y1, x2, y2 = b
            if px2 <= x1 or px1 >= x2 or py2 <= y1 or py1 >= y2 or px1 == px2 or py1 == py2:
                pieces = [b]  # the patch misses the box
            else:
                mx1, mx2 = max(x1, px1), min(x2, px2)
                pieces = [(x1, y1, mx1, y2), (mx2, y1, x2, y2),  # left and right of the patch
                          (mx1, y1, mx2, max(y1, py1)), (mx1, min(y2, py2), mx2, y2)]  # above, below
            pieces = [q for q in pieces if area(q) > 0]
            visible = sum(area(q) for q in pieces)
            if visible > 0 and visible >= min_visibility * area(b):
                kept.append(((min(q[0] for q in pieces), min(q[1] for q in pieces),
                              max(q[2] for q in pieces), max(q[3] for q in pieces)), lab, 1.0, True))
        for b, lab in theirs:
            q = (max(b[0], px1), max(b[1], py1), min(b[2], px2), min(b[3], py2))
            if area(q) > 0 and area(q) >= min_visibility * area(b):
                kept.append((q, lab, 1.0, False))
        out.append(kept)
    return out


def detection_choose_reference(boxes, perm, candidates, height: int, width: int,
                               min_visibility: float = 0.1):
    """ultralytics' rule, sample by sample: boxes[i] sample i's (x1, y1, x2, y2) pixel boxes,
    candidates[i] its candidate patches. Sample i takes the first candidate that overlaps none
    of its own boxes (with positive area); it keeps it if at least one box of its partner
    perm[i] has a nonempty part inside, of at least min_visibility of its area; otherwise, or
    when paired with itself, it gets the empty patch (0, 0, 0, 0). Returns the N patches."""
    def clip(b):
        return (min(max(b[0], 0.0), width), min(max(b[1], 0.0), height),
                min(max(b[2], 0.0), width), min(max(b[3], 0.0), height))

    def area(b):
        return max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)

    def inter(a, b):
        return area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))

    out = []
    for i, cands in enumerate(candidates):
        j = int(perm[i])
        own = [clip(b) for b in boxes[i] if area(clip(b)) > 0]
        theirs = [clip(b) for b in boxes[j] if area(clip(b)) > 0]
        patch = (0, 0, 0, 0)
        for c in cands:
            if any(inter(b, c) > 0 for b in own):
                continue
            if j != i and any(inter(b, c) > 0 and inter(b, c) >= min_visibility * area(b) for b in theirs):
                patch = tuple(int(v) for v in c)
            break
        out.append(patch)
    return out
