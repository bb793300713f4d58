"""The kernels' own paths side by side, each group timed in one run with its members taking turns
(benchmarks.run's clock), so that what the design promises reads as a ratio:

    python -m benchmarks.paths --device cuda            # about 30 s on an H200
    python -m benchmarks.paths --device cpu --scale 0.05

- widths: uint8 MixUp and CutMix at 224 wide against 225, 299 and 300 wide (GB/s, goal: at least
  0.9x 224's). Rows 300 wide start off 16-byte boundaries in samples that start on them (moved as
  a head, 16-byte chunks and a tail); 225 and 299 wide samples lie at odd offsets from one another.
- tables: per-sample CutMix (boxes of one size at random places, a random pairing) at N = 960
  (the table inside the launch) against 961 (the table copied to the device), and against one box
  for the batch at N = 256 and 512 (goal: per-sample at least 0.9x the shared box's GB/s).
- batch: the same bytes (64 MiB) in batches of 256, 1024, 2048 and 8192 samples, MixUp's GB/s
  against a plain copy_ of those bytes (goal: at least 85%).
- sampling (CUDA): sampling="device" against parameters drawn on the host, per sample, at alpha
  0.4 and 1.0.

GB/s counts the bytes that must move: MixUp reads each sample and its partner and writes the
sample (3x the batch), CutMix reads the partner's patch and writes its own (2x the patches), a
copy reads and writes (2x). Batches of 4 MiB or more are timed with the caches flushed first.
--scale shrinks every batch (the CPU runs the same groups in seconds). Writes
<out>/<device>-<date>-paths.md and prints it.
"""
import argparse
import datetime
import math
import os
import sys

import torch

import cutmix_ext

from . import run

K = 1000
GiB = 1 << 30


def cold(nbytes):
    return nbytes >= 4 << 20


def timed(fns, device, clock, args, nbytes):
    """{name: median seconds per call}, the functions taking turns."""
    for fn in fns.values():
        fn()
    run.sync(device)
    times = run.take_turns(fns, device, clock, cold(nbytes), args.min_run_time, args.min_samples)
    return {name: run.median_iqr(t)[0] for name, t in times.items()}


def against_first(group, fns, moved, device, clock, args, goal):
    """The group's rows, each one's GB/s against the first function's (`moved`: bytes each moves)."""
    t = timed(fns, device, clock, args, max(moved.values()))
    ref = next(iter(fns))
    return [row(group, name, t[name], moved[name], t[ref], moved[ref], ref, goal) for name in fns]


def roll(n):
    return torch.arange(n).roll(1)


def mixup_call(x, labels, perm):
    params = cutmix_ext.MixParams(perm, None, torch.rand(x.shape[0], dtype=torch.float64))
    return lambda: cutmix_ext.mixup_(x, labels, K, params=params)


def centred_box(h, w, area=0.5):
    bh, bw = max(1, round(h * math.sqrt(area))), max(1, round(w * math.sqrt(area)))
    y, x = (h - bh) // 2, (w - bw) // 2
    return torch.tensor([x, y, x + bw, y + bh])


def cutmix_call(x, labels, perm, boxes):
    h, w = x.shape[-2:]
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).double()
    params = cutmix_ext.MixParams(perm, boxes, 1 - area / (h * w))
    return lambda: cutmix_ext.cutmix_(x, labels, K, params=params)


def patch_bytes(x, boxes):
    per_pixel = x.element_size() * math.prod(x.shape[1:-2])
    return int(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sum()) * per_pixel


def batch(shape, device, dtype=torch.uint8):
    return torch.randint(0, 256, shape, dtype=dtype, device=device)


def labels_for(n, device):
    return torch.randint(0, K, (n,), device=device)


def scaled(n, args):
    return max(2, round(n * args.scale))


def widths(device, clock, args):
    n = scaled(256, args)
    rows = []
    for op in ("MixUp", "CutMix"):
        fns, moved = {}, {}
        for side in (224, 225, 299, 300):
            x = batch((n, 3, side, side), device)
            labels, perm = labels_for(n, device), roll(n)
            name = f"{op} {n}x3x{side}x{side} uint8"
            if op == "MixUp":
                fns[name], moved[name] = mixup_call(x, labels, perm), 3 * x.numel()
            else:
                boxes = centred_box(side, side).expand(n, 4).contiguous()
                fns[name], moved[name] = cutmix_call(x, labels, perm, boxes), 2 * patch_bytes(x, boxes)
        rows += against_first("widths", fns, moved, device, clock, args, 0.9)
    return rows


def tables(device, clock, args):
    side = max(8, round(112 * math.sqrt(args.scale)))
    bh = bw = round(side / math.sqrt(2))
    g = torch.Generator().manual_seed(0)

    def scattered(n):
        x1 = torch.randint(0, side - bw + 1, (n,), generator=g)
        y1 = torch.randint(0, side - bh + 1, (n,), generator=g)
        return torch.stack((x1, y1, x1 + bw, y1 + bh), 1)

    rows = []
    groups = [((960, "per-sample"), (961, "per-sample")), ((256, "shared"), (256, "per-sample")),
              ((512, "shared"), (512, "per-sample"))]
    for group in groups:
        fns, moved = {}, {}
        for n, kind in group:
            x = batch((n, 3, side, side), device)
            labels = labels_for(n, device)
            if kind == "shared":
                perm, boxes = roll(n), torch.tensor([0, 0, bw, bh]).expand(n, 4).contiguous()
            else:
                perm, boxes = torch.randperm(n, generator=g), scattered(n)
            name = f"CutMix {kind} {n}x3x{side}x{side} uint8"
            fns[name], moved[name] = cutmix_call(x, labels, perm, boxes), 2 * patch_bytes(x, boxes)
        rows += against_first("tables", fns, moved, device, clock, args, 0.9)
    return rows


def batches(device, clock, args):
    total = max(1 << 16, round((64 << 20) * args.scale))
    rows = []
    for n in (256, 1024, 2048, 8192):
        per = max(1, total // n)
        w = 1 << max(0, (per.bit_length() - 1) // 2)
        h = max(1, per // w)
        x = batch((n, 1, h, w), device)
        src, dst = batch((x.numel(),), device), batch((x.numel(),), device)
        name = f"MixUp {n}x1x{h}x{w} uint8"
        fns = {name: mixup_call(x, labels_for(n, device), roll(n)), "copy_": lambda: dst.copy_(src)}
        t = timed(fns, device, clock, args, x.numel())
        rows.append(row("batch", "copy_ of the same bytes", t["copy_"], 2 * x.numel(), t["copy_"],
                        2 * x.numel(), "copy_", None))
        rows.append(row("batch", name, t[name], 3 * x.numel(), t["copy_"], 2 * x.numel(), "copy_", 0.85))
    return rows


def sampling(device, clock, args):
    if device != "cuda":
        return [("sampling", 'sampling="device" needs CUDA', None, None, None, "", None)]
    n = scaled(256, args)
    x = batch((n, 3, 224, 224), device)
    labels = labels_for(n, device)
    rows = []
    for op, fn in (("CutMix", cutmix_ext.cutmix_), ("MixUp", cutmix_ext.mixup_)):
        for alpha in (0.4, 1.0):
            fns = {f"{op} host sampling, alpha {alpha}":
                   lambda fn=fn, a=alpha: fn(x, labels, K, alpha=a, per_sample=True, pairing="random"),
                   f"{op} device sampling, alpha {alpha}":
                   lambda fn=fn, a=alpha: fn(x, labels, K, alpha=a, per_sample=True, pairing="random",
                                             sampling="device")}
            t = timed(fns, device, clock, args, x.numel())
            host, dev = fns
            rows.append(("sampling", host, t[host], None, None, "", None))
            rows.append(("sampling", dev, t[dev], None, t[host] / t[dev], host, None))
    return rows


def row(group, name, seconds, moved, ref_seconds, ref_moved, ref, goal):
    """(group, case, seconds, GB/s, GB/s as a fraction of the reference's, reference, goal)."""
    gbs = moved / seconds / 1e9
    return (group, name, seconds, gbs, gbs / (ref_moved / ref_seconds / 1e9), ref, goal)


def markdown(rows, info):
    out = [f"# cutmix_ext kernel paths on {info['device']}, {info['date']}", "",
           f"torch {torch.__version__}, cutmix_ext {cutmix_ext.__version__}, Python "
           f"{sys.version.split()[0]}; `python -m benchmarks.paths {info['argv']}`", "",
           "| group | case | time (µs) | GB/s | ratio | against | goal |",
           "|---|---|---:|---:|---:|---|---|"]
    for group, name, seconds, gbs, ratio, ref, goal in rows:
        if seconds is None:
            out.append(f"| {group} | {name} | — | — | — | | |")
            continue
        verdict = "" if goal is None or ratio is None else (  # judged as printed, to 2 decimals
            f"≥ {goal:g}: " + ("met" if round(ratio, 2) >= goal else "**not met**"))
        gb = "" if gbs is None else f"{gbs:,.0f}" if gbs >= 100 else f"{gbs:.3g}"
        ratio_s = "" if ratio is None else f"{ratio:.2f}x"
        out.append(f"| {group} | {name} | {seconds * 1e6:,.1f} | {gb} | {ratio_s} | {ref} | {verdict} |")
    return "\n".join(out) + "\n"


GROUPS = {"widths": widths, "tables": tables, "batch": batches, "sampling": sampling}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--scale", type=float, default=1.0, help="batch sizes and bytes times this")
    parser.add_argument("--groups", default=",".join(GROUPS), help="comma-separated: " + ", ".join(GROUPS))
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--min-samples", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not cutmix_ext.WITH_CUDA:
        parser.error("cutmix_ext was built without its CUDA kernels")
    clock = run.Clock(args.device)
    rows = []
    for g in args.groups.split(","):
        rows += GROUPS[g](args.device, clock, args)
    now = datetime.datetime.now()
    info = {"device": run.device_name(args.device), "date": f"{now:%Y-%m-%d}",
            "argv": " ".join(argv if argv is not None else sys.argv[1:])}
    text = markdown(rows, info)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{args.device}-{now:%Y-%m-%d}-paths.md")
    with open(path, "w") as f:
        f.write(text)
    print(text)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
