"""cutmix_ / mixup_ against the pure-PyTorch reference, over shapes, dtypes, layouts, pairings,
per-sample parameters, soft labels and label smoothing."""
import random

import pytest
import torch
from conftest import DEVICES, needs_cuda
from helpers import DTYPES, LAYOUTS, outside_view, rand_images, rand_labels

import cutmix_ext
from cutmix_ext.reference import cutmix_reference, mixup_reference

SHAPES = [(1, 3, 5, 7), (2, 3, 8, 8), (5, 3, 17, 9), (8, 1, 32, 32), (7, 4, 3, 13), (6, 3, 16, 24),
          (3, 2, 4, 6, 10), (33, 3, 12, 12), (4, 5, 1, 9), (4, 3, 9, 1)]
PAIRINGS = ["roll", "flip", "random", "tensor"]
LABELS = ["int64", "int32", "float32", "float16", "bfloat16", "float64"]


def pick_pairing(name, n, gen):
    return torch.randperm(n, generator=gen) if name == "tensor" else name


def run_case(op, shape, dtype, layout, pairing, per_sample, label_kind, eps, gen, device):
    k = random.Random(int(torch.randint(1 << 30, (1,), generator=gen))).choice([1, 3, 10, 1000])
    images = rand_images(shape, dtype, gen, device, layout)
    labels = rand_labels(shape[0], k, label_kind, gen, device)
    num_classes = k if label_kind.startswith("int") else random.choice([None, k])
    before = images.clone()
    outside = outside_view(images, layout)
    stride = images.stride()
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    out, targets, params = fn(images, labels, num_classes, alpha=0.7, label_smoothing=eps,
                              pairing=pick_pairing(pairing, shape[0], gen), per_sample=per_sample,
                              generator=gen, return_params=True)
    assert out is images and out.stride() == stride
    if op == "cutmix":
        want, want_targets, lam = cutmix_reference(before, labels, params.perm, params.boxes, k, eps)
        torch.testing.assert_close(params.lam, lam, rtol=0, atol=0)
    else:
        want, want_targets = mixup_reference(before, labels, params.perm, params.lam, k, eps)
    assert targets.dtype == torch.float32 and targets.device == images.device
    assert targets.shape == (shape[0], k)
    # Bit for bit: images, and targets (the reference rounds once from float64 too).
    assert torch.equal(out.cpu(), want.cpu()), "images differ from the reference"
    assert torch.equal(targets.cpu(), want_targets), "targets differ from the reference"
    if outside is not None:
        assert torch.equal(outside_view(images, layout), outside), "wrote outside the view"
    return params


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_matches_reference(op, dtype, layout, device, gen):
    rng = random.Random(int(torch.randint(1 << 30, (1,), generator=gen)))
    for shape in SHAPES:
        if layout == "channels_last" and len(shape) not in (4, 5):
            continue
        params = run_case(op, shape, dtype, layout, rng.choice(PAIRINGS), rng.random() < 0.5,
                          rng.choice(LABELS), rng.choice([0.0, 0.1, 0.3]), gen, device)
        assert params.perm.shape == (shape[0],)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pairing", PAIRINGS)
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("labels", LABELS)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_pairings_and_labels(op, labels, per_sample, pairing, device, gen):
    for shape in [(1, 3, 6, 6), (9, 3, 10, 14), (64, 3, 8, 8)]:
        params = run_case(op, shape, torch.float32, "contiguous", pairing, per_sample, labels,
                          0.1, gen, device)
        if pairing == "roll":
            assert params.perm.tolist() == [(i - 1) % shape[0] for i in range(shape[0])]
        if pairing == "flip":
            assert params.perm.tolist() == list(range(shape[0]))[::-1]
        if pairing == "random":
            assert sorted(params.perm.tolist()) == list(range(shape[0]))
        same = (params.lam == params.lam[0]).all()
        assert bool(same) or per_sample
        if per_sample is False and op == "cutmix":
            assert (params.boxes == params.boxes[0]).all()


def edge_boxes(n, h, w, gen):
    """Boxes touching each edge, empty, full, one pixel, and random ones."""
    fixed = [(0, 0, w, h), (0, 0, 0, 0), (w, h, w, h), (0, 0, 1, 1), (w - 1, h - 1, w, h),
             (0, 0, w, 1), (0, h - 1, w, h), (2, 1, 2, h), (1, 2, w, 2), (0, 1, w // 2, h)]
    rows = []
    for i in range(n):
        if i < len(fixed):
            rows.append(fixed[i])
        else:
            x1, x2 = sorted(torch.randint(0, w + 1, (2,), generator=gen).tolist())
            y1, y2 = sorted(torch.randint(0, h + 1, (2,), generator=gen).tolist())
            rows.append((x1, y1, x2, y2))
    return torch.tensor(rows, dtype=torch.int64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cutmix_edge_boxes(dtype, layout, device, gen):
    for n, shape in [(12, (12, 3, 7, 11)), (10, (10, 2, 16, 16)), (13, (13, 3, 5, 33))]:
        h, w = shape[-2:]
        images = rand_images(shape, dtype, gen, device, layout)
        labels = rand_labels(n, 5, "int64", gen, device)
        boxes = edge_boxes(n, h, w, gen)
        for perm in [torch.randperm(n, generator=gen), torch.arange(n), torch.arange(n).roll(1)]:
            lam = 1 - ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).double() / (h * w)
            params = cutmix_ext.MixParams(perm, boxes, lam)
            want, want_t, want_lam = cutmix_reference(images.clone(), labels, perm, boxes, 5)
            _, targets = cutmix_ext.cutmix_(images, labels, 5, params=params)
            assert torch.equal(images.cpu(), want.cpu())
            assert torch.equal(targets.cpu(), want_t)
            # The same box for everyone takes the shared-parameter path.
            shared = cutmix_ext.MixParams(perm, boxes[3:4].expand(n, 4).contiguous(), lam)
            want, want_t, _ = cutmix_reference(images.clone(), labels, perm, shared.boxes, 5)
            cutmix_ext.cutmix_(images, labels, 5, params=shared)
            assert torch.equal(images.cpu(), want.cpu())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_mixup_edge_lams(dtype, device, gen):
    n = 9
    images = rand_images((n, 3, 6, 5), dtype, gen, device)
    labels = rand_labels(n, 4, "int64", gen, device)
    lam = torch.tensor([0.0, 1.0, 0.5, 0.25, 1e-9, 1 - 1e-9, 0.3, 0.7, 0.999], dtype=torch.float64)
    perm = torch.randperm(n, generator=gen)
    want, want_t = mixup_reference(images.clone(), labels, perm, lam, 4)
    _, targets = cutmix_ext.mixup_(images, labels, 4, params=cutmix_ext.MixParams(perm, None, lam))
    assert torch.equal(images.cpu(), want.cpu())
    assert torch.equal(targets.cpu(), want_t)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_uint8_mixup_rounds_and_cutmix_copies_exactly(op, device, gen):
    images = rand_images((16, 3, 20, 20), torch.uint8, gen, device)
    labels = rand_labels(16, 7, "int64", gen, device)
    before = images.clone()
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    _, _, params = fn(images, labels, 7, per_sample=True, pairing="random", generator=gen,
                      return_params=True)
    if op == "mixup":  # half-way values round to even, as torch.round
        lam = params.lam.float().view(-1, 1, 1, 1).to(device)
        exact = before.float() * lam + before[params.perm.to(device)].float() * (1 - params.lam.to(device)).float().view(-1, 1, 1, 1)
        assert (images.float() - exact).abs().max() <= 0.5 + 1e-4
    else:
        changed = images != before
        for i, (x1, y1, x2, y2) in enumerate(params.boxes.tolist()):
            inside = torch.zeros(20, 20, dtype=torch.bool, device=device)
            inside[y1:y2, x1:x2] = True
            assert not changed[i][:, ~inside].any()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_replay_with_params(op, device, gen):
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    a = rand_images((10, 3, 16, 12), torch.float32, gen, device)
    b = a.clone()
    labels = rand_labels(10, 6, "int64", gen, device)
    _, ta, params = fn(a, labels, 6, per_sample=True, pairing="random", generator=gen, return_params=True)
    state = gen.get_state()
    _, tb, params_b = fn(b, labels, 6, params=params, return_params=True)
    assert torch.equal(gen.get_state(), state), "a replay must not draw"
    assert params_b is params
    assert torch.equal(a, b) and torch.equal(ta, tb)
    # The same parameters apply to other tensors of the batch, e.g. another dtype.
    c = rand_images((10, 3, 16, 12), torch.uint8, gen, device)
    want = (cutmix_reference if op == "cutmix" else mixup_reference)(
        c.clone(), labels, params.perm, params.boxes if op == "cutmix" else params.lam, 6)[0]
    fn(c, labels, 6, params=params)
    assert torch.equal(c, want)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_seeded_generator_is_deterministic(op, device, gen):
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    images = rand_images((12, 3, 16, 16), torch.float32, gen, device)
    labels = rand_labels(12, 5, "int64", gen, device)
    runs = []
    for _ in range(2):
        x = images.clone()
        g = torch.Generator().manual_seed(1234)
        _, t, p = fn(x, labels, 5, pairing="random", per_sample=True, generator=g, return_params=True)
        runs.append((x, t, p))
    (x0, t0, p0), (x1, t1, p1) = runs
    assert torch.equal(x0, x1) and torch.equal(t0, t1)
    assert all(torch.equal(u, v) for u, v in zip(p0[:3], p1[:3]) if u is not None)
    assert p0.size == p1.size == (16, 16)
    # torch.manual_seed drives the default generator.
    torch.manual_seed(99)
    _, _, q0 = fn(images.clone(), labels, 5, return_params=True)
    torch.manual_seed(99)
    _, _, q1 = fn(images.clone(), labels, 5, return_params=True)
    assert torch.equal(q0.lam, q1.lam)


def test_empty_batch():
    images = torch.empty(0, 3, 8, 8)
    _, targets = cutmix_ext.cutmix_(images, torch.empty(0, dtype=torch.int64), 10)
    assert targets.shape == (0, 10)
    _, targets = cutmix_ext.mixup_(images, torch.empty(0, 4), None)
    assert targets.shape == (0, 4)


def test_large_batch_many_threads(gen):
    """Enough work to be split across threads, with per-sample boxes and a random pairing."""
    torch.set_num_threads(max(2, torch.get_num_threads()))
    for op in ["cutmix", "mixup"]:
        run_case(op, (96, 3, 64, 48), torch.float32, "contiguous", "random", True, "int64", 0.1,
                 gen, "cpu")
        run_case(op, (64, 3, 40, 40), torch.uint8, "channels_last", "roll", False, "int64", 0.0,
                 gen, "cpu")


@needs_cuda
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "cropped"])
def test_cuda_matches_cpu(op, dtype, layout, gen):
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    # every kernel family: rows inline in a parameter block of 64, 256 or 960 rows, a table in
    # memory, the large tile (> 2048 samples), a shared box; rows off 16-byte boundaries
    cases = [((32, 3, 33, 17), True, "random"), ((64, 3, 24, 24), False, "roll"),
             ((7, 3, 14, 14), False, "flip"), ((200, 3, 5, 12), True, "random"),
             ((6, 3, 8, 300), True, "random"), ((4, 3, 9, 299), True, "roll"),
             ((300, 2, 6, 10), True, "random"),
             ((1100, 3, 8, 8), True, "random"), ((2500, 1, 4, 8), True, "random"),
             ((3, 2, 3, 8, 8), True, "flip")]
    for shape, per_sample, pairing in cases:
        if layout == "channels_last" and len(shape) == 5:
            continue
        original = rand_images(shape, dtype, gen, "cpu", layout)
        labels = rand_labels(shape[0], 10, "int64", gen)
        on_cpu = rand_images(shape, dtype, gen, "cpu", layout)
        on_cpu.copy_(original)
        _, t_cpu, params = fn(on_cpu, labels, 10, pairing=pairing, per_sample=per_sample,
                              generator=gen, label_smoothing=0.1, return_params=True)
        on_gpu = rand_images(shape, dtype, gen, "cuda", layout)
        on_gpu.copy_(original)
        _, t_gpu = fn(on_gpu, labels.cuda(), 10, params=params, label_smoothing=0.1)
        torch.cuda.synchronize()
        assert torch.equal(on_gpu.cpu(), on_cpu), (shape, pairing)
        assert torch.equal(t_gpu.cpu(), t_cpu), (shape, pairing)
