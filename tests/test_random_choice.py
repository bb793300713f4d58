"""cutmix_ext.transforms.RandomChoice, torchvision's v2.RandomChoice without torchvision, and
cutmix_ext.transforms beside a torchvision that is absent or installed but broken. Everything but
the comparisons with torchvision itself runs without it."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import import_or_skip
from helpers import rand_images, rand_labels

import cutmix_ext
from cutmix_ext import transforms as T
from cutmix_ext.reference import cutmix_reference, mixup_reference

K = 10


def seed_of(gen):
    return int(torch.randint(0, 2**62, (), generator=gen))


class Recorder:
    """A transform that notes its calls and returns its inputs as it got them."""

    def __init__(self):
        self.calls = []

    def __call__(self, *inputs):
        self.calls.append(inputs)
        return inputs


def random_weights(n, gen):
    return (torch.rand(n, generator=gen, dtype=torch.float64) + 0.05).tolist()


def check_mixed(choice, before, after, labels, targets, params):
    """The images and targets are those of the picked transform (0: CutMix, 1: MixUp) for its draw."""
    if choice == 0:
        want, t_want, _ = cutmix_reference(before, labels, params.perm, params.boxes, K)
    else:
        want, t_want = mixup_reference(before, labels, params.perm, params.lam, K)
    assert torch.equal(after, want)
    assert torch.equal(targets, t_want)


@pytest.mark.parametrize("n", [2, 4])
def test_picks_with_the_frequencies_of_p(n, gen):
    """Over many calls each transform is picked in proportion to its weight (chi-square test,
    failing by chance once in 10^6 runs); a weight 0 is never picked."""
    weights = random_weights(n, gen) + [0.0]
    recorders = [Recorder() for _ in weights]
    rc = T.RandomChoice(recorders, p=weights, generator=torch.Generator().manual_seed(seed_of(gen)))
    calls = 6000
    for _ in range(calls):
        rc(None)
    assert recorders[-1].calls == []
    counts = torch.tensor([len(r.calls) for r in recorders[:-1]], dtype=torch.float64)
    expected = torch.tensor(weights[:-1], dtype=torch.float64) / sum(weights) * calls
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    p_value = float(torch.special.gammaincc(torch.tensor((n - 1) / 2, dtype=torch.float64),
                                            torch.tensor(chi2 / 2, dtype=torch.float64)))
    assert p_value > 1e-6, (counts.tolist(), expected.tolist())


def test_p_is_normalised_as_torchvision(gen):
    weights = random_weights(3, gen)
    total = sum(weights)
    for p in (weights, tuple(weights), torch.tensor(weights), np.array(weights)):
        rc = T.RandomChoice([Recorder() for _ in weights], p=p)
        assert rc.p == pytest.approx([w / total for w in weights], rel=1e-6)
    assert T.RandomChoice([Recorder(), Recorder()]).p == [0.5, 0.5]
    assert T.RandomChoice([Recorder(), Recorder()], p=[3, 1]).p == [0.75, 0.25]


def test_picks_as_torchvision_draws(gen):
    """The pick is torchvision's draw (torch.multinomial over the float32 p), call after call, so
    the same seed picks the same transforms as v2.RandomChoice."""
    weights = random_weights(3, gen)
    seed = seed_of(gen)
    recorders = [Recorder() for _ in weights]
    rc = T.RandomChoice(recorders, p=weights, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed)
    total = sum(weights)
    for _ in range(50):
        rc(None)
        assert rc.last_choice == int(torch.multinomial(torch.tensor([w / total for w in weights]), 1,
                                                       generator=g))


def test_passes_the_inputs_through(gen):
    """Whatever the call holds reaches the picked transform as it is, and its result comes back."""
    recorders = [Recorder(), Recorder()]
    rc = T.RandomChoice(recorders)
    images = rand_images((2, 3, 4, 4), torch.float32, gen)
    batch = {"image": images, "labels": torch.arange(2)}
    for inputs in [(images,), (images, batch["labels"]), (batch,), ((images, batch),)]:
        out = rc(*inputs)
        picked = recorders[rc.last_choice]
        assert out is picked.calls[-1] and len(out) == len(inputs)
        assert all(a is b for a, b in zip(out, inputs))


@pytest.mark.parametrize("form", ["two_args", "tuple", "dict"])
def test_mixes_with_the_picked_transform(form, gen):
    """RandomChoice([CutMix, MixUp]) mixes in place with the picked one; last_choice and
    last_params say which and with what draw."""
    rc = T.RandomChoice([T.CutMix(num_classes=K), T.MixUp(num_classes=K)], generator=gen)
    assert isinstance(rc, torch.nn.Module) and rc.last_choice is None and rc.last_params is None
    seen = set()
    for _ in range(12):
        images = rand_images((6, 3, 10, 12), torch.float32, gen)
        labels = rand_labels(6, K, "int64", gen)
        before = images.clone()
        if form == "two_args":
            out_images, targets = rc(images, labels)
        elif form == "tuple":
            out_images, targets = rc((images, labels))
        else:
            out = rc({"image": images, "labels": labels, "name": "kept"})
            assert out["name"] == "kept"
            out_images, targets = out["image"], out["labels"]
        assert out_images is images and targets.shape == (6, K) and targets.dtype == torch.float32
        assert rc.last_params is rc.transforms[rc.last_choice].last_params
        check_mixed(rc.last_choice, before, images, labels, targets, rc.last_params)
        seen.add(rc.last_choice)
    assert seen == {0, 1}  # fails by chance once in 2^11 runs


def test_composes_as_a_module(gen):
    """An nn.Module: it sits in nn.Sequential, which passes the (images, labels) tuple along."""
    rc = T.RandomChoice(torch.nn.ModuleList([T.CutMix(num_classes=K), T.MixUp(num_classes=K)]),
                        p=[1, 0])
    images = rand_images((4, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(4, K, "int64", gen)
    before = images.clone()
    out_images, targets = torch.nn.Sequential(rc)((images, labels))
    assert rc.last_choice == 0 and "p=[1.0, 0.0]" in repr(rc)
    check_mixed(0, before, out_images, labels, targets, rc.last_params)


def test_takes_timm_style_callables(gen):
    """Any callable, nn.Module or not: timm's Mixup beside torchvision's CutMix."""
    timm_style = T.Mixup(mixup_alpha=1.0, cutmix_alpha=0.0, label_smoothing=0.0, num_classes=K)
    rc = T.RandomChoice([T.CutMix(num_classes=K), timm_style], p=[0, 1])
    images = rand_images((4, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(4, K, "int64", gen)
    before = images.clone()
    _, targets = rc(images, labels)
    assert rc.last_choice == 1 and rc.last_params is timm_style.last_params
    check_mixed(1, before, images, labels, targets, rc.last_params)


def test_reproducible_with_manual_seed_and_generator(gen):
    """torch.manual_seed reproduces the picks and the mixes; a generator draws the picks alone,
    leaving torch's default stream untouched."""
    seed = seed_of(gen)
    images = rand_images((5, 3, 9, 9), torch.uint8, gen)
    labels = rand_labels(5, K, "int64", gen)
    runs = []
    for _ in range(2):
        torch.manual_seed(seed)
        rc = T.RandomChoice([T.CutMix(num_classes=K), T.MixUp(num_classes=K)])
        run = []
        for _ in range(8):
            x, y = rc(images.clone(), labels)
            run.append((rc.last_choice, x, y))
        runs.append(run)
    for (c1, x1, y1), (c2, x2, y2) in zip(*runs):
        assert c1 == c2 and torch.equal(x1, x2) and torch.equal(y1, y2)

    picks = []
    for _ in range(2):
        rc = T.RandomChoice([Recorder(), Recorder()], generator=torch.Generator().manual_seed(seed))
        state = torch.get_rng_state()
        run = []
        for _ in range(40):
            rc(None)
            run.append(rc.last_choice)
        assert torch.equal(torch.get_rng_state(), state)
        picks.append(run)
    assert picks[0] == picks[1]


def test_the_list_passed_in_can_change_later():
    transforms = [Recorder(), Recorder()]
    rc = T.RandomChoice(transforms, p=[0, 1])
    picked = transforms[1]
    transforms.reverse()
    rc(None)
    assert len(picked.calls) == 1


BAD = [
    (dict(transforms=T.CutMix()), TypeError, "transforms: expected a list or tuple of callables, got CutMix"),
    (dict(transforms=iter([T.CutMix()])), TypeError, "transforms: expected a list or tuple"),
    (dict(transforms=[]), ValueError, r"transforms: expected at least one transform, got \[\]"),
    (dict(transforms=[T.CutMix(), "mixup"]), TypeError, "transforms\\[1\\]: expected a callable, got 'mixup'"),
    (dict(p=[1, 2, 3]), ValueError, r"p: expected one weight per transform \(2\), got 3: \[1, 2, 3\]"),
    (dict(p=[1, -0.5]), ValueError, "p\\[1\\]: expected a non-negative finite number, got -0.5"),
    (dict(p=[float("nan"), 1]), ValueError, "p\\[0\\]: expected a non-negative finite number, got nan"),
    (dict(p=[1, float("inf")]), ValueError, "p\\[1\\]: expected a non-negative finite number, got inf"),
    (dict(p=[0, 0.0]), ValueError, r"p: expected weights with a positive, finite sum, got \[0, 0.0\]"),
    (dict(p=[1e308, 1e308]), ValueError, "p: expected weights with a positive, finite sum"),
    (dict(p=[True, 1]), TypeError, "p\\[0\\]: expected a number, got True"),
    (dict(p=[1, "2"]), TypeError, "p\\[1\\]: expected a number, got '2'"),
    (dict(p="11"), TypeError, "p: expected a sequence of numbers or None, got '11'"),
    (dict(p=0.5), TypeError, "p: expected a sequence of numbers or None, got 0.5"),
    (dict(generator=0), TypeError, "generator: expected a torch.Generator or None, got 0"),
]


@pytest.mark.parametrize("kwargs,error,message", BAD, ids=[m.split(":")[0] + str(i) for i, (_, _, m) in enumerate(BAD)])
def test_bad_arguments_are_refused_by_name(kwargs, error, message):
    kwargs = {"transforms": [T.CutMix(num_classes=K), T.MixUp(num_classes=K)], **kwargs}
    with pytest.raises(error, match=message):
        T.RandomChoice(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device for a CUDA generator")
def test_a_cuda_generator_is_refused():
    with pytest.raises(ValueError, match="generator: the pick is drawn on the CPU, got a generator on cuda"):
        T.RandomChoice([T.CutMix()], generator=torch.Generator("cuda"))


def test_a_failing_call_leaves_the_inputs(gen):
    """A call the picked transform refuses changes neither the inputs nor last_choice."""
    rc = T.RandomChoice([T.CutMix(num_classes=K), T.MixUp(num_classes=K)], generator=gen)
    images = rand_images((4, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(4, K, "int64", gen)
    before = images.clone()
    for _ in range(6):
        with pytest.raises(ValueError, match="images: batch size 4 does not match the labels' 3"):
            rc(images, labels[:3])
    assert torch.equal(images, before) and rc.last_choice is None and rc.last_params is None


# ---- against torchvision itself, where it imports ----

@pytest.mark.parametrize("form", ["two_args", "dict"])
def test_same_output_structure_as_torchvision(form, gen):
    """T.RandomChoice([T.CutMix, T.MixUp]) returns what v2.RandomChoice([v2.CutMix, v2.MixUp])
    returns: the same structure, shapes and dtypes (floating-point images: torchvision's MixUp
    refuses uint8 ones)."""
    v2 = import_or_skip("torchvision.transforms.v2")
    ours = T.RandomChoice([T.CutMix(num_classes=K), T.MixUp(num_classes=K)])
    theirs = v2.RandomChoice([v2.CutMix(num_classes=K), v2.MixUp(num_classes=K)])
    for dtype in (torch.float32, torch.float16):
        images = rand_images((6, 3, 12, 10), dtype, gen)
        labels = rand_labels(6, K, "int64", gen)
        inputs = (images, labels) if form == "two_args" else ({"image": images, "labels": labels, "id": 7},)
        got = ours(*[x.copy() if isinstance(x, dict) else x.clone() for x in inputs])
        want = theirs(*[x.copy() if isinstance(x, dict) else x.clone() for x in inputs])
        flat_got, spec_got = torch.utils._pytree.tree_flatten(got)
        flat_want, spec_want = torch.utils._pytree.tree_flatten(want)
        assert spec_got == spec_want
        for a, b in zip(flat_got, flat_want):
            assert type(a) is type(b)
            if isinstance(a, torch.Tensor):
                assert a.shape == b.shape and a.dtype == b.dtype


def test_same_picks_and_mixes_as_torchvision_under_one_seed(gen):
    """Our transforms under v2.RandomChoice or under ours, from the same torch.manual_seed: the
    same picks, the same mixed batches, call after call; the import can be swapped."""
    v2 = import_or_skip("torchvision.transforms.v2")
    seed = seed_of(gen)
    weights = random_weights(2, gen)
    images = rand_images((8, 3, 16, 16), torch.float32, gen)
    labels = rand_labels(8, K, "int64", gen)
    outs = []
    for choice in (v2.RandomChoice, T.RandomChoice):
        inner = [T.CutMix(num_classes=K), T.MixUp(num_classes=K)]
        rc = choice(inner, p=weights)
        torch.manual_seed(seed)
        run = []
        for _ in range(10):
            x, y = rc(images.clone(), labels)
            run.append(([t.steps for t in inner], x, y))  # the calls so far of each: the picks
        outs.append(run)
    for (s1, x1, y1), (s2, x2, y2) in zip(*outs):
        assert s1 == s2 and torch.equal(x1, x2) and torch.equal(y1, y2)


# ---- beside a torchvision that is absent or broken ----

SCRIPT = textwrap.dedent("""
    import sys, warnings
    import torch
    if sys.argv[1] == "absent":
        sys.modules["torchvision"] = None  # import torchvision raises ModuleNotFoundError
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from cutmix_ext import transforms as T
    from cutmix_ext.reference import cutmix_reference, mixup_reference
    messages = [str(w.message) for w in caught if "torchvision" in str(w.message)]
    if sys.argv[1] == "broken":
        assert len(messages) == 1, messages
        assert "torchvision is installed but" in messages[0], messages
        assert "RuntimeError: operator torchvision::nms does not exist" in messages[0], messages
    else:
        assert messages == [], messages
    assert T._tv is None

    g = torch.Generator().manual_seed(int(sys.argv[2]))
    K = 10
    rc = T.RandomChoice([T.CutMix(num_classes=K), T.MixUp(num_classes=K)], generator=g)
    for form in ["two_args", "dict"] * 4:
        images = torch.rand(6, 3, 10, 12, generator=g)
        labels = torch.randint(0, K, (6,), generator=g)
        before = images.clone()
        if form == "two_args":
            _, targets = rc(images, labels)
        else:
            targets = rc({"image": images, "labels": labels})["labels"]
        p = rc.last_params
        if rc.last_choice == 0:
            want, t_want, _ = cutmix_reference(before, labels, p.perm, p.boxes, K)
        else:
            want, t_want = mixup_reference(before, labels, p.perm, p.lam, K)
        assert torch.equal(images, want) and torch.equal(targets, t_want)
    images = torch.rand(4, 3, 8, 8, generator=g)
    _, targets = T.Mixup(cutmix_alpha=1.0, num_classes=K)(images, torch.arange(4))
    assert targets.shape == (4, K)

    # A tensor of torchvision's own type cannot be told apart: refused, saying why.
    Image = type("Image", (torch.Tensor,), {"__module__": "torchvision.tv_tensors._image"})
    images = torch.rand(4, 3, 8, 8, generator=g)
    before = images.clone()
    try:
        T.CutMix(num_classes=K)({"image": images.as_subclass(Image), "labels": torch.arange(4)})
    except ValueError as exc:
        print(exc)
    else:
        raise AssertionError("a torchvision type went through")
    assert torch.equal(images, before)
""")


@pytest.mark.parametrize("torchvision", ["broken", "absent"])
def test_transforms_beside_a_broken_or_absent_torchvision(torchvision, tmp_path, gen):
    """A torchvision that raises RuntimeError at import (as one built for another torch does)
    does not break `import cutmix_ext.transforms`: it warns once, with the original error, and
    the transforms work on plain tensors as with no torchvision at all."""
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    root = os.path.dirname(os.path.dirname(os.path.abspath(cutmix_ext.__file__)))
    path = [str(tmp_path), root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    result = subprocess.run([sys.executable, "-c", SCRIPT, torchvision, str(seed_of(gen))],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
    assert result.returncode == 0, result.stderr
    refusal = result.stdout.strip()
    assert refusal.startswith("inputs: CutMix cannot mix a torchvision.tv_tensors._image.Image: "), refusal
    if torchvision == "broken":
        assert "torchvision is installed but `from torchvision import tv_tensors` failed (RuntimeError: " \
               "operator torchvision::nms does not exist)" in refusal
    else:
        assert "torchvision was not installed" in refusal
