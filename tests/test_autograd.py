"""Gradients: the out-of-place ops and the in-place ops on activations, against gradcheck and
against autograd through the pure-PyTorch reference; the transposed kernels; boxes moved to
other grids."""
import random

import pytest
import torch
from conftest import DEVICES
from helpers import DTYPES, rand_images, rand_labels

import cutmix_ext
from cutmix_ext import MixParams
from cutmix_ext.reference import cutmix_reference, mixed_targets_reference, mixup_reference

PAIRINGS = ["roll", "flip", "random", "explicit"]


def draw(x, op, pairing, per_sample, gen):
    explicit = pairing == "explicit"
    p = cutmix_ext.sample_params(x, op, per_sample=per_sample, alpha=0.7, generator=gen,
                                 pairing=torch.randperm(x.shape[0], generator=gen) if explicit else pairing)
    return p


def reference(op, x, params):
    """Out-of-place mix by the reference, differentiable through torch's own index ops."""
    n = x.shape[0]
    labels = torch.zeros(n, dtype=torch.int64)
    if op == "cutmix":
        return cutmix_reference(x, labels, params.perm, params.boxes, 1)[0]
    # mixup_reference rounds in the images' dtype; for float64 it is the plain formula
    return mixup_reference(x, labels, params.perm, params.lam, 1)[0]


def mix(op, x, params):
    return (cutmix_ext.cutmix if op == "cutmix" else cutmix_ext.mixup)(x, params)


def mix_inplace(op, x, params):
    h = x * 1.0  # a non-leaf activation
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    fn(h, torch.zeros(x.shape[0], dtype=torch.int64, device=x.device), 1, params=params)
    return h


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("pairing", PAIRINGS)
@pytest.mark.parametrize("per_sample", [False, True])
def test_gradcheck(op, pairing, per_sample, device, gen):
    x = rand_images((5, 2, 6, 7), torch.float64, gen, device).requires_grad_()
    params = draw(x, op, pairing, per_sample, gen)
    assert torch.autograd.gradcheck(lambda t: mix(op, t, params), (x,))
    assert torch.autograd.gradgradcheck(lambda t: mix(op, t, params), (x,))
    assert torch.autograd.gradcheck(lambda t: mix_inplace(op, t, params), (x,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "cropped"])
def test_gradients_match_reference_and_inplace(op, layout, device, gen):
    """Including the partners' share: x[perm[i]] gets the gradient of out[i] inside box i."""
    for shape in [(6, 3, 11, 13), (9, 4, 7, 7)]:
        x0 = rand_images(shape, torch.float64, gen, device, layout)
        params = draw(x0, op, random.choice(PAIRINGS), random.choice([False, True]), gen)
        g = rand_images(shape, torch.float64, gen, device)
        grads = []
        for f in (mix, mix_inplace):
            x = x0.detach().clone().requires_grad_()
            out = f(op, x, params)
            out.backward(g)
            grads.append((out.detach(), x.grad))
        xr = x0.detach().cpu().requires_grad_()
        ref = reference(op, xr, params)
        ref.backward(g.cpu())
        for out, grad in grads:
            assert torch.equal(out.cpu(), ref.detach())
            torch.testing.assert_close(grad.cpu(), xr.grad, rtol=1e-15, atol=1e-12)
        assert torch.equal(grads[0][1], grads[1][1])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=str)
def test_low_precision_gradients(op, dtype, device, gen):
    """Activations in fp16/bf16/fp32, channels_last: the gradient within the dtype's rounding of
    a float64 reference, the forward exactly the in-place op's result."""
    x0 = rand_images((8, 16, 14, 14), dtype, gen, device, "channels_last")
    params = draw(x0, op, "random", True, gen)
    x = x0.clone().requires_grad_()
    out = mix(op, x, params)
    assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last)
    inplace = x0.clone()
    (cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_)(
        inplace, rand_labels(8, 3, "int64", gen, device), 3, params=params)
    assert torch.equal(out.detach(), inplace)
    g = rand_images(x0.shape, dtype, gen, device, "channels_last")
    out.backward(g)
    xr, mag = (x0.double().cpu().requires_grad_() for _ in range(2))
    reference(op, xr, params).backward(g.double().cpu())
    # Each element sums at most two weighted terms, which may cancel: the error is bounded by
    # the sum of their magnitudes (the transposed mix of |g|), not by the result.
    reference(op, mag, params).backward(g.double().abs().cpu())
    eps, tiny = torch.finfo(dtype).eps, torch.finfo(dtype).tiny
    err = (x.grad.double().cpu() - xr.grad).abs()
    bound = 2 * eps * mag.grad + tiny
    assert bool((err <= bound).all()), f"worst error / bound: {float((err / bound).max()):.3g}"
    assert x.grad.dtype == dtype


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_out_of_place_equals_in_place(dtype, device, gen):
    """Same bits as cutmix_/mixup_ for every dtype and layout, and x untouched."""
    for op in ["cutmix", "mixup"]:
        for layout in ["contiguous", "channels_last", "cropped", "batch_slice"]:
            x = rand_images((7, 3, 10, 12), dtype, gen, device, layout)
            before = x.clone()
            params = draw(x, op, random.choice(PAIRINGS), random.choice([False, True]), gen)
            out = mix(op, x, params)
            assert torch.equal(x, before)
            (cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_)(
                x, rand_labels(7, 3, "int64", gen, device), 3, params=params)
            assert torch.equal(out, x), (op, layout)


def test_transposed_kernel_against_dense_matrix(gen):
    """The transposed form is the adjoint: <mix(x), g> == <x, mix^T(g)> for random x, g."""
    for op, fn in [("cutmix", torch.ops.cutmix_ext.cutmix), ("mixup", torch.ops.cutmix_ext.mixup)]:
        x = rand_images((6, 2, 5, 9), torch.float64, gen)
        g = rand_images((6, 2, 5, 9), torch.float64, gen)
        p = draw(x, op, "random", True, gen)
        second = p.boxes if op == "cutmix" else p.lam
        lhs = (fn(x, p.perm, second, False) * g).sum()
        rhs = (x * fn(g, p.perm, second, True)).sum()
        torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-9)


def test_expanded_gradient(gen):
    """out.sum().backward() hands the kernel an expanded (stride 0) gradient."""
    x = rand_images((4, 3, 8, 8), torch.float32, gen).requires_grad_()
    params = draw(x, "cutmix", "random", False, gen)
    cutmix_ext.cutmix(x, params).sum().backward()
    # one box for all: every element of x lands exactly once in the output
    assert torch.equal(x.grad, torch.ones_like(x))
    x.grad = None
    params = draw(x, "cutmix", "random", True, gen)
    cutmix_ext.cutmix(x, params).sum().backward()
    xr = x.detach().clone().requires_grad_()
    reference("cutmix", xr, params).sum().backward()
    assert torch.equal(x.grad, xr.grad)  # 0, 1 or 2 copies of each element


@pytest.mark.parametrize("grid", [56, 28, 14, 7])
def test_boxes_at_other_grids(grid, gen):
    """One draw at 224, rasterised onto feature grids with the exact lam of each."""
    for _ in range(20):
        p = cutmix_ext.sample_params((8, 3, 224, 224), "cutmix", per_sample=True, generator=gen)
        q = p.at(grid, grid)
        assert q.size == (grid, grid) and torch.equal(q.perm, p.perm)
        # each edge rounds to the nearest grid line: |x' - x * g / 224| <= 1/2
        assert ((q.boxes.double() - p.boxes.double() * grid / 224).abs() <= 0.5).all()
        assert (q.boxes[:, 0] <= q.boxes[:, 2]).all() and (q.boxes[:, 1] <= q.boxes[:, 3]).all()
        assert (q.boxes >= 0).all() and (q.boxes <= grid).all()
        area = ((q.boxes[:, 2] - q.boxes[:, 0]) * (q.boxes[:, 3] - q.boxes[:, 1])).double()
        assert torch.equal(q.lam, 1 - area / grid**2)
        x = rand_images((8, 4, grid, grid), torch.float32, gen)
        out = cutmix_ext.cutmix(x, q)
        labels = rand_labels(8, 5, "int64", gen)
        want, t_want, lam = cutmix_reference(x, labels, q.perm, q.boxes, 5)
        assert torch.equal(out, want) and torch.equal(lam, q.lam)
        assert torch.equal(cutmix_ext.mix_targets(labels, q, 5), t_want)
        assert torch.equal(p.at(224, 224).boxes, p.boxes)


def test_mix_targets_match_the_ops(gen):
    for op in ["cutmix", "mixup"]:
        for kind in ["int64", "int32", "float32", "bfloat16"]:
            x = rand_images((9, 3, 8, 8), torch.float32, gen)
            labels = rand_labels(9, 6, kind, gen)
            k = 6 if kind.startswith("int") else None
            fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
            _, t, p = fn(x, labels, k, per_sample=True, pairing="random", label_smoothing=0.1,
                         return_params=True, generator=gen)
            assert torch.equal(cutmix_ext.mix_targets(labels, p, k, label_smoothing=0.1), t)
            assert torch.equal(t, mixed_targets_reference(labels, p.perm, p.lam, k, 0.1))


def test_inplace_version_counter_and_saved_tensors(gen):
    """Mixing a tensor that another op saved for its backward is caught, as for torch's own
    in-place ops."""
    w = torch.randn(6, 3, 8, 8, generator=gen, requires_grad=True)
    h = w.exp()  # exp saves its output
    v = h._version
    cutmix_ext.cutmix_(h, torch.zeros(6, dtype=torch.int64), 2, generator=gen)
    assert h._version > v
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        h.sum().backward()
    y = torch.randn(6, 3, 8, 8, generator=gen)
    v = y._version
    with torch.no_grad():
        cutmix_ext.mixup_(y, torch.zeros(6, dtype=torch.int64), 2, generator=gen)
    assert y._version > v


@pytest.mark.parametrize("device", DEVICES)
def test_bad_input_leaves_tensors_untouched(device, gen):
    x = rand_images((6, 3, 8, 8), torch.float32, gen, device)
    labels = rand_labels(6, 4, "int64", gen, device)
    p = cutmix_ext.sample_params(x, "cutmix", generator=gen)
    other_n = cutmix_ext.sample_params((5, 3, 8, 8), "cutmix", generator=gen)
    other_grid = cutmix_ext.sample_params((6, 3, 16, 16), "cutmix", generator=gen)
    leaf = x.clone().requires_grad_()
    cases = [
        (lambda: cutmix_ext.cutmix(x, other_n), ValueError, r"params.perm: expected shape \(6,\)"),
        (lambda: cutmix_ext.mixup(x, other_n._replace(boxes=None)), ValueError, r"params.perm"),
        (lambda: cutmix_ext.cutmix(x, other_grid), ValueError, r"params: boxes drawn on a 16x16 grid.*at\(8, 8\)"),
        (lambda: cutmix_ext.cutmix(x, MixParams(p.perm, p.boxes + 9, p.lam)), ValueError,
         r"params.boxes: row 0 .* not a box inside the 8x8"),
        (lambda: cutmix_ext.cutmix(x, p._replace(perm=p.perm.to("meta"))), ValueError,
         r"params.perm: expected a CPU tensor, got meta"),
        (lambda: cutmix_ext.mixup(x, p._replace(lam=p.lam.to("meta"))), ValueError,
         r"params.lam: expected a CPU tensor, got meta"),
        (lambda: cutmix_ext.cutmix(x, p._replace(boxes=None)), ValueError, r"params: these are MixUp"),
        (lambda: cutmix_ext.cutmix_(leaf, labels, 4, params=p), ValueError, r"images: a leaf tensor that requires grad"),
        (lambda: cutmix_ext.mixup_(x * 1, labels.double()[:, None].expand(6, 4).requires_grad_(), params=p), ValueError,
         r"labels: require grad"),
        (lambda: torch.ops.cutmix_ext.cutmix(x.to(torch.uint8), p.perm, p.boxes, True), TypeError,
         r"x: the transposed \(backward\) form needs a floating-point tensor"),
        (lambda: cutmix_ext.cutmix(x[0], p), ValueError, r"x: expected a batch"),
        (lambda: p.at(0, 5), ValueError, r"height: expected a positive int, got 0"),
        (lambda: MixParams(p.perm, p.boxes, p.lam).at(4, 4), ValueError, r"params.size: unknown"),
        (lambda: cutmix_ext.mix_targets(labels, other_n, 4), ValueError, r"labels, params.perm: 6 labels, but partners for \(5,\) samples"),
    ]
    before = [x.clone(), labels.clone(), leaf.detach().clone(), p.perm.clone(), p.boxes.clone()]
    for call, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            call()
    after = [x, labels, leaf.detach(), p.perm, p.boxes]
    assert all(torch.equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_opcheck_out_of_place(op, device, gen):
    fn = torch.ops.cutmix_ext.cutmix.default if op == "cutmix" else torch.ops.cutmix_ext.mixup.default
    for shape, layout, per_sample, pairing in [((8, 3, 6, 6), "contiguous", False, "roll"),
                                               ((5, 4, 5, 7), "channels_last", True, "random"),
                                               ((3, 2, 2, 4, 5), "contiguous", True, "flip")]:
        x = rand_images(shape, torch.float32, gen, device, layout).requires_grad_()
        p = draw(x, op, pairing, per_sample, gen)
        second = p.boxes if op == "cutmix" else p.lam
        for transpose in [False, True]:
            torch.library.opcheck(fn, (x, p.perm, second, transpose))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_opcheck_in_place_on_activation(op, device, gen):
    fn = torch.ops.cutmix_ext.cutmix_.default if op == "cutmix" else torch.ops.cutmix_ext.mixup_.default
    x = rand_images((6, 3, 7, 9), torch.float32, gen, device)
    labels = rand_labels(6, 4, "int64", gen, device)
    p = draw(x, op, "random", True, gen)
    h = x.requires_grad_() * 1.0
    torch.library.opcheck(fn, (h, labels, p.perm, p.boxes if op == "cutmix" else p.lam, 4, 0.1))


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_mixed_cross_entropy_equals_dense_target(eps, gen):
    """Compact targets (y_a, y_b, lam): the loss and its gradient equal cross entropy against the
    dense mixed target the ops return."""
    n, k = 12, 37
    x = rand_images((n, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(n, k, "int64", gen)
    _, dense, p = cutmix_ext.cutmix_(x, labels, k, per_sample=True, pairing="random",
                                     label_smoothing=eps, return_params=True, generator=gen)
    logits = torch.randn(n, k, generator=gen, dtype=torch.float64, requires_grad=True)
    want = torch.nn.functional.cross_entropy(logits, dense.double())
    got = cutmix_ext.mixed_cross_entropy(logits, labels, labels[p.perm], p.lam, label_smoothing=eps)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)  # dense targets are float32
    g_want, = torch.autograd.grad(want, logits)
    g_got, = torch.autograd.grad(got, logits)
    torch.testing.assert_close(g_got, g_want, rtol=1e-5, atol=1e-7)
    per = cutmix_ext.mixed_cross_entropy(logits, labels, labels[p.perm], p.lam, label_smoothing=eps,
                                         reduction="none")
    assert per.shape == (n,)
    with pytest.raises(ValueError, match=r"y_b: expected int64/int32 class indices of shape \(12,\)"):
        cutmix_ext.mixed_cross_entropy(logits, labels, labels[:5], p.lam)
