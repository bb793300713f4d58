"""cutmix_ext.detection: the boxes travel with the image. Against a per-sample reference in plain
arithmetic (cutmix_ext.reference.detection_boxes_reference) and the image references, in both
target forms and every axis-aligned tv_tensors format, plus the rule's defining properties."""
import pytest
import torch
from conftest import CUDA, DEVICES, NO_CUDA
from helpers import grid_boxes, rand_images

import cutmix_ext
from cutmix_ext import detection as D
from cutmix_ext.reference import cutmix_reference, detection_boxes_reference, mixup_reference

try:  # most of this runs on plain tensors; torchvision's box types where it imports
    from torchvision import tv_tensors
except Exception:  # noqa: BLE001 - absent, or built for another torch (it raises RuntimeError then)
    tv_tensors = None
needs_tv = pytest.mark.skipif(tv_tensors is None, reason="torchvision does not import here")


def rand_boxes(m, h, w, gen, dtype=torch.float32, device="cpu"):
    """m boxes, some reaching out of the image, some of zero area."""
    xy = torch.rand(m, 2, generator=gen, dtype=torch.float64) * torch.tensor([w * 1.1, h * 1.1]) - 2
    wh = torch.rand(m, 2, generator=gen, dtype=torch.float64) * torch.tensor([w / 2, h / 2])
    if m > 2:
        wh[0, 0] = 0.0  # zero width
    b = torch.cat((xy, xy + wh), 1)
    if not dtype.is_floating_point:
        b = b.round()
    return b.to(dtype).to(device)


def rand_targets(n, h, w, gen, *, fmt="XYXY", dtype=torch.float32, device="cpu", counts=None):
    counts = counts or [int(c) for c in torch.randint(0, 9, (n,), generator=gen)]
    out = []
    for i, m in enumerate(counts):
        b = rand_boxes(m, h, w, gen, dtype, device)
        if fmt is not None:
            b = tv_tensors.BoundingBoxes(b, format="XYXY", canvas_size=(h, w))
            if fmt != "XYXY":
                from torchvision.transforms.v2 import functional as F
                b = F.convert_bounding_box_format(b, new_format=fmt)
        out.append({"boxes": b, "labels": torch.randint(0, 80, (m,), generator=gen).to(device),
                    "image_id": 100 + i})
    return out


def is_tv(b):
    return tv_tensors is not None and isinstance(b, tv_tensors.BoundingBoxes)


def xyxy(t):
    b = t["boxes"]
    if is_tv(b) and b.format.name != "XYXY":
        from torchvision.transforms.v2 import functional as F
        b = F.convert_bounding_box_format(b.as_subclass(torch.Tensor).double(), old_format=b.format,
                                          new_format="XYXY")
    return b.as_subclass(torch.Tensor).double().cpu()


def expected(op, targets, params, h, w, min_vis=0.25):
    boxes = [xyxy(t).tolist() for t in targets]
    labels = [t["labels"].tolist() for t in targets]
    patches = params.boxes.tolist() if params.boxes is not None else [None] * len(targets)
    return detection_boxes_reference(op, boxes, labels, params.perm.tolist(), patches,
                                     params.lam.tolist(), h, w, min_vis)


def in_format(b, fmt):
    if fmt == "XYXY":
        return b
    from torchvision.transforms.v2 import functional as F
    return F.convert_bounding_box_format(b, old_format="XYXY", new_format=fmt)


def check_against_reference(op, new, targets, params, h, w, dtype, min_vis=0.25):
    want = expected(op, targets, params, h, w, min_vis)
    assert len(new) == len(want)
    for i, (t, rows) in enumerate(zip(new, want)):
        assert t["image_id"] == targets[i]["image_id"]  # other keys pass through
        assert type(t["boxes"]) is type(targets[i]["boxes"])
        fmt = "XYXY"
        if is_tv(t["boxes"]):
            fmt = t["boxes"].format.name
            assert t["boxes"].format == targets[i]["boxes"].format
            assert tuple(t["boxes"].canvas_size) == (h, w)
        assert t["boxes"].dtype == dtype and t["boxes"].shape == (len(rows), 4)
        assert t["labels"].tolist() == [r[1] for r in rows]
        ref = in_format(torch.tensor([r[0] for r in rows], dtype=torch.float64).view(-1, 4), fmt).to(dtype)
        # XYXY: the same numbers; the other formats are converted there and back, to within float32 rounding
        torch.testing.assert_close(t["boxes"].as_subclass(torch.Tensor).cpu().double(), ref.double(),
                                   rtol=0, atol=0 if fmt == "XYXY" else 1e-5)
        assert t["weights"].dtype == torch.float32
        torch.testing.assert_close(t["weights"].cpu(), torch.tensor([r[2] for r in rows]).float().view(-1),
                                   rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("fmt", [pytest.param(f, marks=needs_tv) for f in ("XYXY", "XYWH", "CXCYWH")] + [None],
                         ids=lambda f: f or "tensor")
def test_list_form_matches_the_reference(op, fmt, device, gen):
    n, h, w = 6, 24, 30
    for per_sample, pairing in ((True, "random"), (False, "roll")):
        images = rand_images((n, 3, h, w), torch.uint8, gen, device)
        before = images.clone()
        targets = rand_targets(n, h, w, gen, fmt=fmt, device=device)
        fn = D.cutmix_ if op == "cutmix" else D.mixup_
        out, new, params = fn(images, targets, per_sample=per_sample, pairing=pairing, generator=gen,
                              return_params=True)
        assert out is images
        if op == "cutmix":
            want = cutmix_reference(before.cpu(), torch.zeros(n, dtype=torch.int64), params.perm, params.boxes, 1)[0]
        else:
            want = mixup_reference(before.cpu(), torch.zeros(n, dtype=torch.int64), params.perm, params.lam, 1)[0]
        assert torch.equal(images.cpu(), want)
        # XYWH and CXCYWH go through XYXY and back in float64: exact for float32 coordinates
        check_against_reference(op, new, targets, params, h, w, torch.float32)
        for t in new:
            assert t["boxes"].device.type == device and t["labels"].device.type == device


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.int64, torch.int32], ids=str)
def test_box_dtypes_are_kept(op, dtype, gen):
    n, h, w = 5, 20, 20
    images = rand_images((n, 3, h, w), torch.float32, gen)
    targets = rand_targets(n, h, w, gen, fmt=None, dtype=dtype)
    if op == "cutmix":
        _, new, params = D.cutmix_(images, targets, generator=gen, return_params=True, min_visibility=0.1)
    else:
        _, new, params = D.mixup_(images, targets, generator=gen, return_params=True)
    check_against_reference(op, new, targets, params, h, w, dtype, 0.1)


def to_flat(targets):
    boxes = [xyxy(t).float() for t in targets]
    return {"boxes": torch.cat(boxes), "labels": torch.cat([t["labels"] for t in targets]),
            "batch_idx": torch.repeat_interleave(torch.arange(len(targets)),
                                                 torch.tensor([len(b) for b in boxes])).float(),
            "names": "passed through"}


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_flat_form_equals_list_form_and_replays(op, gen):
    """The flat form, its boxes in any order, gives what the list form gives for the same
    samples' boxes in that order; replaying params gives the same pixels and boxes."""
    n, h, w = 8, 32, 32
    images = rand_images((n, 3, h, w), torch.float32, gen)
    flat = to_flat(rand_targets(n, h, w, gen, fmt=None))
    rows = torch.randperm(flat["boxes"].shape[0], generator=gen)
    shuffled = {k: (v[rows] if isinstance(v, torch.Tensor) else v) for k, v in flat.items()}
    listed = [{"boxes": shuffled["boxes"][shuffled["batch_idx"] == i],
               "labels": shuffled["labels"][shuffled["batch_idx"] == i], "image_id": i} for i in range(n)]
    fn = D.cutmix_ if op == "cutmix" else D.mixup_
    a, b = images.clone(), images.clone()
    _, from_list, params = fn(a, listed, per_sample=True, pairing="random", generator=gen, return_params=True)
    _, from_flat = fn(b, shuffled, params=params)
    assert torch.equal(a, b)
    assert from_flat["names"] == "passed through" and from_flat["batch_idx"].dtype == torch.float32
    want = to_flat(from_list)
    for k in ("boxes", "labels", "batch_idx"):
        assert torch.equal(from_flat[k], want[k]), k
    assert torch.equal(from_flat["weights"], torch.cat([t["weights"] for t in from_list]))
    c = images.clone()
    _, replay = fn(c, listed, params=params)
    assert torch.equal(c, a)
    for t, u in zip(replay, from_list):
        assert torch.equal(t["boxes"], u["boxes"]) and torch.equal(t["labels"], u["labels"])


def patch_params(n, patch, perm=None):
    x1, y1, x2, y2 = patch
    boxes = torch.tensor([patch] * n)
    lam = torch.full((n,), 1.0 - (x2 - x1) * (y2 - y1) / (40 * 40), dtype=torch.float64)
    return cutmix_ext.MixParams(perm if perm is not None else torch.arange(n).roll(1), boxes, lam, (40, 40))


def test_the_rule_on_chosen_boxes(gen):
    """Boxes placed by hand against the patch (10, 10, 30, 30), partner of 0 is 1 and of 1 is 0."""
    own = torch.tensor([
        [12.0, 12.0, 20.0, 20.0],   # under the patch: gone
        [0.0, 12.0, 20.0, 20.0],    # patch covers its right half across its height: x2 -> 10
        [15.0, 0.0, 25.0, 20.0],    # covered below across its width: y2 -> 10
        [5.0, 5.0, 15.0, 15.0],     # a corner cut: unchanged (kept: 75% visible)
        [0.0, 15.0, 40.0, 25.0],    # cut in the middle: unchanged (two pieces)
        [25.0, 5.0, 35.0, 35.0],    # 1/3 of width covered over 2/3 of height: unchanged
        [-5.0, 35.0, 8.0, 45.0],    # clipped to (0, 35, 8, 40)
        [3.0, 3.0, 3.0, 9.0],       # zero area: dropped
    ])
    partner = torch.tensor([
        [14.0, 14.0, 26.0, 26.0],   # wholly inside the patch: pasted unchanged
        [0.0, 0.0, 40.0, 40.0],     # covers the image: cut to the patch (25% of it: kept at 0.25)
        [28.0, 28.0, 38.0, 38.0],   # 4% inside: dropped
    ])
    targets = [{"boxes": own, "labels": torch.arange(8)}, {"boxes": partner, "labels": torch.arange(3) + 10}]
    images = rand_images((2, 3, 40, 40), torch.float32, gen)
    _, new = D.cutmix_(images, targets, params=patch_params(2, (10, 10, 30, 30)))
    assert new[0]["labels"].tolist() == [1, 2, 3, 4, 5, 6, 10, 11]
    assert new[0]["boxes"].tolist() == [
        [0, 12, 10, 20], [15, 0, 25, 10], [5, 5, 15, 15], [0, 15, 40, 25], [25, 5, 35, 35],
        [0, 35, 8, 40], [14, 14, 26, 26], [10, 10, 30, 30]]
    assert new[0]["weights"].tolist() == [1.0] * 8


def test_properties_over_random_batches(gen):
    """A box wholly under the patch disappears; a partner box wholly inside it is pasted
    unchanged; every kept box keeps at least min_visibility of its area (own boxes: outside the
    patch, measured on a fine raster; the partner's: inside it)."""
    n, h, w = 16, 40, 48
    for min_vis in (0.0, 0.25, 0.6):
        images = rand_images((n, 1, h, w), torch.float32, gen)
        counts = [12] * n
        targets = rand_targets(n, h, w, gen, fmt=None, dtype=torch.int64, counts=counts)
        for i, t in enumerate(targets):
            t["labels"] = torch.arange(12) + 100 * i  # every box its own label: its identity
        _, new, p = D.cutmix_(images, targets, min_visibility=min_vis, generator=gen, return_params=True)
        for i in range(n):
            j = int(p.perm[i])
            assert j != i  # "roll": the partner's boxes are told apart by their labels
            px1, py1, px2, py2 = p.boxes[i].tolist()
            patch = torch.zeros(h, w, dtype=torch.bool)
            patch[py1:py2, px1:px2] = True
            got = dict(zip(new[i]["labels"].tolist(), new[i]["boxes"].tolist()))
            for src, k in ((i, "own"), (j, "partner")):
                for lab, b in zip(targets[src]["labels"].tolist(), targets[src]["boxes"].tolist()):
                    x1, y1, x2, y2 = [min(max(v, 0), s) for v, s in zip(b, (w, h, w, h))]
                    if (x2 - x1) * (y2 - y1) <= 0:
                        assert lab not in got
                        continue
                    region = torch.zeros(h, w, dtype=torch.bool)
                    region[y1:y2, x1:x2] = True
                    if k == "own":
                        seen = region & ~patch
                        if not seen.any():
                            assert lab not in got  # wholly under the patch
                        elif lab in got:
                            assert int(seen.sum()) >= min_vis * int(region.sum())
                            ys, xs = seen.nonzero(as_tuple=True)  # the tightest box around what is seen
                            assert got[lab] == [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
                        else:
                            assert not (seen.any() and int(seen.sum()) >= min_vis * int(region.sum()))
                    else:
                        inside = region & patch
                        if bool((region <= patch).all()):
                            assert got.get(lab) == [x1, y1, x2, y2]  # wholly inside: unchanged
                        if lab in got:
                            assert int(inside.sum()) >= min_vis * int(region.sum())
                            ys, xs = inside.nonzero(as_tuple=True)
                            assert got[lab] == [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
                        else:
                            assert not (inside.any() and int(inside.sum()) >= min_vis * int(region.sum()))


def test_empty_patch_changes_nothing_and_empty_results_are_typed(gen):
    n, h, w = 4, 40, 40
    images = rand_images((n, 3, h, w), torch.uint8, gen)
    before = images.clone()
    targets = rand_targets(n, h, w, gen, fmt=None, counts=[3, 0, 5, 2])
    _, new = D.cutmix_(images, targets, params=patch_params(n, (7, 7, 7, 30)))
    assert torch.equal(images, before)
    for t, u in zip(new, targets):
        keep = [b for b in xyxy(u).clamp(0, 40).tolist() if (b[2] - b[0]) * (b[3] - b[1]) > 0]
        assert xyxy(t).tolist() == torch.tensor(keep, dtype=torch.float32).double().view(-1, 4).tolist()
    nothing = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)} for _ in range(n)]
    for fn in (D.cutmix_, D.mixup_):
        _, out = fn(images, nothing, generator=gen)
        for t in out:
            assert t["boxes"].shape == (0, 4) and t["boxes"].dtype == torch.float32
            assert t["labels"].shape == (0,) and t["labels"].dtype == torch.int64
            assert t["weights"].shape == (0,)
    flat = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
            "batch_idx": torch.zeros(0, dtype=torch.int64)}
    _, out = D.mixup_(images, flat, generator=gen)
    assert out["boxes"].shape == (0, 4) and out["batch_idx"].dtype == torch.int64


def test_normalized_coordinates(gen):
    n, h, w = 6, 32, 48
    targets = rand_targets(n, h, w, gen, fmt=None, dtype=torch.float64)
    size = torch.tensor([w, h, w, h], dtype=torch.float64)
    normal = [{**t, "boxes": t["boxes"] / size} for t in targets]
    images = rand_images((n, 3, h, w), torch.float32, gen)
    _, pixels, p = D.cutmix_(images.clone(), targets, generator=gen, return_params=True)
    _, fractions = D.cutmix_(images.clone(), normal, params=p, normalized=True)
    for a, b in zip(pixels, fractions):
        torch.testing.assert_close(b["boxes"] * size, a["boxes"], rtol=1e-12, atol=1e-12)
        assert torch.equal(a["labels"], b["labels"])


@needs_tv
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_instance_masks_follow_their_boxes(op, gen):
    n, h, w = 4, 20, 24
    targets = rand_targets(n, h, w, gen, fmt="XYXY", counts=[3, 2, 4, 1])
    for i, t in enumerate(targets):
        t["masks"] = tv_tensors.Mask(torch.rand(len(t["labels"]), h, w, generator=gen) > 0.3)
        t["labels"] = torch.arange(len(t["labels"])) + 10 * i
    images = rand_images((n, 3, h, w), torch.float32, gen)
    fn = D.cutmix_ if op == "cutmix" else D.mixup_
    _, new, p = fn(images, targets, generator=gen, return_params=True, per_sample=True)
    for i, t in enumerate(new):
        assert isinstance(t["masks"], tv_tensors.Mask) and t["masks"].shape == (len(t["labels"]), h, w)
        j = int(p.perm[i])
        patch = torch.zeros(h, w, dtype=torch.bool)
        if op == "cutmix":
            x1, y1, x2, y2 = p.boxes[i].tolist()
            patch[y1:y2, x1:x2] = True
        for lab, m in zip(t["labels"].tolist(), t["masks"]):
            src, k = divmod(lab, 10)
            assert src in (i, j) and j != i
            orig = targets[src]["masks"][k]
            if op == "mixup":
                assert torch.equal(m, orig)
            else:  # an own box's mask loses the patch; a pasted one is the patch's part
                assert torch.equal(m, orig & ~patch if src == i else orig & patch)


@pytest.mark.parametrize("device", DEVICES)
def test_flat_form_on_the_boxes_device(device, gen):
    n, h, w = 8, 64, 64
    images = rand_images((n, 3, h, w), torch.uint8, gen, device)
    targets = rand_targets(n, h, w, gen, fmt=None)
    flat = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in to_flat(targets).items()}
    _, new, p = D.cutmix_(images, flat, generator=gen, return_params=True)
    assert all(new[k].device.type == device for k in ("boxes", "labels", "batch_idx", "weights"))
    _, ref = D.cutmix_(images.cpu().clone(), {k: (v.cpu() if isinstance(v, torch.Tensor) else v)
                                              for k, v in flat.items()}, params=p)
    for k in ("boxes", "labels", "batch_idx", "weights"):
        assert torch.equal(new[k].cpu(), ref[k])


BAD = {
    "labels of the wrong length": (lambda t: [{**x, "labels": x["labels"][:-1]} for x in t], ValueError,
                                   r"targets\[0\]\['labels'\]: expected shape"),
    "too few dicts": (lambda t: t[:-1], ValueError, "targets: 3 dicts for a batch of 4"),
    "no boxes": (lambda t: [{"labels": x["labels"]} for x in t], ValueError, "'boxes' and 'labels'"),
    "flat batch_idx out of range": (lambda t: {**to_flat(t), "batch_idx": to_flat(t)["batch_idx"] + 3},
                                    ValueError, r"batch_idx'\]: sample \d+ is outside the batch of 4"),
    "flat without batch_idx": (lambda t: {k: v for k, v in to_flat(t).items() if k != "batch_idx"},
                               ValueError, "missing \\['batch_idx'\\]"),
    "a tensor": (lambda t: torch.zeros(3, 4), TypeError, "targets: expected a list of N dicts"),
}


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_op_matches_the_reference_on_edge_cases(op, gen):
    """The op behind both forms (cutmix_ext::detection_boxes) against the plain-arithmetic
    reference, on boxes whose edges meet the patches' (half pixels: every sum exact), out of the
    image, of zero area, listed in any order of samples."""
    fn = torch.ops.cutmix_ext.detection_boxes
    for trial in range(60):
        n = int(torch.randint(1, 9, (), generator=gen))
        h, w = (int(v) for v in torch.randint(1, 24, (2,), generator=gen))
        m = int(torch.randint(0, 40, (), generator=gen))
        boxes, idx = grid_boxes(m, h, w, gen), torch.randint(0, n, (m,), generator=gen)
        params = cutmix_ext.sample_params(torch.empty(n, 0, h, w), op, per_sample=trial % 2 == 0,
                                          pairing="random", generator=gen)
        min_vis = [0.0, 1.0, 0.25, float(torch.rand((), generator=gen))][trial % 4]
        got, src, dst, own, weights = fn(boxes, idx, params.perm, params.boxes if op == "cutmix" else None,
                                         params.lam, h, w, min_vis)
        rows = [(k, b) for k, b in enumerate(boxes.tolist())]  # label = source row
        want = detection_boxes_reference(op, [[b for k, b in rows if idx[k] == i] for i in range(n)],
                                         [[k for k, _ in rows if idx[k] == i] for i in range(n)],
                                         params.perm.tolist(), params.boxes.tolist() if op == "cutmix" else None,
                                         params.lam.tolist(), h, w, min_vis)
        flat = [(i, *r) for i, sample in enumerate(want) for r in sample]
        assert dst.tolist() == [r[0] for r in flat], trial
        assert got.tolist() == [list(r[1]) for r in flat], trial
        assert src.tolist() == [r[2] for r in flat], trial
        assert weights.tolist() == [float(torch.tensor(r[3]).float()) for r in flat], trial
        assert own.tolist() == [r[4] for r in flat], trial


@pytest.mark.skipif(not CUDA, reason=NO_CUDA)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_cuda_op_equals_cpu_op(op, gen):
    """The CUDA kernel of detection_boxes against the CPU op, bit for bit, up to several
    chunks of boxes and a flat form in any order; and opcheck on CUDA."""
    fn = torch.ops.cutmix_ext.detection_boxes
    for m in [0, 5, 256, 257, 3000, 40000]:
        n = int(torch.randint(1, 300, (), generator=gen))
        h, w = (int(v) for v in torch.randint(1, 700, (2,), generator=gen))
        boxes, idx = grid_boxes(m, h, w, gen), torch.randint(0, n, (m,), generator=gen)
        params = cutmix_ext.sample_params(torch.empty(n, 0, h, w), op, per_sample=True, pairing="random",
                                          generator=gen)
        args = (params.perm, params.boxes if op == "cutmix" else None, params.lam, h, w, 0.25)
        want = fn(boxes, idx, *args)
        got = fn(boxes.cuda(), idx.cuda(), *args)
        for g, e in zip(got, want):
            assert g.device.type == "cuda" and g.dtype == e.dtype and torch.equal(g.cpu(), e), m
    torch.library.opcheck(fn, (boxes.cuda(), idx.cuda(), *args))
    idx[0] = n
    with pytest.raises(ValueError, match=r"idx: box 0 belongs to sample \d+, outside the batch"):
        fn(boxes.cuda(), idx.cuda(), *args)
    idx[0] = 0
    boxes[7, 1] = float("nan")
    with pytest.raises(ValueError, match=r"boxes: row 7 \(x1, y1, x2, y2\) = .* is not a box"):
        fn(boxes.cuda(), idx.cuda(), *args)


@pytest.mark.skipif(not CUDA, reason=NO_CUDA)
def test_cuda_choose_op_equals_cpu_op(gen):
    """rule="avoid"'s op on CUDA against the CPU op, past a block of boxes and of samples."""
    fn = torch.ops.cutmix_ext.detection_choose
    for m in [0, 5, 257, 3000, 40000]:
        n = int(torch.randint(1, 600, (), generator=gen))
        k = int(torch.randint(1, 6, (), generator=gen))
        h, w = (int(v) for v in torch.randint(1, 700, (2,), generator=gen))
        boxes, idx = grid_boxes(m, h, w, gen) / 8, torch.randint(0, n, (m,), generator=gen)
        perm = torch.randperm(n, generator=gen)
        cands = cutmix_ext.sample_params(torch.empty(n * k, 0, h, w), "cutmix", per_sample=True,
                                         generator=gen).boxes.view(n, k, 4)
        want = fn(boxes, idx, perm, cands, h, w, 0.1)
        got = fn(boxes.cuda(), idx.cuda(), perm, cands, h, w, 0.1)
        assert got.device.type == "cpu" and torch.equal(got, want), m
    boxes[2, 0] = boxes[2, 2] + 1
    with pytest.raises(ValueError, match=r"boxes: row 2 \(x1, y1, x2, y2\) = .* is not a box"):
        fn(boxes.cuda(), idx.cuda(), perm, cands, h, w, 0.1)


def test_cpu_op_checks_its_arguments(gen):
    boxes, idx = grid_boxes(6, 10, 10, gen), torch.randint(0, 4, (6,), generator=gen)
    p = cutmix_ext.sample_params(torch.empty(4, 0, 10, 10), "cutmix", generator=gen)
    op = torch.ops.cutmix_ext.detection_boxes
    with pytest.raises(ValueError, match="params.perm: not a permutation"):
        op(boxes, idx, torch.tensor([0, 0, 1, 2]), p.boxes, p.lam, 10, 10, 0.25)
    with pytest.raises(ValueError, match=r"params.boxes: row 0 .* is not a box inside the 8x8 image"):
        op(boxes, idx, p.perm, torch.tensor([[0, 0, 9, 9]] * 4), p.lam, 8, 8, 0.25)
    with pytest.raises(ValueError, match="idx: box 2 belongs to sample 7"):
        op(boxes, torch.tensor([0, 1, 7, 0, 0, 0]), p.perm, p.boxes, p.lam, 10, 10, 0.25)
    with pytest.raises(ValueError, match="min_visibility: expected a number in"):
        op(boxes, idx, p.perm, p.boxes, p.lam, 10, 10, -0.5)
    with pytest.raises(ValueError, match="boxes: expected float64"):
        op(boxes.float(), idx, p.perm, p.boxes, p.lam, 10, 10, 0.25)
    torch.library.opcheck(op, (boxes, idx, p.perm, p.boxes, p.lam, 10, 10, 0.25))
    torch.library.opcheck(op, (boxes, idx, p.perm, None, p.lam, 10, 10, 0.0))


def test_bad_params_leave_everything_untouched(gen):
    images = rand_images((4, 3, 16, 16), torch.float32, gen)
    before = images.clone()
    targets = rand_targets(4, 16, 16, gen, fmt=None, counts=[2, 3, 1, 2])
    p = cutmix_ext.sample_params(images, "cutmix", generator=gen)
    for fn in (D.cutmix_, D.mixup_):
        with pytest.raises(ValueError, match="params.perm: not a permutation"):
            fn(images, targets, params=p._replace(perm=torch.tensor([1, 1, 2, 3])))
    assert torch.equal(images, before)


def test_params_with_modes_are_refused(gen):
    images = rand_images((4, 3, 16, 16), torch.float32, gen)
    before = images.clone()
    p = cutmix_ext.sample_params(images, "cutmix", label="onehot", per_sample=True, generator=gen)
    with pytest.raises(ValueError, match="params: per-sample modes"):
        D.cutmix_(images, rand_targets(4, 16, 16, gen, fmt=None), params=p)
    assert torch.equal(images, before)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_targets_leave_everything_untouched(case, gen):
    images = rand_images((4, 3, 16, 16), torch.float32, gen)
    before = images.clone()
    targets = rand_targets(4, 16, 16, gen, fmt=None, counts=[2, 3, 1, 2])
    make, kind, match = BAD[case]
    for fn in (D.cutmix_, D.mixup_):
        with pytest.raises(kind, match=match):
            fn(images, make(targets), generator=gen)
    assert torch.equal(images, before)
    with pytest.raises(ValueError, match="min_visibility: must be a number in"):
        D.cutmix_(images, targets, min_visibility=1.5)
    assert torch.equal(images, before)


@needs_tv
def test_rotated_boxes_and_another_canvas_are_refused(gen):
    images = rand_images((2, 3, 16, 16), torch.float32, gen)
    before = images.clone()
    t = [{"boxes": tv_tensors.BoundingBoxes(torch.tensor([[1.0, 1.0, 5.0, 5.0, 0.0]]), format="XYWHR",
                                            canvas_size=(16, 16)), "labels": torch.tensor([1])}] * 2
    with pytest.raises(ValueError, match=r"targets\[0\]\['boxes'\]: expected an \(M, 4\) tensor"):
        D.cutmix_(images, t)
    t = [{"boxes": tv_tensors.BoundingBoxes(torch.tensor([[1.0, 1.0, 5.0, 5.0]]), format="XYXY",
                                            canvas_size=(16, 16)), "labels": torch.tensor([1])}] * 2
    t[1] = {**t[1], "boxes": t[1]["boxes"].as_subclass(torch.Tensor).view(1, 4)}
    assert D.cutmix_(images.clone(), t)[1][0]["boxes"].shape[1] == 4
    t[0] = {**t[0], "boxes": tv_tensors.BoundingBoxes(t[0]["boxes"], format="XYXY", canvas_size=(8, 8))}
    with pytest.raises(ValueError, match=r"targets\[0\]\['boxes'\]: canvas_size \(8, 8\) is not the images' \(16, 16\)"):
        D.cutmix_(images, t)
    assert torch.equal(images, before)


def test_collate_and_workers(gen):
    """MixCollate in DataLoader workers: stacked, mixed, the boxes with their images."""
    from torch.utils.data import DataLoader

    h, w = 32, 32
    data = []
    for i in range(16):
        t = rand_targets(1, h, w, gen, fmt=None)[0]
        data.append((rand_images((3, h, w), torch.uint8, gen), {**t, "image_id": i}))
    for flat in (False, True):
        mix = D.MixCollate(cutmix_ext.transforms.CutMix(detection=True, per_sample=True), flat=flat)
        loader = DataLoader(data, batch_size=4, num_workers=2, collate_fn=mix)
        seen = 0
        for images, targets in loader:
            assert images.shape == (4, 3, h, w) and images.dtype == torch.uint8
            if flat:
                assert set(targets) >= {"boxes", "labels", "batch_idx", "weights"}
            else:
                assert len(targets) == 4 and all("weights" in t for t in targets)
            seen += 1
        assert seen == 4
    with pytest.raises(ValueError, match="images of several sizes"):
        D.collate([(torch.zeros(3, 8, 8), {}), (torch.zeros(3, 9, 8), {})])


@needs_tv
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_transforms_mix_boxes_when_asked(op, gen):
    from cutmix_ext import transforms as T

    n, h, w = 4, 24, 24
    images = rand_images((n, 3, h, w), torch.float32, gen)
    targets = rand_targets(n, h, w, gen, fmt="CXCYWH")
    kind = T.CutMix if op == "cutmix" else T.MixUp
    t = kind(detection=True, per_sample=True, pairing="random", generator=gen)
    before = images.clone()
    out, new = t(images, targets)
    p = t.last_params
    _, want = (D.cutmix_ if op == "cutmix" else D.mixup_)(before, targets, params=p)
    assert torch.equal(out, before)
    for a, b in zip(new, want):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["labels"], b["labels"])
    with pytest.raises(ValueError, match="BoundingBoxes"):
        kind(num_classes=3)(images, torch.zeros(n, dtype=torch.int64), targets[0]["boxes"])


def test_the_benchmark_runs_and_its_loop_does_the_same_work(capsys):
    """benchmarks/detection.py checks the per-image loop it times against cutmix_ext first."""
    from benchmarks import detection as bench

    bench.main(["--batch", "8", "--size", "48", "--boxes", "6", "--rounds", "1", "--min-time", "0"])
    out = capsys.readouterr().out
    assert "| CutMix |" in out and "| MixUp |" in out and "loop / flat" in out


def test_semantic_masks_ride_along(gen):
    n, h, w = 5, 16, 20
    images = rand_images((n, 3, h, w), torch.float32, gen)
    masks = torch.randint(0, 7, (n, h, w), generator=gen, dtype=torch.uint8)
    before, m_before = images.clone(), masks.clone()
    targets = rand_targets(n, h, w, gen, fmt=None)
    _, _, p = D.cutmix_(images, targets, masks=masks, generator=gen, return_params=True)
    lab = torch.zeros(n, dtype=torch.int64)
    assert torch.equal(images, cutmix_reference(before, lab, p.perm, p.boxes, 1)[0])
    assert torch.equal(masks, cutmix_reference(m_before[:, None], lab, p.perm, p.boxes, 1)[0][:, 0])
    with pytest.raises(ValueError, match="masks: expected shape"):
        D.cutmix_(images, targets, masks=masks[:, :-1], generator=gen)
    assert torch.equal(masks, cutmix_reference(m_before[:, None], lab, p.perm, p.boxes, 1)[0][:, 0])
