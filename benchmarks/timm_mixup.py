"""timm.data.Mixup against cutmix_ext.transforms.Mixup, side by side in one run (CPU, float32
64x3x224x224, the same arguments). python benchmarks/timm_mixup.py"""
import numpy as np
import torch
from torch.utils import benchmark
import timm.data.mixup as tm
from cutmix_ext.transforms import Mixup
torch.manual_seed(0); np.random.seed(0)
for mode in ["batch", "elem"]:
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, num_classes=1000)
    x = torch.rand(64, 3, 224, 224); y = torch.randint(0, 1000, (64,))
    ours, theirs = Mixup(**kw), tm.Mixup(**kw)
    t_o = benchmark.Timer("f(x, y)", globals=dict(f=ours, x=x, y=y)).blocked_autorange(min_run_time=2).median
    t_t = benchmark.Timer("f(x, y)", globals=dict(f=theirs, x=x, y=y)).blocked_autorange(min_run_time=2).median
    print(f"Mixup mode={mode} 64x3x224x224 f32 CPU: timm {t_t*1e3:.2f} ms, cutmix_ext {t_o*1e3:.2f} ms, {t_t/t_o:.1f}x")
