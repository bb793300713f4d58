"""Draws docs/detection.png: four photographs with their object boxes, as they are, after
CutMix (per-sample boxes; own boxes shrunk or dropped under the patch, the partner's cut to it)
and after MixUp (both images' boxes, drawn as strongly as their weight).

    python examples/detection_figure.py [--out docs/detection.png]
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches as patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from figure import NAMES, SIZE, photos  # noqa: E402

from cutmix_ext import detection  # noqa: E402

CLASSES = ["face", "flag", "shuttle", "helmet", "cup", "saucer", "spoon", "eye", "nose", "rocket", "tower"]
COLORS = plt.get_cmap("tab10").colors + ("#e7298a",)
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


def draw(ax, image, t, patch=None):
    ax.imshow(image.permute(1, 2, 0).numpy())
    ax.set_xticks([]), ax.set_yticks([])
    if patch is not None:
        x1, y1, x2, y2 = patch
        ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="white",
                                       lw=1.2, ls=(0, (4, 3))))
    weights = t.get("weights", torch.ones(len(t["labels"])))
    for b, lab, wgt in zip((t["boxes"] * SIZE).tolist(), t["labels"].tolist(), weights.tolist()):
        x1, y1, x2, y2 = b
        color = COLORS[lab % len(COLORS)]
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=2,
                                       alpha=max(wgt, 0.25)))
        text = CLASSES[lab] + (f" {wgt:.2f}" if wgt < 1 else "")
        ax.text(x1 + 2, y1 + 2, text, color="white", fontsize=6.5, va="top", alpha=max(wgt, 0.4),
                bbox=dict(facecolor=color, alpha=0.8 * max(wgt, 0.4), pad=1, lw=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("docs", "detection.png"))
    ap.add_argument("--seed", type=int, default=6)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(args.seed)
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
                             constrained_layout=True)
    for c, (title, images, ts, p) in enumerate(columns):
        axes[0, c].set_title(title, fontsize=10, fontweight="bold")
        for r in range(len(NAMES)):
            patch = p.boxes[r].tolist() if p is not None and p.boxes is not None else None
            draw(axes[r, c], images[r], ts[r], patch)
            if p is None:
                caption = NAMES[r]
            else:
                j = int(p.perm[r])
                caption = f"λ={float(p.lam[r]):.2f} {NAMES[r]} + {NAMES[j]}"
            axes[r, c].set_xlabel(caption, fontsize=8)
    fig.suptitle("cutmix_ext.detection: the boxes travel with the image (dashed: the pasted patch)",
                 fontsize=10)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
