"""Draws docs/detection.png: four photographs with their object boxes, as they are, after
CutMix (per-sample boxes; own boxes shrunk or dropped under the patch, the partner's cut to it)
and after MixUp (both images' boxes, their lines as strong as their weight, each label with its
weight).

    python examples/detection_figure.py [--out docs/detection.png]
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches as patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402
import torch  # noqa: E402
from figure import NAMES, SIZE, photos  # noqa: E402

from cutmix_ext import detection  # noqa: E402

CLASSES = ["face", "flag", "shuttle", "helmet", "cup", "saucer", "spoon", "eye", "nose", "rocket", "tower"]
COLORS = plt.get_cmap("tab10").colors + ("#e7298a",)
DPI = 110
# (class, x1, y1, x2, y2) in pixels of the 224 x 224 crops of figure.py's photographs
BOXES = {
    "astronaut": [("face", 62, 5, 132, 88), ("flag", 0, 0, 40, 120), ("shuttle", 165, 0, 212, 128),
                  ("helmet", 125, 150, 224, 224)],
    "coffee": [("cup", 40, 5, 186, 142), ("saucer", 0, 40, 224, 224), ("spoon", 125, 40, 176, 186)],
    "chelsea": [("eye", 50, 55, 106, 106), ("eye", 160, 55, 212, 102), ("nose", 124, 164, 172, 196)],
    "rocket": [("rocket", 100, 64, 126, 224), ("tower", 24, 60, 76, 224), ("tower", 168, 60, 206, 224)],
}


def targets():
    """The list form, in normalized coordinates (detection.cutmix_(..., normalized=True))."""
    out = []
    for name in NAMES:
        rows = BOXES[name]
        out.append({"boxes": torch.tensor([r[1:] for r in rows], dtype=torch.float32) / SIZE,
                    "labels": torch.tensor([CLASSES.index(r[0]) for r in rows])})
    return out


def luminance(color):
    """WCAG's relative luminance."""
    return sum(k * (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
               for k, c in zip((0.2126, 0.7152, 0.0722), to_rgb(color)))


def contrast(a, b):
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def ink(background):
    """White or black, whichever reads better on the background."""
    return max(("white", "black"), key=lambda c: contrast(c, background))


def draw(ax, image, t, patch=None):
    """The image, the patch and the boxes; returns the boxes' labels for place_labels, each with
    its box (x1, y1, x2, y2) in pixels, heaviest first: the image that weighs more keeps its
    labels at its boxes' corners, the other's move where they are in the way."""
    ax.imshow(image.permute(1, 2, 0).numpy())
    ax.set_xticks([]), ax.set_yticks([])
    if patch is not None:
        x1, y1, x2, y2 = patch
        ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="white",
                                       lw=1.2, ls=(0, (4, 3))))
    weights = t.get("weights", torch.ones(len(t["labels"])))
    labels = []
    for b, lab, wgt in zip((t["boxes"] * SIZE).tolist(), t["labels"].tolist(), weights.tolist()):
        x1, y1, x2, y2 = b
        color = COLORS[lab % len(COLORS)]
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=2,
                                       alpha=max(wgt, 0.25)))
        # opaque whatever the weight: the weight is in the text and the line, the label stays legible
        text = ax.text(x1, y1, CLASSES[lab] + (f" {wgt:.2f}" if wgt < 1 else ""), color=ink(color),
                       fontsize=6.5, ha="left", va="bottom", bbox=dict(facecolor=color, pad=1, lw=0))
        text.set_in_layout(False)  # inside the image: the layout must not move for it
        labels.append((-wgt, len(labels), text, b))
    return [(text, b) for *_, text, b in sorted(labels)]


def extent(text, renderer):
    text.update_bbox_position_size(renderer)
    return text.get_bbox_patch().get_window_extent(renderer)


def place_labels(ax, labels, renderer, gap=2.0):
    """Puts each label, in turn, at the first of these spots (in pixels) where it stays inside
    the image and overlaps no label placed before it: inside its box's top left corner, just
    above the box, inside its bottom left corner, just below it, inside the right corners, then
    stacked down its box from the top, then anywhere in the image, nearest its box's corner."""
    inside = ax.get_window_extent(renderer)
    to_data = ax.transData.inverted().transform
    placed = []
    for text, (x1, y1, x2, y2) in labels:
        (left, bottom), (right, top) = ax.transData.transform([(x1, y2), (x2, y1)])
        w, h = extent(text, renderer).size
        spots = [(left + gap, top - gap - h), (left, top + gap), (left + gap, bottom + gap), (left, bottom - gap - h),
                 (right - gap - w, top - gap - h), (right - gap - w, bottom + gap)]
        spots += [(left + gap, top - gap - h - k * (h + gap)) for k in range(1, int((top - bottom) // (h + gap)))]
        spots += sorted(((x, y) for x in range(int(inside.x0), int(inside.x1 - w), 4)
                         for y in range(int(inside.y0), int(inside.y1 - h), 4)),
                        key=lambda p: (p[0] - left) ** 2 + (p[1] + h - top) ** 2)

        def free(x, y):
            box = Bbox.from_bounds(x, y, w, h)
            return (inside.x0 <= x and x + w <= inside.x1 and inside.y0 <= y and y + h <= inside.y1 and
                    not any(box.overlaps(Bbox.from_extents(p.x0 - gap, p.y0 - gap, p.x1 + gap, p.y1 + gap))
                            for p in placed))
        x, y = next((p for p in spots if free(*p)), spots[0])
        # the text's anchor sits inside its background patch: moved by the patch's offset
        now = extent(text, renderer)
        px, py = ax.transData.transform(text.get_position())
        text.set_position(to_data((px + x - now.x0, py + y - now.y0)))
        placed.append(extent(text, renderer))


def figure(seed=6):
    """The figure: a row per photograph, a column each for the originals, CutMix and MixUp."""
    g = torch.Generator().manual_seed(seed)
    base = photos()
    t0 = targets()
    cut = base.clone()
    _, t_cut, p_cut = detection.cutmix_(cut, t0, per_sample=True, generator=g, return_params=True,
                                        normalized=True, min_visibility=0.25)
    mix = base.clone()
    _, t_mix, p_mix = detection.mixup_(mix, t0, per_sample=True, generator=g, return_params=True,
                                       normalized=True)
    columns = [("original", base, t0, None), ("CutMix, boxes kept and pasted", cut, t_cut, p_cut),
               ("MixUp, boxes weighted", mix, t_mix, p_mix)]
    fig, axes = plt.subplots(len(NAMES), len(columns), figsize=(2.9 * len(columns), 2.9 * len(NAMES)),
                             dpi=DPI, constrained_layout=True)
    labels = []
    for c, (title, images, ts, p) in enumerate(columns):
        axes[0, c].set_title(title, fontsize=10, fontweight="bold")
        for r in range(len(NAMES)):
            patch = p.boxes[r].tolist() if p is not None and p.boxes is not None else None
            labels.append((axes[r, c], draw(axes[r, c], images[r], ts[r], patch)))
            if p is None:
                caption = NAMES[r]
            else:
                j = int(p.perm[r])
                caption = f"λ={float(p.lam[r]):.2f} {NAMES[r]} + {NAMES[j]}"
            axes[r, c].set_xlabel(caption, fontsize=8)
    fig.suptitle("cutmix_ext.detection: the boxes travel with the image (dashed: the pasted patch)",
                 fontsize=10)
    fig.canvas.draw()  # the layout, which the labels' places in pixels depend on
    renderer = fig.canvas.get_renderer()
    for ax, ax_labels in labels:
        place_labels(ax, ax_labels, renderer)
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("docs", "detection.png"))
    ap.add_argument("--seed", type=int, default=6)
    args = ap.parse_args()
    fig = figure(args.seed)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig.savefig(args.out, dpi=DPI)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
