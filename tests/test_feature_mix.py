"""cutmix_ext.nn.FeatureMix: mixing activations inside a model, against the references, through
autograd and torch.compile, and the example that trains with it."""
import copy
import importlib.util
import math
from fractions import Fraction
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import rand_images, rand_labels

import cutmix_ext
from cutmix_ext.nn import FeatureMix
from cutmix_ext.reference import cutmix_reference, mixed_targets_reference, mixup_reference

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train_feature_mix.py"
MODES = ["cutmix", "mixup"]


def load_example():
    spec = importlib.util.spec_from_file_location("train_feature_mix", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed_from(gen):
    return int(torch.randint(0, 2**31 - 1, (), generator=gen))


def clone_generator(gen):
    return torch.Generator().set_state(gen.get_state())


def box_mask(boxes, h, w):
    """(N, H, W) bool: inside box i; written independently of the kernels and the reference."""
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    x1, y1, x2, y2 = (boxes[:, j].view(-1, 1, 1) for j in range(4))
    return (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)


def mask_cutmix(x, perm, boxes):
    mask = box_mask(boxes, x.shape[-2], x.shape[-1]).unsqueeze(1)
    return torch.where(mask, x[perm], x)


def smoothed_one_hot(labels, k, eps):
    return (F.one_hot(labels, k).double() * (1.0 - eps) + eps / k).float()


def check_mixed(mode, x, out, params, labels, k, eps, targets):
    """out and targets are what params says: against the ops, the reference and a mask."""
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    assert sorted(params.perm.tolist()) == list(range(n)), "perm is not a permutation"
    assert params.size == (h, w)
    if mode == "cutmix":
        assert torch.equal(out, cutmix_ext.cutmix(x, params))
        want, want_t, lam = cutmix_reference(x, labels, params.perm, params.boxes, k, eps)
        assert torch.equal(params.lam, lam), "lam is not the exact area left on this grid"
        assert torch.equal(out, mask_cutmix(x, params.perm, params.boxes))
    else:
        assert torch.equal(out, cutmix_ext.mixup(x, params))
        want, want_t = mixup_reference(x, labels, params.perm, params.lam, k, eps)
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32
        lam = params.lam.view(-1, *(1,) * (x.dim() - 1))
        mine = x.to(compute) * lam.to(compute) + x[params.perm].to(compute) * (1 - lam).to(compute)
        torch.testing.assert_close(out, mine.to(x.dtype))
    assert torch.equal(out, want)
    assert torch.equal(targets, want_t)
    assert torch.equal(targets, mixed_targets_reference(labels, params.perm, params.lam, k, eps))


# --- the example --------------------------------------------------------------------------


@pytest.mark.parametrize("mode,sites", [("cutmix", 1), ("mixup", 3)])
def test_example_trains(mode, sites, gen):
    example = load_example()
    result = example.train(steps=60, batch=32, seed=seed_from(gen), mode=mode, log_every=0,
                           sites=sites, held_out=200)
    losses = torch.tensor(result["losses"])
    assert len(losses) == 60 and bool(losses.isfinite().all())
    assert result["grads_finite"]
    first, last = float(losses[:10].mean()), float(losses[-10:].mean())
    # Over 40 seeds the drop was at least 0.89 and the accuracy at least 0.89.
    assert last < first - 0.5, f"loss did not fall: first 10 steps {first:.3f}, last 10 {last:.3f}"
    assert result["accuracy"] > 0.5, f"held-out accuracy only {result['accuracy']:.2f}"


def test_example_data_is_deterministic(gen):
    example = load_example()
    seed = seed_from(gen)
    a = example.make_batch(16, torch.Generator().manual_seed(seed))
    b = example.make_batch(16, torch.Generator().manual_seed(seed))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# --- train() and eval() -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_eval_is_identity(mode, gen):
    eps = float(torch.rand((), generator=gen)) * 0.3
    mix = FeatureMix(mode, label_smoothing=eps, generator=gen)
    x = rand_images((6, 3, 8, 10), torch.float32, gen)
    labels = rand_labels(6, 7, "int64", gen)
    mix(x)  # a training pass first, so that eval() has something to forget
    mix.eval()
    assert mix(x) is x
    assert mix.params is None and mix.choice is None
    assert torch.equal(mix.targets(labels, 7), smoothed_one_hot(labels, 7, eps))
    mix.train()
    out = mix(x)
    assert out is not x and int(mix.choice) == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("per_sample,pairing", [(False, "roll"), (True, "random"), (True, "flip")])
@pytest.mark.parametrize("labels_kind", ["int64", "float32"])
def test_train_mixes_as_params_say(mode, per_sample, pairing, labels_kind, gen):
    eps = float(torch.rand((), generator=gen)) * 0.3
    alpha = 0.2 + 2 * float(torch.rand((), generator=gen))
    mix = FeatureMix(mode, alpha=alpha, per_sample=per_sample, pairing=pairing,
                     label_smoothing=eps, generator=gen)
    for _ in range(3):
        n, c, h, w = (int(v) for v in torch.randint(2, 14, (4,), generator=gen))
        x = rand_images((n, c, h, w), torch.float32, gen)
        labels = rand_labels(n, 5, labels_kind, gen)
        k = 5 if labels_kind == "int64" else None
        out = mix(x)
        assert out is not x and int(mix.choice) == 0
        assert out.shape == x.shape and out.dtype == x.dtype
        check_mixed(mode, x, out, mix.params, labels, k, eps, mix.targets(labels, k))
        if not per_sample:
            assert bool((mix.params.lam == mix.params.lam[0]).all())


# --- several sites ------------------------------------------------------------------------


def rasterise(boxes, src, dst):
    """Box edges as fractions of the src grid, rounded to the nearest line of dst, halves up."""
    (h0, w0), (h, w) = src, dst
    out = [[math.floor(Fraction(v * (w if j % 2 == 0 else h), w0 if j % 2 == 0 else h0)
                       + Fraction(1, 2)) for j, v in enumerate(row)] for row in boxes.tolist()]
    return torch.tensor(out, dtype=torch.int64).view(-1, 4)


@pytest.mark.parametrize("mode", MODES)
def test_sites_share_one_draw(mode, gen):
    """Per pass, one draw (the site, then partners, lam and box on site 0's grid, in the order
    the docstring gives) made at the first site; only the chosen site mixes, on its own grid."""
    eps = 0.1
    mix = FeatureMix(mode, sites=3, per_sample=True, pairing="random", label_smoothing=eps,
                     generator=gen)
    grids = [(32, 32), (16, 16), (8, 8)]
    labels = rand_labels(5, 4, "int64", gen)
    seen = set()
    for _ in range(300):
        xs = [rand_images((5, 3) + g, torch.float32, gen) for g in grids]
        replay = clone_generator(gen)
        outs = [mix(x, site=i) for i, x in enumerate(xs)]
        site = int(mix.choice)
        changed = [i for i, (o, x) in enumerate(zip(outs, xs)) if o is not x]
        assert changed == [site], f"choice {site}, but sites {changed} returned a new tensor"

        assert int(torch.ops.cutmix_ext.choose(3, 1.0, replay)) == site
        drawn = cutmix_ext.sample_params(xs[0], mode, pairing="random", per_sample=True,
                                         generator=replay)
        assert torch.equal(gen.get_state(), replay.get_state()), "more than one draw per pass"
        want = drawn.at(*grids[site])
        params = mix.params
        assert torch.equal(params.perm, want.perm) and torch.equal(params.lam, want.lam)
        if mode == "cutmix":
            assert torch.equal(params.boxes, want.boxes)
            assert torch.equal(params.boxes, rasterise(drawn.boxes, grids[0], grids[site]))
            h, w = grids[site]
            b = params.boxes
            area = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).double()
            assert torch.equal(params.lam, 1.0 - area / (h * w))
        else:
            assert torch.equal(params.lam, drawn.lam)
        check_mixed(mode, xs[site], outs[site], params, labels, 4, eps, mix.targets(labels, 4))
        seen.add(site)
        if seen == {0, 1, 2}:
            break
    assert seen == {0, 1, 2}, f"only sites {sorted(seen)} were ever chosen"


def test_sites_chosen_uniformly(gen):
    passes, sites = 1200, 3
    for p in (1.0, 0.5):
        mix = FeatureMix("cutmix", p=p, sites=sites, generator=gen)
        xs = [rand_images((2, 1, 4, 4), torch.float32, gen) for _ in range(sites)]
        counts = torch.zeros(sites + 1, dtype=torch.int64)  # last: nothing mixed
        for _ in range(passes):
            outs = [mix(x, site=i) for i, x in enumerate(xs)]
            choice = int(mix.choice)
            counts[choice] += 1
            if choice == -1:
                assert all(o is x for o, x in zip(outs, xs))
                assert torch.equal(mix.params.perm, torch.arange(2))
                assert torch.equal(mix.params.lam, torch.ones(2, dtype=torch.float64))
        # Six standard deviations: a false alarm about once in a hundred million runs.
        expect = passes * p / sites
        sd = (passes * (p / sites) * (1 - p / sites)) ** 0.5
        assert all(abs(int(v) - expect) < 6 * sd for v in counts[:sites]), (p, counts.tolist())
        if p == 1.0:
            assert int(counts[-1]) == 0
        else:
            sd_none = (passes * p * (1 - p)) ** 0.5
            assert abs(int(counts[-1]) - passes * (1 - p)) < 6 * sd_none, counts.tolist()


@pytest.mark.parametrize("mode", MODES)
def test_p_zero_never_mixes(mode, gen):
    eps = float(torch.rand((), generator=gen)) * 0.3
    mix = FeatureMix(mode, p=0.0, sites=3, label_smoothing=eps, generator=gen)
    labels = rand_labels(4, 6, "int64", gen)
    for _ in range(50):
        xs = [rand_images((4, 2, s, s), torch.float32, gen) for s in (12, 6, 3)]
        assert all(mix(x, site=i) is x for i, x in enumerate(xs))
        assert int(mix.choice) == -1
        assert torch.equal(mix.targets(labels, 6), smoothed_one_hot(labels, 6, eps))


# --- gradients, layouts and dtypes -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck(mode, gen):
    draws = torch.Generator()
    mix = FeatureMix(mode, sites=1, p=1.0, per_sample=True, pairing="random", generator=draws)
    x = rand_images((4, 2, 5, 6), torch.float64, gen).requires_grad_()
    # Reseeding before each call makes every evaluation of gradcheck see the same draw; pick
    # one that actually mixes (a non-identity pairing with a non-empty box).
    for _ in range(100):
        seed = seed_from(gen)
        draws.manual_seed(seed)
        out = mix(x)
        if not torch.equal(out, x):
            break
    assert not torch.equal(out, x)

    def fn(t):
        draws.manual_seed(seed)
        return mix(t)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    # The same gradient as autograd through a plain-torch formula of the same mix.
    params, w = mix.params, torch.randn(x.shape, generator=gen, dtype=torch.float64)
    (got,) = torch.autograd.grad((fn(x) * w).sum(), x)
    lam = params.lam.view(-1, 1, 1, 1)
    ref = mask_cutmix(x, params.perm, params.boxes) if mode == "cutmix" else \
        lam * x + (1 - lam) * x[params.perm]
    (want,) = torch.autograd.grad((ref * w).sum(), x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_channels_last_and_low_precision(mode, dtype, gen):
    mix = FeatureMix(mode, per_sample=True, pairing="random", generator=gen)
    x = rand_images((5, 6, 7, 9), dtype, gen, layout="channels_last").requires_grad_()
    labels = rand_labels(5, 3, "int64", gen)
    out = mix(x)
    assert out.dtype == dtype and out.shape == x.shape
    assert out.is_contiguous(memory_format=torch.channels_last)
    check_mixed(mode, x.detach(), out.detach(), mix.params, labels, 3, 0.0, mix.targets(labels, 3))
    out.float().square().sum().backward()
    assert x.grad.dtype == dtype and x.grad.shape == x.shape and bool(x.grad.isfinite().all())


# --- torch.compile ------------------------------------------------------------------------


class TwoSites(torch.nn.Module):
    def __init__(self, mode):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.mix = FeatureMix(mode, sites=2, per_sample=True, pairing="random")
        self.head = torch.nn.Linear(8, 5)

    def forward(self, x):
        x = self.mix(F.relu(self.bn1(self.conv1(x))), site=0)
        x = self.mix(F.relu(self.conv2(x)), site=1)
        return self.head(x.mean((2, 3)))


@pytest.mark.parametrize("mode", MODES)
def test_compiles_fullgraph_and_matches_eager(mode, gen):
    eager = TwoSites(mode)
    with torch.no_grad():  # random weights of the test's own seed, not the global one
        for p in eager.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    model = copy.deepcopy(eager)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)  # raises on a graph break
    seed = seed_from(gen)
    batches = [(rand_images((6, 3, 12, 12), torch.float32, gen) / 50,
                rand_labels(6, 5, "int64", gen)) for _ in range(3)]

    def run(net, module):
        torch.manual_seed(seed)  # both draw from the global generator: same seed, same draws
        steps = []
        for x, y in batches:
            logits = net(x)
            targets = module.mix.targets(y, 5)
            loss = -(targets * F.log_softmax(logits, 1)).sum()
            grads = torch.autograd.grad(loss, list(module.parameters()))
            params = module.mix.params
            steps.append((logits.detach(), targets, int(module.mix.choice), params.perm.clone(),
                          params.lam.clone(), grads))
        return steps

    want, got = run(eager, eager), run(compiled, model)
    for (wl, wt, wc, wp, wlam, wg), (gl, gt, gc, gp, glam, gg) in zip(want, got):
        assert gc == wc
        assert torch.equal(gp, wp) and torch.equal(glam, wlam)
        assert torch.equal(gt, wt), "targets differ from eager"
        torch.testing.assert_close(gl, wl)
        for a, b in zip(gg, wg):
            torch.testing.assert_close(a, b)
    draws = [(s[3], s[4]) for s in want]
    assert not all(torch.equal(p, draws[0][0]) and torch.equal(lam, draws[0][1])
                   for p, lam in draws[1:]), "every step drew the same parameters"
    torch.testing.assert_close(model.bn1.running_mean, eager.bn1.running_mean)


# --- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,name", [({"sites": 0}, "sites"), ({"sites": -2}, "sites"),
                                         ({"p": 1.5}, "p"), ({"p": -0.1}, "p"),
                                         ({"mode": "foo"}, "mode"), ({"alpha": 0.0}, "alpha"),
                                         ({"label_smoothing": 1.0}, "label_smoothing")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        FeatureMix(**kwargs)


@pytest.mark.parametrize("site", [3, -1, 1.0, True])
def test_site_out_of_range(site, gen):
    mix = FeatureMix("cutmix", sites=3, generator=gen)
    x = rand_images((2, 1, 4, 4), torch.float32, gen)
    for training in (True, False):
        mix.train(training)
        with pytest.raises(ValueError, match=r"^site:"):
            mix(x, site=site)
