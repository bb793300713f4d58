"""Mixing uint8 batches inside a DataLoader's collate_fn, in worker processes (forked after the
parent has used its own threads)."""
import torch
from torch.utils.data import DataLoader, Dataset

import cutmix_ext
from cutmix_ext.reference import cutmix_reference


class Images(Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (n, 3, 20, 24), dtype=torch.uint8, generator=g)
        self.labels = torch.randint(0, 10, (n,), generator=g)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def collate(samples):
    images = torch.stack([s[0] for s in samples]).contiguous(memory_format=torch.channels_last)
    labels = torch.stack([s[1] for s in samples])
    original = images.clone()
    _, targets, params = cutmix_ext.cutmix_(images, labels, 10, per_sample=True, pairing="random",
                                            return_params=True)
    return original, images, labels, targets, params


def test_cutmix_in_collate_with_workers(gen):
    data = Images(64, int(torch.randint(1 << 30, (1,), generator=gen)))
    cutmix_ext.cutmix_(torch.rand(256, 3, 64, 64), torch.zeros(256, dtype=torch.int64), 2)  # parent threads
    loader = DataLoader(data, batch_size=16, num_workers=2, collate_fn=collate,
                        generator=torch.Generator().manual_seed(0))
    seen = 0
    for original, images, labels, targets, params in loader:
        want, want_targets, _ = cutmix_reference(original, labels, params.perm, params.boxes, 10)
        assert torch.equal(images, want) and torch.equal(targets, want_targets)
        assert images.is_contiguous(memory_format=torch.channels_last)
        seen += len(labels)
    assert seen == 64
