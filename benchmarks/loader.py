"""What the user feels: images per second out of a DataLoader whose collate_fn mixes uint8
224x224 batches in its 2 worker processes: torchvision's CutMix against cutmix_ext's, and timm's
FastCollateMixup against cutmix_ext's drop-in."""
import time

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

import cutmix_ext

try:
    from torchvision.transforms import v2
except ImportError:
    v2 = None
try:
    import timm.data.mixup as timm_mixup
except ImportError:
    timm_mixup = None

# timm's FastCollateMixup settings for both: CutMix or MixUp per sample ("elem"), timm's defaults
TIMM = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", label_smoothing=0.1)


class Images(Dataset):
    """uint8 3x224x224 images from a pool drawn once, so that loading costs next to nothing and the
    collate step (stacking, mixing, handing the batch to the main process) is what is measured."""

    def __init__(self, length, num_classes, pool=64):
        self.length, self.num_classes = length, num_classes
        self.pool = torch.randint(0, 256, (pool, 3, 224, 224), dtype=torch.uint8)

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        return self.pool[i % len(self.pool)], i % self.num_classes


class Collate:
    def __init__(self, how, num_classes):
        self.how, self.num_classes = how, num_classes
        self.tv = v2.CutMix(num_classes=num_classes) if how == "torchvision" else None
        if how == "timm":
            self.fast = timm_mixup.FastCollateMixup(**TIMM, num_classes=num_classes)
        elif how == "cutmix_ext timm":
            self.fast = cutmix_ext.transforms.FastCollateMixup(**TIMM, num_classes=num_classes)

    def __call__(self, batch):
        if self.how in ("timm", "cutmix_ext timm"):  # these stack the batch themselves
            return self.fast(batch)
        images, labels = default_collate(batch)
        if self.how == "none":
            return images, labels
        if self.how == "torchvision":
            return self.tv(images, labels)
        mix = cutmix_ext.cutmix_ if self.how == "cutmix_ext" else cutmix_ext.mixup_
        return mix(images, labels, self.num_classes)


def images_per_second(how, num_classes, batch_size, batches, workers):
    warm = 2 * workers
    loader = DataLoader(Images(batch_size * (batches + warm), num_classes), batch_size=batch_size,
                        num_workers=workers, collate_fn=Collate(how, num_classes))
    it = iter(loader)
    for _ in range(warm):  # the workers' start and first batches
        next(it)
    t = time.perf_counter()
    n = sum(images.shape[0] for images, _ in it)
    return n / (time.perf_counter() - t)


def run(num_classes, batches=30, batch_size=128, workers=2, rounds=2):
    # (name, collate, what it is compared with, note)
    configs = [("no mixing (default_collate)", "none", None, "the loader's own ceiling"),
               ("torchvision v2.CutMix", "torchvision", None, ""),
               ("cutmix_ext.cutmix_", "cutmix_ext", "torchvision", "in place in the worker's shared-memory batch"),
               ("cutmix_ext.mixup_", "cutmix_ext mixup", "torchvision", "torchvision's MixUp refuses uint8"),
               ("timm FastCollateMixup, elem", "timm", None, "timm's defaults, CutMix or MixUp per sample"),
               ("cutmix_ext.transforms.FastCollateMixup, elem", "cutmix_ext timm", "timm",
                "the same arguments, one call of the op")]
    missing = {"torchvision"} if v2 is None else set()
    missing |= {"timm"} if timm_mixup is None else set()
    configs = [c for c in configs if c[1] not in missing]
    best = {how: 0.0 for _, how, _, _ in configs}
    for _ in range(rounds):  # the configurations take turns, so a slow spell hits them alike
        for _, how, _, _ in configs:
            best[how] = max(best[how], images_per_second(how, num_classes, batch_size, batches, workers))
    names = {how: name for name, how, _, _ in configs}
    rows = [dict(name=name, images_per_s=best[how], note=note,
                 vs=None if base not in best else (names[base], best[how] / best[base]))
            for name, how, base, note in configs]
    head = (f"uint8 {batch_size}x3x224x224 batches, num_workers={workers}, mixing in collate_fn; "
            f"{batches} batches timed after {2 * workers} warm-up ones, best of {rounds} rounds taken in turn.")
    return head, rows
