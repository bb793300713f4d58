"""The sampler's statistics, with fixed seeds: Beta draws, the exact-area lambda of the paper's box
formula, uniform box centres and uniform random pairings."""
import math

import pytest
import torch

import cutmix_ext


def ks_statistic(a, b):
    """Two-sample Kolmogorov-Smirnov distance."""
    a, b = torch.sort(a.double())[0], torch.sort(b.double())[0]
    grid = torch.cat([a, b])
    fa = torch.searchsorted(a, grid, right=True).double() / len(a)
    fb = torch.searchsorted(b, grid, right=True).double() / len(b)
    return float((fa - fb).abs().max())


def ks_critical(n, m, alpha=1e-4):
    return math.sqrt(-0.5 * math.log(alpha / 2)) * math.sqrt((n + m) / (n * m))


def paper_boxes(n, h, w, alpha, gen):
    """The paper's / torchvision's formula, written independently with torch's own samplers."""
    lam = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha))).sample((n,)).double()
    rx = torch.randint(w, (n,), generator=gen)
    ry = torch.randint(h, (n,), generator=gen)
    r = 0.5 * torch.sqrt(1 - lam)
    hw, hh = (r * w).long(), (r * h).long()
    x1, x2 = (rx - hw).clamp(min=0), (rx + hw).clamp(max=w)
    y1, y2 = (ry - hh).clamp(min=0), (ry + hh).clamp(max=h)
    return 1 - ((x2 - x1) * (y2 - y1)).double() / (w * h)


@pytest.mark.parametrize("alpha", [1.0, 0.4, 2.0])
def test_beta_draws(alpha):
    n = 40000
    g = torch.Generator().manual_seed(7)
    lam = cutmix_ext.sample_params((n, 3, 1, 1), "mixup", alpha=alpha, per_sample=True, generator=g).lam
    assert abs(float(lam.mean()) - 0.5) < 4 * math.sqrt(1 / (4 * (2 * alpha + 1)) / n)
    var = 1 / (4 * (2 * alpha + 1))  # variance of Beta(alpha, alpha)
    assert abs(float(lam.var()) - var) < 0.05 * var
    torch.manual_seed(8)
    ref = torch.distributions.Beta(torch.tensor(alpha), torch.tensor(alpha)).sample((n,))
    assert ks_statistic(lam, ref) < ks_critical(n, n)


@pytest.mark.parametrize("hw", [(32, 32), (224, 224), (17, 40)])
def test_exact_lambda_follows_the_paper_formula(hw):
    h, w = hw
    n = 40000
    g = torch.Generator().manual_seed(11)
    params = cutmix_ext.sample_params((n, 3, h, w), "cutmix", per_sample=True, generator=g)
    x1, y1, x2, y2 = params.boxes.unbind(1)
    assert ((0 <= x1) & (x1 <= x2) & (x2 <= w) & (0 <= y1) & (y1 <= y2) & (y2 <= h)).all()
    torch.testing.assert_close(params.lam, 1 - ((x2 - x1) * (y2 - y1)).double() / (h * w), rtol=0, atol=0)
    torch.manual_seed(12)
    ref = paper_boxes(n, h, w, 1.0, torch.Generator().manual_seed(13))
    assert ks_statistic(params.lam, ref) < ks_critical(n, n)
    assert abs(float(params.lam.mean()) - float(ref.mean())) < 0.01


@pytest.mark.parametrize("hw", [(64, 48), (31, 50)])
def test_box_centres_are_uniform(hw):
    """With a small alpha many boxes have zero width (or height); their x1 (y1) is then the
    centre rx (ry) itself, drawn independently of lam: it must be uniform over the pixels."""
    h, w = hw
    n = 200000
    g = torch.Generator().manual_seed(21)
    b = cutmix_ext.sample_params((n, 1, h, w), "cutmix", alpha=0.1, per_sample=True, generator=g).boxes
    for lo, hi, size in [(b[:, 0], b[:, 2], w), (b[:, 1], b[:, 3], h)]:
        centres = lo[lo == hi]
        assert len(centres) > 20 * size
        counts = torch.bincount(centres, minlength=size).double()
        assert len(counts) == size
        expected = len(centres) / size
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < (size - 1) + 6 * math.sqrt(2 * (size - 1))


def test_shared_draw_and_random_pairing():
    g = torch.Generator().manual_seed(5)
    counts = torch.zeros(6, 6)
    for _ in range(3000):
        p = cutmix_ext.sample_params((6, 3, 8, 8), pairing="random", generator=g)
        assert sorted(p.perm.tolist()) == list(range(6))
        assert (p.boxes == p.boxes[0]).all() and (p.lam == p.lam[0]).all()
        counts[torch.arange(6), p.perm] += 1
    # Each partner equally likely for each sample (a sample may keep itself, as in the paper).
    assert (counts - 500).abs().max() < 6 * math.sqrt(500)


def test_device_draws_use_only_exactly_rounded_arithmetic():
    """sampling="device" draws with csrc/mix.h's code on the GPU and, in the emulation, on the
    host: the same numbers only if no math-library function (CUDA's and glibc's differ in the
    last bit) and no bare floating-point expression nvcc could fuse into an FMA is used there.
    The drawing section calls its own log_hd / exp_hd / cos_2pi and dmul / dadd / dfma / ddiv /
    dsqrt instead."""
    import os
    import re

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "csrc", "mix.h")
    with open(path) as f:
        text = f.read()
    section = text[text.index("// ---- Drawing the parameters inside the kernel"):]
    code = re.sub(r"//[^\n]*", "", section)
    calls = re.findall(r"(?<![\w:.])(?:std::)?(log|log1p|log2|exp|expm1|exp2|pow|sqrt|cbrt|cos|sin|cospi|sinpi|"
                       r"sincos|sincospi|tgamma|lgamma|erf|fma)f?\s*\(", code)
    assert not calls, calls
    # Floating-point arithmetic spelled with operators: a double literal next to * or +.
    bare = re.findall(r"\d\.\d*(?:e[-+]?\d+)?\s*[*+]\s*[\w(]|[\w)]\s*[*+]\s*\d+\.\d*", code)
    assert not bare, bare
