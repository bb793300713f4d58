"""Detection batches: cutmix_ext.detection against the per-image loop a user writes today and
against ultralytics' own CutMix and MixUp.

    python -m benchmarks.detection                    # 64x3x640x640 uint8, ~20 boxes per image
    python -m benchmarks.detection --device cuda --out benchmarks/results

The loop is the plain-torch form of ultralytics' per-image rule, on a batch: for each image, its
partner's patch (copied out first, since the partner is mixed too), its own boxes kept when
enough stays visible and shrunk where the patch covers a whole side, the partner's boxes cut to
the patch; for MixUp the blend and both images' boxes. It is checked to give our output first.
Besides the ratios, the table gives what the boxes cost: the same detection calls on a batch of
no channels (everything but the pixels), as a share of the same draw applied to the images
alone (`cutmix_ext.mix_`); and loop / images alone, the most any bookkeeping of the boxes could
give against the loop (the pixels are the same work done once, not twice).

The second table replays one draw (patches, partners, lam) in every row, at ultralytics'
threshold (min_visibility 0.1), next to ultralytics' transforms (CPU only: they work on NumPy
arrays), which are handed the same draw and the batch's images and boxes one image at a time, as
its dataset hands them over, and checked to give our pixels and boxes first. Its CutMix refuses
a patch over any of the image's own boxes, which the draw's patches nearly always are: each
image is handed its own boxes clear of the patch (the rest are what its rule would refuse), so
that it does the work of a patch it accepts; it still skips a patch under which no partner box
has 10% of its area. Its MixUp truncates the blend to uint8, where cutmix_ext rounds: pixels
within 1. The floors are the bytes each op must move, as one `copy_` between two buffers:
CutMix's, as many bytes as the drawn patches hold (it reads the partners' patches and writes
its own; the strided rows cost more than this); MixUp's, the whole batch (a blend reads every
image and writes it). % of floor: the floor's time over the row's."""
import argparse
import datetime
import os
import platform
import random
import re
import statistics
import sys
import time

import numpy as np
import torch

import cutmix_ext
from cutmix_ext import detection as D


def make_batch(n, h, w, boxes_per_image, device, gen):
    images = torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=gen).to(device)
    targets = []
    for _ in range(n):
        m = int(torch.randint(boxes_per_image // 2, boxes_per_image * 3 // 2 + 1, (), generator=gen))
        xy = torch.rand(m, 2, generator=gen) * torch.tensor([w, h])
        wh = (torch.rand(m, 2, generator=gen) * 0.3 + 0.02) * torch.tensor([w, h])
        targets.append({"boxes": torch.cat((xy, xy + wh), 1).clamp(max=max(h, w)).to(device),
                        "labels": torch.randint(0, 80, (m,), generator=gen).to(device)})
    return images, targets


def flat_of(targets):
    counts = torch.tensor([len(t["labels"]) for t in targets])
    return {"boxes": torch.cat([t["boxes"] for t in targets]),
            "labels": torch.cat([t["labels"] for t in targets]),
            "batch_idx": torch.repeat_interleave(torch.arange(len(targets)), counts).to(targets[0]["boxes"].device)}


def loop_cutmix(images, targets, params, min_visibility=0.25):
    """Per image, in plain torch."""
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    perm, patch = params.perm.tolist(), params.boxes.tolist()
    pieces = [images[j, :, y1:y2, x1:x2].clone() for j, (x1, y1, x2, y2) in zip(perm, patch)]
    out = []
    for i in range(n):
        x1, y1, x2, y2 = patch[i]
        images[i, :, y1:y2, x1:x2] = pieces[i]
        p = torch.tensor([x1, y1, x2, y2], dtype=torch.float32, device=images.device)
        b = targets[i]["boxes"].clamp(min=0)
        b = torch.minimum(b, torch.tensor([w, h, w, h], dtype=b.dtype, device=b.device))
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        ib = torch.cat((torch.maximum(b[:, :2], p[:2]), torch.minimum(b[:, 2:], p[2:])), 1)
        cut = (ib[:, 2] - ib[:, 0]).clamp(min=0) * (ib[:, 3] - ib[:, 1]).clamp(min=0)
        vis = area - cut
        keep = (area > 0) & (vis > 0) & (vis >= min_visibility * area)
        hit = cut > 0
        tall = hit & (p[1] <= b[:, 1]) & (p[3] >= b[:, 3])
        wide = hit & (p[0] <= b[:, 0]) & (p[2] >= b[:, 2])
        own = torch.stack((torch.where(tall & (p[0] <= b[:, 0]), p[2], b[:, 0]),
                           torch.where(wide & (p[1] <= b[:, 1]), p[3], b[:, 1]),
                           torch.where(tall & (p[2] >= b[:, 2]), p[0], b[:, 2]),
                           torch.where(wide & (p[3] >= b[:, 3]), p[1], b[:, 3])), 1)[keep]
        q = targets[perm[i]]["boxes"].clamp(min=0)
        q = torch.minimum(q, torch.tensor([w, h, w, h], dtype=q.dtype, device=q.device))
        qa = (q[:, 2] - q[:, 0]) * (q[:, 3] - q[:, 1])
        iq = torch.cat((torch.maximum(q[:, :2], p[:2]), torch.minimum(q[:, 2:], p[2:])), 1)
        got = (iq[:, 2] - iq[:, 0]).clamp(min=0) * (iq[:, 3] - iq[:, 1]).clamp(min=0)
        take = (qa > 0) & (got > 0) & (got >= min_visibility * qa)
        out.append({"boxes": torch.cat((own, iq[take])),
                    "labels": torch.cat((targets[i]["labels"][keep], targets[perm[i]]["labels"][take]))})
    return images, out


def loop_mixup(images, targets, params):
    perm, lam = params.perm.tolist(), params.lam.tolist()
    src = images.clone()
    out = []
    for i, j in enumerate(perm):
        images[i] = (src[i].float() * lam[i] + src[j].float() * (1 - lam[i])).round_().to(images.dtype)
        out.append({"boxes": torch.cat((targets[i]["boxes"], targets[j]["boxes"])),
                    "labels": torch.cat((targets[i]["labels"], targets[j]["labels"])),
                    "weights": torch.cat((torch.full((len(targets[i]["labels"]),), lam[i]),
                                          torch.full((len(targets[j]["labels"]),), 1 - lam[i])))})
    return images, out


def check(images, targets, device):
    """Every row's output against cutmix_ext's before timing: the loop must do the same work."""
    for op, loop in (("cutmix", loop_cutmix), ("mixup", loop_mixup)):
        fn = D.cutmix_ if op == "cutmix" else D.mixup_
        a, b = images.clone(), images.clone()
        # boxes well inside the image: the loop does not drop zero-area boxes after clipping
        _, ours, p = fn(a, targets, return_params=True)
        _, theirs = loop(b, targets, p)
        if op == "mixup":  # the loop rounds half away from zero once in a while; ours to even
            assert (a.int() - b.int()).abs().max() <= 1
        else:
            assert torch.equal(a, b)
        for x, y in zip(ours, theirs):
            assert torch.equal(x["labels"], y["labels"])
            torch.testing.assert_close(x["boxes"], y["boxes"].float(), rtol=0, atol=0)
        _, flat = fn(images.clone(), flat_of(targets), params=p)
        assert torch.equal(flat["boxes"], torch.cat([t["boxes"] for t in ours]))


ULTRALYTICS = "ultralytics==8.4.190"
# --no-deps: its requirements would bring torch and torchvision in; its augment module needs only
# these beside numpy and torch
ULTRALYTICS_PIP = f"-m pip install --no-deps {ULTRALYTICS} opencv-python-headless pyyaml pillow"


def ultralytics_augment():
    """ultralytics.data.augment, or None where it does not import. As it is imported, ultralytics
    reads torchvision's version (for other transforms' checks), which a torch from PyTorch's own
    index has no PyPI release to go with: then it is told the release built with this torch. It
    also sets thread counts for its training in the environment, which are put back, and the first
    time on a machine it would print where it keeps its settings, amid the tables."""
    import importlib.metadata as md
    version, env = md.version, dict(os.environ)
    os.environ.setdefault("YOLO_VERBOSE", "False")

    def known(name):
        try:
            return version(name)
        except md.PackageNotFoundError:
            m = re.match(r"2\.(\d+)\.(\d+)", torch.__version__)
            if name != "torchvision" or not m:
                raise
            return f"0.{int(m[1]) + 15}.{m[2]}"

    md.version = known
    try:
        from ultralytics.data import augment
        return augment
    except ImportError:
        return None
    finally:
        md.version = version
        for k in set(os.environ) - set(env):
            del os.environ[k]
        os.environ.update(env)


def ultralytics_mix(augment, op, images, targets, params):
    """ultralytics' CutMix or MixUp given our draw: a function that runs it over the batch, image
    by image, returning its label dicts; and the dicts it is handed. These are built here once, as
    its pipeline hands them to the two transforms (after Mosaic and RandomPerspective): HWC
    uint8 images, boxes as XYXY pixels (its CutMix rule compares them with the patch as they
    are; straight from its dataset they would be normalized XYWH), classes as (M, 1) float32.
    Each partner comes as its dataset would load it, the image before the mix."""
    n = images.shape[0]
    perm, lam = params.perm.tolist(), params.lam.tolist()
    patch = params.boxes.tolist() if op == "cutmix" else None
    imgs = images.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    loaded = imgs.copy()

    def labels(img, t, keep=slice(None)):
        b, c = t["boxes"].cpu().numpy()[keep].copy(), t["labels"].cpu().numpy()[keep]
        return {"img": img, "cls": c[:, None].astype(np.float32),
                "instances": augment.Instances(b, bbox_format="xyxy", normalized=False)}

    def clear(i):
        return augment.bbox_ioa(np.float32([patch[i]]), targets[i]["boxes"].cpu().numpy())[0] <= 0

    handed = [labels(imgs[i], t, clear(i) if op == "cutmix" else slice(None)) for i, t in enumerate(targets)]

    class Dataset(list):
        def get_image_and_label(self, j):
            return self[j]

    class Given(augment.CutMix if op == "cutmix" else augment.MixUp):
        """Its own draws are made, so that their cost stays in its time, and then replaced by ours:
        the partner (get_indexes), CutMix's patch (_rand_bbox), MixUp's r ~ Beta(32, 32)
        (get_params, where it draws it) by our lam."""
        i = 0

        def get_indexes(self):
            super().get_indexes()
            return perm[self.i]

        def _rand_bbox(self, width, height):
            super()._rand_bbox(width, height)
            return patch[self.i]

        def get_params(self, labels):
            p = super().get_params(labels)
            if op == "mixup":
                p["r"] = lam[self.i]
            return p

    mix = Given(Dataset(labels(loaded[j], t) for j, t in enumerate(targets)), p=1.0)

    def run():
        out = []
        for i in range(n):
            mix.i = i
            out.append(mix(dict(handed[i])))  # its transform replaces the dict's instances
        return out
    return run, handed


def agreement(theirs, handed, images, targets, params, op):
    """On how many images ultralytics' output (theirs, from ultralytics_mix) is cutmix_ext's, of how
    many compared, and how many its CutMix skipped. Left out: samples paired with themselves, a
    case each library treats its own way. CutMix (min_visibility 0.1): the image, and the
    partner's boxes and classes it adds after the own ones it was handed; MixUp: pixels within 1,
    and every box and class."""
    tagged = [dict(t, origin=torch.full_like(t["labels"], i)) for i, t in enumerate(targets)]
    fn = D.cutmix_ if op == "cutmix" else D.mixup_
    vis = dict(min_visibility=0.1) if op == "cutmix" else {}
    ours, new = fn(images.clone(), tagged, params=params, per_box=("origin",), **vis)
    ours = ours.cpu()
    tol = 2 * torch.finfo(torch.float32).eps * max(images.shape[-2:])  # coordinates shifted and back
    agreed = compared = skipped = 0
    for i, (j, t, o) in enumerate(zip(params.perm.tolist(), theirs, new)):
        if i == j:
            continue
        img = torch.from_numpy(t["img"]).permute(2, 0, 1)
        boxes, cls = torch.from_numpy(t["instances"].bboxes), torch.from_numpy(t["cls"][:, 0]).long()
        want_boxes, want_cls = o["boxes"].cpu(), o["labels"].cpu()
        if op == "cutmix":
            k, partner = len(handed[i]["cls"]), o["origin"].cpu() == j
            boxes, cls, want_boxes, want_cls = boxes[k:], cls[k:], want_boxes[partner], want_cls[partner]
            if len(boxes) == 0 and len(want_boxes) == 0:
                skipped += 1
                continue
            same = torch.equal(img, ours[i])
        else:
            same = (img.int() - ours[i].int()).abs().max() <= 1
        compared += 1
        agreed += bool(same and boxes.shape == want_boxes.shape and torch.equal(cls, want_cls) and
                       torch.allclose(boxes, want_boxes, rtol=0, atol=tol))
    return agreed, compared, skipped


def floor(images, op, params):
    """The bytes the op must move, as one copy_ between two buffers: CutMix's, as many as the drawn
    patches hold; MixUp's, the batch."""
    if op == "cutmix":
        b = params.boxes
        area = int(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).sum())
        images = images.reshape(-1)[:images.shape[1] * area]
    src, dst = images.clone(), torch.empty_like(images)
    return lambda: dst.copy_(src)


def timed(fns, device, rounds, min_time):
    """Median seconds per call, the functions taking turns in a shuffled order every round."""
    times = {k: [] for k in fns}
    order = random.Random(0)
    names = list(fns)
    spent = 0.0
    r = 0
    while r < rounds or spent < min_time:
        order.shuffle(names)
        for k in names:
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fns[k]()
            if device == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t
            times[k].append(dt)
            spent += dt
        r += 1
        if r >= 50:
            break
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--boxes", type=int, default=20, help="boxes per image, on average")
    ap.add_argument("--rounds", type=int, default=7, help="timing rounds at least")
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds of timing per op at least")
    ap.add_argument("--out", default=None, help="a folder for the markdown table")
    ap.add_argument("--brief", action="store_true", help="the table alone, and where the report is")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    gen = torch.Generator().manual_seed(0)
    n, s = args.batch, args.size
    images, targets = make_batch(n, s, s, args.boxes, args.device, gen)
    flat = flat_of(targets)
    check(images[:8].clone(), targets[:8], args.device)
    m = flat["boxes"].shape[0]
    no_pixels = images[:, :0]

    def rows(op):
        fn = D.cutmix_ if op == "cutmix" else D.mixup_
        loop = loop_cutmix if op == "cutmix" else loop_mixup
        draw = dict(per_sample=True, pairing="random")
        return {
            "cutmix_ext list": lambda: fn(images, targets, **draw),
            "cutmix_ext flat": lambda: fn(images, flat, **draw),
            "images alone (mix_)": lambda: cutmix_ext.mix_(images, None, cutmix_ext.sample_params(images, op, **draw)),
            # the same calls on a batch of no channels: everything but the pixels
            "boxes alone, list": lambda: fn(no_pixels, targets, **draw),
            "boxes alone, flat": lambda: fn(no_pixels, flat, **draw),
            "per-image loop": lambda: loop(images, targets, cutmix_ext.sample_params(images, op, **draw)),
        }

    stamp = datetime.datetime.now(datetime.timezone.utc)
    drawn = ["| op | cutmix_ext list | cutmix_ext flat | images alone | boxes alone, list | "
             "boxes alone, flat | per-image loop | loop / list | loop / flat | "
             "boxes / images, flat | boxes / images, list | loop / images alone |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for op in ("cutmix", "mixup"):
        fns = rows(op)
        for f in fns.values():
            f()
        # the loop's temporaries (hundreds of MB for MixUp) go back to the system and fault in
        # again: timed apart, so that they do not land on the calls timed next to it
        loop = {"per-image loop": fns.pop("per-image loop")}
        t = timed(fns, args.device, args.rounds, args.min_time)
        t.update(timed(loop, args.device, args.rounds, args.min_time))
        lst, fl, img, bl, bf = (t[k] for k in fns)
        lp = t["per-image loop"]
        drawn.append(f"| {'CutMix' if op == 'cutmix' else 'MixUp'} | {lst * 1e3:.2f} | {fl * 1e3:.2f} | "
                     f"{img * 1e3:.2f} | {bl * 1e3:.2f} | {bf * 1e3:.2f} | {lp * 1e3:.2f} | "
                     f"{lp / lst:.1f}x | {lp / fl:.1f}x | {bf / img:.0%} | {bl / img:.0%} | "
                     f"{lp / img:.1f}x |")

    augment = ultralytics_augment() if args.device == "cpu" else None
    absent = None if augment else "not installed" if args.device == "cpu" else "CPU only"
    same = ["| op | row | ms per call | / list | / flat | % of floor |", "|---|---|---:|---:|---:|---:|"]
    agreed = []
    for op in ("cutmix", "mixup"):
        name = "CutMix" if op == "cutmix" else "MixUp"
        fn, loop = (D.cutmix_, loop_cutmix) if op == "cutmix" else (D.mixup_, loop_mixup)
        vis = dict(min_visibility=0.1) if op == "cutmix" else {}
        p = cutmix_ext.sample_params(images, op, per_sample=True, pairing="random", generator=gen)
        fns = {"floor": floor(images, op, p),
               "cutmix_ext list": lambda: fn(images, targets, params=p, **vis),
               "cutmix_ext flat": lambda: fn(images, flat, params=p, **vis)}
        apart = {"per-image loop": lambda: loop(images, targets, p, **vis)}
        if augment:
            run, handed = ultralytics_mix(augment, op, images, targets, p)
            ok, compared, skipped = agreement(run(), handed, images, targets, p, op)
            selfs = int((p.perm.cpu() == torch.arange(n)).sum())
            notes = [f"{k} {why}" for k, why in (
                (skipped, "skipped by its rule, no partner box having 10% of its area under the patch: "
                          "no copy for them in its time"),
                (selfs, "paired with itself, left out")) if k]
            agreed.append(f"{name} on {ok} of {compared} images" + (f" ({'; '.join(notes)})" if notes else ""))
            apart = {f"ultralytics {name}": run, **apart}
        for f in fns.values():
            f()
        t = timed(fns, args.device, args.rounds, args.min_time)
        for k, f in apart.items():  # their temporaries, as the loop's above
            f()
            t.update(timed({k: f}, args.device, args.rounds, args.min_time))
        for k in ("floor", "cutmix_ext list", "cutmix_ext flat", f"ultralytics {name}", "per-image loop"):
            if k not in t:
                same.append(f"| {name} | {k} | {absent} | — | — | — |")
                continue
            ratios = [f"{t[k] / t[f'cutmix_ext {form}']:.1f}x" if k in apart else "" for form in ("list", "flat")]
            share = t["floor"] / t[k]
            label = ("patch" if op == "cutmix" else "batch") + " copy_ (floor)" if k == "floor" else k
            same.append(f"| {name} | {label} | {t[k] * 1e3:.2f} | {' | '.join(ratios)} | "
                        f"{share:.{0 if share >= 0.095 else 1}%} |")

    agree = ("ultralytics, handed the same draw, gave cutmix_ext's output for " + "; ".join(agreed) + "."
             if agreed else "")
    hint = {"not installed": f"ultralytics not installed, so not compared; to include it: {sys.executable} "
                             f"{ULTRALYTICS_PIP}, and run again.",
            "CPU only": "ultralytics not compared on CUDA: its transforms work on NumPy arrays."}.get(absent, "")
    lines = [f"# Detection batches: {n}x3x{s}x{s} uint8, {m} boxes ({m / n:.1f} per image), {args.device}", "",
             f"{stamp:%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
             f"{torch.get_num_threads()} threads, torch {torch.__version__}, cutmix_ext "
             f"{cutmix_ext.__version__}. `python -m benchmarks.detection"
             f"{' --device cuda' if args.device == 'cuda' else ''}`. Median ms per call, "
             f"per-sample boxes and random partners, drawn in every call.", "", *drawn, "",
             "Target: the boxes under 20% of the images' time in the flat form.", "",
             "## One draw: against ultralytics and the floors", "",
             "The same patches, partners and lam in every row and call; cutmix_ext and the loop at "
             "min_visibility 0.1, ultralytics' threshold. / list, / flat: the row's time over "
             "cutmix_ext's. % of floor: the floor's time over the row's; the floor is one copy_ of the "
             "bytes the op must move (CutMix: as many as the drawn patches hold; MixUp: the batch).", "",
             *same, *(["", agree] if agree else []), *(["", hint] if hint else [])]
    text = "\n".join(lines)
    path = None
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, f"detection-{args.device}-{stamp:%Y-%m-%d}.md")
        with open(path, "w") as f:
            f.write(text + "\n")
    if args.brief:
        print(f"detection batches ({args.device}, {n}x3x{s}x{s} uint8, {m / n:.1f} boxes per image), ms per call:")
        print("\n".join(drawn + ["", "one draw for every row, min_visibility 0.1:"] + same +
                        [x for note in (agree, hint) if note for x in ("", note)]))
    else:
        print(text)
    if path:
        print(f"{'full report' if args.brief else 'written to'}: {path}")


if __name__ == "__main__":
    main()
