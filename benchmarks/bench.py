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

    python benchmarks/bench.py            # CPU, and CUDA if present
    python benchmarks/bench.py --quick    # fewer repetitions
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
        rows = []
        for shape, dtype in CASES:
            rows += run_case(shape, dtype, device, samples)
        print(table(rows), flush=True)
        if device == "cuda":
            print("\n" + cuda_checks())


if __name__ == "__main__":
    main()
