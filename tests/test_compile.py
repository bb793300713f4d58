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
