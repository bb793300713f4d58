"""cutmix_ext.detection beyond the shared rule: a sample paired with itself keeps everything,
invalid boxes are refused before anything is written, ultralytics' YOLO batch in and out, the
rule that keeps objects visible (rule="avoid") against its plain-arithmetic reference, per-image
probability, semantic masks under MixUp, and what is refused (keypoints, segments, rotated)."""
import pytest
import torch
from conftest import DEVICES
from helpers import grid_boxes, rand_images
from test_detection import rand_targets, tv_tensors, xyxy

import cutmix_ext
from cutmix_ext import MixParams
from cutmix_ext import detection as D
from cutmix_ext import transforms as T
from cutmix_ext.reference import (cutmix_reference, detection_boxes_reference, detection_choose_reference,
                                  mixup_reference)


def fixed_point_perm(n, gen):
    """A permutation with fixed points 0 and 2 and a cycle through the others."""
    rest = [i for i in range(n) if i not in (0, 2)]
    perm = torch.arange(n)
    perm[rest] = torch.tensor(rest)[torch.randperm(len(rest), generator=gen)].roll(1)
    return perm


def clipped(t, h, w):
    """A target's boxes clipped to the image, zero-area ones left out, as float64 XYXY."""
    b = xyxy(t)
    b = torch.stack((b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)), 1)
    return b[(b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])]


def snapshot(x):
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, dict):
        return {k: snapshot(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(snapshot(v) for v in x)
    return x


def same(a, b):
    if isinstance(a, torch.Tensor):
        # bit for bit: NaN equals NaN
        return a.dtype == b.dtype and a.shape == b.shape and \
            torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


# ---- 1. a sample paired with itself ----

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_self_pairs_keep_image_boxes_and_weights(op, device, gen):
    n, h, w = 7, 30, 40
    images = rand_images((n, 3, h, w), torch.uint8, gen, device)
    before = images.clone()
    targets = rand_targets(n, h, w, gen, fmt=None, device=device, counts=[4, 3, 5, 2, 6, 1, 3])
    perm = fixed_point_perm(n, gen)
    fn = D.cutmix_ if op == "cutmix" else D.mixup_
    _, new, params = fn(images, targets, pairing=perm, generator=gen, return_params=True)
    assert params.perm.tolist() == perm.tolist()
    for i in (0, 2):
        assert torch.equal(images[i], before[i])
        assert torch.equal(new[i]["boxes"].cpu().double(), clipped(targets[i], h, w))
        keep = clipped(targets[i], h, w).shape[0]
        assert new[i]["labels"].tolist() == [lab for lab, b in zip(targets[i]["labels"].tolist(), xyxy(targets[i]).tolist())
                                             if min(b[2], w) > max(b[0], 0) and min(b[3], h) > max(b[1], 0)]
        assert new[i]["weights"].tolist() == [1.0] * keep
    moved = [i for i in range(n) if i not in (0, 2)]
    assert not torch.equal(images[moved], before[moved])  # the others did mix


def test_random_pairing_and_a_batch_of_one(gen):
    """pairing="random" meets fixed points often: none of them gains or loses a box."""
    h, w = 24, 24
    met = 0
    for trial in range(30):
        n = 1 if trial == 0 else 4
        images = rand_images((n, 3, h, w), torch.float32, gen)
        targets = rand_targets(n, h, w, gen, fmt=None, counts=[5] * n)
        for fn in (D.cutmix_, D.mixup_):
            _, new, p = fn(images.clone(), targets, pairing="random", generator=gen, return_params=True)
            for i in range(n):
                if int(p.perm[i]) == i:
                    met += 1
                    assert torch.equal(new[i]["boxes"].double(), clipped(targets[i], h, w))
                    assert bool((new[i]["weights"] == 1).all())
    assert met > 10


# ---- 2. invalid boxes ----

def _bad_cases(n, h, w, gen):
    targets = rand_targets(n, h, w, gen, fmt=None, counts=[3] * n)
    swapped = snapshot(targets)
    swapped[2]["boxes"][1] = torch.tensor([10.0, 2.0, 4.0, 9.0])  # x2 < x1
    nan = snapshot(targets)
    nan[1]["boxes"][0, 3] = float("nan")
    counts = torch.tensor([3] * n)
    flat = {"boxes": torch.cat([t["boxes"] for t in targets]), "labels": torch.cat([t["labels"] for t in targets]),
            "batch_idx": torch.repeat_interleave(torch.arange(n), counts)}
    xywh = snapshot(flat)
    xywh["boxes"] = torch.rand(3 * n, 4, generator=gen) * 0.4
    xywh["boxes"][4, 2] = -0.1  # a negative width
    # normalized centre boxes read as corners: the silent loss, now refused
    yolo_as_xyxy = snapshot(flat)
    yolo_as_xyxy["boxes"] = torch.tensor([[0.5, 0.5, 0.2, 0.3]]).repeat(3 * n, 1)
    return [
        (swapped, {}, r"targets\[2\]\['boxes'\]: box 1 \(x1, y1, x2, y2\) = \(10, 2, 4, 9\) is not a box"),
        (nan, {}, r"targets\[1\]\['boxes'\]: box 0 \(x1, y1, x2, y2\) = \(.*nan\) is not a box"),
        (xywh, {"box_format": "XYWH", "normalized": True}, r"targets\['boxes'\]: box 4 \(x, y, w, h\) = "
                                                            r"\(.*-0.1.*\) is not a box \(x2 < x1 or y2 < y1|negative"),
        (yolo_as_xyxy, {"normalized": True}, r"targets\['boxes'\]: box 0 \(x1, y1, x2, y2\) = \(0.5, 0.5, 0.2, 0.3\)"),
    ]


@pytest.mark.parametrize("op,rule", [("cutmix", "occlude"), ("cutmix", "avoid"), ("mixup", None)])
def test_invalid_boxes_are_refused_before_anything_is_written(op, rule, gen):
    n, h, w = 4, 32, 32
    for targets, kw, match in _bad_cases(n, h, w, gen):
        images = rand_images((n, 3, h, w), torch.uint8, gen)
        masks = torch.randint(0, 5, (n, h, w), generator=gen, dtype=torch.uint8)
        keep = snapshot((images, targets, masks))
        fn = D.cutmix_ if op == "cutmix" else D.mixup_
        extra = {"rule": rule} if rule else {}
        with pytest.raises(ValueError, match=match):
            fn(images, targets, generator=gen, masks=masks, **kw, **extra)
        assert same((images, targets, masks), keep)


def test_the_ops_refuse_invalid_boxes_by_row(gen):
    boxes, idx = grid_boxes(12, 20, 20, gen), torch.randint(0, 3, (12,), generator=gen)
    boxes[5] = torch.tensor([3.0, 4.0, 8.0, 1.0])
    p = cutmix_ext.sample_params(torch.empty(3, 0, 20, 20), "cutmix", per_sample=True, generator=gen)
    with pytest.raises(ValueError, match=r"boxes: row 5 \(x1, y1, x2, y2\) = \(3, 4, 8, 1\) is not a box"):
        torch.ops.cutmix_ext.detection_boxes(boxes, idx, p.perm, p.boxes, p.lam, 20, 20, 0.25)
    cands = p.boxes.view(3, 1, 4)
    with pytest.raises(ValueError, match=r"boxes: row 5"):
        torch.ops.cutmix_ext.detection_choose(boxes, idx, p.perm, cands, 20, 20, 0.1)


# ---- 3. the YOLO batch ----

def yolo_batch(n, h, w, gen, device="cpu", dtype=torch.uint8):
    counts = [int(c) for c in torch.randint(0, 7, (n,), generator=gen)]
    m = sum(counts)
    c = torch.rand(m, 2, generator=gen, dtype=torch.float64)
    s = torch.rand(m, 2, generator=gen, dtype=torch.float64) * 0.5 + 0.01
    return {"img": rand_images((n, 3, h, w), dtype, gen, device),
            "cls": torch.randint(0, 80, (m, 1), generator=gen).float().to(device),
            "bboxes": torch.cat((c, s), 1).float().to(device),
            "batch_idx": torch.repeat_interleave(torch.arange(n), torch.tensor(counts)).float().to(device),
            "im_file": [f"im{i}.jpg" for i in range(n)], "ori_shape": [(h, w)] * n,
            "resized_shape": [(h, w)] * n}


def yolo_as_lists(batch):
    """The batch's boxes as per-sample pixel XYXY lists and class lists."""
    n, h, w = batch["img"].shape[0], batch["img"].shape[-2], batch["img"].shape[-1]
    b = batch["bboxes"].cpu().double()
    px = torch.stack(((b[:, 0] - b[:, 2] / 2) * w, (b[:, 1] - b[:, 3] / 2) * h,
                      (b[:, 0] + b[:, 2] / 2) * w, (b[:, 1] + b[:, 3] / 2) * h), 1)
    idx = batch["batch_idx"].cpu().long()
    cls = batch["cls"].cpu().view(-1).tolist()
    return ([px[idx == i].tolist() for i in range(n)], [[cls[k] for k in (idx == i).nonzero().view(-1).tolist()]
                                                         for i in range(n)])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,rule", [("cutmix", "occlude"), ("cutmix", "avoid"), ("mixup", None)])
def test_yolo_batch_in_and_out(op, rule, device, gen):
    n, h, w = 8, 48, 64
    batch = yolo_batch(n, h, w, gen, device)
    before = snapshot(batch)
    kw = {"rule": rule} if rule else {}
    fn = D.cutmix_ if op == "cutmix" else D.mixup_
    new, params = fn(batch, pairing="random", generator=gen, return_params=True, **kw)
    assert new["img"] is batch["img"]
    assert set(new) == set(batch) | {"weights"}
    for k in ("im_file", "ori_shape", "resized_shape"):
        assert new[k] == before[k]
    for k in ("bboxes", "cls", "batch_idx"):
        assert new[k].dtype == before[k].dtype and new[k].device.type == device
    assert new["cls"].dim() == 2 and new["cls"].shape[1] == 1 and new["bboxes"].shape[1] == 4
    img = before["img"].cpu()
    if op == "cutmix":
        want = cutmix_reference(img, torch.zeros(n, dtype=torch.int64), params.perm, params.boxes, 1)[0]
    else:
        want = mixup_reference(img, torch.zeros(n, dtype=torch.int64), params.perm, params.lam, 1)[0]
    assert torch.equal(new["img"].cpu(), want)
    boxes, labels = yolo_as_lists(before)
    ref = detection_boxes_reference(op, boxes, labels, params.perm.tolist(),
                                    params.boxes.tolist() if op == "cutmix" else None, params.lam.tolist(), h, w,
                                    0.1 if rule == "avoid" else 0.25)
    rows = [(i, *r) for i, s in enumerate(ref) for r in s]
    assert new["batch_idx"].cpu().tolist() == [float(r[0]) for r in rows]
    assert new["cls"].cpu().view(-1).tolist() == [r[2] for r in rows]
    assert new["weights"].cpu().tolist() == [float(torch.tensor(r[3]).float()) for r in rows]
    size = torch.tensor([w, h, w, h], dtype=torch.float64)
    b = torch.tensor([r[1] for r in rows], dtype=torch.float64).view(-1, 4) / size
    cxcywh = torch.cat(((b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]), 1).float()
    torch.testing.assert_close(new["bboxes"].cpu(), cxcywh, rtol=0, atol=1e-6)
    # replayed: the same batch again
    again = fn(snapshot(before), params=params, **({"rule": rule} if rule else {}))
    assert same({k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in again.items()},
                {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in new.items()})


def test_yolo_batch_through_the_transforms(gen):
    n, h, w = 6, 32, 32
    for t in (T.CutMix(detection=True, per_sample=True, generator=gen, rule="avoid"),
              T.MixUp(detection=True, per_sample=True, generator=gen, p=0.5)):
        batch = yolo_batch(n, h, w, gen)
        before = snapshot(batch)
        new = t(batch)
        assert isinstance(new, dict) and new["img"] is batch["img"]
        p = t.last_params
        if isinstance(t, T.CutMix):  # the same rule's threshold (0.1), the same patches
            replay = D.cutmix_(before, params=p, rule="avoid")
        else:
            replay = D.mixup_(before, params=p)
        assert same(replay, new)


YOLO_REFUSED = {
    "keypoints": (lambda b: {**b, "keypoints": torch.zeros(b["cls"].shape[0], 17, 3)}, r"batch\['keypoints'\]: keypoints"),
    "segment masks": (lambda b: {**b, "masks": torch.zeros(b["img"].shape[0], 8, 8)}, r"batch\['masks'\]"),
    "rotated": (lambda b: {**b, "bboxes": torch.zeros(b["cls"].shape[0], 5)}, r"batch\['bboxes'\]: \(M, 5\) rotated"),
    "no cls": (lambda b: {k: v for k, v in b.items() if k != "cls"}, r"missing \['cls'\]"),
}


@pytest.mark.parametrize("case", sorted(YOLO_REFUSED))
def test_yolo_refusals(case, gen):
    make, match = YOLO_REFUSED[case]
    batch = make(yolo_batch(4, 16, 16, gen))
    keep = snapshot(batch)
    with pytest.raises(ValueError, match=match):
        D.cutmix_(batch, generator=gen)
    assert same(batch, keep)
    with pytest.raises(ValueError, match="a YOLO batch carries its targets"):
        D.mixup_(yolo_batch(4, 16, 16, gen), [])


# ---- 4. rule="avoid" ----

def test_choose_op_matches_the_reference(gen):
    fn = torch.ops.cutmix_ext.detection_choose
    for trial in range(80):
        n = int(torch.randint(1, 9, (), generator=gen))
        h, w = (int(v) for v in torch.randint(1, 30, (2,), generator=gen))
        m = int(torch.randint(0, 30, (), generator=gen))
        k = int(torch.randint(1, 5, (), generator=gen))
        boxes, idx = grid_boxes(m, h, w, gen), torch.randint(0, n, (m,), generator=gen)
        perm = torch.randperm(n, generator=gen)
        cands = cutmix_ext.sample_params(torch.empty(n * k, 0, h, w), "cutmix", per_sample=True,
                                         alpha=float(torch.rand((), generator=gen)) + 0.2, generator=gen).boxes
        min_vis = [0.0, 0.1, 1.0, float(torch.rand((), generator=gen))][trial % 4]
        got = fn(boxes, idx, perm, cands.view(n, k, 4), h, w, min_vis)
        want = detection_choose_reference([[b for b, s in zip(boxes.tolist(), idx.tolist()) if s == i] for i in range(n)],
                                          perm.tolist(), cands.view(n, k, 4).tolist(), h, w, min_vis)
        assert got.tolist() == [list(p) for p in want], trial


def test_choose_op_takes_strided_partners_and_checks_its_arguments(gen):
    n, h, w = 64, 20, 20
    boxes, idx = grid_boxes(50, h, w, gen), torch.randint(0, n, (50,), generator=gen)
    perm = torch.randperm(n, generator=gen)
    strided = torch.stack((perm, perm), 1)[:, 0]
    cands = cutmix_ext.sample_params(torch.empty(n * 2, 0, h, w), "cutmix", per_sample=True,
                                     generator=gen).boxes.view(n, 2, 4)
    fn = torch.ops.cutmix_ext.detection_choose
    assert not strided.is_contiguous()
    assert torch.equal(fn(boxes, idx, strided, cands, h, w, 0.1), fn(boxes, idx, perm, cands, h, w, 0.1))
    bad = cands.clone()
    bad[3, 1, 2] = w + 1
    for args, match in (((boxes, idx, perm, bad, h, w, 0.1), r"candidates: \[3, 1\] .* is not a box inside"),
                        ((boxes, idx, perm, cands, 0, w, 0.1), r"height, width: expected in \[1, 2\^31\)"),
                        ((boxes, idx, perm, cands[:-1], h, w, 0.1), r"candidates: expected a CPU tensor \(N, K, 4\)"),
                        ((boxes, idx, perm[:-1], cands, h, w, 0.1), r"params.perm: entry \d+ is 63, outside"),
                        ((boxes, idx, perm, cands, h, w, 1.5), r"min_visibility: expected a number in \[0, 1\]")):
        with pytest.raises(ValueError, match=match):
            fn(*args)


@pytest.mark.parametrize("device", DEVICES)
def test_avoid_rule_end_to_end(device, gen):
    """The draw is the partners, then `candidates` default-sampler patches per sample, then the
    op's choice; the reference makes the same choice from the same draws. Chosen patches cover
    none of the sample's own boxes, which come back whole; skipped samples are left alone."""
    n, h, w, k = 16, 40, 40, 3
    skipped = 0
    for trial in range(6):
        images = rand_images((n, 3, h, w), torch.uint8, gen, device)
        before = images.clone()
        targets = rand_targets(n, h, w, gen, fmt=None, device=device, counts=[int(c) for c in torch.randint(0, 4, (n,), generator=gen)])
        seed = int(torch.randint(1 << 40, (), generator=gen))
        _, new, p = D.cutmix_(images, targets, rule="avoid", pairing="random", candidates=k,
                              generator=torch.Generator().manual_seed(seed), return_params=True)
        g = torch.Generator().manual_seed(seed)
        perm = torch.ops.cutmix_ext.sample(n, 1, 1, 1.0, False, False, "random", g)[0]
        cands = torch.ops.cutmix_ext.sample(n * k, h, w, 1.0, True, True, "roll", g)[1].view(n, k, 4)
        boxes = [xyxy(t).tolist() for t in targets]
        want = detection_choose_reference(boxes, perm.tolist(), cands.tolist(), h, w, 0.1)
        assert p.perm.tolist() == perm.tolist() and p.boxes.tolist() == [list(b) for b in want]
        assert torch.equal(p.lam, cutmix_ext._sampling.area_lam(p.boxes, h, w))
        assert torch.equal(images.cpu(), cutmix_reference(before.cpu(), torch.zeros(n, dtype=torch.int64),
                                                          p.perm, p.boxes, 1)[0])
        for i, t in enumerate(new):
            own = clipped(targets[i], h, w)
            x1, y1, x2, y2 = p.boxes[i].tolist()
            if x1 == x2 or y1 == y2:
                skipped += 1
                assert torch.equal(images[i], before[i])
                assert torch.equal(t["boxes"].cpu().double(), own)
                continue
            # no own box is covered: all come back whole, and at least one partner box came
            assert torch.equal(t["boxes"].cpu().double()[:len(own)], own)
            assert len(t["boxes"]) > len(own)
            for b in own.tolist():
                assert min(b[2], x2) <= max(b[0], x1) or min(b[3], y2) <= max(b[1], y1)
    assert 0 < skipped < 6 * n  # both paths taken


def test_avoid_rule_arguments(gen):
    images = rand_images((4, 3, 16, 16), torch.uint8, gen)
    targets = rand_targets(4, 16, 16, gen, fmt=None)
    for kw, match in (({"rule": "never"}, "rule: expected 'occlude' or 'avoid'"),
                      ({"rule": "avoid", "candidates": 0}, r"candidates: expected an int in \[1, 64\]"),
                      ({"rule": "avoid", "per_sample": False}, "per_sample: rule='avoid' picks a patch per image")):
        keep = images.clone()
        with pytest.raises(ValueError, match=match):
            D.cutmix_(images, targets, **kw)
        assert torch.equal(images, keep)


# ---- 5. per-image probability ----

@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_probability_leaves_samples_alone_with_their_own_boxes(op, gen):
    n, h, w = 12, 32, 32
    fn = D.cutmix_ if op == "cutmix" else D.mixup_
    alone_seen = mixed_seen = 0
    for p in (0.0, 0.5):
        images = rand_images((n, 3, h, w), torch.uint8, gen)
        before = images.clone()
        targets = rand_targets(n, h, w, gen, fmt=None, counts=[4] * n)
        _, new, params = fn(images, targets, p=p, pairing="random", generator=gen, return_params=True)
        for i, t in enumerate(new):
            alone = bool(params.lam[i] == 1.0)
            if alone or int(params.perm[i]) == i:
                alone_seen += 1
                assert torch.equal(images[i], before[i])
                assert torch.equal(t["boxes"].double(), clipped(targets[i], h, w))
                assert bool((t["weights"] == 1).all())
            else:
                mixed_seen += 1
            assert bool((t["weights"] > 0).all())
    assert alone_seen >= n and mixed_seen > 0


def test_transforms_take_p_and_a_schedule_with_detection(gen):
    n, h, w = 6, 24, 24
    t = T.CutMix(detection=True, per_sample=True, p=1.0, schedule_steps=4, generator=gen)
    images = rand_images((n, 3, h, w), torch.uint8, gen)
    targets = rand_targets(n, h, w, gen, fmt=None)
    before = images.clone()
    _, new = t(images, targets)  # step 0 of the schedule: p = 0
    assert torch.equal(images, before) and t.steps == 1
    assert all(torch.equal(a["boxes"].double(), clipped(b, h, w)) for a, b in zip(new, targets))
    with pytest.raises(ValueError, match=r"not with \['box'\]"):
        T.CutMix(detection=True, box=8)


# ---- 6. masks under MixUp, and what is refused ----

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", ["NHW", "N1HW"])
def test_semantic_masks_under_mixup_take_the_heavier_image(shape, device, gen):
    n, h, w = 9, 20, 28
    images = rand_images((n, 3, h, w), torch.float32, gen, device)
    masks = torch.randint(0, 21, (n, h, w), generator=gen, dtype=torch.uint8).to(device)
    if shape == "N1HW":
        masks = masks.unsqueeze(1)
    before = masks.clone()
    targets = rand_targets(n, h, w, gen, fmt=None, device=device)
    perm = fixed_point_perm(n, gen)
    lam = torch.rand(n, generator=gen, dtype=torch.float64)
    lam[1::2] = lam[1::2] / 2  # below 0.5 in every other sample, the rest drawn
    params = MixParams(perm, None, lam, (h, w))
    _, _, p = D.mixup_(images, targets, params=params, masks=masks, return_params=True)
    took = 0
    for i in range(n):
        j = int(p.perm[i])
        src = j if (float(p.lam[i]) < 0.5 and j != i) else i
        took += src != i
        assert torch.equal(masks[i], before[src]), i
    assert 0 < took < n


@pytest.mark.parametrize("form", ["list", "flat"])
def test_keypoints_and_segments_are_refused(form, gen):
    n, h, w = 3, 16, 16
    targets = rand_targets(n, h, w, gen, fmt=None, counts=[2, 2, 2])
    targets[1]["keypoints"] = torch.rand(2, 17, 3, generator=gen)
    if form == "flat":
        targets = {"boxes": torch.cat([t["boxes"] for t in targets]), "labels": torch.cat([t["labels"] for t in targets]),
                   "batch_idx": torch.tensor([0, 0, 1, 1, 2, 2]), "segments": [torch.rand(5, 2)] * 6}
    images = rand_images((n, 3, h, w), torch.uint8, gen)
    keep = images.clone()
    match = r"targets\[1\]\['keypoints'\]: keypoints" if form == "list" else r"targets\['segments'\]: polygon segments"
    with pytest.raises(ValueError, match=match):
        D.cutmix_(images, targets)
    with pytest.raises(ValueError, match="per_box: 'keypoints' holds keypoints"):
        D.mixup_(images, targets, per_box=("keypoints",))
    assert torch.equal(images, keep)


@pytest.mark.skipif(tv_tensors is None or not hasattr(tv_tensors, "KeyPoints"),
                    reason="torchvision with tv_tensors.KeyPoints does not import here")
def test_torchvision_keypoints_are_refused(gen):
    targets = rand_targets(2, 16, 16, gen, fmt=None, counts=[1, 1])
    targets[0]["points"] = tv_tensors.KeyPoints(torch.rand(1, 2), canvas_size=(16, 16))
    with pytest.raises(ValueError, match=r"targets\[0\]\['points'\]: keypoints"):
        D.cutmix_(rand_images((2, 3, 16, 16), torch.uint8, gen), targets)


def test_box_format_of_plain_tensors(gen):
    """box_format names the plain tensors' format, kept on the way out."""
    n, h, w = 5, 30, 30
    targets = rand_targets(n, h, w, gen, fmt=None, dtype=torch.float64)
    as_xywh = [{**t, "boxes": torch.cat((t["boxes"][:, :2], t["boxes"][:, 2:] - t["boxes"][:, :2]), 1)}
               for t in targets]
    images = rand_images((n, 3, h, w), torch.float32, gen)
    _, a, p = D.cutmix_(images.clone(), targets, generator=gen, return_params=True)
    _, b = D.cutmix_(images.clone(), as_xywh, params=p, box_format="XYWH")
    for x, y in zip(a, b):
        back = torch.cat((y["boxes"][:, :2], y["boxes"][:, :2] + y["boxes"][:, 2:]), 1)
        torch.testing.assert_close(back, x["boxes"], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="box_format: expected one of XYXY, XYWH, CXCYWH"):
        D.cutmix_(images, targets, box_format="xywh")
