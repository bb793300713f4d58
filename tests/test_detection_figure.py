"""docs/detection.png (examples/detection_figure.py): every box's label stays inside its image,
clear of the others, and legible whatever its weight: an opaque background, and the text colour
that contrasts most with it."""
import importlib
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_labels_stay_apart_inside_and_legible(monkeypatch):
    pytest.importorskip("matplotlib")
    pytest.importorskip("skimage")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    monkeypatch.syspath_prepend(os.path.join(ROOT, "examples"))  # as the script runs: beside figure.py
    module = importlib.import_module("detection_figure")
    fig = module.figure()
    fig.canvas.draw()  # as it is saved: laid out again
    renderer = fig.canvas.get_renderer()
    weights = []
    for ax in fig.axes:
        labels = [t for t in ax.texts if t.get_bbox_patch() is not None]
        assert labels, ax.get_xlabel()
        inside = ax.get_window_extent(renderer)
        boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in labels]
        for i, (t, box) in enumerate(zip(labels, boxes)):
            what = f"{t.get_text()!r} in {ax.get_xlabel()!r}"
            assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, what
            background = t.get_bbox_patch().get_facecolor()
            assert to_rgba(background)[3] == 1 and t.get_alpha() in (None, 1), what
            assert module.contrast(t.get_color(), background) >= 4.5, what
            for u, other in zip(labels[i + 1:], boxes[i + 1:]):
                assert not box.overlaps(other), f"{what} overlaps {u.get_text()!r}"
            weights += [float(w) for w in t.get_text().split()[1:]]
    assert min(weights) < 0.3  # the case in point: a light weight, drawn as legibly as the rest
    plt.close(fig)
