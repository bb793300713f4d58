"""The benchmark suite runs end to end on a small case and reports what it measured: every
implementation timed or its failure recorded, the floors, the targets, the chart; the headline
the main command shows; and the main command's plumbing around it. (Its speed is shown by its
own output, never asserted here.) Nothing here needs torchvision, timm, kornia or ultralytics but
what skips without them: the charts and the headline are tested on made-up rows."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import import_or_skip

import cutmix_ext

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
run = pytest.importorskip("benchmarks.run")
impls = pytest.importorskip("benchmarks.impls")
report = pytest.importorskip("benchmarks.report")
detection = pytest.importorskip("benchmarks.detection")
QUICK = ["--device", "cpu", "--quick", "--no-loader", "--min-run-time", "0.01", "--min-samples", "2"]


def test_quick_case_end_to_end(tmp_path, capsys):
    run.main(["--device", "cpu", "--quick", "--only", "8x3x8x8 float32", "--no-loader",
              "--min-run-time", "0.01", "--min-samples", "2", "--out", str(tmp_path)])
    md_files = [f for f in os.listdir(tmp_path) if f.endswith(".md")]
    assert len(md_files) == 1 and md_files[0].startswith("cpu-")
    md = (tmp_path / md_files[0]).read_text()
    assert md.strip() in capsys.readouterr().out  # printed, too
    assert "## Targets" in md and "≤ 10 µs per call at 8x3x8x8" in md
    detail = md[md.index("### 8x3x8x8 float32 NCHW"):]
    rows = [line.split(" | ") for line in detail.splitlines() if line.startswith("| CutMix") or
            line.startswith("| MixUp")]
    names = {r[1] for r in rows}
    for name in ("cutmix_ext cutmix_", "cutmix_ext mixup_", "cutmix_ext cutmix_ fixed box",
                 "patch copy_ (floor)", "batch copy_ (floor)", "plain torch"):
        assert name in names, name
    for r in rows:
        timed = r[2] not in ("—", "")
        assert timed or r[-1].strip(" |"), f"{r[1]}: neither timed nor a reason given"
        if timed:
            assert float(r[2].replace(",", "")) > 0
    if any(f.endswith(".png") for f in os.listdir(tmp_path)):
        assert "![time per call" in md
    else:
        assert "(no chart)" in md


def summary_cell(md, row_start, column):
    lines = md[md.index("## Summary"):md.index("## Every row")].splitlines()
    header = next(ln for ln in lines if ln.startswith("| case")).split(" | ")
    return next(ln for ln in lines if ln.startswith(row_start)).split(" | ")[header.index(column)]


def test_a_refused_input_is_reported_with_its_exception(tmp_path):
    """timm asserts an even batch: the 127-sample case must say so instead of failing the run."""
    import_or_skip("timm.data.mixup")
    run.main(["--device", "cpu", "--quick", "--only", "127x3x32x32", "--impls", "timm Mixup batch",
              "--no-loader", "--min-run-time", "0.01", "--min-samples", "2", "--out", str(tmp_path)])
    md = next(open(tmp_path / f).read() for f in os.listdir(tmp_path) if f.endswith(".md"))
    line = next(ln for ln in md.splitlines() if ln.startswith("| CutMix | timm Mixup batch"))
    assert "AssertionError" in line and "even" in line
    assert summary_cell(md, "| 127x3x32x32 | float32 | CutMix |", "timm batch") == "fails"


def test_a_missing_library_is_reported_as_not_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(impls, "RandomCutMixV2", None)
    monkeypatch.setattr(impls, "RandomMixUpV2", None)
    run.main(QUICK + ["--only", "8x3x8x8 float32", "--impls", "kornia", "--out", str(tmp_path)])
    md = next(open(tmp_path / f).read() for f in os.listdir(tmp_path) if f.endswith(".md"))
    for op in ("CutMix", "MixUp"):
        assert summary_cell(md, f"| 8x3x8x8 | float32 | {op} |", "kornia") == "not installed"
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {op} | kornia Random{op}V2"))
        assert "kornia not installed" in line


def test_brief_prints_the_headline_and_where_the_report_is(tmp_path, capsys, monkeypatch):
    """What the main command shows of the benchmark, where torchvision, timm and kornia are not
    installed: cutmix_ext next to what ran, with its speed-up, no project targets, and how to
    install the others; not the whole report, which is written as always."""
    for name in ("tv", "timm_mixup", "RandomCutMixV2", "RandomMixUpV2"):
        monkeypatch.setattr(impls, name, None)
    run.main(QUICK + ["--only", "8x3x8x8 float32", "--brief", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    stem = next(f for f in os.listdir(tmp_path) if f.endswith(".md"))[:-3]
    assert out.rstrip().endswith(f"full report: {tmp_path / stem}.md" +
                                 (" and .png" if os.path.exists(tmp_path / f"{stem}.png") else ""))
    shown = out.rstrip().rsplit("\n", 1)[0]
    assert "target" not in shown.lower() and " met" not in shown
    assert "## Every row" not in shown and "### 8x3x8x8" not in shown
    lines = shown.splitlines()
    assert "| case | dtype | op | cutmix_ext | plain torch | cutmix_ext % of floor |" in lines
    for op in ("CutMix", "MixUp"):
        ours, theirs = next(ln for ln in lines if ln.startswith(f"| 8x3x8x8 | float32 | {op} |")).split(" | ")[3:5]
        time, speedup = re.fullmatch(r"([\d.,]+) \(([\d.]+)x\)", theirs).groups()
        assert float(speedup) == pytest.approx(float(time) / float(ours), rel=0.1, abs=0.1)
    m, p = re.match(r"2\.(\d+)\.(\d+)", torch.__version__).groups()
    hint = next(ln for ln in lines if ln.startswith("torchvision, timm and kornia not installed"))
    assert f"torchvision==0.{int(m) + 15}.{p}" in hint and "--no-deps timm kornia kornia-rs" in hint


@pytest.mark.parametrize("torch_version, missing, want, unwanted", [
    ("2.13.0+cpu", ["torchvision", "timm"],
     ["torchvision==0.28.0 --index-url https://download.pytorch.org/whl/cpu", "--no-deps timm"], ["kornia"]),
    ("2.14.1+cu130", ["torchvision"], ["torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cu130"],
     ["timm"]),
    ("2.14.1", ["torchvision", "kornia"], ["torchvision==0.29.1", "--no-deps kornia kornia-rs"],
     ["--index-url", "timm"]),
    ("2.14.1+cpu", ["timm"], ["--no-deps timm"], ["torchvision"]),
])
def test_the_install_hint_matches_the_installed_torch(torch_version, missing, want, unwanted):
    hint = report.install_hint(missing, torch_version, "py")
    assert hint.startswith(" and ".join(missing) + " not installed") and "py -m pip install" in hint
    for w in want:
        assert w in hint, w
    for w in unwanted:
        assert w not in hint.split("not installed", 1)[1], w


def test_the_headline_compares_with_every_library_that_ran_and_asks_for_no_other():
    rows = made_up_rows([run.Case((64, 3, 224, 224), torch.float32)], refused=("timm elem",))
    text = report.headline(rows, {"device_name": "a CPU", "torch": "2.14.1", "python": "py"})
    assert "not installed" not in text and "target" not in text.lower()
    assert ("| case | dtype | op | cutmix_ext | torchvision | timm batch | timm elem | kornia | plain torch | "
            "cutmix_ext % of floor |") in text.splitlines()
    line = next(ln for ln in text.splitlines() if ln.startswith("| 64x3x224x224 | float32 | CutMix |"))
    assert line.split(" | ")[3:8] == ["1,000", "9,000 (9.0x)", "5,000 (5.0x)", "fails", "8,000 (8.0x)"]


def test_cpu_peak_bytes_counts_what_the_call_allocates_and_logs_nothing(capfd):
    """Exact on a known pattern; the state that a fresh fn's call frees from the call before (a
    transform's last_params) is no block of unknown size to the profiler; and no profiler or
    allocator line on stderr."""
    mib = 1 << 20

    def pattern():
        a = torch.empty(4 * mib, dtype=torch.uint8)
        del a
        return torch.empty(mib, dtype=torch.uint8)

    state = [None]

    def stateful():
        state[0] = torch.empty(2 * mib, dtype=torch.uint8)

    assert run.cpu_peak_bytes(pattern) == 4 * mib
    assert run.cpu_peak_bytes(stateful) == 2 * mib
    err = capfd.readouterr().err
    assert err == "", err


def test_importing_the_benchmark_logs_nothing():
    """torch.utils.benchmark imports torch.utils.cpp_extension, whose CUDA_HOME guess warns on a
    machine without a GPU: the suite keeps its own statistics instead."""
    done = subprocess.run([sys.executable, "-c", "import benchmarks.run"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr


TIMES = {"cutmix_ext": 1.0e-3, "cutmix_ext per-sample": 1.1e-3, "cutmix_ext fixed": 1.05e-3,
         "torchvision": 9e-3, "timm batch": 5e-3, "timm elem": 7e-3, "kornia": 8e-3, "plain torch": 3e-3,
         "floor": 1.15e-3}


def made_up_rows(cases, absent=(), refused=()):
    """A run that never happened, the same whatever is installed here: a row per case for each
    family of TIMES, timed (in proportion to the case's bytes) but for the families absent (not
    installed) or refused (the input, with an exception)."""
    rows = []
    for impl in impls.implementations("cpu"):
        if impl.family not in TIMES:
            continue
        impl.make = None if impl.family in absent else (impl.make or (lambda *args: None))
        for case in cases:
            scale = case.nbytes / run.Case((64, 3, 224, 224), torch.float32).nbytes
            if impl.family in absent:
                rows.append(run.Row(case, impl, note=impl.missing))
            elif impl.family in refused:
                rows.append(run.Row(case, impl, note="AssertionError: refused"))
            else:
                rows.append(run.Row(case, impl, median=TIMES[impl.family] * scale))
    return rows


def chart_rows():
    """The floor just above cutmix_ext's bar (where its label would go), one implementation
    refusing the input, one library absent."""
    return made_up_rows([run.Case((64, 3, 224, 224), torch.float32)], absent=("kornia",), refused=("plain torch",))


def test_chart_legend_fits_and_labels_stay_clear():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig = report.figure(chart_rows(), {"device_name": "a CPU", "date": "today"})
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0]
    box = legend.get_window_extent(renderer)
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1
    shown = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles)}
    for family in report.CHART_FAMILIES:
        assert isinstance(shown[family], Patch), family  # a swatch
    assert "refused the input" in shown and "not installed" in shown
    for ax in fig.axes:
        floors = [seg for coll in ax.collections for seg in coll.get_segments()]
        labels = [t for t in ax.texts if t.get_text().endswith("x")]
        assert labels and floors
        for t in labels:
            tb = t.get_window_extent(renderer)
            for seg in floors:
                (x0, y), (x1, _) = ax.transData.transform(seg)
                assert not (x0 <= tb.x1 and tb.x0 <= x1 and tb.y0 - 1 <= y <= tb.y1 + 1), t.get_text()
            for bar in ax.patches:
                assert not tb.overlaps(bar.get_window_extent(renderer)), t.get_text()
    plt.close(fig)


def chart_labels(ax):
    """The numbers over cutmix_ext's bars (the ✗ and ∅ marks are texts too)."""
    return [t for t in ax.texts if t.get_text().endswith("x")]


@pytest.mark.parametrize("present, ref", [
    (("torchvision", "timm batch", "timm elem", "kornia", "plain torch"), "torchvision"),
    (("plain torch",), "plain torch"),  # the main command's no-GPU path
    ((), None),
])
def test_the_charts_subtitle_says_what_its_numbers_are(present, ref):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = ("torchvision", "timm batch", "timm elem", "kornia")
    rows = made_up_rows(run.cases("cpu", quick=True), absent=[f for f in others if f not in present],
                        refused=() if "plain torch" in present else ("plain torch",))
    fig = report.figure(rows, {"device_name": "a CPU", "date": "today"})
    for ax in fig.axes:
        title, labels = ax.get_title(), chart_labels(ax)
        if ref is None:
            assert not labels and "speed-up" not in title and "number" not in title
            continue
        assert title.endswith(f"(the number over cutmix_ext: its speed-up over {ref})")
        assert ("torchvision" in title) == (ref == "torchvision")
        assert [t.get_text() for t in labels] == [report.times(TIMES[ref] / TIMES["cutmix_ext"])] * len(labels)
        assert len(labels) == len(ax.get_xticks())
    plt.close(fig)


@pytest.mark.parametrize("device, quick", [("cpu", True), ("cuda", True), ("cpu", False)])
def test_every_case_of_the_table_is_in_the_chart(device, quick):
    """On each op's panels, each case of the summary once, at most MAX_GROUPS to a panel; with
    torchvision and timm absent, as on the main command's no-GPU path."""
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = made_up_rows(run.cases(device, quick), absent=("torchvision", "timm batch", "timm elem"))
    table = [tuple(ln.strip("| ").split(" | ")[:3]) for ln in report.summary(rows).splitlines()[2:]]
    fig = report.figure(rows, {"device_name": "a GPU", "date": "today"})
    for op in ("CutMix", "MixUp"):
        charted = []
        for ax in fig.axes:
            if ax.get_title().startswith(op + ":"):
                ticks = [t.get_text().split("\n") for t in ax.get_xticklabels()]
                assert 0 < len(ticks) <= report.MAX_GROUPS
                charted += [(" ".join(t[:-1]), t[-1]) for t in ticks]
        assert charted == [(case, dtype) for case, dtype, o in table if o == op]
    plt.close(fig)


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_ultralytics_in_the_detection_benchmark_mixes_as_cutmix_ext(op, gen):
    """ultralytics' transform, handed a random draw through the benchmark's adapter, gives
    cutmix_ext's pixels and boxes on every image compared; and the comparison notices a partner
    other than the one drawn."""
    augment = detection.ultralytics_augment()
    if augment is None:
        pytest.skip(f"ultralytics not installed: python {detection.ULTRALYTICS_PIP}")
    images, targets = detection.make_batch(16, 96, 128, 6, "cpu", gen)
    for t in targets:  # inside the image, which is wider than tall: ultralytics clips no own box
        t["boxes"][:, 1::2].clamp_(max=96)
    p = cutmix_ext.sample_params(images, op, per_sample=True, pairing="random", generator=gen)
    before = images.clone()
    run, handed = detection.ultralytics_mix(augment, op, images, targets, p)
    theirs = run()
    assert torch.equal(images, before)  # it mixes copies: the batch stays for cutmix_ext
    agreed, compared, skipped = detection.agreement(theirs, handed, images, targets, p, op)
    assert agreed == compared and compared + skipped == int((p.perm != torch.arange(16)).sum())
    assert compared > 0 and (op == "cutmix" or skipped == 0)
    if op == "mixup":
        # its r is our lam: the first non-self-paired image is the blend with that weight
        i = int((p.perm != torch.arange(16)).nonzero()[0])
        blend = before[i].double() * p.lam[i] + before[p.perm[i]].double() * (1 - p.lam[i])
        assert torch.equal(torch.from_numpy(theirs[i]["img"]).permute(2, 0, 1), blend.to(torch.uint8))
    wrong = p._replace(perm=p.perm.roll(1))
    run, handed = detection.ultralytics_mix(augment, op, images, targets, wrong)
    assert detection.agreement(run(), handed, images, targets, p, op)[0] < compared


def test_the_detection_table_says_when_ultralytics_is_not_installed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(detection, "ultralytics_augment", lambda: None)
    detection.main(["--batch", "8", "--size", "48", "--boxes", "6", "--rounds", "1", "--min-time", "0",
                    "--brief", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    md = next(open(tmp_path / f).read() for f in os.listdir(tmp_path) if f.endswith(".md"))
    for text in (out, md):
        lines = text.splitlines()
        for op in ("CutMix", "MixUp"):
            assert f"| {op} | ultralytics {op} | not installed | — | — | — |" in lines
            flat = next(ln for ln in lines if ln.startswith(f"| {op} | cutmix_ext flat | ")).split(" | ")
            assert float(flat[2]) > 0 and flat[-1].endswith("% |")
        hint = next(ln for ln in lines if ln.startswith("ultralytics not installed"))
        assert "-m pip install --no-deps ultralytics==8.4.190 " in hint
        assert "gave cutmix_ext's output" not in text
    assert "Targets: ≥ 10x" not in md


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_main_sh_stops_at_a_failing_step_and_prints_its_output(tmp_path):
    """scripts/main.sh with env.sh stubbed out (no build) and a demo that fails."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "examples").mkdir()
    shutil.copy(os.path.join(ROOT, "scripts", "main.sh"), tmp_path / "scripts")
    (tmp_path / "scripts" / "env.sh").write_text(f'PY="{sys.executable}"\n')
    (tmp_path / "examples" / "demo.py").write_text(
        "import sys\nprint('what the demo saw')\nprint('why it failed', file=sys.stderr)\nsys.exit(3)\n")
    done = subprocess.run(["bash", str(tmp_path / "scripts" / "main.sh")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 3
    assert "why it failed" in done.stderr and "what the demo saw" in done.stderr
    assert "demo FAILED (exit status 3)" in done.stderr
    assert "[main] done" not in done.stdout


def test_kernel_paths_report_every_group(tmp_path, capsys):
    """benchmarks.paths end to end on the CPU backend, small: every group's rows timed, each ratio
    against its group's first row (or the copy of the same bytes), the goals judged, and the
    device-only group saying why it is empty."""
    paths = pytest.importorskip("benchmarks.paths")
    paths.main(["--device", "cpu", "--scale", "0.01", "--min-run-time", "0.001", "--min-samples", "1",
                "--out", str(tmp_path)])
    md_files = [f for f in os.listdir(tmp_path) if f.endswith("-paths.md")]
    assert len(md_files) == 1
    md = (tmp_path / md_files[0]).read_text()
    assert md.strip() in capsys.readouterr().out
    rows = [line.strip("|").split(" | ") for line in md.splitlines()
            if line.startswith("| ") and not line.startswith("| group")]
    by_group = {}
    for r in rows:
        by_group.setdefault(r[0].strip(), []).append(r)
    assert set(by_group) == {"widths", "tables", "batch", "sampling"}
    assert len(by_group["widths"]) == 8 and len(by_group["tables"]) == 6 and len(by_group["batch"]) == 8
    for group in ("widths", "tables", "batch"):
        for r in by_group[group]:
            assert float(r[2].replace(",", "")) > 0 and float(r[3].replace(",", "")) > 0, r
            goal = r[6].strip()
            if goal:
                ratio = float(r[4].rstrip("x"))
                assert goal.strip("*").endswith("met"), r
                assert ("not met" in goal) == (ratio < float(goal[2:goal.index(":")])), r
    for first in (by_group["widths"][0], by_group["widths"][4], by_group["tables"][0]):
        assert first[4] == "1.00x" and first[5] == first[1], first
    assert 'needs CUDA' in by_group["sampling"][0][1]
