"""The in-place kernels on the batch sizes people train with, and on the largest a call takes,
on a real GPU: per-sample boxes and lambdas, a random pairing, so every block's samples take from
partners whose positions other blocks own at the same time. The in-place result must equal the
out-of-place kernel's (which reads a separate input, so it cannot race) and the CPU backend's,
bit for bit, three times with fresh data: a race shows as a difference that comes and goes.
compute-sanitizer's racecheck sees shared memory only; the emulation's ownership tracer
(test_cuda_emulated.py) finds a byte two blocks touch on small batches; this runs the sizes
people train with, on the hardware."""
import pytest
import torch
from conftest import needs_cuda
from helpers import rand_images, rand_labels

import cutmix_ext

pytestmark = needs_cuda

K = 1000
CASES = [((256, 3, 224, 224), torch.float32, "contiguous"),
         ((1024, 3, 224, 224), torch.bfloat16, "channels_last"),
         ((8192, 3, 64, 64), torch.uint8, "contiguous")]  # the large tile: N > 2048


def case_id(v):
    return "x".join(map(str, v)) if isinstance(v, tuple) else str(v).replace("torch.", "")


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("shape,dtype,layout", CASES, ids=case_id)
def test_big_batches_in_place_equal_out_of_place_and_cpu(op, shape, dtype, layout, gen):
    inplace = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    out_of_place = cutmix_ext.cutmix if op == "cutmix" else cutmix_ext.mixup
    for _ in range(3):
        x = rand_images(shape, dtype, gen, "cuda", layout)
        labels = rand_labels(shape[0], K, "int64", gen, "cuda")
        params = cutmix_ext.sample_params(x, op, per_sample=True, pairing="random", alpha=0.7,
                                          generator=gen)
        mixed = x.clone()
        _, targets = inplace(mixed, labels, K, params=params, label_smoothing=0.1)
        gathered = out_of_place(x, params)
        on_cpu = x.cpu()
        _, t_cpu = inplace(on_cpu, labels.cpu(), K, params=params, label_smoothing=0.1)
        torch.cuda.synchronize()
        assert mixed.stride() == x.stride()
        assert torch.equal(mixed, gathered), "in place differs from the out-of-place kernel"
        assert torch.equal(mixed.cpu(), on_cpu), "CUDA differs from the CPU backend"
        assert torch.equal(targets.cpu(), t_cpu)
        changed = (mixed != x).flatten(1).any(1)
        assert changed.float().mean() > 0.5, "most samples should have changed"
