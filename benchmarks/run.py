"""cutmix_ext against torchvision, timm, kornia and plain torch, next to the copy-bandwidth floor,
measured side by side in one run on one device.

    python -m benchmarks.run --device cpu            # every case (about 15 minutes on 2 cores)
    python -m benchmarks.run --device cuda
    python -m benchmarks.run --device cpu --quick    # a few cases, fewer samples (about 1 minute)

Writes benchmarks/results/<device>-<date>.md (every row) and .png (the chart), and prints the
markdown (--brief: only the headline, cutmix_ext's time next to each other implementation that
ran and its speed-up over it, and how to install the libraries that are missing).

Timing. The implementations of one case take turns, one sample each per round in a shuffled
order, so that a slow spell of a shared machine hits them alike and their ratios stay fair; each
gets at least --min-samples samples and --min-run-time seconds (at most 40 samples). A call that
takes over 2 s (a per-sample Python loop over a large feature map) is timed once. A sample of a batch under 4 MiB is a block of
back-to-back calls (the batch stays in cache, as it would in a loop over small batches); a larger
batch is timed one call at a time after the caches were flushed by reading a buffer twice their
size (it comes from DRAM in a training loop, and back-to-back calls on a batch the size of the L3
or L2 cache would flatter everyone).
The samples are reduced to median and IQR (linear interpolation, as numpy's quantile). CPU: wall
clock with torch's intra-op threads (all cores), Python's garbage collector off while timing (as
timeit); CUDA: CUDA events on the current stream, warm-up excluded.

Each call draws its own parameters, as in training, except the `fixed box` row, whose patch (a
centred box of half the image) is exactly what `patch copy_` copies. Before timing, cutmix_ext's
result for a case is checked against the pure-PyTorch reference (cutmix_ext.reference).

Floors: `patch copy_` copies the patch's bytes between two buffers (CutMix must read the
partner's patch and write its own); `batch copy_` copies the batch (MixUp reads it and writes
it); forward+backward, two clones of the map (the forward's output and the input's gradient are
new tensors for anyone mixing out of place, so their allocation is in the floor: above glibc's
mmap threshold, fresh pages, which the kernel zeroes). On CUDA also an empty kernel launch, the
least a call can cost.
"""
import argparse
import contextlib
import datetime
import gc
import os
import platform
import random
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Optional

import torch
from torch._C._profiler import _ExperimentalConfig
from torch.autograd import ProfilerConfig, ProfilerState, _disable_profiler_legacy, _enable_profiler_legacy
from torch.profiler import ProfilerActivity, profile, record_function

import cutmix_ext
from cutmix_ext.reference import cutmix_reference, mixup_reference

from . import impls as I
from . import report

K = 1000
LAYOUTS = {"NCHW": torch.contiguous_format, "channels_last": torch.channels_last}
# Batches from this size on are timed one call at a time with flushed caches (see above).
DRAM_BYTES = 4 << 20


@dataclass(frozen=True)
class Case:
    shape: tuple
    dtype: torch.dtype
    layout: str = "NCHW"
    backward: bool = False

    @property
    def name(self):
        return "x".join(map(str, self.shape)) + (" fwd+bwd" if self.backward else "")

    @property
    def label(self):
        return f"{self.name} {str(self.dtype).replace('torch.', '')} {self.layout}"

    @property
    def nbytes(self):
        n = self.dtype.itemsize
        for s in self.shape:
            n *= s
        return n


def cases(device, quick):
    dtypes = [torch.uint8, torch.bfloat16, torch.float32]
    if quick and device == "cuda":  # the cases the GPU targets name
        return [Case((8, 3, 8, 8), torch.float32), Case((128, 3, 32, 32), torch.float32),
                Case((256, 3, 224, 224), torch.float32), Case((1024, 3, 224, 224), torch.bfloat16),
                Case((64, 3, 224, 224), torch.uint8)]
    if quick:
        return [Case((8, 3, 8, 8), torch.float32), Case((128, 3, 32, 32), torch.uint8),
                Case((64, 3, 224, 224), torch.float32), Case((64, 3, 224, 224), torch.uint8),
                Case((127, 3, 32, 32), torch.float32)]
    shapes = [(8, 3, 8, 8), (128, 3, 32, 32), (64, 3, 224, 224), (256, 3, 224, 224), (32, 256, 14, 14)]
    out = [Case(s, d, lay) for s in shapes for d in dtypes for lay in LAYOUTS]
    if device == "cuda":
        out += [Case((1024, 3, 224, 224), torch.bfloat16, lay) for lay in LAYOUTS]
    # feature-level mixing in a model's forward, with its backward: no gradient for uint8
    out += [Case((64, 256, 56, 56), d, lay, backward=True) for d in dtypes[1:] for lay in LAYOUTS]
    # an odd batch, which some implementations refuse
    out.append(Case((127, 3, 32, 32), torch.float32))
    return out


@dataclass
class Row:
    case: Case
    impl: I.Impl
    median: Optional[float] = None  # seconds
    iqr: Optional[float] = None
    samples: int = 0
    peak_bytes: Optional[int] = None  # allocated during one call, its outputs included
    temp_bytes: Optional[int] = None  # of which freed again by the end of the call (CUDA)
    launches: Optional[int] = None  # device activities per call (CUDA)
    note: str = ""


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def no_gc():
    """The garbage collector off while timing, as timeit does: a collection that the timed calls
    happen to trigger is not theirs."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Clock:
    """Times `number` calls of a function: perf_counter on the CPU, CUDA events on CUDA. cold:
    the caches are flushed first, by reading a buffer of twice the last-level cache (a read
    leaves them clean, so a call pays for its own traffic, not for writing back the flush's)."""

    def __init__(self, device):
        self.device = device
        if device == "cuda":
            cache = torch.cuda.get_device_properties(torch.cuda.current_device()).L2_cache_size
            self.events = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        else:
            # The L3 a process can reach is hard to read in a VM (two cores may sit on two
            # 32 MiB slices): 128 MiB covers the usual cases; a 64 MiB read left part of a 10 MB
            # batch in cache here.
            cache = 64 << 20
        self.scratch = torch.ones(2 * cache // 4, dtype=torch.float32, device=device)

    def __call__(self, fn, number=1, cold=False):
        if cold:
            self.scratch.sum()
        with no_gc():
            return self._time(fn, number)

    def _time(self, fn, number):
        if self.device == "cuda":
            start, end = self.events
            start.record()
            for _ in range(number):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        t = time.perf_counter()
        for _ in range(number):
            fn()
        return time.perf_counter() - t


def take_turns(fns, device, clock, cold, min_run_time, min_samples, max_samples=40):
    """Samples of the time per call of each function (each called once already), the functions
    taking turns in an order shuffled every round (see the module's docstring). Returns
    {name: [seconds per call, one per sample]}."""
    number = {}
    for name, fn in fns.items():  # calls per sample
        once = clock(fn)
        number[name] = 1 if cold else int(min(10000, max(1, 2e-3 / max(once, 1e-7))))
    times = {name: [] for name in fns}
    spent = dict.fromkeys(fns, 0.0)
    active = list(fns)
    order = random.Random(0)
    while active:
        order.shuffle(active)
        for name in active:
            t = clock(fns[name], number[name], cold)
            times[name].append(t / number[name])
            spent[name] += t
        active = [n for n in active if len(times[n]) < max_samples and
                  (len(times[n]) < min_samples or spent[n] < min_run_time)]
    return times


def median_iqr(times):
    if len(times) == 1:
        return times[0], 0.0
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return median, q3 - q1


MEASURED = "benchmarks.run: measured call"


def cpu_peak_bytes(fn):
    """Peak bytes allocated by torch's CPU allocator during a call of a fresh fn: the running sum
    of the allocator's records in time order over the second of two calls, so that what the first
    leaves for the second to free (a transform's last_params) has a size the profiler knows. The
    records come from the profiler without kineto, which on a CUDA build of torch logs two lines
    a session, and a failed GPU probe where there is no GPU."""
    config = ProfilerConfig(ProfilerState.CPU, False, True, False, False, False, _ExperimentalConfig())
    with no_gc():  # a collection would free blocks from before the call, of sizes it cannot know
        _enable_profiler_legacy(config)
        try:
            fn()
            with record_function(MEASURED):
                fn()
        finally:
            threads = _disable_profiler_legacy()
    records = [r for t in threads for r in t]
    at = next(r for r in records if r.name() == "__start_profile").cpu_elapsed_us
    enter = next(r for r in records if r.kind() == "push" and r.name() == MEASURED)
    leave = next(r for r in records if r.kind() == "pop" and r.handle() == enter.handle())
    t0, t1 = at(enter), at(leave)
    running = peak = 0
    for r in sorted((r for r in records if r.kind() == "memory_alloc" and t0 <= at(r) <= t1), key=at):
        running += r.cpu_memory_usage()
        peak = max(peak, running)
    return peak


def cuda_peak_bytes(fn):
    """(peak bytes allocated during one call, the part of them freed again before it returned:
    its temporaries; the rest is its outputs, sizes as the caching allocator rounds them)."""
    sync("cuda")
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = fn()
    sync("cuda")
    peak = torch.cuda.max_memory_allocated() - base
    kept = torch.cuda.memory_allocated() - base
    del out
    return peak, peak - kept


def cuda_launches(fn):
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        sync("cuda")
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


def make_batch(case, device):
    if case.dtype == torch.uint8:
        x = torch.randint(0, 256, case.shape, dtype=torch.uint8)
    else:
        x = torch.randn(case.shape).to(case.dtype)
    x = x.to(device).contiguous(memory_format=LAYOUTS[case.layout])
    y = torch.randint(0, K, (case.shape[0],)).to(device)
    return x, y


def failure(e):
    msg = " ".join(str(e).split()) or "(no message)"
    return f"{type(e).__name__}: {msg[:140]}"


def check(case, x, y):
    """cutmix_ext's cutmix_ and mixup_ on this batch against the pure-PyTorch reference, before
    anything is timed: a fast wrong answer must not make it into the table."""
    if case.backward:
        return
    for op, ref in ((cutmix_ext.cutmix_, cutmix_reference), (cutmix_ext.mixup_, mixup_reference)):
        got = x.clone()
        _, targets, p = op(got, y, K, per_sample=True, pairing="random", return_params=True)
        want, want_targets, *_ = ref(x, y, p.perm, p.boxes if p.boxes is not None else p.lam, K)
        if not (torch.equal(got, want) and torch.equal(targets.cpu(), want_targets)):
            raise AssertionError(f"{case.label}: cutmix_ext.{op.__name__} differs from the reference")


def floor_fn(impl, case, x, box):
    if case.backward:  # out of place: the output and the gradient are new tensors, as anyone's
        g = torch.randn_like(x)
        return lambda: (x.clone(), g.clone())
    if impl.op == I.CUTMIX:
        n, c, h, w = x.shape
        src = x.reshape(-1)[:n * c * (box[2] - box[0]) * (box[3] - box[1])].clone()
        dst = torch.empty_like(src)
        return lambda: dst.copy_(src)
    dst = torch.empty_like(x)
    return lambda: dst.copy_(x)


def call_fn(impl, case, x, y, box):
    """The timed call, or None where it does not apply (the drop-ins inside a model)."""
    made = impl.make(x, y, K, box)
    if not case.backward:
        return lambda: made(x, y)
    mix = I.differentiable(impl, made, x, box)
    if mix is None:
        return None
    grad = torch.randn_like(x)

    def step():
        out = mix(x.detach().requires_grad_(), y)
        (out[0] if isinstance(out, (tuple, list)) else out).backward(grad)
    return step


# A call slower than this is timed once (the first call), so that a per-sample Python loop
# over a large feature map does not take the run's time.
SLOW_S = 2.0


def run_case(case, impls, device, clock, args, progress):
    x, y = make_batch(case, device)
    check(case, x, y)
    box = I.half_box(*case.shape[-2:])
    rows, fns = [], {}

    def build(impl):
        return floor_fn(impl, case, x, box) if impl.floor else call_fn(impl, case, x, y, box)

    for impl in impls:
        progress.step(f"{case.label}: {impl.op} {impl.name}")
        if not impl.installed:
            rows.append(Row(case, impl, note=impl.missing))
            continue
        try:
            fn = build(impl)
            if fn is None:
                continue
            first = clock(fn)  # also the warm-up
        except Exception as e:  # recorded in the table: which inputs an implementation refuses
            rows.append(Row(case, impl, note=failure(e)))
            continue
        if first > SLOW_S:
            rows.append(Row(case, impl, median=first, samples=1,
                            note=f"timed once: a call takes over {SLOW_S:.0f} s"))
            continue
        fns[impl] = fn
    if device == "cuda":
        empty = I.Impl("empty kernel launch", "reference", "floor", None, floor=True)
        fns[empty] = lambda: torch.cuda._sleep(0)
        fns[empty]()
    cold = case.nbytes >= DRAM_BYTES
    measured = take_turns(fns, device, clock, cold, args.min_run_time, args.min_samples)
    for impl, fn in fns.items():
        median, iqr = median_iqr(measured[impl])
        row = Row(case, impl, median=median, iqr=iqr, samples=len(measured[impl]))
        if device == "cuda":
            row.peak_bytes, row.temp_bytes = cuda_peak_bytes(fn)
            row.launches = cuda_launches(fn)
        else:
            row.peak_bytes = cpu_peak_bytes(build(impl))
        rows.append(row)
    order = {impl: i for i, impl in enumerate(impls)}
    return sorted(rows, key=lambda r: order.get(r.impl, len(order)))


class Progress:
    """A plain-text progress bar on stderr: redrawn in place on a terminal, a line per case in a
    log."""

    def __init__(self, total):
        self.total, self.done, self.tty = total, 0, sys.stderr.isatty()
        self.last_case, self.start = None, time.monotonic()

    def step(self, what):
        self.done += 1
        case = what.split(":")[0]
        if self.tty or case != self.last_case:
            bar = "#" * (30 * self.done // self.total)
            line = f"[{bar:<30}] {self.done}/{self.total} {time.monotonic() - self.start:4.0f} s  "
            sys.stderr.write(f"\r{line}{what[:70]:<70}" if self.tty else f"{line}{case}\n")
            sys.stderr.flush()
        self.last_case = case

    def close(self):
        if self.tty:
            sys.stderr.write("\n")


def versions():
    import numpy

    def ver(mod):
        try:
            return __import__(mod).__version__
        except Exception:
            return "absent"
    return (f"torch {torch.__version__}, torchvision {ver('torchvision')}, timm {ver('timm')}, "
            f"kornia {ver('kornia')}, numpy {numpy.__version__}, python {platform.python_version()}, "
            f"cutmix_ext {cutmix_ext.__version__} (CUDA kernels: "
            f"{'yes, ' + cutmix_ext.CUDA_ARCHS if cutmix_ext.WITH_CUDA else 'no'})")


def device_name(device):
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{model or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="a few cases, fewer samples")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"),
                        help="folder for <device>-<date>.md and .png")
    parser.add_argument("--min-run-time", type=float, default=None,
                        help="seconds of timing per row at least (default 0.3, 0.05 with --quick)")
    parser.add_argument("--min-samples", type=int, default=None,
                        help="samples per row at least (default 7, 3 with --quick)")
    parser.add_argument("--no-loader", action="store_true", help="skip the DataLoader end-to-end case")
    parser.add_argument("--brief", action="store_true",
                        help="print the headline (cutmix_ext against what ran, how to install what is "
                             "missing) instead of the whole report")
    parser.add_argument("--only", default=None, help="run only the cases whose label contains this")
    parser.add_argument("--impls", default=None,
                        help="run only the implementations whose name contains one of these "
                             "comma-separated words (and the floors)")
    parser.add_argument("--list", action="store_true",
                        help="print the cases and implementations that would run, and stop (needs no GPU)")
    args = parser.parse_args(argv)
    todo = [c for c in cases(args.device, args.quick) if args.only is None or args.only in c.label]
    impls = [i for i in I.implementations(args.device) if i.floor or args.impls is None or
             any(w in i.name for w in args.impls.split(","))]
    if args.list:
        print(f"{len(todo)} cases on {args.device}{' (--quick)' if args.quick else ''}: " +
              "; ".join(c.label for c in todo))
        print(f"{len(impls)} implementations: " + "; ".join(i.name for i in impls))
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    if args.device == "cuda" and not cutmix_ext.WITH_CUDA:
        parser.error("--device cuda: cutmix_ext was built without its CUDA kernels")
    warnings.filterwarnings("ignore")
    args.min_run_time = args.min_run_time if args.min_run_time is not None else (0.05 if args.quick else 0.3)
    args.min_samples = args.min_samples or (3 if args.quick else 7)

    with_loader = args.device == "cpu" and not args.no_loader
    progress = Progress(len(todo) * len(impls) + with_loader)
    clock = Clock(args.device)
    rows = []
    for case in todo:
        rows += run_case(case, impls, args.device, clock, args, progress)
    loader_rows = None
    if with_loader:
        from . import loader
        progress.step("DataLoader end to end")
        loader_rows = loader.run(K, batches=8 if args.quick else 30)
    progress.close()

    now = datetime.datetime.now(datetime.timezone.utc)
    meta = dict(device=args.device, device_name=device_name(args.device), versions=versions(),
                torch=torch.__version__, python=sys.executable, date=f"{now:%Y-%m-%d %H:%M UTC}", K=K,
                min_run_time=args.min_run_time, min_samples=args.min_samples, quick=args.quick,
                command="python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]))
    stem = f"{args.device}-{now:%Y-%m-%d}" + ("-quick" if args.quick else "")
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, stem + ".png")
    drawn = report.chart(rows, meta, png)
    md = report.markdown(rows, loader_rows, meta, os.path.basename(png) if drawn else None)
    with open(os.path.join(args.out, stem + ".md"), "w") as f:
        f.write(md)
    written = f"{os.path.join(args.out, stem)}.md" + (" and .png" if drawn else "")
    if args.brief:
        print(report.headline(rows, meta))
        print(f"full report: {written}")
    else:
        print(md)
        print(f"written: {written}", file=sys.stderr)


if __name__ == "__main__":
    main()
