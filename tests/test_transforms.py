"""cutmix_ext.transforms.CutMix / MixUp as drop-in replacements for torchvision's: every usage of
torchvision's "How to use CutMix and MixUp" tutorial, run with the import swapped, against
torchvision itself and the pure-PyTorch reference."""
import pytest
import torch
from conftest import import_or_skip
from helpers import rand_images, rand_labels

import cutmix_ext
from cutmix_ext.reference import cutmix_reference, mixup_reference

v2 = import_or_skip("torchvision.transforms.v2")
tv_tensors = import_or_skip("torchvision.tv_tensors")
from cutmix_ext import transforms as T  # noqa: E402

NUM_CLASSES = 10


def check_mixed(op, before, after, labels, out_labels, params, k=NUM_CLASSES):
    ref = cutmix_reference if op == "cutmix" else mixup_reference
    second = params.boxes if op == "cutmix" else params.lam
    want, t_want = ref(before, labels, params.perm, second, k)[:2]
    assert torch.equal(after, want)
    assert torch.equal(out_labels, t_want)


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_after_the_dataloader(op, gen):
    """images, labels = cutmix(images, labels): same output structure and label semantics as
    torchvision's, the images mixed in place with the drawn parameters."""
    ours = T.CutMix(num_classes=NUM_CLASSES) if op == "cutmix" else T.MixUp(num_classes=NUM_CLASSES)
    theirs = v2.CutMix(num_classes=NUM_CLASSES) if op == "cutmix" else v2.MixUp(num_classes=NUM_CLASSES)
    images = rand_images((8, 3, 16, 20), torch.float32, gen)
    labels = rand_labels(8, NUM_CLASSES, "int64", gen)
    before = images.clone()
    out_images, out_labels = ours(images, labels)
    ref_images, ref_labels = theirs(before.clone(), labels)
    assert out_images is images  # in place
    assert out_labels.shape == ref_labels.shape == (8, NUM_CLASSES) and out_labels.dtype == ref_labels.dtype
    torch.testing.assert_close(out_labels.sum(1), torch.ones(8))
    check_mixed(op, before, out_images, labels, out_labels, ours.last_params)
    # given the same draw, torchvision's images are the same (its pairing is "roll")
    if op == "cutmix":
        x1, y1, x2, y2 = ours.last_params.boxes[0].tolist()
        tv = before.clone()
        tv[..., y1:y2, x1:x2] = before.roll(1, 0)[..., y1:y2, x1:x2]
        assert torch.equal(out_images, tv)


def test_inside_collate_fn_with_workers():
    """The tutorial's collate_fn with num_workers=2 and RandomChoice([cutmix, mixup])."""
    from torch.utils.data import DataLoader, default_collate

    cutmix = T.CutMix(num_classes=NUM_CLASSES)
    mixup = T.MixUp(num_classes=NUM_CLASSES)
    cutmix_or_mixup = v2.RandomChoice([cutmix, mixup])

    def collate_fn(batch):
        return cutmix_or_mixup(*default_collate(batch))

    data = [(torch.rand(3, 12, 12), i % NUM_CLASSES) for i in range(32)]
    loader = DataLoader(data, batch_size=8, shuffle=True, num_workers=2, collate_fn=collate_fn)
    for images, labels in loader:
        assert images.shape == (8, 3, 12, 12) and labels.shape == (8, NUM_CLASSES)
        torch.testing.assert_close(labels.sum(1), torch.ones(8))
        assert ((labels > 0).sum(1) <= 2).all() and (labels.max(1).values >= 0.5).all()


def test_dict_with_labels_getter(gen):
    """The tutorial's non-standard input: a dict with a callable labels_getter; entries other
    than the images and labels pass through untouched, as in torchvision."""
    images = rand_images((6, 3, 10, 10), torch.float32, gen)
    labels = rand_labels(6, NUM_CLASSES, "int64", gen)
    extra = torch.arange(6)
    batch = {"imgs": images, "target": {"classes": labels, "some_other_key": "this is going to be passed-through"},
             "extra": extra}

    def labels_getter(batch):
        return batch["target"]["classes"]

    before = images.clone()
    out = T.CutMix(num_classes=NUM_CLASSES, labels_getter=labels_getter)(batch)
    ref = v2.CutMix(num_classes=NUM_CLASSES, labels_getter=labels_getter)(
        {**batch, "imgs": before.clone()})
    assert out.keys() == ref.keys() and out["target"].keys() == ref["target"].keys()
    assert out["target"]["some_other_key"] == "this is going to be passed-through"
    assert out["extra"] is extra and torch.equal(extra, torch.arange(6))
    assert out["target"]["classes"].shape == ref["target"]["classes"].shape


def test_default_getter_dict_and_tv_tensors(gen):
    """Dicts found by the default labels getter, tv_tensors.Image kept as such, (N, K) labels."""
    images = tv_tensors.Image(rand_images((5, 3, 9, 9), torch.uint8, gen))
    soft = rand_labels(5, 4, "float32", gen)
    before = images.as_subclass(torch.Tensor).clone()
    out = T.MixUp()({"image": images, "Labels": soft, "name": "x"})
    assert isinstance(out["image"], tv_tensors.Image) and out["name"] == "x"
    m = T.MixUp()
    out2 = m((images.as_subclass(torch.Tensor).clone().copy_(before), soft))
    check_mixed("mixup", before, out2[0], soft, out2[1], m.last_params, None)


def test_channels_last_uint8_and_extras(gen):
    images = rand_images((8, 3, 16, 16), torch.uint8, gen, layout="channels_last")
    labels = rand_labels(8, NUM_CLASSES, "int32", gen)
    before = images.clone()
    t = T.CutMix(num_classes=NUM_CLASSES, per_sample=True, pairing="random", label_smoothing=0.1)
    out, targets = t(images, labels)
    assert out.is_contiguous(memory_format=torch.channels_last)
    p = t.last_params
    want, t_want, _ = cutmix_reference(before, labels, p.perm, p.boxes, NUM_CLASSES, 0.1)
    assert torch.equal(out, want) and torch.equal(targets, t_want)


def test_bad_input_like_torchvision(gen):
    images = rand_images((4, 3, 8, 8), torch.float32, gen)
    before = images.clone()
    labels = rand_labels(4, NUM_CLASSES, "int64", gen)
    with pytest.raises(ValueError, match="num_classes: required"):
        T.CutMix()(images, labels)
    with pytest.raises(ValueError, match="labels: .*K = 10 != num_classes = 5"):
        T.MixUp(num_classes=5)(images, torch.rand(4, NUM_CLASSES))
    with pytest.raises(ValueError, match="images: batch size 4 does not match the labels' 3"):
        T.CutMix(num_classes=NUM_CLASSES)(images, labels[:3])
    with pytest.raises(ValueError, match="images: expected a batched input with 4 dims"):
        T.CutMix(num_classes=NUM_CLASSES)(images[0], labels)
    with pytest.raises(ValueError, match="alpha: must be a positive number"):
        T.CutMix(alpha=0)
    assert torch.equal(images, before)
    assert cutmix_ext.transforms.CutMix is T.CutMix


def test_masks_among_the_inputs_get_the_same_boxes(gen):
    """A tv_tensors.Mask in the sample (vision#9215) is cut and pasted with the images' boxes and
    partners; torchvision refuses it. MixUp refuses it too: blended class indices mean nothing."""
    images = tv_tensors.Image(rand_images((6, 3, 12, 16), torch.float32, gen))
    masks = tv_tensors.Mask(torch.randint(0, 5, (6, 12, 16), generator=gen))
    labels = rand_labels(6, NUM_CLASSES, "int64", gen)
    before, mask_before = images.clone(), masks.clone()
    cut = T.CutMix(num_classes=NUM_CLASSES, per_sample=True, pairing="random", generator=gen)
    out = cut({"image": images, "mask": masks, "labels": labels})
    p = cut.last_params
    want = cutmix_reference(before.as_subclass(torch.Tensor), labels, p.perm, p.boxes, NUM_CLASSES)[0]
    m_want = cutmix_reference(mask_before.as_subclass(torch.Tensor)[:, None], labels, p.perm, p.boxes,
                              NUM_CLASSES)[0][:, 0]
    assert torch.equal(out["image"], want) and torch.equal(out["mask"], m_want)
    assert isinstance(out["mask"], tv_tensors.Mask)
    with pytest.raises(ValueError, match="masks: MixUp blends pixels"):
        T.MixUp(num_classes=NUM_CLASSES)({"image": images, "mask": masks, "labels": labels})


def test_variants_and_schedule_pass_through(gen):
    images = rand_images((8, 3, 16, 16), torch.float32, gen)
    labels = rand_labels(8, NUM_CLASSES, "int64", gen)
    cut = T.CutMix(num_classes=NUM_CLASSES, per_sample=True, box="center_gaussian", label="onehot",
                   generator=gen)
    _, targets = cut(images, labels)
    assert bool(((targets == 1) | (targets == 0)).all()) and cut.last_params.mode is not None
    sched = T.MixUp(num_classes=NUM_CLASSES, schedule_steps=5, generator=gen)
    before = images.clone()
    sched(images, labels)  # step 0 of the schedule: p = 0, nothing mixes
    assert torch.equal(images, before)


def _torchvision_given(op, params):
    """torchvision's transform, made to draw what `params` drew (its pairing is "roll")."""
    t = v2.CutMix(num_classes=None) if op == "cutmix" else v2.MixUp(num_classes=None)
    lam = float(params.lam[0])
    if op == "cutmix":
        t.make_params = lambda flat: dict(box=tuple(params.boxes[0].tolist()), lam_adjusted=lam)
    else:
        t.make_params = lambda flat: dict(lam=lam)
    return t


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("kind", ["one_hot int64", "int32", "uint8", "bool", "float16"])
def test_2d_labels_of_any_dtype_as_torchvision(op, kind, gen):
    """(N, K) labels are probabilities whatever their dtype: F.one_hot's int64, int32, uint8 and
    bool come back as float32 targets, as torchvision gives them; float16 too (torchvision keeps
    float16, and loses precision doing so)."""
    n, k = 7, NUM_CLASSES
    idx = rand_labels(n, k, "int64", gen)
    if kind == "float16":
        labels = rand_labels(n, k, "float16", gen)
    else:
        labels = torch.nn.functional.one_hot(idx, k)
        labels = labels if kind == "one_hot int64" else labels.to(getattr(torch, kind))
    images = rand_images((n, 3, 12, 14), torch.float32, gen)
    before = images.clone()
    ours = (T.CutMix if op == "cutmix" else T.MixUp)(generator=gen)
    out, targets = ours(images, labels)
    p = ours.last_params
    ref = cutmix_reference if op == "cutmix" else mixup_reference
    want, t_want = ref(before, labels.double(), p.perm, p.boxes if op == "cutmix" else p.lam, k)[:2]
    assert torch.equal(out, want)
    assert targets.dtype == torch.float32 and targets.shape == (n, k)
    torch.testing.assert_close(targets, t_want, rtol=0, atol=1e-7)
    tv_images, tv_targets = _torchvision_given(op, p)(before.clone(), labels)
    assert torch.equal(tv_images, out)
    assert tv_targets.dtype == (torch.float16 if kind == "float16" else torch.float32)
    torch.testing.assert_close(targets, tv_targets.float(), rtol=0,
                               atol=1e-3 if kind == "float16" else 2e-7)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16])
def test_narrow_class_indices_are_widened(dtype, gen):
    """(N,) class indices in a narrow integer dtype (torchvision's one_hot refuses them)."""
    labels = rand_labels(6, NUM_CLASSES, "int64", gen)
    images = rand_images((6, 3, 8, 8), torch.float32, gen)
    before = images.clone()
    t = T.CutMix(num_classes=NUM_CLASSES, per_sample=True, generator=gen)
    _, targets = t(images, labels.to(dtype))
    p = t.last_params
    want, t_want, _ = cutmix_reference(before, labels, p.perm, p.boxes, NUM_CLASSES)
    assert torch.equal(images, want) and torch.equal(targets, t_want)


def _pil_image(gen):
    pil = pytest.importorskip("PIL.Image")
    return pil.fromarray(rand_images((8, 8, 3), torch.uint8, gen).numpy())


REFUSED = {
    "PIL image": lambda gen, n: _pil_image(gen),
    "BoundingBoxes": lambda gen, n: tv_tensors.BoundingBoxes(
        torch.tensor([[1, 1, 5, 6]] * n), format="XYXY", canvas_size=(8, 8)),
    "KeyPoints": lambda gen, n: tv_tensors.KeyPoints(torch.rand(n, 2) * 8, canvas_size=(8, 8)),
}


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("what", list(REFUSED))
def test_refuses_what_would_no_longer_match_its_image(op, what, gen):
    """Boxes, keypoints or a PIL image beside the batch would come back unmixed beside mixed
    images: refused before anything is written, as torchvision refuses them."""
    if what == "KeyPoints" and not hasattr(tv_tensors, "KeyPoints"):
        pytest.skip("this torchvision has no tv_tensors.KeyPoints")
    images = rand_images((4, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(4, NUM_CLASSES, "int64", gen)
    before = images.clone()
    extra = REFUSED[what](gen, 4)
    ours = (T.CutMix if op == "cutmix" else T.MixUp)(num_classes=NUM_CLASSES)
    theirs = (v2.CutMix if op == "cutmix" else v2.MixUp)(num_classes=NUM_CLASSES)
    name = "BoundingBoxes|KeyPoints" if what != "PIL image" else "PIL image"
    for inputs in ({"image": images, "extra": extra, "labels": labels}, (images, labels, extra)):
        with pytest.raises(ValueError, match=f"inputs: (CutMix|MixUp) cannot mix a (tv_tensors.)?({name})"):
            ours(inputs)
        with pytest.raises(ValueError):
            theirs(inputs)
    assert torch.equal(images, before)
