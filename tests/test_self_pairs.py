"""A sample paired with itself (a batch of one, or a fixed point of the pairing) comes back
exactly as it was, image and target, in every dtype: not lam * x + (1 - lam) * x rounded, which
moves values by an ulp, turns -0.0 into 0.0 and infinity into NaN. The blend of two different
samples stays the stated formula, bit for bit (the references)."""
import pytest
import torch
from conftest import DEVICES
from helpers import DTYPES, rand_images

import cutmix_ext
from cutmix_ext import MixParams
from cutmix_ext.reference import mix_reference, mixup_reference

K, EPS = 6, 0.1


def bits(t):
    return t.contiguous().view(torch.uint8)


def with_specials(x, gen):
    """x with -0.0, infinities, NaN and a subnormal planted where the dtype has them."""
    if not x.is_floating_point():
        return x
    flat = x.view(-1)
    specials = torch.tensor([-0.0, float("inf"), -float("inf"), float("nan"),
                             torch.finfo(x.dtype).smallest_normal / 4], dtype=x.dtype)
    at = torch.randperm(flat.numel(), generator=gen)[:len(specials)].to(x.device)
    flat[at] = specials.to(x.device)
    return x


def own_target(labels, eps=EPS):
    """s(y) = (1 - eps) * onehot(y) + eps / K in float64, rounded once: a self-pair's target."""
    y = torch.nn.functional.one_hot(labels.cpu(), K).double()
    return (y * (1 - eps) + eps / K).float()


def self_pairing(n, gen):
    """A permutation with fixed points (0 and 2) and a cycle through the others."""
    if n < 4:
        return torch.arange(n)
    rest = [i for i in range(n) if i not in (0, 2)]
    perm = torch.arange(n)
    perm[rest] = torch.tensor(rest)[torch.randperm(len(rest), generator=gen)].roll(1)
    return perm


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_mixup_batch_of_one_is_unchanged(device, dtype, gen):
    x = with_specials(rand_images((1, 3, 17, 19), dtype, gen, device), gen)
    before = x.clone()
    labels = torch.randint(0, K, (1,), generator=gen).to(device)
    _, targets = cutmix_ext.mixup_(x, labels, K, alpha=0.4, label_smoothing=EPS, generator=gen)
    assert torch.equal(bits(x), bits(before))
    assert torch.equal(targets.cpu(), own_target(labels))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("specials", [True, False], ids=["specials", "finite"])
def test_fixed_points_of_the_pairing_are_unchanged(device, dtype, op, specials, gen):
    n = 7
    x = rand_images((n, 3, 9, 20), dtype, gen, device)
    x = with_specials(x, gen) if specials else x
    original = x.clone()
    labels = torch.randint(0, K, (n,), generator=gen).to(device)
    perm = self_pairing(n, gen)
    params = cutmix_ext.sample_params(x, op, per_sample=True, pairing=perm, alpha=0.7, generator=gen)
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    _, targets = fn(x, labels, K, params=params, label_smoothing=EPS)
    fixed = perm == torch.arange(n)
    assert torch.equal(bits(x[fixed.to(device)]), bits(original[fixed.to(device)]))
    assert torch.equal(targets.cpu()[fixed], own_target(labels.cpu()[fixed]))
    if op == "mixup" and not specials:  # the others blend by the formula, bit for bit
        want, want_targets = mixup_reference(original, labels, perm, params.lam, K, EPS)
        assert torch.equal(x, want) and not torch.equal(x[~fixed.to(device)], original[~fixed.to(device)])
        assert torch.equal(targets.cpu(), want_targets)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_general_op_keeps_self_pairs_but_fills_them(device, dtype, gen):
    """mix_: a self-paired sample that pastes or blends is unchanged; one that fills is filled."""
    n = 6
    x = with_specials(rand_images((n, 2, 8, 11), dtype, gen, device), gen)
    original = x.clone()
    labels = torch.randint(0, K, (n,), generator=gen).to(device)
    perm = torch.tensor([0, 3, 2, 1, 4, 5])  # 0, 2, 4, 5 paired with themselves
    boxes = torch.tensor([[1, 1, 9, 7]] * n)
    mode = torch.tensor([1, 1, 0, 0, 2, 1], dtype=torch.int8)
    lam = torch.rand(n, generator=gen, dtype=torch.float64)
    _, targets = cutmix_ext.mix_(x, labels, MixParams(perm, boxes, lam, (8, 11), mode), K,
                                 label_smoothing=EPS, fill=3)
    want, _ = mix_reference(original.cpu(), labels.cpu(), perm, boxes, lam, mode, K, EPS, fill=3)
    for i in (0, 2, 5):
        assert torch.equal(bits(x[i]), bits(original[i])), i
    assert (x[4, :, 1:7, 1:9] == 3).all() and torch.equal(bits(x[4].cpu()), bits(want[4]))
    assert torch.equal(targets.cpu()[[0, 2, 4, 5]], own_target(labels.cpu()[[0, 2, 4, 5]]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
def test_out_of_place_mixup_and_its_gradient_keep_self_pairs(device, dtype, gen):
    n = 5
    x = with_specials(rand_images((n, 3, 6, 10), dtype, gen, device), gen).requires_grad_()
    perm = self_pairing(n, gen)
    params = cutmix_ext.sample_params(x, "mixup", per_sample=True, pairing=perm, generator=gen)
    out = cutmix_ext.mixup(x, params)
    fixed = (perm == torch.arange(n)).to(device)
    assert torch.equal(bits(out[fixed].detach()), bits(x[fixed].detach()))
    grad = with_specials(rand_images((n, 3, 6, 10), dtype, gen, device), gen)
    out.backward(grad)
    assert torch.equal(bits(x.grad[fixed]), bits(grad[fixed]))


def test_mix_targets_agree_with_the_ops_on_self_pairs(gen):
    n = 5
    labels = torch.randint(0, K, (n,), generator=gen)
    x = rand_images((n, 3, 8, 8), torch.float32, gen)
    params = cutmix_ext.sample_params(x, "mixup", per_sample=True, pairing=self_pairing(n, gen), generator=gen)
    _, targets = cutmix_ext.mixup_(x, labels, K, params=params, label_smoothing=EPS)
    assert torch.equal(cutmix_ext.mix_targets(labels, params, K, label_smoothing=EPS), targets)
