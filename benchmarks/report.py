"""The suite's markdown (targets, summary, every row, the DataLoader case), its chart, and the
headline that the main command shows (cutmix_ext against what ran here, no targets)."""
import math
import re
import sys

from .impls import CUTMIX, MIXUP

SIZES_224 = ((64, 3, 224, 224), (256, 3, 224, 224), (1024, 3, 224, 224))
CHART_FAMILIES = ["cutmix_ext", "cutmix_ext per-sample", "torchvision", "timm batch", "timm elem",
                  "kornia", "plain torch"]
COLORS = ["#1b7837", "#7fbf7b", "#2166ac", "#d6604d", "#f4a582", "#8073ac", "#878787"]
REFUSED, ABSENT = "#b2182b", "#969696"  # the chart's marks: refused the input, not installed
DPI = 110
# Cases per panel of the chart: more go on further panels, so that it stays readable at a page's width.
MAX_GROUPS = 10
# The summary's columns: the heading, and the implementation's name for an op.
COLUMNS = [("cutmix_ext", lambda op: f"cutmix_ext {op.lower()}_"),
           ("torchvision", lambda op: f"torchvision v2.{op}"),
           ("timm batch", lambda op: "timm Mixup batch"), ("timm elem", lambda op: "timm Mixup elem"),
           ("kornia", lambda op: "kornia Random" + ("CutMixV2" if op == CUTMIX else "MixUpV2")),
           ("plain torch", lambda op: "plain torch")]
LIBRARIES = ("torchvision", "timm", "kornia")  # the optional ones, in the order they install


def us(seconds):
    if seconds is None:
        return "—"
    v = seconds * 1e6
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:,.0f}"


def dtype_name(case):
    return str(case.dtype).replace("torch.", "")


def find(rows, case, op, name):
    return next((r for r in rows if r.case == case and r.impl.op == op and r.impl.name == name), None)


def floor_row(rows, case, op):
    return next((r for r in rows if r.case == case and r.impl.op == op and r.impl.floor), None)


def floor_ratio(rows, r):
    """floor / time where the row moves the floor's bytes: the fixed box (CutMix), every MixUp,
    everything forward+backward. Sampled CutMix boxes vary in size: no ratio."""
    if r.median is None:
        return None
    if not (r.case.backward or r.impl.op == MIXUP or r.impl.floor or r.impl.family == "cutmix_ext fixed"):
        return None
    f = floor_row(rows, r.case, r.impl.op)
    return None if f is None or f.median is None else f.median / r.median


def family_row(rows, case, op, family):
    return next((r for r in rows if r.case == case and r.impl.op == op and r.impl.family == family), None)


def ratio(ours, other):
    """How many times faster ours ran than other; None where either has no time."""
    if ours is None or other is None or ours.median is None or other.median is None:
        return None
    return other.median / ours.median


def times(s):
    s = round(s, 1)  # 9.96 is 10x, not 10.0x
    return f"{s:.0f}x" if s >= 10 else f"{s:.1f}x"


def speedup(rows, r):
    return None if r.impl.floor else ratio(r, find(rows, r.case, r.impl.op, f"torchvision v2.{r.impl.op}"))


def targets(rows, device):
    """(target, measured, met) for the issue's targets, from this run's rows."""
    out = []

    def each(shape_pred, op, name):
        return [r for r in rows if shape_pred(r.case) and r.impl.op == op and r.impl.name == name
                and not r.case.backward and r.median is not None]

    def ratio_vs(op, name, ref, pred):
        got = []
        for r in each(pred, op, name):
            f = find(rows, r.case, op, ref) if not ref.endswith("(floor)") else floor_row(rows, r.case, op)
            if f is not None and f.median is not None:
                got.append((r.median / f.median, r.case.label))
        return got

    def is_shape(*shapes):
        return lambda c: c.shape in shapes

    if device == "cpu":
        small = [(r.median, f"{r.impl.name}, {r.case.label}") for op, name in
                 [(CUTMIX, "cutmix_ext cutmix_"), (MIXUP, "cutmix_ext mixup_")]
                 for r in each(is_shape((8, 3, 8, 8)), op, name)]
        if small:
            worst = max(small)
            out.append(("≤ 10 µs per call at 8x3x8x8", f"worst {worst[0] * 1e6:.2f} µs ({worst[1]})",
                        worst[0] <= 10e-6))
        for shape, dtype, want in [((64, 3, 224, 224), "float32", 8), ((256, 3, 224, 224), "uint8", 9)]:
            got = [(1 / v, c) for v, c in ratio_vs(CUTMIX, "cutmix_ext cutmix_", "torchvision v2.CutMix",
                                                   lambda c, s=shape, d=dtype: c.shape == s and dtype_name(c) == d)]
            if got:
                worst = min(got)
                out.append((f"≥ {want}x torchvision CutMix at {'x'.join(map(str, shape))} {dtype}",
                            f"worst {worst[0]:.1f}x ({worst[1]})", worst[0] >= want))
    else:
        big = [((256, 3, 224, 224), 4), ((1024, 3, 224, 224), 2)]
        for op, name, floor, what in [
                (CUTMIX, "cutmix_ext cutmix_ fixed box", "patch copy_ (floor)",
                 "CutMix ≥ 90% of the copy bandwidth on the patch bytes"),
                (MIXUP, "cutmix_ext mixup_", "batch copy_ (floor)", "MixUp ≥ 90% of a full-batch copy")]:
            got = [(1 / v, c) for v, c in ratio_vs(op, name, floor, lambda c: (c.shape, c.dtype.itemsize) in big)]
            if got:
                worst = min(got)
                out.append((f"{what} at 256x3x224x224 f32, 1024x3x224x224 bf16",
                            f"worst {100 * worst[0]:.0f}% ({worst[1]})", worst[0] >= 0.9))
        for op, name in [(CUTMIX, "cutmix_ext cutmix_"), (MIXUP, "cutmix_ext mixup_")]:
            for ref, want in [(f"torchvision v2.{op}", 5), ("timm Mixup elem", 10)]:
                got = [(1 / v, c) for v, c in ratio_vs(op, name, ref, lambda c: True)]
                if got:
                    worst = min(got)
                    out.append((f"{op} ≥ {want}x {ref}", f"worst {worst[0]:.1f}x ({worst[1]})", worst[0] >= want))
        got = [(r.median / e.median, r.case.label) for r in each(is_shape((128, 3, 32, 32)), CUTMIX,
                                                                 "cutmix_ext cutmix_")
               for e in [find(rows, r.case, "reference", "empty kernel launch")] if e is not None]
        if got:
            worst = max(got)
            out.append(("within 1.5x of an empty kernel launch at 128x3x32x32 (device time)",
                        f"worst {worst[0]:.2f}x ({worst[1]})", worst[0] <= 1.5))
        ours = [r for r in rows if r.impl.name in ("cutmix_ext cutmix_", "cutmix_ext mixup_")
                and not r.case.backward and r.median is not None]
        if ours:
            counts = sorted({r.launches for r in ours})
            out.append(("exactly one kernel launch per call (cutmix_, mixup_)",
                        "launches seen: " + ", ".join(map(str, counts)), counts == [1]))
            extra = max((r.temp_bytes, r.case.label) for r in ours)
            out.append(("zero extra device memory (allocated during the call beyond its outputs)",
                        f"worst {extra[0]} bytes ({extra[1]})", extra[0] <= 0))
    # the 1.5x floors, on both devices
    for op, name, ref, what in [
            (CUTMIX, "cutmix_ext cutmix_ fixed box", "patch copy_ (floor)", "CutMix (fixed box) within 1.5x of the patch-copy floor"),
            (MIXUP, "cutmix_ext mixup_", "batch copy_ (floor)", "MixUp within 1.5x of a full-batch copy")]:
        got = ratio_vs(op, name, ref, is_shape(*SIZES_224))
        if got:
            worst = max(got)
            out.append((what + " at the 224x224 sizes", f"worst {worst[0]:.2f}x ({worst[1]})", worst[0] <= 1.5))
    return out


def case_sections(rows):
    seen = []
    for r in rows:
        if r.case not in seen:
            seen.append(r.case)
    return seen


def cell(r):
    if r is None:
        return "—"
    if r.median is not None:
        return us(r.median)
    return "fails" if r.impl.installed else "not installed"


def table_cases(rows, layout="NCHW"):
    """The cases of the summary table, and of the chart."""
    return [c for c in case_sections(rows) if c.layout == layout]


def floor_pct(rows, case, op):
    """cutmix_ext's % of the floor: floor / time, for CutMix on the fixed box (the floor's patch)."""
    name = "cutmix_ext cutmix_ fixed box" if op == CUTMIX else COLUMNS[0][1](op)
    r = find(rows, case, op, name)
    p = floor_ratio(rows, r) if r else None
    return "—" if p is None else f"{100 * p:.0f}%"


def summary(rows, layout="NCHW"):
    """One line per case and op: the headline implementations' medians side by side."""
    lines = ["| case | dtype | op | " + " | ".join(c for c, _ in COLUMNS) +
             " | floor | vs torchvision | cutmix_ext % of floor |", "|---|---|---|" + "---:|" * (len(COLUMNS) + 3)]
    for case in table_cases(rows, layout):
        for op in (CUTMIX, MIXUP):
            cells = [cell(find(rows, case, op, name(op))) for _, name in COLUMNS]
            ours = find(rows, case, op, COLUMNS[0][1](op))
            f = floor_row(rows, case, op)
            s = speedup(rows, ours) if ours else None
            lines.append(f"| {case.name} | {dtype_name(case)} | {op} | " + " | ".join(cells) +
                         f" | {us(f.median) if f else '—'} | {'—' if s is None else f'{s:.1f}x'} | "
                         f"{floor_pct(rows, case, op)} |")
    return "\n".join(lines)


def missing_libraries(rows):
    return [lib for lib in LIBRARIES if any(not r.impl.installed and r.impl.family.split()[0] == lib for r in rows)]


def install_hint(missing, torch_version, python="python"):
    """One line: how to bring in the missing libraries beside the installed torch, without
    replacing it. torchvision 0.(m+15).p is the release built with torch 2.m.p, from the index
    that torch came from (a local version, as +cpu or +cu130, names PyTorch's own); timm and
    kornia with --no-deps, as scripts/env.sh and main.sh install them, so that pip leaves torch be."""
    pip = f"{python} -m pip install"
    steps = []
    if "torchvision" in missing:
        release, _, index = torch_version.partition("+")
        m = re.match(r"2\.(\d+)\.(\d+)", release)
        # a torch that the rule does not cover: pinned, so that pip picks the torchvision for it
        what = f"torchvision==0.{int(m[1]) + 15}.{m[2]}" if m else f"torchvision torch=={torch_version}"
        steps.append(f"{pip} {what}" + (f" --index-url https://download.pytorch.org/whl/{index}" if index else ""))
    rest = [pkg for lib, pkgs in (("timm", ["timm"]), ("kornia", ["kornia", "kornia-rs"])) if lib in missing
            for pkg in pkgs]
    if rest:
        steps.append(f"{pip} --no-deps {' '.join(rest)}")
    names = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    return f"{names} not installed, so not compared; to include them: " + ", then ".join(steps) + ", and run again"


def headline(rows, meta):
    """The short form of the report: per case and op, cutmix_ext's time next to each other
    implementation that ran, how many times faster cutmix_ext was, its % of the floor; and how
    to bring in the libraries that are not installed."""
    cases = table_cases(rows)
    others = [(head, name) for head, name in COLUMNS[1:]
              if any(r is not None and r.impl.installed for case in cases for op in (CUTMIX, MIXUP)
                     for r in [find(rows, case, op, name(op))])]
    lines = [f"cutmix_ext against the other implementations installed here, on {meta['device_name']}:",
             "median µs per call; (Nx): cutmix_ext was N times as fast; % of floor: a copy_ of the bytes it "
             "moves (CutMix: a fixed half-image patch), timed beside it, over cutmix_ext's time",
             "",
             "| case | dtype | op | cutmix_ext | " + " | ".join(h for h, _ in others) + " | cutmix_ext % of floor |",
             "|---|---|---|---:|" + "---:|" * (len(others) + 1)]
    for case in cases:
        for op in (CUTMIX, MIXUP):
            ours = find(rows, case, op, COLUMNS[0][1](op))
            cells = [cell(ours)]
            for _, name in others:
                r = find(rows, case, op, name(op))
                s = ratio(ours, r)
                cells.append(cell(r) + ("" if s is None else f" ({times(s)})"))
            lines.append(f"| {case.name} | {dtype_name(case)} | {op} | " + " | ".join(cells) +
                         f" | {floor_pct(rows, case, op)} |")
    missing = missing_libraries(rows)
    if missing:
        lines += ["", install_hint(missing, meta["torch"], meta["python"])]
    return "\n".join(lines)


def detail(rows, case):
    n = case.shape[0]
    size = 1
    for s in case.shape:
        size *= s
    lines = [f"### {case.label}",
             "",
             f"batch {size * case.dtype.itemsize / 1e6:.2f} MB; (N, K) float32 targets "
             f"{n * 1000 * 4 / 1e6:.2f} MB",
             "",
             "| op | implementation | median µs | IQR µs | samples | vs torchvision | % of floor | peak alloc MB "
             "(temporary) | launches | note |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if r.case != case:
            continue
        s, p = speedup(rows, r), floor_ratio(rows, r)
        lines.append(
            f"| {r.impl.op} | {r.impl.name} | {us(r.median)} | {us(r.iqr)} | {r.samples or '—'} | "
            f"{'—' if s is None else f'{s:.1f}x'} | {'—' if p is None else f'{100 * p:.0f}%'} | "
            f"{'—' if r.peak_bytes is None else f'{r.peak_bytes / 1e6:.2f}'}"
            f"{'' if r.temp_bytes is None else f' ({r.temp_bytes / 1e6:.2f})'} | "
            f"{'—' if r.launches is None else r.launches} | {r.note.replace('|', '/')} |")
    return "\n".join(lines)


def markdown(rows, loader_rows, meta, png_name):
    out = [f"# cutmix_ext benchmark: {meta['device_name']}",
           "",
           f"{meta['date']}. {meta['versions']}. K = {meta['K']} classes. "
           f"`{meta['command']}` ({meta['min_run_time']} s of timing per row).",
           "",
           "## Targets",
           "",
           "| target | measured | met |",
           "|---|---|---|"]
    for what, got, ok in targets(rows, meta["device"]):
        out.append(f"| {what} | {got} | {'yes' if ok else '**no**'} |")
    out += ["", f"![time per call, log scale]({png_name})" if png_name else "(no chart)", "",
            "## Summary (NCHW; channels_last in the detail below)", "",
            "Median µs per call, parameters drawn in every call. floor: `patch copy_` of half the image "
            "for CutMix, `batch copy_` for MixUp, two map clones forward+backward. % of floor: floor / time, "
            "for CutMix measured on the `fixed box` row (the floor's exact patch). fails: the implementation "
            "refused the input (the exception is in the detail); not installed: its library is absent here.", "",
            summary(rows), ""]
    if loader_rows:
        head, lrows = loader_rows
        out += ["## DataLoader end to end", "", head, "", loader_table(lrows), ""]
    out += ["## Every row", "",
            "peak alloc: bytes allocated during one call (outputs included), from the profiler's memory "
            "records on the CPU, `torch.cuda.max_memory_allocated` on CUDA (temporary: the part freed again "
            "before the call returned). launches: device activities per call (`torch.profiler`, CUDA).", ""]
    for case in case_sections(rows):
        out += [detail(rows, case), ""]
    return "\n".join(out)


def loader_table(rows):
    lines = ["| collate_fn | images/s | speed-up | note |", "|---|---:|---|---|"]
    for r in rows:
        vs = f"{r['vs'][1]:.2f}x {r['vs'][0]}" if r["vs"] else "—"
        lines.append(f"| {r['name']} | {r['images_per_s']:,.0f} | {vs} | {r['note']} |")
    return "\n".join(lines)


def chart(rows, meta, path):
    """Time per call of each implementation (log scale), a panel per op (and per MAX_GROUPS
    cases), a group per case of the summary table, the floor as a dashed line across its group;
    ✗ where an implementation refused the input, ∅ where its library is not installed; over
    cutmix_ext's bar its speed-up over label_reference(rows)."""
    try:
        import matplotlib
    except ImportError:
        print("no chart: matplotlib is not installed", file=sys.stderr)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = figure(rows, meta)
    if fig is None:
        return False
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return True


def label_reference(rows):
    """The family that the number over cutmix_ext's bar compares with: torchvision where it ran,
    else plain torch, which is always there; None where neither has a time."""
    return next((fam for fam in ("torchvision", "plain torch")
                 if any(r.impl.family == fam and r.median is not None for r in rows)), None)


def figure(rows, meta):
    """The chart's matplotlib figure, laid out (None where no case is charted)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    chosen = table_cases(rows)
    if not chosen:
        return None
    per = math.ceil(len(chosen) / math.ceil(len(chosen) / MAX_GROUPS))  # balanced panels
    panels = [(op, chosen[i:i + per]) for op in (CUTMIX, MIXUP) for i in range(0, len(chosen), per)]
    ref = label_reference(rows)
    # constrained layout with the legend "outside": the figure makes room for the whole legend
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(9.0, 1.25 * per + 1.5), 5.25 * len(panels)), dpi=DPI,
                             layout="constrained", squeeze=False)
    width = 0.84 / len(CHART_FAMILIES)
    labels, marks = [], set()
    for ax, (op, group) in zip(axes[:, 0], panels):
        values, obstacles, labelled = [], [], False
        for gi, case in enumerate(group):
            for fi, fam in enumerate(CHART_FAMILIES):
                r = family_row(rows, case, op, fam)
                x = gi - 0.42 + (fi + 0.5) * width
                if r is not None and r.median is not None:
                    ax.bar(x, r.median * 1e6, width * 0.92, color=COLORS[fi])
                    obstacles.append((x - width * 0.46, x + width * 0.46, None, r.median * 1e6))
                    values.append(r.median * 1e6)
                elif r is not None:
                    mark = "✗" if r.impl.installed else "∅"
                    marks.add(mark)
                    ax.text(x, 0.01, mark, color=REFUSED if r.impl.installed else ABSENT, ha="center",
                            va="bottom", fontsize=10, fontweight="bold", transform=ax.get_xaxis_transform())
            f = floor_row(rows, case, op)
            if f is not None and f.median is not None:
                ax.hlines(f.median * 1e6, gi - 0.46, gi + 0.46, colors="black", linestyles="--", lw=1.3)
                obstacles.append((gi - 0.46, gi + 0.46, f.median * 1e6, f.median * 1e6))
                values.append(f.median * 1e6)
            ours = find(rows, case, op, f"cutmix_ext {op.lower()}_")
            s = ratio(ours, family_row(rows, case, op, ref)) if ref else None
            if s is not None:
                x = gi - 0.42 + 0.5 * width
                labelled = True
                labels.append((ax, obstacles, x + width * 0.46, ax.text(
                    x, ours.median * 1e6, times(s), ha="center", va="bottom", fontsize=7, color=COLORS[0],
                    fontweight="bold")))
        ax.set_yscale("log")
        if values:
            ax.set_ylim(min(values) / 4, max(values) * 4)
        ax.set_xlim(-0.55, len(group) - 0.45)
        ax.set_xticks(range(len(group)))
        ax.set_xticklabels([f"{c.name.replace(' fwd+bwd', chr(10) + 'fwd+bwd')}\n{dtype_name(c)}" for c in group],
                           fontsize=8)
        ax.set_ylabel("µs per call (log scale)")
        ax.set_title(f"{op}: time per call, lower is better" +
                     (f" (the number over cutmix_ext: its speed-up over {ref})" if labelled else ""), fontsize=10)
        ax.grid(axis="y", which="major", alpha=0.35)
        ax.grid(axis="y", which="minor", alpha=0.12)
    handles = [Patch(color=c, label=f) for f, c in zip(CHART_FAMILIES, COLORS)]
    handles.append(Line2D([], [], color="black", ls="--", label="floor: patch copy_ (CutMix), batch copy_ "
                          "(MixUp), 2 map clones (fwd+bwd)"))
    if "✗" in marks:
        handles.append(Line2D([], [], color=REFUSED, marker="$✗$", ls="", label="refused the input"))
    if "∅" in marks:
        handles.append(Line2D([], [], color=ABSENT, marker="$∅$", ls="", label="not installed"))
    fig.suptitle(f"cutmix_ext benchmark: {meta['device_name']}, {meta['date']}", fontsize=11)
    renderer = fig.canvas.get_renderer()
    # the layout makes room for the legend's height, not its width: as many columns as fit
    for ncol in range(5, 0, -1):
        legend = fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)
        fig.canvas.draw()
        box = legend.get_window_extent(renderer)
        if ncol == 1 or (box.x0 >= 0 and box.x1 <= fig.bbox.x1):
            break
        legend.remove()
    for ax, obstacles, right, label in labels:
        place(ax, label, right, obstacles, renderer)
    return fig


def place(ax, label, right, obstacles, renderer, pad=2.0):
    """Moves a label that is wider than its bar left until it ends where the bar does (the gap
    between groups is on that side, the next bar on the other), then up until it overlaps none
    of the obstacles, (x0, x1, y0, y1) in data coordinates (y0 None: from the bottom, a bar),
    each grown by pad pixels up and down so that nothing is drawn through or against the text."""
    from matplotlib.transforms import Bbox

    to_data = ax.transData.inverted().transform
    over = label.get_window_extent(renderer).x1 - ax.transData.transform((right, 1))[0]
    if over > 0:
        x, y = ax.transData.transform(label.get_position())
        label.set_x(to_data((x - over, y))[0])
    boxes = []
    for x0, x1, y0, y1 in obstacles:
        (a, b), (c, d) = ax.transData.transform([(x0, y1 if y0 is None else y0), (x1, y1)])
        boxes.append(Bbox([[a, (-math.inf if y0 is None else b) - pad], [c, d + pad]]))
    while True:
        box = label.get_window_extent(renderer)
        hit = next((b for b in boxes if box.overlaps(b)), None)
        if hit is None:
            return
        label.set_y(to_data((0, hit.y1 + 1))[1])
