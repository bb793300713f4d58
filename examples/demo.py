"""Mixes one batch with cutmix_ and mixup_, shows what was applied, and checks it against the
pure-PyTorch reference (exit status 1 where it differs).

    python examples/demo.py            # what was applied, sample by sample, then the check
    python examples/demo.py --brief    # the check only
"""
import argparse
import sys

import torch

import cutmix_ext
from cutmix_ext.reference import cutmix_reference, mixup_reference


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brief", action="store_true", help="print the check's verdict only")
    args = parser.parse_args()
    say = (lambda *a: None) if args.brief else print
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    say(f"cutmix_ext {cutmix_ext.__version__}: torch {torch.__version__}, CUDA kernels "
        f"{'built for ' + cutmix_ext.CUDA_ARCHS if cutmix_ext.WITH_CUDA else 'not built'}, "
        f"GPU {'present' if torch.cuda.is_available() else 'absent'}")
    failed = []

    def check(what, ok):
        say(f"  {what}: {ok}")
        if not ok:
            failed.append(what)

    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, device=device)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (8,), device=device)
    original = images.clone()
    out, targets, params = cutmix_ext.cutmix_(images, labels, num_classes=10, per_sample=True,
                                              pairing="random", label_smoothing=0.1,
                                              return_params=True)
    say(f"\nCutMix, per-sample boxes, random pairing, uint8 channels_last on {device}:")
    for i in range(4):
        say(f"  sample {i}: box (x1, y1, x2, y2) = {tuple(params.boxes[i].tolist())} from sample "
            f"{int(params.perm[i])}, lam = {float(params.lam[i]):.4f}, targets row sums to "
            f"{float(targets[i].sum()):.6f}")
    want, want_targets, _ = cutmix_reference(original, labels, params.perm, params.boxes, 10, 0.1)
    check("cutmix_ mixed in place", out is images)
    check("cutmix_ kept channels_last", out.is_contiguous(memory_format=torch.channels_last))
    check("cutmix_ images equal the reference", torch.equal(out, want))
    check("cutmix_ targets equal the reference", torch.equal(targets.cpu(), want_targets))

    images = torch.rand(8, 3, 32, 32, device=device)
    original = images.clone()
    _, targets, params = cutmix_ext.mixup_(images, labels, num_classes=10, return_params=True)
    want, want_targets = mixup_reference(original, labels, params.perm, params.lam, 10)
    say(f"\nMixUp, one lam = {float(params.lam[0]):.4f} for the batch, roll pairing, float32:")
    check("mixup_ images equal the reference", torch.equal(images, want))
    check("mixup_ targets equal the reference", torch.equal(targets.cpu(), want_targets))
    say()
    if failed:
        sys.exit(f"demo on {device}: FAILED: " + "; ".join(failed))
    print(f"demo on {device}: cutmix_ (uint8 channels_last, per-sample boxes) and mixup_ (float32) "
          f"equal the pure-PyTorch reference")


if __name__ == "__main__":
    main()
