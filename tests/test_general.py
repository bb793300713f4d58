"""The general op `mix_` (per-sample paste / blend / fill in one launch), segmentation masks,
compact targets, CutOut and the paper's ablation variants, each against the pure-PyTorch
reference or the property that defines it."""
import math

import pytest
import torch
from conftest import DEVICES
from helpers import DTYPES, LAYOUTS, outside_view, rand_images, rand_labels

import cutmix_ext
from cutmix_ext import MixParams
from cutmix_ext.reference import cutmix_reference, mix_reference

MASK_DTYPES = [torch.int64, torch.int32, torch.int16, torch.bool]


def rand_general(n, h, w, gen, modes=(0, 1, 2)):
    """Random boxes, partners, lam and modes; blending samples cover the whole image."""
    perm = torch.randperm(n, generator=gen)
    x = torch.randint(0, w + 1, (n, 2), generator=gen).sort(1).values
    y = torch.randint(0, h + 1, (n, 2), generator=gen).sort(1).values
    boxes = torch.stack((x[:, 0], y[:, 0], x[:, 1], y[:, 1]), 1)
    choice = torch.tensor(modes)[torch.randint(0, len(modes), (n,), generator=gen)].to(torch.int8)
    boxes[choice == 1] = torch.tensor([0, 0, w, h])
    lam = torch.rand(n, generator=gen, dtype=torch.float64)
    return MixParams(perm, boxes, lam, (h, w), choice)


def rand_mask(shape, dtype, gen):
    if dtype == torch.bool:
        return torch.rand(shape, generator=gen) > 0.5
    return torch.randint(-1000, 1000, shape, generator=gen).to(dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_mix_matches_reference(device, layout, dtype, gen):
    for n, shape in ((1, (3, 5, 7)), (9, (3, 17, 23)), (16, (4, 8, 32))):
        images = rand_images((n,) + shape, dtype, gen, device, layout)
        labels = rand_labels(n, 6, "int64", gen, device)
        params = rand_general(n, shape[-2], shape[-1], gen)
        fill = float(torch.randint(0, 256, (1,), generator=gen))
        want, t_want = mix_reference(images.cpu(), labels, params.perm, params.boxes, params.lam,
                                     params.mode, 6, 0.1, fill)
        outside = outside_view(images, layout)
        out, targets = cutmix_ext.mix_(images, labels, params, 6, label_smoothing=0.1, fill=fill)
        assert out is images
        assert torch.equal(images.cpu(), want)
        assert torch.equal(targets.cpu(), t_want)
        if outside is not None:
            assert torch.equal(outside_view(images, layout), outside)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", MASK_DTYPES, ids=str)
def test_integer_images_paste_and_fill(device, dtype, gen):
    masks = rand_mask((12, 1, 9, 14), dtype, gen).to(device)
    params = rand_general(12, 9, 14, gen, modes=(0, 2))
    want, _ = mix_reference(masks.cpu(), None, params.perm, params.boxes, params.lam, params.mode,
                            fill=1)
    _, targets = cutmix_ext.mix_(masks, None, params, fill=1)
    assert targets is None and torch.equal(masks.cpu(), want)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", ["nhw", "n1hw"])
def test_masks_get_the_images_boxes_and_partners(device, shape, gen):
    images = rand_images((10, 3, 12, 15), torch.float32, gen, device)
    masks = rand_mask((10, 12, 15) if shape == "nhw" else (10, 1, 12, 15), torch.int64, gen).to(device)
    labels = rand_labels(10, 5, "int64", gen, device)
    before, mask_before = images.cpu().clone(), masks.cpu().clone()
    _, targets, p = cutmix_ext.cutmix_(images, labels, 5, per_sample=True, pairing="random",
                                       generator=gen, masks=masks, return_params=True)
    want, t_want, _ = cutmix_reference(before, labels.cpu(), p.perm, p.boxes, 5)
    m = mask_before.unsqueeze(1) if shape == "nhw" else mask_before
    m_want = cutmix_reference(m, labels.cpu(), p.perm, p.boxes, 5)[0].view(mask_before.shape)
    assert torch.equal(images.cpu(), want) and torch.equal(targets.cpu(), t_want)
    assert torch.equal(masks.cpu(), m_want)
    assert not torch.equal(masks.cpu(), mask_before) or bool((p.boxes[:, 2:] == p.boxes[:, :2]).any(1).all())


def test_masks_refused_with_blending_samples(gen):
    images, masks = torch.rand(4, 3, 8, 8), torch.randint(0, 3, (4, 8, 8))
    params = rand_general(4, 8, 8, gen)._replace(mode=torch.tensor([0, 1, 0, 2], dtype=torch.int8))
    before = images.clone(), masks.clone()
    with pytest.raises(ValueError, match="masks: a MixUp sample blends pixels"):
        cutmix_ext.mix_(images, None, params, masks=masks)
    with pytest.raises(ValueError, match=r"masks: expected shape \(N, H, W\)"):
        cutmix_ext.cutmix_(images, torch.zeros(4, dtype=torch.int64), 2, masks=masks[:, :4])
    assert torch.equal(images, before[0]) and torch.equal(masks, before[1])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_compact_targets_give_the_dense_loss(device, op, gen):
    k = 50
    images = rand_images((12, 3, 10, 10), torch.float32, gen, device)
    labels = rand_labels(12, k, "int64", gen, device)
    twin = images.clone()
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    _, (y_a, y_b, lam), p = fn(images, labels, k, per_sample=True, pairing="random",
                               generator=gen, targets="compact", return_params=True)
    _, dense = fn(twin, labels, k, params=p, label_smoothing=0.1)
    assert torch.equal(images, twin)
    assert torch.equal(y_a, labels) and torch.equal(y_b, labels[p.perm.to(device)])
    logits = torch.randn(12, k, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    loss = cutmix_ext.mixed_cross_entropy(logits, y_a, y_b, lam, label_smoothing=0.1)
    want = torch.nn.functional.cross_entropy(logits, dense.double())
    torch.testing.assert_close(loss, want, rtol=1e-6, atol=1e-7)


def test_compact_targets_need_class_indices(gen):
    images = torch.rand(4, 3, 8, 8)
    before = images.clone()
    with pytest.raises(ValueError, match="targets: 'compact' needs class-index labels"):
        cutmix_ext.cutmix_(images, torch.rand(4, 3), targets="compact")
    with pytest.raises(ValueError, match="targets: expected 'dense' or 'compact'"):
        cutmix_ext.mixup_(images, torch.zeros(4, dtype=torch.int64), 3, targets="sparse")
    assert torch.equal(images, before)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.bfloat16], ids=str)
def test_cutout_fills_its_box_and_nothing_else(device, dtype, gen):
    images = rand_images((16, 3, 20, 24), dtype, gen, device)
    before = images.cpu().clone()
    _, p = cutmix_ext.cutout_(images, size=(6, 8), fill=7, generator=gen, return_params=True)
    assert torch.equal(p.perm, torch.arange(16)) and bool((p.lam == 1).all())
    inside = torch.zeros(16, 1, 20, 24, dtype=torch.bool)
    for i, (x1, y1, x2, y2) in enumerate(p.boxes.tolist()):
        assert x2 - x1 <= 8 and y2 - y1 <= 6
        inside[i, :, y1:y2, x1:x2] = True
    inside = inside.expand(-1, 3, -1, -1)
    assert bool((images.cpu()[inside] == 7).all())
    assert torch.equal(images.cpu()[~inside], before[~inside])
    assert inside.any()


def test_center_gaussian_centres(gen):
    """Box centres ~ N(image centre, center_std * side): the midpoint of an unclipped box is its
    centre. The default centres are uniform (standard deviation side / sqrt(12))."""
    h = w = 400
    for box, std in (("center_gaussian", 0.05), ("uniform", 1 / math.sqrt(12))):
        p = cutmix_ext.sample_params((4000, 1, h, w), "cutmix", per_sample=True, generator=gen,
                                     box=box, center_std=0.05)
        b = p.boxes
        free = (b[:, 0] > 0) & (b[:, 2] < w) & (b[:, 1] > 0) & (b[:, 3] < h) & (b[:, 2] > b[:, 0])
        for lo, hi in ((0, 2), (1, 3)):
            c = (b[free, lo] + b[free, hi]).double() / 2
            assert abs(c.mean() - (w - 1) / 2) < 5 * std * w / math.sqrt(len(c)) + 1
            if box == "center_gaussian":
                assert abs(c.std() / (std * w) - 1) < 0.15
            else:
                assert c.std() > 3 * 0.05 * w


def test_fixed_size_boxes(gen):
    h, w = 40, 48
    images = torch.rand(500, 1, h, w)
    labels = torch.randint(0, 5, (500,))
    before = images.clone()
    _, targets, p = cutmix_ext.cutmix_(images, labels, 5, per_sample=True, pairing="random",
                                       box=(16, 12), generator=gen, return_params=True)
    sides = p.boxes[:, 2:] - p.boxes[:, :2]
    assert bool((sides[:, 0] <= 12).all() and (sides[:, 1] <= 16).all() and (sides > 0).all())
    unclipped = (p.boxes[:, 0] > 0) & (p.boxes[:, 2] < w) & (p.boxes[:, 1] > 0) & (p.boxes[:, 3] < h)
    assert bool((sides[unclipped] == torch.tensor([12, 16])).all()) and unclipped.sum() > 100
    want, t_want, lam = cutmix_reference(before, labels, p.perm, p.boxes, 5)
    assert torch.equal(images, want) and torch.equal(targets, t_want)
    assert torch.equal(p.lam, lam)


@pytest.mark.parametrize("label", ["onehot", "complete"])
def test_label_variants(label, gen):
    images = torch.rand(400, 2, 16, 16)
    labels = torch.randint(0, 7, (400,))
    before = images.clone()
    _, targets, p = cutmix_ext.cutmix_(images, labels, 7, per_sample=True, pairing="random",
                                       label=label, generator=gen, return_params=True)
    want, _, area = cutmix_reference(before, labels, p.perm, p.boxes, 7)
    assert torch.equal(images, want)  # the pixels are CutMix's
    y_a = torch.nn.functional.one_hot(labels, 7).float()
    y_b = y_a[p.perm]
    if label == "onehot":  # all of the label to the larger area
        own = (area >= 0.5)[:, None]
        assert torch.equal(targets, torch.where(own, y_a, y_b))
    else:  # half and half wherever something was pasted
        pasted = (area < 1)[:, None]
        assert torch.equal(targets, torch.where(pasted, 0.5 * y_a + 0.5 * y_b, y_a))
        assert pasted.any()


def test_scheduled_cutmix_probability_rises_linearly(gen):
    """Scheduled CutMix: call t mixes each sample with probability min(1, t / steps)."""
    T = pytest.importorskip("cutmix_ext.transforms")
    steps, n = 8, 1500
    mix = T.CutMix(num_classes=3, per_sample=True, schedule_steps=steps, box=4, generator=gen)
    for t in range(steps + 3):
        images, labels = torch.rand(n, 1, 8, 8), torch.randint(0, 3, (n,))
        mix(images, labels)
        b = mix.last_params.boxes
        rate = float(((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).double().mean())
        p = min(1.0, t / steps)
        assert abs(rate - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12, (t, rate, p)


def test_p_is_the_probability_of_mixing(gen):
    n = 4000
    p = cutmix_ext.sample_params((n, 1, 8, 8), "mixup", per_sample=True, p=0.3, generator=gen)
    rate = float((p.lam < 1).double().mean())
    assert abs(rate - 0.3) < 5 * math.sqrt(0.3 * 0.7 / n)


@pytest.mark.parametrize("case", ["mode value", "blend on int", "fill range", "fill fraction", "mode shape"])
def test_general_op_errors_leave_tensors_untouched(case, gen):
    images = torch.rand(5, 3, 8, 8)
    masks = torch.randint(0, 9, (5, 1, 8, 8), dtype=torch.int16)
    p = rand_general(5, 8, 8, gen, modes=(0, 2))
    target, args, err, pattern = {
        "mode value": (images, dict(params=p._replace(mode=torch.tensor([0, 3, 0, 0, 0]))), ValueError,
                       r"params.mode: entry 1 is 3"),
        "blend on int": (masks, dict(params=p._replace(mode=torch.tensor([0, 1, 0, 0, 2]))), TypeError,
                         r"params.mode: sample 1 blends .* got torch\.int16"),
        "fill range": (masks, dict(params=p._replace(mode=torch.full((5,), 2)), fill=40000), ValueError,
                       r"fill: 40000.* is not a value of dtype torch\.int16"),
        "fill fraction": (masks, dict(params=p._replace(mode=torch.full((5,), 2)), fill=0.5), ValueError,
                          r"fill: 0.5 is not a value of dtype torch\.int16"),
        "mode shape": (images, dict(params=p._replace(mode=torch.zeros(4, dtype=torch.int8))), ValueError,
                       r"params.mode: expected shape \(5,\)"),
    }[case]
    before = target.clone()
    with pytest.raises(err, match=pattern):
        cutmix_ext.mix_(target, None, **args)
    assert torch.equal(target, before)


def test_feature_mix_takes_the_variants(gen):
    """nn.FeatureMix draws fixed-size or centre-Gaussian boxes on the input grid and moves them
    to the feature map; label="onehot" gives the larger area's label on the grid that was mixed."""
    mix = cutmix_ext.nn.FeatureMix("cutmix", box=(16, 16), label="onehot", per_sample=True,
                                   pairing="random", generator=gen).train()
    x = torch.randn(64, 4, 32, 32, generator=gen)
    y = torch.randint(0, 5, (64,), generator=gen)
    out = mix(x)
    p = mix.params
    sides = p.boxes[:, 2:] - p.boxes[:, :2]
    assert bool((sides <= 16).all()) and p.size == (32, 32)
    want = cutmix_reference(x, y, p.perm, p.boxes, 5)[0]
    assert torch.equal(out, want)
    t = mix.targets(y, 5)
    onehot = torch.nn.functional.one_hot(y, 5).float()
    assert torch.equal(t, torch.where((p.lam >= 0.5)[:, None], onehot, onehot[p.perm]))
