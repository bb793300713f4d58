"""The benchmark suite runs end to end on a small case and reports what it measured: every
implementation timed or its failure recorded, the floors, the targets, the chart. (Its speed is
shown by its own output, never asserted here.)"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
run = pytest.importorskip("benchmarks.run")


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


def test_a_refused_input_is_reported_with_its_exception(tmp_path):
    """timm asserts an even batch: the 127-sample case must say so instead of failing the run."""
    pytest.importorskip("timm.data.mixup")
    run.main(["--device", "cpu", "--quick", "--only", "127x3x32x32", "--impls", "timm Mixup batch",
              "--no-loader", "--min-run-time", "0.01", "--min-samples", "2", "--out", str(tmp_path)])
    md = next(open(tmp_path / f).read() for f in os.listdir(tmp_path) if f.endswith(".md"))
    line = next(ln for ln in md.splitlines() if ln.startswith("| CutMix | timm Mixup batch"))
    assert "AssertionError" in line and "even" in line
