"""cutmix_ext.transforms.Mixup / FastCollateMixup as drop-ins for timm's: given the same draws
(timm's sampler made to return ours), timm's output equals ours, in every mode; and what timm
cannot do (odd batches, uint8, one launch per call) works."""
import math

import numpy as np
import pytest
import torch
from conftest import import_or_skip
from helpers import rand_images, rand_labels

import cutmix_ext
from cutmix_ext.reference import mix_reference

timm_mixup = import_or_skip("timm.data.mixup")
from cutmix_ext.transforms import FastCollateMixup, Mixup  # noqa: E402

K = 10
CONFIGS = [  # (mixup_alpha, cutmix_alpha, cutmix_minmax, prob, switch_prob, correct_lam)
    (1.0, 0.0, None, 1.0, 0.5, True),
    (0.0, 1.0, None, 1.0, 0.5, True),
    (0.8, 1.0, None, 0.7, 0.5, True),
    (0.8, 1.0, None, 1.0, 0.3, False),
    (0.0, 0.0, (0.2, 0.6), 1.0, 0.5, True),
]


def force_draws(monkeypatch, theirs, params, mode, collate=False):
    """Makes timm's sampler return our draws: its lam/use_cutmix and, call by call, our boxes.
    timm asks for a box where lam < 1, except FastCollateMixup's batch mode, which asks whenever
    CutMix was chosen (its box may then be empty, lam 1)."""
    cut = params.mode.numpy() == 0
    lam = params.lam.numpy().copy()
    n = len(lam)
    d = {"batch": 1, "pair": n // 2, "elem": n}[mode]
    always = collate and mode == "batch"
    boxes = [(int(b[1]), int(b[3]), int(b[0]), int(b[2]), float(lam[i]))
             for i, b in enumerate(params.boxes) if i < d and cut[i] and (lam[i] < 1 or always)]
    # as timm's own: per-sample lam in float32, the batch's a Python float
    monkeypatch.setattr(theirs, "_params_per_elem",
                        lambda size: (lam[:size].astype(np.float32), cut[:size].copy()))
    monkeypatch.setattr(theirs, "_params_per_batch", lambda: (float(lam[0]), bool(cut[0])))

    def bbox(*args, **kwargs):
        yl, yh, xl, xh, lam_i = boxes.pop(0)
        return (yl, yh, xl, xh), lam_i

    monkeypatch.setattr(timm_mixup, "cutmix_bbox_and_lam", bbox)
    return boxes


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("config", range(len(CONFIGS)))
def test_mixup_equals_timm_for_the_same_draws(monkeypatch, mode, config, gen):
    mixup_alpha, cutmix_alpha, minmax, prob, switch_prob, correct_lam = CONFIGS[config]
    kwargs = dict(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, cutmix_minmax=minmax, prob=prob,
                  switch_prob=switch_prob, mode=mode, correct_lam=correct_lam, label_smoothing=0.1,
                  num_classes=K)
    ours, theirs = Mixup(**kwargs, generator=gen), timm_mixup.Mixup(**kwargs)
    for _ in range(4):
        x = rand_images((8, 3, 24, 20), torch.float32, gen)
        target = rand_labels(8, K, "int64", gen)
        before = x.clone()
        out, t = ours(x, target)
        p = ours.last_params
        assert out is x and torch.equal(p.perm, torch.arange(7, -1, -1))
        left = force_draws(monkeypatch, theirs, p, mode)
        want, t_want = theirs(before.clone(), target)
        assert not left  # timm asked for every box we drew
        torch.testing.assert_close(out, want, rtol=0, atol=1e-5)
        torch.testing.assert_close(t, t_want, rtol=0, atol=1e-6)
        ref, t_ref = mix_reference(before, target, p.perm, p.boxes, p.lam, p.mode, K, 0.1)
        assert torch.equal(out, ref) and torch.equal(t, t_ref)
        if mode == "pair":  # i and N-1-i share one draw
            assert torch.equal(p.lam, p.lam.flip(0)) and torch.equal(p.mode, p.mode.flip(0))


def test_elem_chooses_per_sample_in_one_launch(gen):
    """In 'elem' mode each sample chooses CutMix (probability switch_prob) or MixUp, with its own
    lam; the batch is still one call of the op."""
    mix = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=0.3, mode="elem", num_classes=K,
                generator=gen)
    x, target = torch.rand(2000, 1, 8, 8), torch.randint(0, K, (2000,))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        mix(x, target)
    calls = [e for e in prof.events() if e.name == "cutmix_ext::mix_"]
    assert len(calls) == 1
    p = mix.last_params
    blend = p.mode == 1
    rate = float((~blend).double().mean())
    assert abs(rate - 0.3) < 5 * math.sqrt(0.3 * 0.7 / 2000)
    assert len(set(p.lam[blend].tolist())) > 100  # a lam per sample
    assert bool((p.boxes[blend] == torch.tensor([0, 0, 8, 8])).all())


def ks_statistic(a, b):
    """The two-sample Kolmogorov-Smirnov distance between two samples."""
    a, b = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    grid = np.concatenate((a, b))
    return float(np.abs(np.searchsorted(a, grid, "right") / len(a) -
                        np.searchsorted(b, grid, "right") / len(b)).max())


@pytest.mark.parametrize("config", range(len(CONFIGS)))
def test_draws_follow_timms_sampler(config, gen):
    """Our draws (the C++ op sample_timm) and timm's own sampler, many times over: the same
    distributions of lam, of the box corners and sides and of the CutMix/MixUp choice (two-sample
    KS at the 0.1% level; the choice within 5 sigma)."""
    mixup_alpha, cutmix_alpha, minmax, prob, switch_prob, correct_lam = CONFIGS[config]
    kwargs = dict(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, cutmix_minmax=minmax, prob=prob,
                  switch_prob=switch_prob, mode="elem", correct_lam=correct_lam, num_classes=K)
    n, h, w = 4000, 24, 20
    ours = Mixup(**kwargs, generator=gen).sample(torch.empty(n, 3, h, w))
    theirs = timm_mixup.Mixup(**kwargs)
    np.random.seed(int(torch.randint(1 << 30, (1,), generator=gen)))
    lam, use_cut = theirs._params_per_elem(n)
    boxes = np.zeros((n, 4), dtype=np.int64)
    for i in range(n):
        if use_cut[i] and lam[i] != 1.0:
            (yl, yh, xl, xh), lam[i] = timm_mixup.cutmix_bbox_and_lam(
                (n, 3, h, w), lam[i], ratio_minmax=theirs.cutmix_minmax, correct_lam=theirs.correct_lam)
            boxes[i] = (xl, yl, xh, yh)
    cut_ours = (ours.mode == 0).numpy() & (ours.lam < 1).numpy()
    cut_theirs = use_cut & (lam < 1)
    limit = 1.95 * math.sqrt(2 / n) * 1.2  # KS critical value at alpha = 0.001 is 1.95 sqrt(2/n)
    # timm keeps lam in float32: compare the same float32 values (areas are discrete)
    assert ks_statistic(ours.lam.float().numpy(), lam) < limit
    rate_o, rate_t = cut_ours.mean(), cut_theirs.mean()
    assert abs(rate_o - rate_t) <= 5 * math.sqrt(max(rate_t * (1 - rate_t), 1e-3) * 2 / n)
    if cut_theirs.sum() > 200 and cut_ours.sum() > 200:
        bo, bt = ours.boxes.numpy()[cut_ours], boxes[cut_theirs]
        crit = 1.95 * math.sqrt(1 / len(bo) + 1 / len(bt))
        for col in range(4):
            assert ks_statistic(bo[:, col], bt[:, col]) < crit, f"box column {col}"
        assert ks_statistic(bo[:, 2] - bo[:, 0], bt[:, 2] - bt[:, 0]) < crit
    blend = (ours.mode == 1).numpy()
    assert bool((ours.boxes.numpy()[blend] == [0, 0, w, h]).all())


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.bfloat16])
def test_odd_batches_and_other_dtypes(mode, dtype, gen):
    """timm asserts an even batch and blends only float; here both work, against the reference."""
    mix = Mixup(mixup_alpha=0.5, cutmix_alpha=1.0, mode=mode, num_classes=K, generator=gen)
    x = rand_images((7, 3, 12, 12), dtype, gen).contiguous(memory_format=torch.channels_last)
    target = rand_labels(7, K, "int64", gen)
    before = x.clone()
    _, t = mix(x, target)
    p = mix.last_params
    ref, t_ref = mix_reference(before, target, p.perm, p.boxes, p.lam, p.mode, K, 0.1)
    assert torch.equal(x, ref) and torch.equal(t, t_ref)
    assert x.is_contiguous(memory_format=torch.channels_last)
    if mode == "pair":  # the middle sample is its own partner and stays as it is
        assert torch.equal(x[3], before[3]) and float(p.lam[3]) == 1.0


def test_mixup_enabled_off_gives_smoothed_one_hot(gen):
    mix = Mixup(cutmix_alpha=1.0, num_classes=K, generator=gen)
    mix.mixup_enabled = False
    x, target = torch.rand(6, 3, 8, 8), torch.randint(0, K, (6,))
    before = x.clone()
    _, t = mix(x, target)
    assert torch.equal(x, before)
    want = torch.nn.functional.one_hot(target, K).double() * 0.9 + 0.01
    torch.testing.assert_close(t, want.float())


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_fast_collate_mixup_equals_timm(monkeypatch, mode, gen):
    kwargs = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, label_smoothing=0.1, num_classes=K)
    ours, theirs = FastCollateMixup(**kwargs, generator=gen), timm_mixup.FastCollateMixup(**kwargs)
    for _ in range(4):
        batch = [(rand_images((3, 16, 12), torch.uint8, gen).numpy(), int(torch.randint(0, K, (1,), generator=gen)))
                 for _ in range(8)]
        out, t = ours(batch)
        force_draws(monkeypatch, theirs, ours.last_params, mode, collate=True)
        want, t_want = theirs(batch)
        assert out.dtype == torch.uint8 and torch.equal(out, want)
        assert t.dtype == torch.float32  # timm's follows the lam array it was handed
        torch.testing.assert_close(t, t_want, rtol=0, atol=1e-6, check_dtype=False)


def collate_and_keep(mixer):
    def collate(batch):
        originals = torch.stack([torch.as_tensor(b[0]) for b in batch])
        images, targets = mixer(batch)
        return originals, images, targets, mixer.last_params, torch.tensor([b[1] for b in batch])
    return collate


def test_fast_collate_mixup_in_workers(gen):
    from torch.utils.data import DataLoader

    g = torch.Generator().manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
    data = [(np.asarray(torch.randint(0, 256, (3, 10, 14), generator=g, dtype=torch.uint8)), i % K)
            for i in range(42)]
    loader = DataLoader(data, batch_size=7, num_workers=2,
                        collate_fn=collate_and_keep(FastCollateMixup(cutmix_alpha=1.0, mode="elem",
                                                                     num_classes=K)))
    seen = 0
    for originals, images, targets, p, labels in loader:
        ref, t_ref = mix_reference(originals, labels, p.perm, p.boxes, p.lam, p.mode, K, 0.1)
        assert images.dtype == torch.uint8 and torch.equal(images, ref) and torch.equal(targets, t_ref)
        seen += len(labels)
    assert seen == 42


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode: expected 'batch', 'pair' or 'elem'"):
        Mixup(mode="half")
    with pytest.raises(ValueError, match="mixup_alpha, cutmix_alpha: one of them must be positive"):
        Mixup(mixup_alpha=0.0)
    with pytest.raises(ValueError, match="prob: must be a number in"):
        Mixup(prob=1.5)
    x = torch.rand(4, 3, 8, 8)
    before = x.clone()
    with pytest.raises(ValueError, match="labels: class index 12 at position 0 is outside"):
        Mixup(num_classes=K)(x, torch.tensor([12, 0, 1, 2]))
    assert torch.equal(x, before)
    assert cutmix_ext.transforms.Mixup is Mixup
