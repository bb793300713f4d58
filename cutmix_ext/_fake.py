"""Fake (meta) kernels: output shapes and dtypes without running anything, which is what lets
torch.compile and torch.export trace the ops."""
import torch

__all__ = []


def _targets(images, labels, num_classes):
    k = labels.shape[1] if labels.dim() == 2 else num_classes
    return images.new_empty((images.shape[0], k), dtype=torch.float32)


@torch.library.register_fake("cutmix_ext::cutmix_")
def _cutmix_fake(images, labels, perm, boxes, num_classes, label_smoothing):
    return _targets(images, labels, num_classes)


@torch.library.register_fake("cutmix_ext::mixup_")
def _mixup_fake(images, labels, perm, lam, num_classes, label_smoothing):
    return _targets(images, labels, num_classes)


@torch.library.register_fake("cutmix_ext::sample")
def _sample_fake(n, height, width, alpha, cutmix, per_sample, pairing, generator=None):
    return (torch.empty(n, dtype=torch.int64),
            torch.empty((n if cutmix else 0, 4), dtype=torch.int64),
            torch.empty(n, dtype=torch.float64))
