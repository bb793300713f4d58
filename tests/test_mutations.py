"""Every public entry point, every argument broken in turn.

For each entry point a valid call is built from fresh random tensors; then one argument at a time
is replaced by each bad value of its kind's catalogue (another device, a dtype, shape or rank it
does not take, overlapping memory, memory shared with a tensor the call writes, NaN and infinity,
out-of-range values, wrong types, params fields of the wrong type, length or value). The call
must raise a TypeError or ValueError whose message names that argument, and every tensor of the
call must be bit for bit what it was. Succeeding on the bad value fails, as does any other
exception. With a GPU the CUDA variants run too ("another device" is then the CPU)."""
import math
import re
from typing import Callable, NamedTuple

import pytest
import torch
from conftest import DEVICES

import cutmix_ext
from cutmix_ext import MixParams, detection
from cutmix_ext import transforms as T
from cutmix_ext.nn import FeatureMix

N, C, H, W, K = 4, 3, 8, 8, 5


class Call(NamedTuple):
    fn: Callable
    kwargs: dict
    kinds: dict    # argument -> the kind of value it takes, which picks its catalogue
    written: tuple  # the arguments the call writes in place


# ---- the valid calls ----

def images(dev, gen, dtype=torch.float32):
    x = torch.rand(N, C, H, W, generator=gen, dtype=torch.float64) * 200 + 1  # never zero
    return x.to(dtype).to(dev)


def labels(dev, gen):
    return torch.randint(0, K, (N,), generator=gen).to(dev)


def soft(dev, gen):
    y = torch.rand(N, K, generator=gen) + 0.1
    return (y / y.sum(1, keepdim=True)).to(dev)


def drawn(mode, gen, **kw):
    return cutmix_ext.sample_params((N, C, H, W), mode, per_sample=True, pairing="random",
                                    generator=gen, **kw)


def general(gen):
    """Per-sample modes: paste, fill, paste, fill (no blend, so that masks may go along)."""
    p = drawn("cutmix", gen)
    return p._replace(mode=torch.tensor([0, 2, 0, 2], dtype=torch.int8))


def masks(dev, gen):
    return torch.randint(1, 9, (N, H, W), generator=gen).to(dev)


def det_list(dev, gen):
    out = []
    for _ in range(N):
        xy = torch.rand(3, 2, generator=gen, dtype=torch.float64) * 4
        wh = torch.rand(3, 2, generator=gen, dtype=torch.float64) * 3 + 1
        out.append({"boxes": torch.cat((xy, xy + wh), 1).float().to(dev),
                    "labels": torch.randint(0, K, (3,), generator=gen).to(dev)})
    return out


def det_flat(dev, gen):
    t = det_list(dev, gen)
    return {"boxes": torch.cat([d["boxes"] for d in t]), "labels": torch.cat([d["labels"] for d in t]),
            "batch_idx": torch.arange(N, device=dev).repeat_interleave(3)}


def transform(cls, **ctor):
    def run(images, labels, **kw):
        return cls(**kw)(images, labels)
    return run


def timm_mixup(x, target, **kw):
    return T.Mixup(**kw)(x, target)


def feature_mix(x, **kw):
    return FeatureMix(**kw)(x)


def entries(dev, gen):
    """name -> Call: a valid call of every public entry point, in its common forms."""
    g = torch.Generator().manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    return {
        "cutmix_": Call(cutmix_ext.cutmix_, dict(
            images=images(dev, gen), labels=labels(dev, gen), num_classes=K, label_smoothing=0.1,
            alpha=1.0, pairing="random", per_sample=True, generator=g, return_params=True,
            sampling="host", targets="dense"), dict(
            images="images", labels="labels", num_classes="num_classes", label_smoothing="smoothing",
            alpha="alpha", pairing="pairing", per_sample="flag", generator="generator",
            return_params="flag", sampling="sampling", targets="targets"), ("images",)),
        "cutmix_ variants": Call(cutmix_ext.cutmix_, dict(
            images=images(dev, gen, torch.uint8), labels=labels(dev, gen), num_classes=K,
            box="center_gaussian", center_std=0.25, label="onehot", p=0.9, generator=g), dict(
            images="images", labels="labels", box="box", center_std="center_std", label="label",
            p="p"), ("images",)),
        "cutmix_ params": Call(cutmix_ext.cutmix_, dict(
            images=images(dev, gen), labels=labels(dev, gen), num_classes=K, params=drawn("cutmix", gen),
            masks=masks(dev, gen), targets="compact"), dict(
            images="images", labels="labels", num_classes="num_classes", params="cutmix_params",
            masks="masks", targets="targets"), ("images", "masks")),
        "cutmix_ soft": Call(cutmix_ext.cutmix_, dict(
            images=images(dev, gen, torch.float16), labels=soft(dev, gen), params=drawn("cutmix", gen)),
            dict(images="images", labels="soft_labels", params="cutmix_params"), ("images",)),
        "mixup_": Call(cutmix_ext.mixup_, dict(
            images=images(dev, gen), labels=soft(dev, gen), label_smoothing=0.1, alpha=0.4,
            pairing="flip", per_sample=True, generator=g, p=0.8), dict(
            images="images", labels="soft_labels", label_smoothing="smoothing", alpha="alpha",
            pairing="pairing", per_sample="flag", generator="generator", p="p"), ("images",)),
        "mixup_ params": Call(cutmix_ext.mixup_, dict(
            images=images(dev, gen, torch.uint8), labels=labels(dev, gen), num_classes=K,
            params=drawn("mixup", gen)), dict(
            images="blend_images", labels="labels", num_classes="num_classes", params="mixup_params"),
            ("images",)),
        "mix_": Call(cutmix_ext.mix_, dict(
            images=images(dev, gen), labels=labels(dev, gen), params=general(gen), num_classes=K,
            label_smoothing=0.05, fill=3.0, masks=masks(dev, gen), targets="dense"), dict(
            images="images", labels="labels", params="general_params", num_classes="num_classes",
            label_smoothing="smoothing", fill="fill", masks="masks", targets="targets"),
            ("images", "masks")),
        "cutout_": Call(cutmix_ext.cutout_, dict(
            images=images(dev, gen, torch.uint8), size=(3, 5), fill=7, per_sample=True, p=0.9,
            generator=g, return_params=True), dict(
            images="lone_images", size="size", fill="int_fill", per_sample="flag", p="p",
            generator="generator", return_params="flag"), ("images",)),
        "cutout_ params": Call(cutmix_ext.cutout_, dict(
            images=images(dev, gen), params=drawn("cutout", gen), fill=-1.5), dict(
            images="lone_images", params="general_params", fill="fill"), ("images",)),
        "cutmix": Call(cutmix_ext.cutmix, dict(x=images(dev, gen), params=drawn("cutmix", gen)),
                       dict(x="x", params="cutmix_params"), ()),
        "mixup": Call(cutmix_ext.mixup, dict(x=images(dev, gen, torch.bfloat16), params=drawn("mixup", gen)),
                      dict(x="x", params="mixup_params"), ()),
        "mix_targets": Call(cutmix_ext.mix_targets, dict(
            labels=labels(dev, gen), params=drawn("cutmix", gen), num_classes=K, label_smoothing=0.1),
            dict(labels="labels", params="mixup_params", num_classes="num_classes",
                 label_smoothing="smoothing"), ()),
        "mixed_cross_entropy": Call(cutmix_ext.mixed_cross_entropy, dict(
            logits=torch.randn(N, K, generator=gen).to(dev), y_a=labels(dev, gen), y_b=labels(dev, gen),
            lam=torch.rand(N, generator=gen).to(dev), label_smoothing=0.1, reduction="mean"), dict(
            logits="logits", y_a="y", y_b="y", lam="lam", label_smoothing="smoothing",
            reduction="reduction"), ()),
        "sample_params": Call(cutmix_ext.sample_params, dict(
            size=(N, C, H, W), mode="cutmix", alpha=1.0, pairing=torch.randperm(N, generator=gen),
            per_sample=True, generator=g, box=4, center_std=0.2, label="complete", p=0.5), dict(
            size="size_shape", mode="mode", alpha="alpha", pairing="pairing", per_sample="flag",
            generator="generator", box="box", center_std="center_std", label="label", p="p"), ()),
        "detection.cutmix_": Call(detection.cutmix_, dict(
            images=images(dev, gen), targets=det_list(dev, gen), alpha=1.0, min_visibility=0.3,
            pairing="random", per_sample=True, generator=g, normalized=False, per_box=("iscrowd",),
            masks=masks(dev, gen), return_params=True), dict(
            images="images", targets="det_list", alpha="alpha", min_visibility="p",
            pairing="pairing", per_sample="flag", generator="generator", normalized="flag",
            per_box="per_box", masks="masks", return_params="flag"), ("images", "masks")),
        "detection.mixup_": Call(detection.mixup_, dict(
            images=images(dev, gen, torch.uint8), targets=det_flat(dev, gen), params=drawn("mixup", gen)),
            dict(images="blend_images", targets="det_flat", params="mixup_params"), ("images",)),
        "detection.cutmix_ params": Call(detection.cutmix_, dict(
            images=images(dev, gen), targets=det_flat(dev, gen), params=drawn("cutmix", gen)),
            dict(images="images", targets="det_flat", params="cutmix_params"), ("images",)),
        "transforms.CutMix": Call(transform(T.CutMix), dict(
            images=images(dev, gen), labels=labels(dev, gen), alpha=1.0, num_classes=K,
            label_smoothing=0.1, pairing="flip", per_sample=True, generator=g, p=0.9), dict(
            images="images", labels="labels", alpha="alpha", num_classes="num_classes",
            label_smoothing="smoothing", pairing="pairing_name", per_sample="flag",
            generator="generator", p="p"), ("images",)),
        "transforms.MixUp": Call(transform(T.MixUp), dict(
            images=images(dev, gen), labels=soft(dev, gen), alpha=0.4), dict(
            images="images", labels="soft_labels", alpha="alpha"), ("images",)),
        "transforms.Mixup": Call(timm_mixup, dict(
            x=images(dev, gen), target=labels(dev, gen), mixup_alpha=0.8, cutmix_alpha=1.0,
            cutmix_minmax=None, prob=0.9, switch_prob=0.5, mode="elem", label_smoothing=0.1,
            num_classes=K), dict(
            x="images", target="labels", mixup_alpha="timm_alpha", cutmix_alpha="timm_alpha",
            prob="p", switch_prob="p", mode="timm_mode", label_smoothing="smoothing",
            num_classes="num_classes"), ("x",)),
        "nn.FeatureMix": Call(feature_mix, dict(
            x=images(dev, gen), mode="cutmix", alpha=1.0, p=1.0, pairing="random",
            label_smoothing=0.1, box=3, center_std=0.2), dict(
            x="x", mode="mode", alpha="alpha", p="p", pairing="pairing_name",
            label_smoothing="smoothing", box="box", center_std="center_std"), ()),
    }


# ---- the catalogue of bad values, by kind ----

def other_device(t):
    """A CPU tensor moves to the GPU where there is one (else to meta), a CUDA tensor to the CPU."""
    if t.device.type != "cpu":
        return t.cpu()
    return t.to("cuda" if torch.cuda.is_available() else "meta")


def shares_written(t, call):
    """t's values, in memory that the call also writes (the first written tensor)."""
    w = call.kwargs[call.written[0]]
    view = torch.empty(0, dtype=t.dtype, device=w.device)
    view.set_(w.untyped_storage(), 0, t.shape)
    view.copy_(t)
    return view


def field(name, f):
    """A bad params field: params._replace(name=f(old field, call))."""
    return lambda p, call: p._replace(**{name: f(getattr(p, name), call)})


def overlapping(t, call):
    return t[:1].expand(t.shape)


NUMBER = [("nan", math.nan), ("infinity", math.inf), ("a string", "1"), ("a bool", True)]
TENSOR = [("a list", lambda t, c: t.tolist()), ("another device", lambda t, c: other_device(t))]
PERM = [
    ("perm a list", "params.perm", field("perm", lambda t, c: t.tolist())),
    ("perm on another device", "params.perm", field("perm", lambda t, c: other_device(t))),
    ("perm float", "params.perm", field("perm", lambda t, c: t.double())),
    ("perm too short", "params.perm", field("perm", lambda t, c: t[:-1])),
    ("perm out of range", "params.perm", field("perm", lambda t, c: t.clone().index_fill_(0, torch.tensor([1]), N))),
    ("perm repeated", "params.perm", field("perm", lambda t, c: torch.zeros_like(t))),
    ("perm sharing written memory", "params.perm", field("perm", shares_written)),
]
LAM = [
    ("lam on another device", "params.lam", field("lam", lambda t, c: other_device(t))),
    ("lam int", "params.lam", field("lam", lambda t, c: t.long())),
    ("lam too long", "params.lam", field("lam", lambda t, c: torch.cat((t, t[:1])))),
    ("lam nan", "params.lam", field("lam", lambda t, c: t.clone().index_fill_(0, torch.tensor([2]), math.nan))),
    ("lam infinite", "params.lam", field("lam", lambda t, c: t.clone().index_fill_(0, torch.tensor([0]), math.inf))),
    ("lam above one", "params.lam", field("lam", lambda t, c: t + 1.5)),
    ("lam sharing written memory", "params.lam", field("lam", shares_written)),
]
BOXES = [
    ("boxes on another device", "params.boxes", field("boxes", lambda t, c: other_device(t))),
    ("boxes float", "params.boxes", field("boxes", lambda t, c: t.float())),
    ("boxes (N, 3)", "params.boxes", field("boxes", lambda t, c: t[:, :3])),
    ("boxes too short", "params.boxes", field("boxes", lambda t, c: t[:-1])),
    ("box past the edge", "params.boxes", field("boxes", lambda t, c: t + torch.tensor([0, 0, W + 1, 0]))),
    ("box reversed", "params.boxes", field("boxes", lambda t, c: t[:, [2, 3, 0, 1]] + torch.tensor([1, 0, 0, 0]))),
    ("boxes sharing written memory", "params.boxes", field("boxes", shares_written)),
]
MODE = [
    ("mode on another device", "params.mode", field("mode", lambda t, c: other_device(t))),
    ("mode float", "params.mode", field("mode", lambda t, c: t.float())),
    ("mode too short", "params.mode", field("mode", lambda t, c: t[:-1])),
    ("mode 3", "params.mode", field("mode", lambda t, c: t.clone().fill_(3))),
    ("mode sharing written memory", "params.mode", field("mode", shares_written)),
]
PARAMS = [("a tuple", None, lambda p, c: tuple(p))]
IMAGES = [
    ("complex", lambda t, c: t.to(torch.complex64)),
    ("rank 3", lambda t, c: t[0]),
    ("overlapping memory", overlapping),
    ("no height", lambda t, c: t[..., :0, :]),
    ("an unsupported layout", lambda t, c: t.transpose(-1, -2).contiguous().transpose(-1, -2)),
]

CATALOGUE = {
    "images": TENSOR + IMAGES,
    # The only tensor of the call: on any device it is a valid call (meta: shapes only).
    "lone_images": IMAGES,
    "labels": TENSOR + [
        ("bool", lambda t, c: t > 2),
        ("rank 2", lambda t, c: t[:, None]),
        ("too short", lambda t, c: t[:-1]),
        ("index K", lambda t, c: t.clone().index_fill_(0, torch.tensor([1]), K)),
        ("index -1", lambda t, c: t.clone().index_fill_(0, torch.tensor([3]), -1)),
        ("sharing written memory", shares_written),
    ],
    "soft_labels": TENSOR + [
        ("complex", lambda t, c: t.to(torch.complex64)),
        ("rank 3", lambda t, c: t[:, :, None]),
        ("too long", lambda t, c: torch.cat((t, t[:1]))),
        ("sharing written memory", shares_written),
    ],
    "num_classes": [("zero", 0), ("negative", -2), ("a float", 5.0), ("a string", "5"), ("a bool", True)],
    "smoothing": NUMBER + [("one", 1.0), ("negative", -0.1)],
    "alpha": NUMBER + [("zero", 0.0), ("negative", -1.0)],
    "timm_alpha": NUMBER + [("negative", -1.0)],  # zero turns one of the two off
    "p": NUMBER + [("above one", 1.5), ("negative", -0.1)],
    "center_std": NUMBER + [("zero", 0.0), ("negative", -1.0)],
    "fill": [("a string", "0"), ("None", None), ("a tensor", torch.tensor(1.0))],
    "int_fill": [("a string", "0"), ("a fraction", 0.5), ("out of range", 300), ("nan", math.nan), ("infinity", math.inf)],
    "flag": [("a string", "yes"), ("an int", 2), ("None", None)],
    "pairing": [
        ("an unknown name", "shuffle"), ("an int", 3),
        ("a float tensor", lambda t, c: torch.arange(N, dtype=torch.float32)),
        ("on another device", lambda t, c: torch.arange(N, device="meta")),
        ("not a permutation", lambda t, c: torch.zeros(N, dtype=torch.int64)),
        ("out of range", lambda t, c: torch.arange(N) + 1),
        ("too short", lambda t, c: torch.arange(N - 1)),
    ],
    "pairing_name": [("an unknown name", "shuffle"), ("an int", 3)],
    "generator": [("an int", 0), ("a string", "g")],
    "sampling": [("an unknown name", "gpu"), ("None", None)],
    "targets": [("an unknown name", "sparse"), ("None", None)],
    "box": [("an unknown name", "gaussian"), ("zero", 0), ("a zero side", (0, 2)), ("a fraction", 2.5)],
    "size": [("an unknown name", "big"), ("zero", 0), ("negative", -3), ("a zero side", (0, 2)), ("a fraction", 2.5)],
    "label": [("an unknown name", "soft"), ("an int", 3)],
    "mode": [("an unknown name", "cut"), ("None", None)],
    "timm_mode": [("an unknown name", "pairs"), ("None", None)],
    "reduction": [("an unknown name", "avg")],
    "per_box": [("a string", "iscrowd"), ("ints", (1,))],
    "size_shape": [("rank 3", (N, H, W)), ("a string", "NCHW")],
    "cutmix_params": PARAMS + PERM + BOXES + [
        ("MixUp params", None, lambda p, c: p._replace(boxes=None)),
        ("another grid", None, lambda p, c: p._replace(size=(H + 1, W))),
    ],
    "mixup_params": PARAMS + PERM + LAM,
    "general_params": PARAMS + PERM + BOXES + LAM + MODE,
    "blend_images": TENSOR + [("integer", lambda t, c: t.to(torch.int16)), ("overlapping memory", overlapping)],
    "masks": TENSOR + [
        ("complex", lambda t, c: t.to(torch.complex64)),
        ("wrong shape", lambda t, c: t[:, :-1]),
        ("overlapping memory", overlapping),
        ("sharing the images' memory", shares_written),
    ],
    "x": TENSOR[:1] + [
        ("complex", lambda t, c: t.to(torch.complex64)),
        ("integer", lambda t, c: t.to(torch.int32)),
        ("rank 3", lambda t, c: t[0]),
    ],
    "logits": TENSOR[:1] + [("rank 1", lambda t, c: t[:, 0]), ("integer", lambda t, c: t.long())],
    "y": TENSOR + [("float", lambda t, c: t.float()), ("too short", lambda t, c: t[:-1]),
                   ("index K", lambda t, c: t.clone().index_fill_(0, torch.tensor([0]), K))],
    "lam": TENSOR + [("too short", lambda t, c: t[:-1]), ("nan", lambda t, c: t.clone().fill_(math.nan)),
                     ("above one", lambda t, c: t + 1.0)],
    "det_list": [
        ("a tensor", lambda t, c: torch.zeros(N, 4)),
        ("one dict too few", lambda t, c: t[:-1]),
        ("boxes (M, 3)", lambda t, c: [dict(d, boxes=d["boxes"][:, :3]) for d in t]),
        ("boxes complex", lambda t, c: [dict(d, boxes=d["boxes"].to(torch.complex64)) for d in t]),
        ("boxes on another device", lambda t, c: [dict(d, boxes=other_device(d["boxes"])) for d in t]),
        ("boxes sharing written memory", lambda t, c: [dict(d, boxes=shares_written(d["boxes"], c)) if i == 1 else d
                                                       for i, d in enumerate(t)]),
        ("labels too short", lambda t, c: [dict(d, labels=d["labels"][:-1]) for d in t]),
        ("no labels", lambda t, c: [{"boxes": d["boxes"]} for d in t]),
    ],
    "det_flat": [
        ("a string", "boxes"),
        ("no batch_idx", lambda t, c: {k: v for k, v in t.items() if k != "batch_idx"}),
        ("batch_idx out of range", lambda t, c: dict(t, batch_idx=t["batch_idx"] + 1)),
        ("batch_idx fractional", lambda t, c: dict(t, batch_idx=t["batch_idx"] + 0.5)),
        ("boxes (M, 3)", lambda t, c: dict(t, boxes=t["boxes"][:, :3])),
        ("labels too short", lambda t, c: dict(t, labels=t["labels"][:-1])),
        ("boxes sharing written memory", lambda t, c: dict(t, boxes=shares_written(t["boxes"], c))),
    ],
}


def catalogue(kind):
    """(label, the name the message must contain or None for the argument's own, mutate)."""
    out = []
    for entry in CATALOGUE[kind]:
        label, *rest = entry
        name, bad = rest if len(rest) == 2 else (None, rest[0])
        out.append((label, name, bad if callable(bad) and not isinstance(bad, (type, torch.Tensor))
                    else (lambda v: lambda t, c: v)(bad)))
    return out


# The timm drop-in keeps timm's argument names x and target; most of its messages come from
# mix_, which says images and labels.
SPOKEN = {("transforms.Mixup", "x"): ("x", "images"), ("transforms.Mixup", "target"): ("target", "labels")}

# Values checked only on the CPU: on CUDA the check would cost a host sync, and the kernels write
# NaN targets for labels out of range instead (the README says so).
CPU_ONLY = {("labels", "index K"), ("labels", "index -1"), ("y", "index K"), ("lam", "nan"),
            ("lam", "above one")}

CPP_DTYPE = re.compile(r"\b(Byte|Char|Short|Int|Long|Half|BFloat16|Float|Double|Bool|ComplexHalf|ComplexFloat|"
                       r"ComplexDouble)\b")

CASES = [(entry, arg, label)
         for entry, call in entries("cpu", torch.Generator().manual_seed(0)).items()
         for arg, kind in call.kinds.items()
         for label, _, _ in catalogue(kind)
         if call.written or "sharing" not in label]


def tensors_in(value, prefix):
    """(path, tensor) for every tensor in an argument, params fields and dicts included."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, MixParams):
        for f in MixParams._fields:
            yield from tensors_in(getattr(value, f), f"{prefix}.{f}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from tensors_in(v, f"{prefix}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from tensors_in(v, f"{prefix}[{i}]")


def snapshot(kwargs):
    """The bytes of every storage the call's tensors use (meta tensors have none)."""
    out = {}
    for name, value in kwargs.items():
        for path, t in tensors_in(value, name):
            if t.device.type != "meta":
                s = t.untyped_storage()
                out[path] = (s, torch.empty(0, dtype=torch.uint8, device=s.device).set_(s).clone())
    return out


def assert_unchanged(before):
    for path, (storage, saved) in before.items():
        now = torch.empty(0, dtype=torch.uint8, device=storage.device).set_(storage)
        assert torch.equal(now, saved), f"{path} was modified by a call that failed"


@pytest.mark.parametrize("device", DEVICES)
def test_the_unbroken_calls_run(device, gen):
    """Each mutation starts from a call that works: a refusal is the bad value's doing."""
    for call in entries(device, gen).values():
        call.fn(**call.kwargs)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("entry, arg, label", CASES, ids=[f"{e}-{a}-{lbl}" for e, a, lbl in CASES])
def test_a_bad_argument_is_refused_before_anything_is_written(entry, arg, label, device, gen):
    call = entries(device, gen)[entry]
    if device == "cuda" and (call.kinds[arg], label) in CPU_ONLY:
        pytest.skip("checked on the CPU only: on CUDA it would cost a host sync")
    name, mutate = next((n, m) for lbl, n, m in catalogue(call.kinds[arg]) if lbl == label)
    kwargs = dict(call.kwargs)
    kwargs[arg] = mutate(kwargs[arg], call)
    names = (name,) if name else SPOKEN.get((entry, arg), (arg,))
    before = snapshot(kwargs)
    with pytest.raises((TypeError, ValueError)) as info:
        call.fn(**kwargs)
    message = str(info.value)
    assert any(re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", message) for n in names), \
        f"the message does not name {' or '.join(names)}: {message}"
    assert not CPP_DTYPE.search(message), f"a dtype spelled as in C++, not as torch.<name>: {message}"
    assert_unchanged(before)
