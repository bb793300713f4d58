"""Property test over memory layouts: any dim order, offsets and step slices. Each call either
refuses the layout with a ValueError naming `images` and writes nothing, or mixes exactly like
the reference and writes nothing outside the view. Contiguous and channels_last batches are
always accepted."""
import pytest
import torch

import cutmix_ext
from cutmix_ext.reference import cutmix_reference, mixup_reference

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@st.composite
def layouts(draw):
    ndim = draw(st.sampled_from([4, 5]))
    shape = [draw(st.integers(1, 5))] + [draw(st.integers(1, 3)) for _ in range(ndim - 3)]
    shape += [draw(st.integers(1, 7)), draw(st.integers(1, 7))]
    order = draw(st.permutations(list(range(ndim))))  # physical order, outermost first
    starts = [draw(st.integers(0, 1)) for _ in range(ndim)]
    steps = [draw(st.sampled_from([1, 1, 2])) for _ in range(ndim)]
    dtype = draw(st.sampled_from([torch.float32, torch.uint8, torch.float16]))
    op = draw(st.sampled_from(["cutmix", "mixup"]))
    per_sample = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return shape, order, starts, steps, dtype, op, per_sample, seed


def make_view(base, shape, order, starts, steps):
    logical = base.permute([order.index(d) for d in range(len(order))])
    return logical[tuple(slice(s, s + n * k, k) for n, s, k in zip(shape, starts, steps))]


@hypothesis.settings(max_examples=200, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.too_slow])
@hypothesis.given(layouts())
def test_any_layout_is_mixed_exactly_or_refused(case):
    shape, order, starts, steps, dtype, op, per_sample, seed = case
    gen = torch.Generator().manual_seed(seed)
    base_shape = [shape[d] * steps[d] + starts[d] for d in order]
    if dtype == torch.uint8:
        base = torch.randint(0, 256, base_shape, generator=gen, dtype=dtype)
    else:
        base = (torch.randn(base_shape, generator=gen) * 10).to(dtype)
    images = make_view(base, shape, order, starts, steps)
    assert tuple(images.shape) == tuple(shape)
    labels = torch.randint(0, 4, (shape[0],), generator=gen)
    params = cutmix_ext.sample_params(images, op, per_sample=per_sample, pairing="random", generator=gen)
    before = base.clone()
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    plain = images.is_contiguous() or (images.dim() == 4 and images.is_contiguous(memory_format=torch.channels_last)) \
        or (images.dim() == 5 and images.is_contiguous(memory_format=torch.channels_last_3d))
    try:
        fn(images, labels, 4, params=params)
    except ValueError as e:
        assert not plain, f"refused a plain layout: {e}"
        assert str(e).startswith("images: "), e
        assert torch.equal(base, before)
        return
    original = make_view(before, shape, order, starts, steps)
    if op == "cutmix":
        want = cutmix_reference(original, labels, params.perm, params.boxes, 4)[0]
    else:
        want = mixup_reference(original, labels, params.perm, params.lam, 4)[0]
    expected = before.clone()
    make_view(expected, shape, order, starts, steps).copy_(want)
    assert torch.equal(base, expected)
