"""What this build of cutmix_ext contains, and whether it mixes right on this machine:

    python -m cutmix_ext.check

It prints the build (the torch it was built for, its CUDA kernels and architectures), then on
the CPU and on every CUDA device runs cutmix_ and mixup_ (one box and lam for the batch, and per
sample; uint8, bfloat16 and float32; NCHW and channels_last) and compares each result bit for
bit with the pure-PyTorch reference and, on a GPU, with the CPU backend. Each case prints the
rate at which the call moved the bytes it must move (CutMix: the patches, read and written;
MixUp: the batch, read and written) next to the rate of a plain copy of as many bytes on the
same device. Exit status 1 when a result differs. About 10-30 seconds.
"""
import argparse
import os
import statistics
import sys
import time

import torch

import cutmix_ext
from cutmix_ext import _library
from cutmix_ext.reference import cutmix_reference, mixup_reference

K = 1000
DTYPES = [torch.uint8, torch.bfloat16, torch.float32]
LAYOUTS = {"NCHW": torch.contiguous_format, "channels_last": torch.channels_last}
SHAPES = {"cpu": (32, 3, 128, 128), "cuda": (128, 3, 224, 224)}


def arch_support(device):
    """How the build runs on a GPU: its own code for the architecture, PTX compiled at load
    time, or not at all."""
    major, minor = torch.cuda.get_device_capability(device)
    archs = [a.strip() for a in cutmix_ext.CUDA_ARCHS.replace(",", ";").split(";") if a.strip()]
    here = f"{major}.{minor}"
    if any(a.split("+")[0] == here for a in archs):
        return f"sm_{major}{minor}, built for it"
    ptx = [a.split("+")[0] for a in archs if a.endswith("+PTX")]
    if any(tuple(map(int, p.split("."))) <= (major, minor) for p in ptx):
        return f"sm_{major}{minor}, from PTX compiled when loaded (not built for it)"
    return f"sm_{major}{minor}: NOT SUPPORTED by this build ({cutmix_ext.CUDA_ARCHS})"


def report_build():
    print(f"cutmix_ext {cutmix_ext.__version__}: built for torch {_library._C.TORCH_VERSION} "
          f"(installed: {torch.__version__}), python {sys.version.split()[0]}")
    if cutmix_ext.WITH_CUDA:
        print(f"CUDA kernels: yes, for {cutmix_ext.CUDA_ARCHS} (torch's CUDA {torch.version.cuda})")
    else:
        print("CUDA kernels: no (a CPU-only build: CUDA tensors are refused)")
    devices = ["cpu"]
    print(f"cpu: {torch.get_num_threads()} threads")
    if torch.cuda.is_available():
        for d in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(d)
            if cutmix_ext.WITH_CUDA:
                print(f"cuda:{d}: {name}, {arch_support(d)}")
                devices.append(f"cuda:{d}")
            else:
                print(f"cuda:{d}: {name}, not checked: rebuild with nvcc (FORCE_CUDA=1) for it")
    return devices


def timed(fn, device, reps):
    """Median seconds of fn over reps calls, after one warm-up call."""
    fn()
    if device == "cpu":
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    return statistics.median(times)


def random_batch(shape, dtype, layout, device, gen):
    if dtype == torch.uint8:
        x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    else:
        x = (torch.randn(shape, generator=gen) * 50).to(dtype)
    return x.to(device).contiguous(memory_format=LAYOUTS[layout])


def bytes_to_move(op, x, params):
    """What the call must read and write: the patches (CutMix) or the batch (MixUp), twice."""
    if op == "mixup":
        return 2 * x.numel() * x.element_size()
    b = params.boxes
    area = int(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).sum())
    return 2 * area * (x.numel() // (x.shape[0] * x.shape[-1] * x.shape[-2])) * x.element_size()


def check_case(device, op, per_sample, dtype, layout, gen, reps):
    """(ok, what it was compared with, GB/s of the call, GB/s of a copy)."""
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    x = random_batch(SHAPES[device.split(":")[0]], dtype, layout, device, gen)
    labels = torch.randint(0, K, (x.shape[0],), generator=gen).to(device)
    params = cutmix_ext.sample_params(x, op, per_sample=per_sample, pairing="random", generator=gen)
    mixed = x.clone()
    _, targets = fn(mixed, labels, K, params=params, label_smoothing=0.1)
    if op == "cutmix":
        want, want_t, _ = cutmix_reference(x.cpu(), labels.cpu(), params.perm, params.boxes, K, 0.1)
    else:
        want, want_t = mixup_reference(x.cpu(), labels.cpu(), params.perm, params.lam, K, 0.1)
    ok = torch.equal(mixed.cpu(), want) and torch.equal(targets.cpu(), want_t)
    ok = ok and mixed.stride() == x.stride()
    compared = "reference"
    if device != "cpu":
        on_cpu = x.cpu()
        _, t_cpu = fn(on_cpu, labels.cpu(), K, params=params, label_smoothing=0.1)
        ok = ok and torch.equal(mixed.cpu(), on_cpu) and torch.equal(targets.cpu(), t_cpu)
        compared = "CPU backend, reference"

    moved = bytes_to_move(op, x, params)
    seconds = timed(lambda: fn(mixed, labels, K, params=params), device, reps)
    src = torch.empty(max(moved // 2, 1), dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    copy_seconds = timed(lambda: dst.copy_(src), device, reps)
    return ok, compared, moved / seconds / 1e9, moved / copy_seconds / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=10, help="timed calls per case (median)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    devices = report_build()
    gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
    print(f"\n{'device':<7} {'op':<7} {'params':<11} {'dtype':<9} {'layout':<14} {'result':<34} "
          f"{'GB/s':>7} {'copy GB/s':>10}")
    bad = 0
    for device in devices:
        shape = "x".join(map(str, SHAPES[device.split(":")[0]]))
        print(f"{device}: batches of {shape}, K = {K}")
        for op in ("cutmix", "mixup"):
            for per_sample in (False, True):
                for dtype in DTYPES:
                    for layout in LAYOUTS:
                        try:
                            ok, compared, rate, copy_rate = check_case(device, op, per_sample, dtype, layout,
                                                                       gen, args.reps)
                            result = f"{'equal to' if ok else 'DIFFERS from'} {compared}"
                            line = f"{rate:7.1f} {copy_rate:10.1f}"
                        except Exception as e:  # reported, and counted as a failure
                            ok, result, line = False, f"ERROR {type(e).__name__}: {e}"[:120], ""
                        bad += not ok
                        print(f"{device:<7} {op:<7} {'per-sample' if per_sample else 'batch':<11} "
                              f"{str(dtype).replace('torch.', ''):<9} {layout:<14} {result:<34} {line}",
                              flush=True)
    total = 2 * 2 * len(DTYPES) * len(LAYOUTS) * len(devices)
    verdict = "all bit for bit" if not bad else f"{bad} of {total} FAILED"
    print(f"\n{total} cases on {', '.join(devices)}: {verdict} ({time.monotonic() - start:.1f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
