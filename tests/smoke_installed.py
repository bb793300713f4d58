"""Smoke test of an installed cutmix_ext (the wheel, in CI): mixes batches with CutMix and MixUp
and checks pixels and targets against plain torch.

    cd /somewhere/else && python /path/to/tests/smoke_installed.py [DIR]

Run it from outside the repository, so that the installed package is imported and not the source
tree; it fails unless the package was imported from under DIR (default: this interpreter's
environment, sys.prefix). Not collected by pytest (no test_ prefix)."""
import os
import sys

import torch
import torch.nn.functional as F

import cutmix_ext

where = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
found = os.path.realpath(cutmix_ext.__file__)
if not found.startswith(where + os.sep):
    sys.exit(f"smoke test: cutmix_ext was imported from {found}, not from under {where}")

N, C, H, W, K, EPS = 6, 3, 16, 12, 10, 0.1
g = torch.Generator().manual_seed(0)
images = torch.rand(N, C, H, W, generator=g)
labels = torch.randint(K, (N,), generator=g)


def smoothed(y):
    return F.one_hot(y, K).double() * (1 - EPS) + EPS / K


def expected_targets(perm, lam):
    lam = lam.double()[:, None]
    own, other = smoothed(labels), smoothed(labels[perm])
    return torch.where(own == other, own, lam * own + (1 - lam) * other).float()


# CutMix: inside box i, sample i takes its partner's pixels; lam is the area left of its own.
x = images.clone()
out, targets, p = cutmix_ext.cutmix_(x, labels, K, label_smoothing=EPS, per_sample=True,
                                     pairing="random", generator=g, return_params=True)
assert out is x, "cutmix_ is in place"
want = images.clone()
for i, (x1, y1, x2, y2) in enumerate(p.boxes.tolist()):
    want[i, :, y1:y2, x1:x2] = images[p.perm[i], :, y1:y2, x1:x2]
    assert abs(float(p.lam[i]) - (1 - (x2 - x1) * (y2 - y1) / (H * W))) < 1e-12, (i, p.lam[i])
assert torch.equal(out, want), "CutMix pixels"
assert torch.allclose(targets, expected_targets(p.perm, p.lam), rtol=0, atol=1e-6), "CutMix targets"

# MixUp: lam * own + (1 - lam) * partner.
x = images.clone()
out, targets, p = cutmix_ext.mixup_(x, labels, K, label_smoothing=EPS, per_sample=True,
                                    generator=g, return_params=True)
lam = p.lam.float()[:, None, None, None]
assert torch.allclose(out, lam * images + (1 - lam) * images[p.perm], rtol=0, atol=1e-6), "MixUp pixels"
assert torch.allclose(targets, expected_targets(p.perm, p.lam), rtol=0, atol=1e-6), "MixUp targets"

print(f"smoke test passed: cutmix_ext {cutmix_ext.__version__} from {os.path.dirname(found)}, torch "
      f"{torch.__version__}, {'CUDA and CPU kernels' if cutmix_ext.WITH_CUDA else 'CPU kernels only'}")
