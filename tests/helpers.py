"""Random test inputs: fresh values each run, never all zeros."""
import torch

DTYPES = [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64]


def rand_images(shape, dtype, gen, device="cpu", layout="contiguous"):
    return to_layout(rand_values(shape, dtype, gen).to(device), layout, gen)


def rand_values(shape, dtype, gen):
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    return (torch.randn(shape, generator=gen, dtype=torch.float64) * 50).to(dtype)


# Views into a larger tensor whose other elements must stay untouched.
SLICERS = {
    "cropped": (lambda s: s[:-2] + (s[-2] + 3, s[-1] + 5), lambda t, s: t[..., 2:2 + s[-2], 1:1 + s[-1]]),
    "batch_slice": (lambda s: (2 * s[0],) + s[1:], lambda t, s: t[::2]),
}
LAYOUTS = ["contiguous", "channels_last", "cropped", "batch_slice"]


def to_layout(x, layout, gen=None):
    """Same values in another memory layout; the kernels must keep it."""
    if layout == "contiguous":
        return x.contiguous()
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
    grow, view = SLICERS[layout]
    big = rand_values(grow(tuple(x.shape)), x.dtype, gen).to(x.device)
    v = view(big, tuple(x.shape))
    v.copy_(x)
    return v


def outside_view(images, layout):
    """The elements of the base tensor that are not part of the view (None for plain layouts)."""
    if layout not in SLICERS or images._base is None:
        return None
    mask = torch.ones(images._base.shape, dtype=torch.bool)
    SLICERS[layout][1](mask, tuple(images.shape)).fill_(False)
    return images._base.cpu()[mask]

def rand_labels(n, k, kind, gen, device="cpu"):
    if kind in ("int64", "int32"):
        return torch.randint(0, k, (n,), generator=gen).to(getattr(torch, kind)).to(device)
    soft = torch.rand((n, k), generator=gen, dtype=torch.float64) + 0.01
    return (soft / soft.sum(1, keepdim=True)).to(getattr(torch, kind)).to(device)


def grid_boxes(m, h, w, gen):
    """(m, 4) float64 XYXY boxes on whole and half pixels (so that many edges meet the patches'
    edges exactly), some out of the image, some of zero width or height (NaN is refused)."""
    b = torch.randint(-4, 2 * max(h, w) + 4, (m, 4), generator=gen).double() / 2
    b = torch.cat((torch.minimum(b[:, :2], b[:, 2:]), torch.maximum(b[:, :2], b[:, 2:])), 1)
    if m > 3:
        b[0, 2] = b[0, 0]
        b[1, 3] = b[1, 1]
    return b
