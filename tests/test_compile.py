"""The ops under torch.library.opcheck and torch.compile(fullgraph=True)."""
import pytest
import torch
from conftest import DEVICES
from helpers import rand_images, rand_labels

import cutmix_ext


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_opcheck(op, device, gen):
    for shape, labels_kind, per_sample, pairing in [((8, 3, 16, 16), "int64", False, "roll"),
                                                    ((5, 3, 9, 12), "float32", True, "random"),
                                                    ((1, 2, 4, 6, 6), "int32", True, "flip")]:
        images = rand_images(shape, torch.float32, gen, device)
        labels = rand_labels(shape[0], 6, labels_kind, gen, device)
        params = cutmix_ext.sample_params(images, op, per_sample=per_sample, pairing=pairing, generator=gen)
        k = 6 if labels_kind.startswith("int") else None
        if op == "cutmix":
            args = (images, labels, params.perm, params.boxes, k, 0.1)
            fn = torch.ops.cutmix_ext.cutmix_.default
        else:
            args = (images, labels, params.perm, params.lam, k, 0.1)
            fn = torch.ops.cutmix_ext.mixup_.default
        torch.library.opcheck(fn, args)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_general_op(device, gen):
    from test_general import rand_general, rand_mask

    images = rand_images((9, 3, 10, 12), torch.float32, gen, device)
    p = rand_general(9, 10, 12, gen)
    for labels, k in ((rand_labels(9, 6, "int64", gen, device), 6), (None, None)):
        torch.library.opcheck(torch.ops.cutmix_ext.mix_.default,
                              (images, labels, p.perm, p.boxes, p.lam, p.mode, 2.0, k, 0.1))
    masks = rand_mask((9, 1, 10, 12), torch.int64, gen).to(device)
    p = rand_general(9, 10, 12, gen, modes=(0, 2))
    torch.library.opcheck(torch.ops.cutmix_ext.mix_.default,
                          (masks, None, p.perm, p.boxes, p.lam, p.mode, 3.0, None, 0.0))


def test_general_op_compiles_fullgraph(gen):
    images = torch.rand(6, 3, 8, 8, generator=gen)
    labels = torch.randint(0, 4, (6,), generator=gen)
    from test_general import rand_general

    p = rand_general(6, 8, 8, gen)

    def step(x, y):
        return torch.ops.cutmix_ext.mix_(x, y, p.perm, p.boxes, p.lam, p.mode, 0.0, 4, 0.1)

    eager, compiled = images.clone(), images.clone()
    t_eager = step(eager, labels)
    t_compiled = torch.compile(step, fullgraph=True)(compiled, labels)
    assert torch.equal(eager, compiled) and torch.equal(t_eager, t_compiled)


def test_fake_sampler_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        perm, boxes, lam = torch.ops.cutmix_ext.sample(7, 5, 9, 1.0, True, True, "random")
        assert perm.shape == (7,) and boxes.shape == (7, 4) and lam.shape == (7,)
        assert boxes.dtype == torch.int64 and lam.dtype == torch.float64
    real = torch.ops.cutmix_ext.sample(7, 5, 9, 1.0, True, True, "random")
    assert [t.shape for t in real] == [perm.shape, boxes.shape, lam.shape]
    assert [t.dtype for t in real] == [perm.dtype, boxes.dtype, lam.dtype]


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_training_step_compiles_without_graph_breaks(op, gen):
    """Sampling included; the compiled step equals eager for the same seed, and two calls in one
    graph draw twice."""
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_

    def step(x, y, w):
        x, t = fn(x, y, 10, per_sample=True, pairing="random", label_smoothing=0.1)
        x2, t2 = fn(x * 1.0, y, 10)
        loss = -(torch.log_softmax((x2.flatten(1) @ w), 1) * (t + t2)).sum()
        return x, t, t2, loss

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True)
    x = rand_images((6, 3, 8, 8), torch.float32, gen)
    y = rand_labels(6, 10, "int64", gen)
    w = torch.randn(3 * 8 * 8, 10, generator=gen)
    torch.manual_seed(3)
    want = step(x.clone(), y, w)
    torch.manual_seed(3)
    got = compiled(x.clone(), y, w)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert not torch.equal(want[1], want[2]), "the two calls drew the same parameters"


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_feature_mixing_with_backward_compiles(op, inplace, gen):
    """Mixing an activation inside a compiled forward+backward: same loss and gradients as
    eager, sampling included, no graph break."""
    sample_op = op

    def step(x, w, labels):
        h = torch.nn.functional.conv2d(x, w, padding=1)
        params = cutmix_ext.sample_params(h, sample_op, per_sample=True, pairing="random")
        if inplace:
            fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
            h, targets = fn(h, labels, 5, params=params)
        else:
            h = (cutmix_ext.cutmix if op == "cutmix" else cutmix_ext.mixup)(h, params)
            targets = cutmix_ext.mix_targets(labels, params, 5)
        logits = h.mean((2, 3))[:, :5]
        loss = -(torch.log_softmax(logits, 1) * targets).sum(1).mean()
        loss.backward()
        return loss

    x = rand_images((6, 3, 10, 10), torch.float32, gen)
    labels = rand_labels(6, 5, "int64", gen)
    results = []
    for f in (step, torch.compile(step, fullgraph=False)):
        w = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(7), requires_grad=True)
        torch.manual_seed(11)
        loss = f(x, w, labels)
        results.append((loss.detach(), w.grad))
    torch.testing.assert_close(results[0], results[1])
    torch._dynamo.reset()
    fwd = torch.compile(lambda x, p: (cutmix_ext.cutmix if op == "cutmix" else cutmix_ext.mixup)(x * 2, p),
                        fullgraph=True)
    xs = rand_images((6, 3, 10, 10), torch.float32, gen).requires_grad_()
    p = cutmix_ext.sample_params(xs, op, per_sample=True, pairing="random", generator=gen)
    out = fwd(xs, p)
    out.backward(torch.ones_like(out))
    want = xs.detach().clone().requires_grad_()
    ref = (cutmix_ext.cutmix if op == "cutmix" else cutmix_ext.mixup)(want * 2, p)
    ref.backward(torch.ones_like(ref))
    assert torch.equal(out.detach(), ref.detach()) and torch.equal(xs.grad, want.grad)


def test_opcheck_samplers(gen):
    ops = torch.ops.cutmix_ext
    for args in [(6, 8, 8, 1.0, True, True, "random"), (5, 3, 7, 0.4, False, False, "flip"),
                 (1, 1, 1, 2.0, True, False, "roll")]:
        torch.library.opcheck(ops.sample.default, args)
    for args in [(3, 0.5), (1, 1.0), (4, 0.0)]:
        torch.library.opcheck(ops.choose.default, args)
    for args in [(8, 16, 12, 0.8, 1.0, None, 1.0, 0.5, "elem", True),
                 (7, 10, 10, 0.0, 1.0, [0.2, 0.8], 0.7, 0.5, "pair", False),
                 (4, 8, 8, 1.0, 0.0, None, 1.0, 0.5, "batch", True)]:
        torch.library.opcheck(ops.sample_timm.default, args)
    images = rand_images((6, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(6, 5, "int64", gen)
    for op in (ops.cutmix_sampled_.default, ops.mixup_sampled_.default):
        torch.library.opcheck(op, (images, labels, 5, 0.1, 1.0, "random", None, True))


@pytest.mark.parametrize("cut", [True, False])
def test_opcheck_device_sampling(cut, gen):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    images = rand_images((6, 3, 8, 8), torch.float32, gen, "cuda")
    labels = rand_labels(6, 5, "int64", gen, "cuda")
    torch.library.opcheck(torch.ops.cutmix_ext.mix_device_sampled_.default,
                          (images, labels, 5, 0.1, 1.0, cut, True, "random"))
