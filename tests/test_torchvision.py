"""Parity with torchvision.transforms.v2.CutMix / MixUp for the same lam and box."""
import pytest
import torch
from conftest import DEVICES, import_or_skip
from helpers import rand_images, rand_labels

import cutmix_ext

v2 = import_or_skip("torchvision.transforms.v2")


def torchvision_cutmix(images, labels, num_classes, box, lam):
    t = v2.CutMix(num_classes=num_classes)
    t.make_params = lambda flat_inputs: dict(box=box, lam_adjusted=lam)
    if images.dim() == 5:  # torchvision takes 5-d batches as videos
        from torchvision import tv_tensors
        out, targets = t(tv_tensors.Video(images), labels)
        return out.as_subclass(torch.Tensor), targets
    return t(images, labels)


def torchvision_mixup(images, labels, num_classes, lam):
    t = v2.MixUp(num_classes=num_classes)
    t.make_params = lambda flat_inputs: dict(lam=lam)
    return t(images, labels)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape", [(1, 3, 9, 9), (8, 3, 32, 32), (5, 3, 17, 23), (4, 2, 3, 12, 10)])
def test_cutmix_equals_torchvision(shape, dtype, device, gen):
    for soft in [False, True]:
        images = rand_images(shape, dtype, gen, device)
        labels = rand_labels(shape[0], 10, "float32" if soft else "int64", gen, device)
        _, _, params = cutmix_ext.cutmix_(images.clone(), labels, None if soft else 10, generator=gen,
                                          alpha=0.5, return_params=True)
        box = tuple(params.boxes[0].tolist())
        want_images, want_targets = torchvision_cutmix(images, labels, None if soft else 10, box,
                                                       float(params.lam[0]))
        got_images, got_targets = cutmix_ext.cutmix_(images, labels, None if soft else 10, params=params)
        assert torch.equal(got_images, want_images)  # bit for bit
        torch.testing.assert_close(got_targets, want_targets, rtol=0, atol=2e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 3, 9, 9), (8, 3, 32, 32), (5, 3, 17, 23)])
def test_mixup_equals_torchvision_float32(shape, device, gen):
    images = rand_images(shape, torch.float32, gen, device)
    labels = rand_labels(shape[0], 10, "int64", gen, device)
    _, _, params = cutmix_ext.mixup_(images.clone(), labels, 10, generator=gen, return_params=True)
    want_images, want_targets = torchvision_mixup(images, labels, 10, float(params.lam[0]))
    original = images.clone()
    got_images, got_targets = cutmix_ext.mixup_(images, labels, 10, params=params)
    if shape[0] == 1:  # torchvision blends the sample with itself; it is kept as it is
        assert torch.equal(got_images, original)
        torch.testing.assert_close(want_images, original, rtol=2e-7, atol=0)
    else:
        assert torch.equal(got_images, want_images)  # same float32 products and sum
    torch.testing.assert_close(got_targets, want_targets, rtol=0, atol=2e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_mixup_half_precision_is_more_accurate_than_torchvision(dtype, device, gen):
    """torchvision rounds the two products and the sum in the low precision; we round once."""
    images = rand_images((32, 3, 16, 16), dtype, gen, device)
    labels = rand_labels(32, 10, "int64", gen, device)
    _, _, params = cutmix_ext.mixup_(images.clone(), labels, 10, generator=gen, return_params=True)
    lam = float(params.lam[0])
    exact = images.double() * lam + images.double().roll(1, 0) * (1 - lam)
    want_images, _ = torchvision_mixup(images, labels, 10, lam)
    got_images, _ = cutmix_ext.mixup_(images, labels, 10, params=params)
    ours = (got_images.double() - exact).abs().mean()
    theirs = (want_images.double() - exact).abs().mean()
    assert ours < theirs
    # Within one rounding of the exact blend (the weights themselves are float32).
    ulp = torch.finfo(dtype).eps * exact.abs().clamp_min(1)
    assert ((got_images.double() - exact).abs() <= ulp).all()
