"""The benchmark suite runs end to end on a small case and reports what it measured: every
implementation timed or its failure recorded, the floors, the targets, the chart; and the main
command's plumbing around it. (Its speed is shown by its own output, never asserted here.)"""
import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import import_or_skip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
run = pytest.importorskip("benchmarks.run")
impls = pytest.importorskip("benchmarks.impls")
report = pytest.importorskip("benchmarks.report")
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


def test_brief_prints_the_headline_and_where_the_report_is(tmp_path, capsys):
    """What the main command shows of the benchmark: the targets met and the summary table, not
    the whole report, which is written as always."""
    run.main(QUICK + ["--only", "8x3x8x8 float32", "--impls", "cutmix_ext,torchvision", "--brief",
                      "--out", str(tmp_path)])
    out = capsys.readouterr().out
    stem = next(f for f in os.listdir(tmp_path) if f.endswith(".md"))[:-3]
    md = (tmp_path / f"{stem}.md").read_text()
    assert "targets met" in out.splitlines()[0]
    table = md[md.index("| case | dtype | op |"):md.index("## Every row")].strip()
    assert table in out
    assert "## Every row" not in out and "### 8x3x8x8" not in out
    assert out.rstrip().endswith(f"full report: {tmp_path / stem}.md" +
                                 (" and .png" if os.path.exists(tmp_path / f"{stem}.png") else ""))


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


def chart_rows():
    """A CUDA-free synthetic run: the floor just above cutmix_ext's bar (where its label would
    go), one implementation refusing the input (plain torch, there whatever else is installed),
    one library absent (kornia)."""
    case = run.Case((64, 3, 224, 224), torch.float32)
    times = {"cutmix_ext": 1.0e-3, "cutmix_ext per-sample": 1.1e-3, "torchvision": 9e-3, "timm batch": 5e-3,
             "timm elem": 7e-3, "plain torch": None, "floor": 1.15e-3}
    rows = []
    for impl in impls.implementations("cpu"):
        # whatever is installed here: every library present but kornia
        impl.make = None if impl.family == "kornia" else (impl.make or (lambda *args: None))
        if impl.family in times or impl.family == "kornia":
            note = "" if times.get(impl.family) or not impl.installed else "AssertionError: refused"
            rows.append(run.Row(case, impl, median=times.get(impl.family) if impl.installed else None, note=note))
    return rows


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
