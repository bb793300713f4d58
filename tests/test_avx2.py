"""The CPU blends have AVX2 loops chosen at run time and a portable loop
(CUTMIX_EXT_NO_AVX2=1): both must give the same bits, and the reference's."""
import os
import subprocess
import sys

import torch
from helpers import rand_images, rand_labels

import cutmix_ext
from cutmix_ext.reference import mixup_reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64]
# MixUp, then CutMix of the mixed batch, for every case saved in argv[1]
SCRIPT = """
import sys, torch, cutmix_ext
cases = torch.load(sys.argv[1], weights_only=False)
for images, labels, params, boxes in cases:
    cutmix_ext.mixup_(images, labels, 10, params=params)
    cutmix_ext.cutmix_(images, labels, 10, params=params._replace(boxes=boxes))
torch.save([c[0] for c in cases], sys.argv[2])
"""


def test_avx2_and_portable_loops_agree(gen, tmp_path):
    cases = []
    for dtype in DTYPES:
        # widths that leave tails after every vector width (8, 16 and 32 elements)
        images = rand_images((5, 3, 11, 37), dtype, gen).contiguous(memory_format=torch.channels_last)
        lam = torch.rand(5, generator=gen, dtype=torch.float64)
        params = cutmix_ext.MixParams(torch.randperm(5, generator=gen), None, lam, (11, 37))
        cases.append((images, rand_labels(5, 10, "int64", gen), params, torch.tensor([[1, 2, 6, 9]] * 5)))
    torch.save(cases, tmp_path / "in.pt")
    outs = {}
    for name, extra in (("avx2", {}), ("portable", {"CUTMIX_EXT_NO_AVX2": "1"})):
        env = {**os.environ, **extra, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
        subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "in.pt"), str(tmp_path / f"{name}.pt")],
                       check=True, env=env, cwd=ROOT)
        outs[name] = torch.load(tmp_path / f"{name}.pt")
    for (images, labels, params, _), fast, portable in zip(cases, outs["avx2"], outs["portable"]):
        assert torch.equal(fast, portable), images.dtype
        want = mixup_reference(images, labels, params.perm, params.lam, 10)[0]
        want[..., 2:9, 1:6] = want[params.perm][..., 2:9, 1:6]
        assert torch.equal(fast, want), images.dtype
