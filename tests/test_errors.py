"""Bad input raises a clear exception naming the argument and the bad value, before anything is
written: the caller's tensors are left untouched."""
import math

import pytest
import torch
from conftest import needs_cuda
from helpers import rand_images, rand_labels

import cutmix_ext
from cutmix_ext import MixParams

N, C, H, W, K = 6, 3, 8, 10, 5


def good_params(n=N, h=H, w=W):
    g = torch.Generator().manual_seed(0)
    return cutmix_ext.sample_params((n, C, h, w), per_sample=True, pairing="random", generator=g)


def with_perm(perm):
    p = good_params()
    return p._replace(perm=perm)


def with_boxes(boxes):
    return good_params()._replace(boxes=boxes)


def mixup_params(lam, perm=None):
    return MixParams(torch.arange(N) if perm is None else perm, None, lam)


# (name, op, kwargs changed from the good call, exception, pattern the message must match)
CASES = [
    ("3-d images", "cutmix", dict(images=lambda x: x[0]), ValueError, r"images: expected a batch .* got shape \[3, 8, 10\]"),
    ("complex images", "cutmix", dict(images=lambda x: x.to(torch.complex64)), TypeError, r"images: unsupported dtype torch\.complex64"),
    ("bool images", "mixup", dict(images=lambda x: x > 0), TypeError, r"images.*torch\.bool"),
    ("images not a tensor", "cutmix", dict(images=lambda x: x.tolist()), TypeError, r"images.*list"),
    ("expanded images", "cutmix", dict(images=lambda x: x[:1].expand(N, C, H, W)), ValueError, r"images.*overlapping"),
    ("transposed images", "mixup", dict(images=lambda x: x.transpose(1, 3)), ValueError, r"images.*layout"),
    ("zero width", "cutmix", dict(images=lambda x: x[..., :0]), ValueError, r"height and width"),
    ("labels too short", "cutmix", dict(labels=lambda y: y[:-1]), ValueError, r"labels.*\(6,\).*\[5\]"),
    ("labels 2-d int", "mixup", dict(labels=lambda y: y[:, None]), ValueError, r"labels.*\[6, 1\]"),
    ("bool labels", "cutmix", dict(labels=lambda y: y > 2), TypeError, r"labels.*torch\.bool"),
    ("label too large", "cutmix", dict(labels=lambda y: y.index_fill(0, torch.tensor([2]), K)), ValueError, r"labels: class index 5 at position 2"),
    ("negative label", "mixup", dict(labels=lambda y: y.index_fill(0, torch.tensor([4]), -1)), ValueError, r"labels: class index -1 at position 4"),
    ("soft labels of wrong K", "cutmix", dict(labels=lambda y: torch.rand(N, K + 1), num_classes=K), ValueError, r"num_classes: 5 .* K = 6"),
    ("soft labels of wrong N", "mixup", dict(labels=lambda y: torch.rand(N + 1, K), num_classes=None), ValueError, r"labels.*\[7, 5\]"),
    ("missing num_classes", "cutmix", dict(num_classes=None), ValueError, r"num_classes: required"),
    ("zero num_classes", "cutmix", dict(num_classes=0), ValueError, r"num_classes: must be positive, got 0"),
    ("negative num_classes", "mixup", dict(num_classes=-3), ValueError, r"num_classes: must be positive, got -3"),
    ("float num_classes", "mixup", dict(num_classes=5.0), TypeError, r"num_classes.*float"),
    ("alpha zero", "cutmix", dict(alpha=0.0), ValueError, r"alpha: must be a positive number, got 0"),
    ("alpha negative", "mixup", dict(alpha=-1.0), ValueError, r"alpha.*-1"),
    ("alpha nan", "cutmix", dict(alpha=math.nan), ValueError, r"alpha.*nan"),
    ("alpha string", "cutmix", dict(alpha="1"), TypeError, r"alpha.*str"),
    ("smoothing one", "cutmix", dict(label_smoothing=1.0), ValueError, r"label_smoothing: must be in \[0, 1\), got 1"),
    ("smoothing negative", "mixup", dict(label_smoothing=-0.1), ValueError, r"label_smoothing.*-0.1"),
    ("smoothing nan", "mixup", dict(label_smoothing=math.nan), ValueError, r"label_smoothing.*nan"),
    ("unknown pairing", "cutmix", dict(pairing="shuffle"), ValueError, r"pairing: .*'shuffle'"),
    ("int pairing", "mixup", dict(pairing=3), TypeError, r"pairing.*int"),
    ("float pairing tensor", "cutmix", dict(pairing=torch.zeros(N)), TypeError, r"pairing: .* got dtype torch.float32"),
    ("pairing not a permutation", "cutmix", dict(pairing=torch.tensor([0, 1, 2, 3, 4, 4])), ValueError, r"pairing: not a permutation, 4 appears twice"),
    ("pairing out of range", "mixup", dict(pairing=torch.tensor([0, 1, 2, 3, 4, 6])), ValueError, r"pairing: entry 5 is 6"),
    ("pairing of wrong length", "cutmix", dict(pairing=torch.arange(N - 1)), ValueError, r"pairing: expected shape \(N,\) = \(6,\), got \(5,\)"),
    ("generator of wrong type", "cutmix", dict(generator=0), TypeError, r"generator.*int"),
    ("params not MixParams", "cutmix", dict(params=(1, 2, 3)), TypeError, r"params.*tuple"),
    ("MixUp params for CutMix", "cutmix", dict(params=mixup_params(torch.full((N,), 0.5, dtype=torch.float64))), ValueError, r"params.*boxes is None"),
    ("perm repeated", "cutmix", dict(params=with_perm(torch.tensor([1, 1, 2, 3, 4, 5]))), ValueError, r"params.perm: not a permutation, 1 appears twice"),
    ("perm negative", "cutmix", dict(params=with_perm(torch.tensor([-1, 1, 2, 3, 4, 5]))), ValueError, r"params.perm: entry 0 is -1"),
    ("perm int32", "cutmix", dict(params=with_perm(torch.arange(N, dtype=torch.int32))), TypeError, r"params.perm.*torch\.int32"),
    ("perm for another batch", "cutmix", dict(params=with_perm(torch.arange(N + 2))), ValueError, r"params.perm.*\[8\]"),
    ("box past the right edge", "cutmix", dict(params=with_boxes(torch.tensor([[0, 0, W + 1, 2]] * N))), ValueError, r"params.boxes: row 0 .*\(0, 0, 11, 2\)"),
    ("box reversed", "cutmix", dict(params=with_boxes(torch.tensor([[0, 0, 2, 2]] * (N - 1) + [[3, 0, 2, 2]]))), ValueError, r"params.boxes: row 5 .*\(3, 0, 2, 2\)"),
    ("box negative", "cutmix", dict(params=with_boxes(torch.tensor([[0, -1, 2, 2]] * N))), ValueError, r"params.boxes: row 0.*-1"),
    ("boxes of wrong shape", "cutmix", dict(params=with_boxes(torch.zeros(N, 3, dtype=torch.int64))), ValueError, r"params.boxes.*\[6, 3\]"),
    ("boxes for another batch", "cutmix", dict(params=with_boxes(torch.zeros(N - 1, 4, dtype=torch.int64))), ValueError, r"params.boxes.*\[5, 4\]"),
    ("float boxes", "cutmix", dict(params=with_boxes(torch.zeros(N, 4))), TypeError, r"params.boxes.*torch\.float32"),
    ("lam above one", "mixup", dict(params=mixup_params(torch.full((N,), 1.5, dtype=torch.float64))), ValueError, r"params.lam: entry 0 is 1.5"),
    ("lam nan", "mixup", dict(params=mixup_params(torch.tensor([0.5] * 5 + [math.nan], dtype=torch.float64))), ValueError, r"params.lam: entry 5 is nan"),
    ("lam for another batch", "mixup", dict(params=mixup_params(torch.full((N + 1,), 0.5, dtype=torch.float64))), ValueError, r"params.lam.*\[7\]"),
    ("labels on another device", "cutmix", dict(labels=lambda y: y.to("meta")), ValueError, r"labels: expected on the images' device cpu, got meta"),
]


@pytest.mark.parametrize("name,op,change,exc,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_and_leaves_tensors_untouched(name, op, change, exc, pattern, gen):
    images = rand_images((N, C, H, W), torch.float32, gen)
    labels = rand_labels(N, K, "int64", gen)
    kwargs = dict(images=images, labels=labels, num_classes=K, generator=gen)
    for key, value in change.items():
        kwargs[key] = value(kwargs[key]) if callable(value) else value
    tensors = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor) and v.device.type != "meta"}
    tensors.update(original_images=images, original_labels=labels)
    snapshot = {k: v.clone() for k, v in tensors.items()}
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    rest = {k: v for k, v in kwargs.items() if k not in ("images", "labels")}
    with pytest.raises(exc, match=pattern):
        fn(kwargs["images"], kwargs["labels"], **rest)
    for key, tensor in tensors.items():
        assert torch.equal(tensor, snapshot[key]), f"{key} was modified"


def test_bad_input_through_the_op_itself(gen):
    """The C++ checks hold for callers of torch.ops.cutmix_ext directly, too."""
    images = rand_images((N, C, H, W), torch.uint8, gen)
    before = images.clone()
    labels = rand_labels(N, K, "int64", gen)
    boxes = torch.tensor([[0, 0, 4, 4]] * N)
    with pytest.raises(ValueError, match="params.perm"):
        torch.ops.cutmix_ext.cutmix_(images, labels, torch.zeros(N, dtype=torch.int64), boxes, K, 0.0)
    with pytest.raises(ValueError, match="params.boxes"):
        torch.ops.cutmix_ext.cutmix_(images, labels, torch.arange(N), boxes + H, K, 0.0)
    with pytest.raises(TypeError, match="params.lam: expected a float64 or float32 tensor, got torch.int64"):
        torch.ops.cutmix_ext.mixup_(images, labels, torch.arange(N), torch.zeros(N, dtype=torch.int64), K, 0.0)
    assert torch.equal(images, before)


def test_leaf_that_requires_grad():
    images = torch.rand(N, C, H, W, requires_grad=True)
    before = images.detach().clone()
    with pytest.raises(ValueError, match="images: a leaf tensor that requires grad"):
        cutmix_ext.cutmix_(images, torch.arange(N) % K, K)
    with pytest.raises(ValueError, match="images: a leaf tensor that requires grad"):
        torch.ops.cutmix_ext.mixup_(images, torch.arange(N) % K, torch.arange(N), torch.full((N,), 0.5, dtype=torch.float64), K, 0.0)
    assert torch.equal(images.detach(), before)
    with torch.no_grad():
        cutmix_ext.mixup_(images, torch.arange(N) % K, K)
    assert not torch.equal(images.detach(), before)


def test_labels_that_require_grad():
    """The targets carry no gradient to the labels, so labels that need one are refused."""
    weights = torch.rand(N, C, H, W, requires_grad=True)
    activations = weights * 2
    before = activations.detach().clone()
    soft = torch.rand(N, K, requires_grad=True)
    for fn in (cutmix_ext.cutmix_, cutmix_ext.mixup_):
        with pytest.raises(ValueError, match="labels: require grad"):
            fn(activations, soft)
    assert torch.equal(activations.detach(), before)
    with torch.no_grad():
        cutmix_ext.cutmix_(activations, soft)
    cutmix_ext.cutmix_(activations.detach(), soft.detach())


@needs_cuda
def test_cuda_bad_labels_leave_images_untouched_without_a_sync(gen):
    """On CUDA an out-of-range class index is caught inside the kernel (a host check would need a
    sync): no pixel is written and the targets are NaN."""
    images = rand_images((N, C, H, W), torch.float32, gen, "cuda")
    before = images.clone()
    labels = rand_labels(N, K, "int64", gen, "cuda")
    labels[3] = K
    for fn in (cutmix_ext.cutmix_, cutmix_ext.mixup_):
        _, targets = fn(images, labels, K, per_sample=True)
        assert torch.isnan(targets).all()
        assert torch.equal(images, before)


@needs_cuda
def test_cuda_mismatched_devices(gen):
    images = rand_images((N, C, H, W), torch.float32, gen, "cuda")
    with pytest.raises(ValueError, match="labels: expected on the images' device cuda:0, got cpu"):
        cutmix_ext.cutmix_(images, torch.arange(N) % K, K)
    with pytest.raises(ValueError, match="generator: expected a CPU torch.Generator"):
        cutmix_ext.cutmix_(images, (torch.arange(N) % K).cuda(), K, generator=torch.Generator("cuda"))
