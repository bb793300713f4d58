"""cutmix_ext against torchvision.transforms.v2 CutMix/MixUp and the copy-bandwidth floor, measured
side by side in one run, on the CPU and on CUDA when there is one.

Columns:
  ours       median µs of a whole call as users make it (sampling included), torchvision likewise,
             calls back to back, the two taking turns;
  speed-up   torchvision / ours;
  fixed      median µs of our call replaying a box of half the image (no sampling);
  floor      bytes that must move / copy bandwidth: 2 x patch bytes (CutMix) or 2 x batch bytes
             (MixUp), the bandwidth from a full-batch `copy_` timed like `fixed`, in turn with it;
  % floor    floor / fixed (100% = as fast as memory allows);
  from       where `fixed` and `copy_` find the batch: batches of 4 MiB or more are timed one
             call at a time after a cache flush (DRAM), as they arrive in a training loop; smaller
             ones back to back (cache).

Feature-map section (CutMix/MixUp of activations inside a model, with their gradient): the
out-of-place ops and the in-place one on an activation against the same mixing written in plain
torch as it is commonly written (timm's one box and flip, a mask for per-sample boxes), at the
spec's 64x256x56x56 bfloat16; on the CPU at a smaller batch (FEATURE_CPU_BATCH, see there).
Results are checked against the torch version before timing. Columns:
  torch, ours    median µs of the forward alone (graph recorded, as in training) or of
                 forward + backward with a fixed upstream gradient, taking turns, from DRAM or
                 cache by the rule of `from` above;
  torch / ours   the speed-up;
  floor          bytes that must move / copy bandwidth (a `copy_` of the feature map timed in turn
                 with them): out of place 2 x map bytes forward (read x, write out), 4 x with the
                 backward (read the gradient, write x's); in place on an activation the producing
                 layer's 2 x map bytes (a clone stands in for it) plus 2 x patch bytes, and 2 x
                 map bytes more for the backward. Allocating outputs is not in it: on the CPU,
                 outputs above glibc's mmap threshold (32 MiB at most) arrive as fresh pages
                 each call, and faulting them in costs more than the copy (--feature-batch 64);
  % floor        floor / ours.

    python benchmarks/bench.py                   # CPU, and CUDA if present
    python benchmarks/bench.py --quick           # fewer repetitions
    python benchmarks/bench.py --features-only   # only the feature-map forward+backward section
    python benchmarks/bench.py --features-only --feature-batch 64   # the spec's size on the CPU too
"""
import argparse
import datetime
import math
import platform
import statistics
import sys
import time

import torch

import cutmix_ext
from cutmix_ext.reference import mixup_reference

try:
    from torchvision.transforms import v2
except ImportError:  # the table then leaves the torchvision columns empty
    v2 = None

CASES = [
    ((8, 3, 8, 8), torch.float32),
    ((128, 3, 32, 32), torch.float32),
    ((128, 3, 32, 32), torch.uint8),
    ((64, 3, 224, 224), torch.float32),
    ((64, 3, 224, 224), torch.uint8),
    ((256, 3, 224, 224), torch.uint8),
    ((32, 256, 14, 14), torch.float32),
]
K = 1000
# Batches this large are timed with flushed caches: in a training loop they stream from DRAM.
DRAM_BYTES = 4 << 20
# A ResNet-50 stage-1 activation, the spec's workload for feature-level mixing.
FEATURE_SHAPE = (64, 256, 56, 56)
FEATURE_DTYPE = torch.bfloat16
# At N = 64 one torch forward + backward on the CPU takes 0.4 to 0.7 s on a 2-core machine, so
# the section alone would take minutes; N = 16 (26 MB, still most of a 32 MiB L3 and timed with
# flushed caches) keeps it under half a minute. CUDA keeps the spec's size.
FEATURE_CPU_BATCH = 16


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def calibrate(fn, device, budget_s):
    """Calls per timed sample, so that one sample lasts about budget_s."""
    fn()
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return max(1, min(10000, int(budget_s / max(time.perf_counter() - t, 1e-7))))


def median_us(fns, device, samples, budget_s=0.01):
    """Median µs per call of each function. The functions take turns within every round, so a
    slow spell of a shared machine hits all of them alike and their ratios stay fair."""
    inner = {name: calibrate(fn, device, budget_s) for name, fn in fns.items()}
    times = {name: [] for name in fns}
    for _ in range(samples):
        for name, fn in fns.items():
            sync(device)
            t = time.perf_counter()
            for _ in range(inner[name]):
                fn()
            sync(device)
            times[name].append((time.perf_counter() - t) / inner[name])
    return {name: statistics.median(ts) * 1e6 for name, ts in times.items()}


def cold_us(fns, device, samples):
    """Median µs of single calls that each start with caches flushed (a 256 MiB write first), so
    the copy reference and the fixed-box calls both move their bytes through DRAM."""
    scratch = torch.empty(64 << 20, dtype=torch.float32, device=device)
    times = {name: [] for name in fns}
    for i in range(samples):
        for name, fn in fns.items():
            scratch.fill_(i)
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) * 1e6 for name, ts in times.items()}


def half_box(h, w):
    """A centred box of about half the image: the fixed workload compared with the floor."""
    bh, bw = max(1, round(h / math.sqrt(2))), max(1, round(w / math.sqrt(2)))
    y1, x1 = (h - bh) // 2, (w - bw) // 2
    return x1, y1, x1 + bw, y1 + bh


def torchvision_fn(op, images, labels):
    if v2 is None or (op == "mixup" and images.dtype == torch.uint8):
        return None  # torchvision's MixUp refuses uint8
    t = (v2.CutMix if op == "cutmix" else v2.MixUp)(num_classes=K)
    return lambda: t(images, labels)


def run_case(shape, dtype, device, samples):
    n, h, w = shape[0], shape[-2], shape[-1]
    gen = torch.Generator().manual_seed(0)
    if dtype == torch.uint8:
        images = torch.randint(0, 256, shape, dtype=dtype, generator=gen)
    else:
        images = torch.randn(shape, generator=gen).to(dtype)
    images = images.to(device)
    labels = torch.randint(0, K, (n,), generator=gen).to(device)
    batch_bytes = images.numel() * images.element_size()
    dst = torch.empty_like(images)
    x1, y1, x2, y2 = half_box(h, w)
    patch_bytes = batch_bytes * (x2 - x1) * (y2 - y1) // (h * w)
    perm = torch.arange(n).roll(1)
    fixed_cutmix = cutmix_ext.MixParams(perm, torch.tensor([[x1, y1, x2, y2]] * n),
                                        torch.full((n,), 0.5, dtype=torch.float64))
    fixed_mixup = cutmix_ext.MixParams(perm, None, torch.full((n,), 0.3, dtype=torch.float64))
    reference = {
        "copy": lambda: dst.copy_(images),
        "cutmix_fixed": lambda: cutmix_ext.cutmix_(images, labels, K, params=fixed_cutmix),
        "mixup_fixed": lambda: cutmix_ext.mixup_(images, labels, K, params=fixed_mixup),
    }
    dram = batch_bytes >= DRAM_BYTES
    us = cold_us(reference, device, samples * 2) if dram else median_us(reference, device, samples)
    fns = {
        "cutmix": lambda: cutmix_ext.cutmix_(images, labels, K),
        "mixup": lambda: cutmix_ext.mixup_(images, labels, K),
    }
    for op in ["cutmix", "mixup"]:
        tv = torchvision_fn(op, images, labels)
        if tv is not None:
            fns["tv_" + op] = tv
    us.update(median_us(fns, device, samples))
    bandwidth = 2 * batch_bytes / (us["copy"] * 1e-6)  # bytes read + written per second
    rows = []
    for op, moved in [("cutmix", 2 * patch_bytes), ("mixup", 2 * batch_bytes)]:
        rows.append(dict(case="x".join(map(str, shape)), dtype=str(dtype).replace("torch.", ""),
                         op=op, ours=us[op], tv=us.get("tv_" + op), fixed=us[op + "_fixed"],
                         floor=moved / bandwidth * 1e6, copy=us["copy"], gbps=bandwidth / 1e9,
                         memory="DRAM" if dram else "cache"))
    return rows


def fmt(v, spec="{:.1f}"):
    return "n/a" if v is None else spec.format(v)


def table(rows):
    lines = ["| batch | dtype | op | ours µs | torchvision µs | speed-up | fixed µs | floor µs | % floor | copy_ µs (GB/s) | from |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        speed = None if r["tv"] is None else r["tv"] / r["ours"]
        lines.append(f"| {r['case']} | {r['dtype']} | {r['op']} | {fmt(r['ours'])} | {fmt(r['tv'])} | "
                     f"{fmt(speed, '{:.1f}x')} | {fmt(r['fixed'])} | {fmt(r['floor'])} | "
                     f"{fmt(100 * r['floor'] / r['fixed'], '{:.0f}%')} | {fmt(r['copy'])} ({r['gbps']:.1f}) | {r['memory']} |")
    return "\n".join(lines)


def box_mask(boxes, h, w):
    """(N, 1, H, W) bool, True inside each sample's box: how per-sample boxes are pasted with
    torch.where in mask-based code such as kornia's."""
    ys = torch.arange(h, device=boxes.device).view(1, h, 1)
    xs = torch.arange(w, device=boxes.device).view(1, 1, w)
    b = boxes.view(-1, 4, 1, 1)
    return ((ys >= b[:, 1]) & (ys < b[:, 3]) & (xs >= b[:, 0]) & (xs < b[:, 2])).unsqueeze(1)


def feature_case(device, samples, batch):
    """Feature-level CutMix/MixUp, forward and forward + backward, cutmix_ext against plain torch.
    Parameters are drawn once and replayed by both sides: sampling is the same negligible cost
    for either and is timed in the main table."""
    shape = (batch,) + FEATURE_SHAPE[1:]
    n, h, w = batch, shape[-2], shape[-1]
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(shape, generator=gen).to(device, FEATURE_DTYPE)
    grad = torch.randn(shape, generator=gen).to(device, FEATURE_DTYPE)
    labels = torch.randint(0, K, (n,), generator=gen).to(device)
    map_bytes = base.numel() * base.element_size()
    dst = torch.empty_like(base)

    # its own seed, so that the boxes do not change with the batch size
    draw = torch.Generator().manual_seed(1)
    one = cutmix_ext.sample_params(shape, "cutmix", pairing="flip", generator=draw)
    x1, y1, x2, y2 = one.boxes[0].tolist()
    each = cutmix_ext.sample_params(shape, "cutmix", pairing="random", per_sample=True, generator=draw)
    # torch code would draw these on the device, so their copy there stays out of its time;
    # cutmix_ext takes its parameters on the CPU, as users pass them
    each_perm, each_boxes = each.perm.to(device), each.boxes.to(device)
    mix = cutmix_ext.sample_params(shape, "mixup", pairing="flip", generator=draw)
    lam = float(mix.lam[0])

    def tv_cutmix(x):
        out = x.clone()
        out[:, :, y1:y2, x1:x2] = x.flip(0)[:, :, y1:y2, x1:x2]
        return out

    def tv_cutmix_(x):
        h_ = x.clone()  # the layer that produced the activation
        h_[:, :, y1:y2, x1:x2] = h_.flip(0)[:, :, y1:y2, x1:x2]
        return h_

    def ours_cutmix_(x):
        h_ = x.clone()
        cutmix_ext.cutmix_(h_, labels, K, params=one)
        return h_

    patch_bytes = map_bytes * (x2 - x1) * (y2 - y1) // (h * w)
    # op: (torch form, cutmix_ext form, bytes forward, bytes forward + backward)
    one_box = f"one box ({100 * (1 - float(one.lam[0])):.0f}% of the map), flip"
    per_sample = f"box per sample ({100 * (1 - float(each.lam.mean())):.0f}% on average), random"
    ops = {
        f"cutmix, {one_box}": (
            tv_cutmix, lambda x: cutmix_ext.cutmix(x, one), 2 * map_bytes, 4 * map_bytes),
        f"cutmix, {per_sample}": (
            lambda x: torch.where(box_mask(each_boxes, h, w), x[each_perm], x),
            lambda x: cutmix_ext.cutmix(x, each), 2 * map_bytes, 4 * map_bytes),
        f"cutmix_ in place, {one_box}": (
            tv_cutmix_, ours_cutmix_, 2 * map_bytes + 2 * patch_bytes, 4 * map_bytes + 2 * patch_bytes),
        f"mixup (lam {lam:.2f}), flip": (
            lambda x: lam * x + (1 - lam) * x.flip(0), lambda x: cutmix_ext.mixup(x, mix),
            2 * map_bytes, 4 * map_bytes),
    }

    def forward(fn):
        return lambda: fn(base.detach().requires_grad_())

    def step(fn):
        def run():
            x = base.detach().requires_grad_()
            fn(x).backward(grad)
            return x.grad
        return run

    def check(op, tv, ours):
        x_t, x_o = base.detach().requires_grad_(), base.detach().requires_grad_()
        out_t, out_o = tv(x_t), ours(x_o)
        out_t.backward(grad)
        out_o.backward(grad)
        out_t, out_o, g_t, g_o = out_t.detach(), out_o.detach(), x_t.grad, x_o.grad
        assert out_o.dtype == FEATURE_DTYPE and g_o.dtype == FEATURE_DTYPE, op
        if op.startswith("cutmix"):
            assert torch.equal(out_o, out_t), f"{op}: output differs from torch"
            assert torch.equal(g_o, g_t), f"{op}: gradient differs from torch"
            return
        # torch rounds lam * x, (1 - lam) * x' and their sum to bf16; ours rounds once from float32
        want = mixup_reference(base, labels.cpu(), mix.perm, mix.lam, K)[0]
        assert torch.equal(out_o, want), f"{op}: output is not the float32 mix rounded once"
        # so the two agree to within three bf16 roundings of the terms: out[i] mixes x[i] and
        # x[perm[i]], x.grad[i] mixes grad[i] and grad[j] for the j with perm[j] = i
        perm = mix.perm.to(device)
        inv = torch.argsort(perm)
        for got, ref, t, partner in [(out_o, out_t, base, perm), (g_o, g_t, grad, inv)]:
            bound = 2.0 ** -7 * (t.float().abs() + t[partner].float().abs())
            assert bool(((got.float() - ref.float()).abs() <= bound).all()), f"{op}: differs from torch"

    rows = []
    dram = map_bytes >= DRAM_BYTES
    for op, (tv, ours, fwd_bytes, step_bytes) in ops.items():
        check(op, tv, ours)
        fns = {"copy": lambda: dst.copy_(base), "tv_fwd": forward(tv), "ours_fwd": forward(ours),
               "tv_step": step(tv), "ours_step": step(ours)}
        us = cold_us(fns, device, samples) if dram else median_us(fns, device, samples)
        bandwidth = 2 * map_bytes / (us["copy"] * 1e-6)
        for kind, moved in [("fwd", fwd_bytes), ("step", step_bytes)]:
            rows.append(dict(case="x".join(map(str, shape)), dtype=str(FEATURE_DTYPE).replace("torch.", ""),
                             op=op, pass_="forward" if kind == "fwd" else "forward+backward",
                             tv=us["tv_" + kind], ours=us["ours_" + kind], floor=moved / bandwidth * 1e6,
                             copy=us["copy"], gbps=bandwidth / 1e9, memory="DRAM" if dram else "cache"))
    return rows


def feature_table(rows):
    lines = ["| feature map | dtype | op | pass | torch µs | ours µs | torch / ours | floor µs | % floor | copy_ µs (GB/s) | from |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['dtype']} | {r['op']} | {r['pass_']} | {fmt(r['tv'])} | "
                     f"{fmt(r['ours'])} | {fmt(r['tv'] / r['ours'], '{:.2f}x')} | {fmt(r['floor'])} | "
                     f"{fmt(100 * r['floor'] / r['ours'], '{:.0f}%')} | {fmt(r['copy'])} ({r['gbps']:.1f}) | "
                     f"{r['memory']} |")
    return "\n".join(lines)


def cuda_checks():
    """One launch per call and no device memory beyond the targets, as the profiler and the
    allocator see them."""
    from torch.profiler import ProfilerActivity, profile

    images = torch.randn(256, 3, 224, 224, device="cuda")
    labels = torch.randint(0, K, (256,), device="cuda")
    out = []
    for name, fn in [("cutmix_", cutmix_ext.cutmix_), ("mixup_", cutmix_ext.mixup_)]:
        for per_sample in [False, True]:
            fn(images, labels, K, per_sample=per_sample, pairing="random" if per_sample else "roll")
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                _, targets = fn(images, labels, K, per_sample=per_sample,
                                pairing="random" if per_sample else "roll")
                torch.cuda.synchronize()
            kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
            extra = torch.cuda.max_memory_allocated() - base - targets.numel() * 4
            out.append(f"- {name} per_sample={per_sample}: {len(kernels)} device activities "
                       f"({', '.join(sorted({e.name[:40] for e in kernels}))}); "
                       f"peak device memory beyond the targets: {max(extra, 0)} bytes")
            del targets
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--features-only", action="store_true",
                        help="only the feature-map forward+backward section")
    parser.add_argument("--feature-batch", type=int, default=None,
                        help=f"batch of the feature map (default {FEATURE_SHAPE[0]}, "
                             f"{FEATURE_CPU_BATCH} on the CPU)")
    args = parser.parse_args()
    samples = 5 if args.quick else 15
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]

    print(f"# cutmix_ext benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(f"torch {torch.__version__}, torchvision {getattr(sys.modules.get('torchvision'), '__version__', 'absent')}, "
          f"python {platform.python_version()}, cutmix_ext {cutmix_ext.__version__} "
          f"(CUDA kernels: {'yes, ' + cutmix_ext.CUDA_ARCHS if cutmix_ext.WITH_CUDA else 'no'})")
    for device in devices:
        if device == "cpu":
            name = platform.processor() or platform.machine()
            print(f"\n## CPU: {name}, {torch.get_num_threads()} threads, K = {K} classes\n")
        else:
            print(f"\n## CUDA: {torch.cuda.get_device_name()}, K = {K} classes\n")
        if not args.features_only:
            rows = []
            for shape, dtype in CASES:
                rows += run_case(shape, dtype, device, samples)
            print(table(rows), flush=True)
            if device == "cuda":
                print("\n" + cuda_checks())
        batch = args.feature_batch or (FEATURE_CPU_BATCH if device == "cpu" else FEATURE_SHAPE[0])
        print(f"\n### Feature-map CutMix/MixUp, forward and backward ({device})\n")
        print(feature_table(feature_case(device, samples, batch)), flush=True)


if __name__ == "__main__":
    main()
