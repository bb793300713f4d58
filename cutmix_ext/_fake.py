"""Fake (meta) kernels: output shapes and dtypes without running anything, which is what lets
torch.compile and torch.export trace the ops."""
import torch

__all__ = []


def _on_host(**params):
    # The kernels read the parameters on the host; anywhere else (meta, CUDA) the call would
    # reach this kernel instead of the real one and return nothing mixed.
    for name, t in params.items():
        if t is not None and t.device.type != "cpu":
            raise ValueError(f"params.{name}: expected a CPU tensor, got {t.device}")


def _targets(images, labels, num_classes):
    k = labels.shape[1] if labels.dim() == 2 else num_classes
    return images.new_empty((images.shape[0], k), dtype=torch.float32)


@torch.library.register_fake("cutmix_ext::cutmix_")
def _cutmix_fake(images, labels, perm, boxes, num_classes, label_smoothing):
    _on_host(perm=perm, boxes=boxes)
    return _targets(images, labels, num_classes)


@torch.library.register_fake("cutmix_ext::mixup_")
def _mixup_fake(images, labels, perm, lam, num_classes, label_smoothing):
    _on_host(perm=perm, lam=lam)
    return _targets(images, labels, num_classes)


@torch.library.register_fake("cutmix_ext::mix_")
def _mix_fake(images, labels, perm, boxes, lam, kind, fill, num_classes, label_smoothing):
    _on_host(perm=perm, boxes=boxes, lam=lam, mode=kind)
    if labels is None:
        return images.new_empty((images.shape[0], 0), dtype=torch.float32)
    return _targets(images, labels, num_classes)


def _gather_out(x):
    # The rule of out_format in csrc/plan.cpp.
    fmt = torch.contiguous_format
    if not x.is_contiguous():
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            fmt = torch.channels_last
        elif x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
            fmt = torch.channels_last_3d
    return torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=fmt)


@torch.library.register_fake("cutmix_ext::cutmix")
def _cutmix_out_fake(x, perm, boxes, transpose=False):
    _on_host(perm=perm, boxes=boxes)
    return _gather_out(x)


@torch.library.register_fake("cutmix_ext::mixup")
def _mixup_out_fake(x, perm, lam, transpose=False):
    _on_host(perm=perm, lam=lam)
    return _gather_out(x)


@torch.library.register_fake("cutmix_ext::sample")
def _sample_fake(n, height, width, alpha, cutmix, per_sample, pairing, generator=None):
    return (torch.empty(n, dtype=torch.int64),
            torch.empty((n if cutmix else 0, 4), dtype=torch.int64),
            torch.empty(n, dtype=torch.float64))


@torch.library.register_fake("cutmix_ext::sample_timm")
def _sample_timm_fake(n, height, width, mixup_alpha, cutmix_alpha, cutmix_minmax, prob, switch_prob,
                      mode, correct_lam, generator=None):
    return (torch.empty(n, dtype=torch.int64), torch.empty((n, 4), dtype=torch.int64),
            torch.empty(n, dtype=torch.float64), torch.empty(n, dtype=torch.int8))


@torch.library.register_fake("cutmix_ext::choose")
def _choose_fake(sites, p, generator=None):
    return torch.empty((), dtype=torch.int64)


@torch.library.register_fake("cutmix_ext::mix_device_sampled_")
def _device_sampled_fake(images, labels, num_classes, label_smoothing, alpha, cutmix, per_sample,
                         pairing, generator=None):
    n = images.shape[0]
    return (_targets(images, labels, num_classes),
            images.new_empty((n,), dtype=torch.int64),
            images.new_empty((n if cutmix else 0, 4), dtype=torch.int64),
            images.new_empty((n,), dtype=torch.float64))


@torch.library.register_fake("cutmix_ext::detection_boxes")
def _detection_boxes_fake(boxes, idx, perm, patch, lam, height, width, min_visibility):
    _on_host(perm=perm, boxes=patch, lam=lam)
    # How many boxes are kept depends on their values: a size known only when run.
    r = torch.library.get_ctx().new_dynamic_size()
    return (boxes.new_empty((r, 4)), idx.new_empty((r,)), idx.new_empty((r,)),
            idx.new_empty((r,), dtype=torch.bool), boxes.new_empty((r,), dtype=torch.float32))


@torch.library.register_fake("cutmix_ext::detection_choose")
def _detection_choose_fake(boxes, idx, perm, candidates, height, width, min_visibility):
    _on_host(perm=perm, candidates=candidates)
    return perm.new_empty((perm.shape[0], 4), dtype=torch.int64)
