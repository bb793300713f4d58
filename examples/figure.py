"""Draws the picture in the README, like Figure 1 of the CutMix paper: four photographs from
scikit-image's sample data, as they are, then mixed by MixUp, CutOut, CutMix (one box for the
batch) and per-sample CutMix, each sample captioned with its lambda and partner.

    python examples/figure.py [--out docs/mixing.png]
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import skimage.data  # noqa: E402
import skimage.transform  # noqa: E402
import torch  # noqa: E402

import cutmix_ext  # noqa: E402

NAMES = ["astronaut", "coffee", "chelsea", "rocket"]
SIZE = 224


def photos() -> torch.Tensor:
    """(4, 3, SIZE, SIZE) uint8: each photograph centre-cropped to a square and resized."""
    out = []
    for name in NAMES:
        im = getattr(skimage.data, name)()[..., :3]
        h, w = im.shape[:2]
        s = min(h, w)
        im = im[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        im = skimage.transform.resize(im, (SIZE, SIZE), anti_aliasing=True, preserve_range=True)
        out.append(torch.from_numpy(im.round().astype("uint8")).permute(2, 0, 1))
    return torch.stack(out).contiguous(memory_format=torch.channels_last)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("docs", "mixing.png"))
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(args.seed)
    labels = torch.arange(len(NAMES))
    base = photos()
    rows = [("original", base, None)]

    x = base.clone()
    _, _, p = cutmix_ext.mixup_(x, labels, len(NAMES), alpha=1.0, pairing="roll", per_sample=True,
                                generator=g, return_params=True)
    rows.append(("MixUp (per-sample lam)", x, p))
    x = base.clone()
    _, p = cutmix_ext.cutout_(x, size=96, fill=0, generator=g, return_params=True)
    rows.append(("CutOut (96x96, fill 0)", x, p))
    x = base.clone()
    _, _, p = cutmix_ext.cutmix_(x, labels, len(NAMES), pairing="roll", generator=g, return_params=True)
    rows.append(("CutMix (one box)", x, p))
    x = base.clone()
    _, _, p = cutmix_ext.cutmix_(x, labels, len(NAMES), pairing="flip", per_sample=True, generator=g,
                                 return_params=True)
    rows.append(("CutMix (per sample)", x, p))

    fig, axes = plt.subplots(len(NAMES), len(rows), figsize=(2.3 * len(rows), 2.5 * len(NAMES)),
                             constrained_layout=True)
    for c, (title, imgs, params) in enumerate(rows):
        axes[0, c].set_title(title, fontsize=10, fontweight="bold")
        for r in range(len(NAMES)):
            ax = axes[r, c]
            ax.imshow(imgs[r].permute(1, 2, 0).numpy())
            ax.set_xticks([]), ax.set_yticks([])
            if params is None:
                caption = NAMES[r]
            elif params.mode is not None and int(params.mode[r]) == 2:
                caption = "label unchanged"
            else:
                j = int(params.perm[r])
                lam = float(params.lam[r])
                caption = f"λ={lam:.2f} {NAMES[r]}" + (f" + {NAMES[j]}" if j != r and lam < 1 else "")
            ax.set_xlabel(caption, fontsize=8)
            if params is not None and params.boxes is not None:
                x1, y1, x2, y2 = params.boxes[r].tolist()
                if x2 > x1 and y2 > y1:
                    ax.add_patch(plt.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                                               edgecolor="yellow", linewidth=1.2, linestyle="--"))
    fig.suptitle("cutmix_ext: the same four photographs mixed in place (λ = weight of the sample's "
                 "own label)", fontsize=10)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
