"""Mixes one batch with cutmix_ and mixup_, shows what was applied, and checks it against the
pure-PyTorch reference."""
import torch

import cutmix_ext
from cutmix_ext.reference import cutmix_reference, mixup_reference

torch.manual_seed(0)
print(f"cutmix_ext {cutmix_ext.__version__}: torch {torch.__version__}, CUDA kernels "
      f"{'built for ' + cutmix_ext.CUDA_ARCHS if cutmix_ext.WITH_CUDA else 'not built'}, "
      f"GPU {'present' if torch.cuda.is_available() else 'absent'}")
device = "cuda" if torch.cuda.is_available() else "cpu"

images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, device=device)
images = images.contiguous(memory_format=torch.channels_last)
labels = torch.randint(0, 10, (8,), device=device)
original = images.clone()

out, targets, params = cutmix_ext.cutmix_(images, labels, num_classes=10, per_sample=True,
                                          pairing="random", label_smoothing=0.1,
                                          return_params=True)
print(f"\nCutMix, per-sample boxes, random pairing, uint8 channels_last on {device}:")
print(f"  same tensor returned: {out is images}; layout kept: "
      f"{out.is_contiguous(memory_format=torch.channels_last)}")
for i in range(4):
    print(f"  sample {i}: box (x1, y1, x2, y2) = {tuple(params.boxes[i].tolist())} from sample "
          f"{int(params.perm[i])}, lam = {float(params.lam[i]):.4f}, targets row sums to "
          f"{float(targets[i].sum()):.6f}")
want, want_targets, _ = cutmix_reference(original, labels, params.perm, params.boxes, 10, 0.1)
print(f"  equals the reference: images {torch.equal(out, want)}, targets "
      f"{torch.equal(targets.cpu(), want_targets)}")

images = torch.rand(8, 3, 32, 32, device=device)
original = images.clone()
_, targets, params = cutmix_ext.mixup_(images, labels, num_classes=10, return_params=True)
want, want_targets = mixup_reference(original, labels, params.perm, params.lam, 10)
print(f"\nMixUp, one lam = {float(params.lam[0]):.4f} for the batch, roll pairing, float32:")
print(f"  equals the reference: images {torch.equal(images, want)}, targets "
      f"{torch.equal(targets.cpu(), want_targets)}\n")
