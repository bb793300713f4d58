"""Detection batches: cutmix_ext.detection against the per-image loop a user writes today.

    python -m benchmarks.detection                    # 64x3x640x640 uint8, ~20 boxes per image
    python -m benchmarks.detection --device cuda --out benchmarks/results

The loop is the plain-torch form of ultralytics' per-image rule, on a batch: for each image, its
partner's patch (copied out first, since the partner is mixed too), its own boxes kept when
enough stays visible and shrunk where the patch covers a whole side, the partner's boxes cut to
the patch; for MixUp the blend and both images' boxes. It is checked to give our output first.
Besides the ratios, the table gives what the boxes cost: the same detection calls on a batch of
no channels (everything but the pixels), as a share of the same draw applied to the images
alone (`cutmix_ext.mix_`); and loop / images alone, the most any bookkeeping of the boxes could
give against the loop (the pixels are the same work done once, not twice)."""
import argparse
import datetime
import os
import platform
import random
import statistics
import time

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

    lines = []
    stamp = datetime.datetime.now(datetime.timezone.utc)
    lines.append(f"# Detection batches: {n}x3x{s}x{s} uint8, {m} boxes ({m / n:.1f} per image), "
                 f"{args.device}")
    lines.append("")
    lines.append(f"{stamp:%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
                 f"{torch.get_num_threads()} threads, torch {torch.__version__}, cutmix_ext "
                 f"{cutmix_ext.__version__}. `python -m benchmarks.detection"
                 f"{' --device cuda' if args.device == 'cuda' else ''}`. Median ms per call, "
                 f"per-sample boxes and random partners, drawn in every call.")
    lines.append("")
    lines.append("| op | cutmix_ext list | cutmix_ext flat | images alone | boxes alone, list | "
                 "boxes alone, flat | per-image loop | loop / list | loop / flat | "
                 "boxes / images, flat | boxes / images, list | loop / images alone |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
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
        lines.append(f"| {'CutMix' if op == 'cutmix' else 'MixUp'} | {lst * 1e3:.2f} | {fl * 1e3:.2f} | "
                     f"{img * 1e3:.2f} | {bl * 1e3:.2f} | {bf * 1e3:.2f} | {lp * 1e3:.2f} | "
                     f"{lp / lst:.1f}x | {lp / fl:.1f}x | {bf / img:.0%} | {bl / img:.0%} | "
                     f"{lp / img:.1f}x |")
    lines.append("")
    lines.append("Targets: ≥ 10x the loop; the boxes under 20% of the images' time in the flat form.")
    text = "\n".join(lines)
    path = None
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, f"detection-{args.device}-{stamp:%Y-%m-%d}.md")
        with open(path, "w") as f:
            f.write(text + "\n")
    if args.brief:
        print(f"detection batches ({args.device}, {n}x3x{s}x{s} uint8, {m / n:.1f} boxes per image), ms per call:")
        print("\n".join(lines[4:-2]))
    else:
        print(text)
    if path:
        print(f"{'full report' if args.brief else 'written to'}: {path}")


if __name__ == "__main__":
    main()
