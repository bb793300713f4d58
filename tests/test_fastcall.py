"""The direct entry points _C.sampled_ and _C.given_ (csrc/module.cpp), which cutmix_/mixup_
take for plain arguments instead of parsing the op's schema through torch.ops: the same op, the
same bits, and NotImplemented (so torch.ops after all) for anything unusual."""
import numpy as np
import pytest
import torch
from conftest import DEVICES
from helpers import DTYPES, rand_images, rand_labels
from torch.overrides import TorchFunctionMode

import cutmix_ext
import cutmix_ext._ops as front
from cutmix_ext import _C

OPS = {"cutmix": torch.ops.cutmix_ext.cutmix_sampled_, "mixup": torch.ops.cutmix_ext.mixup_sampled_}


def seeded(gen):
    return torch.Generator().manual_seed(int(torch.randint(1 << 62, (1,), generator=gen)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_direct_entry_equals_torch_ops(op, dtype, device, gen):
    for pairing, per_sample, eps, k in [("roll", False, 0.0, 10), ("random", True, 0.1, 1000),
                                        ("flip", True, 0.0, 3)]:
        images = rand_images((6, 3, 9, 11), dtype, gen, device)
        labels = rand_labels(6, k, "int64", gen, device)
        a, b = images.clone(), images.clone()
        seed = seeded(gen).initial_seed()
        direct = _C.sampled_(op == "cutmix", a, labels, k, eps, 0.8, pairing, per_sample,
                             torch.Generator().manual_seed(seed), True)
        via_ops = OPS[op](b, labels, k, eps, 0.8, pairing, None, per_sample,
                          torch.Generator().manual_seed(seed))
        assert torch.equal(a, b)
        for got, want in zip(direct, via_ops):
            assert torch.equal(got, want)
        # without params: the targets alone, the same draw
        c = images.clone()
        alone = _C.sampled_(op == "cutmix", c, labels, k, eps, 0.8, pairing, per_sample,
                            torch.Generator().manual_seed(seed), False)
        assert torch.equal(c, a) and torch.equal(alone, direct[0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_given_params_equal_torch_ops(op, dtype, device, gen):
    ops = torch.ops.cutmix_ext
    for eps, k in [(0.0, 10), (0.1, 1000)]:
        images = rand_images((6, 3, 9, 11), dtype, gen, device)
        labels = rand_labels(6, k, "int64", gen, device)
        # a random 6-cycle and non-empty boxes: every sample changes, so the check can fail
        sigma, perm = torch.randperm(6, generator=gen), torch.empty(6, dtype=torch.int64)
        perm[sigma] = sigma.roll(1)
        x1, y1 = torch.randint(0, 10, (6,), generator=gen), torch.randint(0, 8, (6,), generator=gen)
        x2 = x1 + 1 + (torch.rand(6, generator=gen) * (10 - x1)).long()
        y2 = y1 + 1 + (torch.rand(6, generator=gen) * (8 - y1)).long()
        table = torch.stack([x1, y1, x2, y2], 1) if op == "cutmix" else \
            0.1 + 0.8 * torch.rand(6, dtype=torch.float64, generator=gen)
        a, b = images.clone(), images.clone()
        direct = _C.given_(op == "cutmix", a, labels, perm, table, k, eps)
        via_ops = getattr(ops, op + "_")(b, labels, perm, table, k, eps)
        assert torch.equal(a, b) and not torch.equal(a, images) and torch.equal(direct, via_ops)


class Counting:
    """Stands in for the module _C, counting the calls of its entry points."""

    def __init__(self):
        self.calls, self.declined, self.given = 0, 0, 0

    def sampled_(self, *args):
        self.calls += 1
        out = _C.sampled_(*args)
        self.declined += out is NotImplemented
        return out

    def given_(self, *args):
        self.given += 1
        out = _C.given_(*args)
        self.declined += out is NotImplemented
        return out


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_front_door_takes_the_direct_entry_for_plain_arguments(op, gen, monkeypatch):
    counting = Counting()
    monkeypatch.setattr(front, "_C", counting)
    fn = getattr(cutmix_ext, op + "_")
    images = rand_images((4, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(4, 5, "int64", gen)
    before = images.clone()
    out, targets, params = fn(images, labels, 5, pairing="random", per_sample=True, generator=gen,
                              return_params=True)
    assert (counting.calls, counting.declined) == (1, 0)
    # and the same bits when the same draw is replayed, through given_
    again = before.clone()
    _, again_targets = fn(again, labels, 5, params=params)
    assert (counting.calls, counting.given, counting.declined) == (1, 1, 0)
    assert torch.equal(again, out) and torch.equal(again_targets, targets)


def test_given_params_decline_what_the_checks_must_see(gen):
    """Parameters that are not the plain kind go through the Python checks, which name them."""
    images = rand_images((4, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(4, 5, "int64", gen)
    before = images.clone()
    p = cutmix_ext.sample_params(images, "cutmix", generator=gen)
    assert _C.given_(True, images, labels, p.perm, None, 5, 0.0) is NotImplemented
    assert _C.given_(True, images, labels, p.perm.as_subclass(Sub), p.boxes, 5, 0.0) is NotImplemented
    with pytest.raises(ValueError, match=r"params: boxes drawn on a 8x8 grid, but images is 8x9"):
        cutmix_ext.cutmix_(rand_images((4, 3, 8, 9), torch.float32, gen), labels, 5, params=p)
    with pytest.raises(ValueError, match=r"params: these are MixUp parameters"):
        cutmix_ext.cutmix_(images, labels, 5, params=p._replace(boxes=None))
    with pytest.raises(TypeError, match=r"params: expected a cutmix_ext.MixParams, got tuple"):
        cutmix_ext.cutmix_(images, labels, 5, params=tuple(p))
    assert torch.equal(images, before)


class Recording(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


class Sub(torch.Tensor):
    pass


class Name(str):
    pass


UNUSUAL = {
    "labels a tensor subclass": lambda a: {**a, "labels": a["labels"].as_subclass(Sub)},
    "alpha a numpy float": lambda a: {**a, "alpha": np.float64(0.5)},
    "pairing a str subclass": lambda a: {**a, "pairing": Name("random")},
}


@pytest.mark.parametrize("case", list(UNUSUAL))
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_unusual_arguments_go_through_torch_ops_with_the_same_result(op, case, gen):
    images = rand_images((5, 3, 7, 9), torch.float32, gen)
    base = dict(labels=rand_labels(5, 4, "int64", gen), num_classes=4, alpha=0.5, per_sample=True,
                pairing="random")
    args = UNUSUAL[case](base)
    seed = seeded(gen).initial_seed()
    assert _C.sampled_(op == "cutmix", images.clone(), args["labels"], args["num_classes"], 0.0,
                       args["alpha"], args["pairing"], args["per_sample"], None, False) is NotImplemented
    fn = getattr(cutmix_ext, op + "_")
    a, b = images.clone(), images.clone()
    _, ta = fn(a, generator=torch.Generator().manual_seed(seed), **args)
    _, tb = fn(b, generator=torch.Generator().manual_seed(seed), **base)
    assert torch.equal(a, b) and torch.equal(ta, tb)


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_torch_function_mode_sees_the_op(op, gen):
    images = rand_images((4, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(4, 5, "int64", gen)
    with Recording() as mode:
        getattr(cutmix_ext, op + "_")(images, labels, 5)
    # the general route, which the mode sees op by op: the draw, then the op that applies it
    assert "cutmix_ext.sample" in mode.seen and f"cutmix_ext.{op}_" in mode.seen, mode.seen


def test_errors_are_the_ops_own(gen):
    images = rand_images((4, 3, 8, 8), torch.float32, gen)
    before = images.clone()
    labels = torch.tensor([0, 1, 7, 2])
    with pytest.raises(ValueError, match=r"labels: class index 7 at position 2 is outside \[0, num_classes = 5\)"):
        _C.sampled_(True, images, labels, 5, 0.0, 1.0, "roll", False, None, False)
    with pytest.raises(ValueError, match=r"pairing: expected 'roll', 'flip', 'random'"):
        _C.sampled_(True, images, labels % 5, 5, 0.0, 1.0, "shuffle", False, None, False)
    assert torch.equal(images, before)
    with pytest.raises(TypeError, match="expected 10 arguments"):
        _C.sampled_(True, images)
