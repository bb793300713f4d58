"""sampling="device" on a real GPU: every replay of a captured CUDA graph draws new parameters,
reproducibly under a seed, and the images are mixed with exactly the parameters reported. The
kernels' drawing code is also checked without a GPU, in test_cuda_emulated.py."""
import pytest
import torch
from conftest import needs_cuda
from helpers import rand_images, rand_labels

import cutmix_ext

pytestmark = needs_cuda


def replay_on_cpu(op, images, labels, params, k, eps):
    """The CPU backend applied to the reported parameters."""
    cpu = cutmix_ext.MixParams(params.perm.cpu(), None if params.boxes is None else params.boxes.cpu(),
                               params.lam.cpu(), params.size)
    out = images.cpu().clone()
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    _, targets = fn(out, labels.cpu(), k, params=cpu, label_smoothing=eps)
    return out, targets


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_eager_device_sampling_matches_its_params(op, gen):
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    for dtype in [torch.uint8, torch.bfloat16, torch.float32]:
        images = rand_images((32, 3, 40, 48), dtype, gen, "cuda")
        labels = rand_labels(32, 10, "int64", gen, "cuda")
        before = images.clone()
        _, targets, params = fn(images, labels, 10, sampling="device", per_sample=True,
                                pairing="random", label_smoothing=0.1, return_params=True)
        assert params.perm.is_cuda and params.lam.is_cuda
        want, t_want = replay_on_cpu(op, before, labels, params, 10, 0.1)
        assert torch.equal(images.cpu(), want) and torch.equal(targets.cpu(), t_want)


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_graph_replays_draw_anew_and_reproducibly(op, gen):
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    static_images = rand_images((16, 3, 32, 32), torch.float32, gen, "cuda")
    static_labels = rand_labels(16, 10, "int64", gen, "cuda")
    source = rand_images((16, 3, 32, 32), torch.float32, gen, "cuda")

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside the capture, as torch requires
        static_images.copy_(source)
        fn(static_images, static_labels, 10, sampling="device", per_sample=True, pairing="random")
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_images.copy_(source)
        _, static_targets, static_params = fn(static_images, static_labels, 10, sampling="device",
                                              per_sample=True, pairing="random", return_params=True)

    def replays(seed):
        torch.cuda.manual_seed(seed)
        seen = []
        for _ in range(3):
            graph.replay()
            torch.cuda.synchronize()
            seen.append((static_images.clone(), static_targets.clone(),
                         [t.clone() for t in static_params[:3] if t is not None]))
        return seen

    first, again = replays(1234), replays(1234)
    for (img, tgt, prm), (img2, tgt2, prm2) in zip(first, again):
        assert torch.equal(img, img2) and torch.equal(tgt, tgt2)
        assert all(torch.equal(a, b) for a, b in zip(prm, prm2))
    assert not torch.equal(first[0][2][-1], first[1][2][-1]), "two replays drew the same lam"
    if op == "cutmix":
        assert not torch.equal(first[0][2][1], first[1][2][1]), "two replays drew the same boxes"
    for img, tgt, prm in first:  # each replay mixed with what it reported
        params = cutmix_ext.MixParams(prm[0], prm[1] if op == "cutmix" else None, prm[-1], (32, 32))
        want, t_want = replay_on_cpu(op, source, static_labels, params, 10, 0.0)
        assert torch.equal(img.cpu(), want) and torch.equal(tgt.cpu(), t_want)


def test_host_sampling_under_capture_is_refused(gen):
    images = rand_images((8, 3, 16, 16), torch.float32, gen, "cuda")
    labels = rand_labels(8, 4, "int64", gen, "cuda")
    params = cutmix_ext.sample_params(images, "cutmix", generator=gen)
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(ValueError, match="params: drawn on the host, they would be frozen into the CUDA graph"):
        with torch.cuda.graph(graph):
            cutmix_ext.cutmix_(images, labels, 4, params=params)


def test_reduce_overhead_compile_draws_each_step(gen):
    def step(x, y):
        x, t = cutmix_ext.cutmix_(x, y, 10, sampling="device", per_sample=True, pairing="random")
        return x.mean(), t

    compiled = torch.compile(step, mode="reduce-overhead", fullgraph=True)
    x = rand_images((16, 3, 32, 32), torch.float32, gen, "cuda")
    y = rand_labels(16, 10, "int64", gen, "cuda")
    targets = [compiled(x.clone(), y)[1].clone() for _ in range(4)]
    assert not torch.equal(targets[-1], targets[-2])


def test_device_sampling_bad_input(gen):
    images = rand_images((8, 3, 16, 16), torch.float32, gen, "cuda")
    labels = rand_labels(8, 4, "int64", gen, "cuda")
    before = images.clone()
    with pytest.raises(ValueError, match="images: sampling=\"device\" mixes at most 1024"):
        cutmix_ext.cutmix_(rand_images((1025, 1, 2, 2), torch.float32, gen, "cuda"),
                           rand_labels(1025, 4, "int64", gen, "cuda"), 4, sampling="device")
    with pytest.raises(ValueError, match="images: requires grad"):
        cutmix_ext.cutmix_(images.clone().requires_grad_() * 1, labels, 4, sampling="device")
    with pytest.raises(ValueError, match="sampling: expected 'host' or 'device'"):
        cutmix_ext.cutmix_(images, labels, 4, sampling="gpu")
    with pytest.raises(ValueError, match="generator: expected a CUDA torch.Generator"):
        cutmix_ext.cutmix_(images, labels, 4, sampling="device", generator=torch.Generator())
    assert torch.equal(images, before)


@pytest.mark.parametrize("n", [8, 600])  # rows inline in the launch, and a pinned copy past 512
def test_out_of_place_under_capture_is_refused(n, gen):
    """The out-of-place op and every backward take host parameters too: under capture they would
    be frozen into the graph (or copied from a buffer freed after it), so they are refused."""
    x = rand_images((n, 3, 8, 8), torch.float32, gen, "cuda")
    params = cutmix_ext.sample_params(x, "cutmix", per_sample=True, pairing="random", generator=gen)
    before = x.clone()
    for fn in (lambda: cutmix_ext.cutmix(x, params), lambda: cutmix_ext.mixup(x, params._replace(boxes=None))):
        graph = torch.cuda.CUDAGraph()
        with pytest.raises(ValueError, match="params: drawn on the host, they would be frozen into the CUDA graph"):
            with torch.cuda.graph(graph):
                fn()
    # The forward outside, the backward under capture. The engine runs a backward on the stream
    # of its forward, so the forward runs on the stream that is then captured (from the default
    # stream, torch itself refuses: "operation would make the legacy stream depend on a capturing
    # blocking stream").
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        leaf = x.clone().requires_grad_()
        out = cutmix_ext.cutmix(leaf, params)
        seed = torch.ones_like(out)
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(ValueError, match="params: drawn on the host, they would be frozen into the CUDA graph"):
        with torch.cuda.graph(graph, stream=stream):
            out.backward(seed)
    assert torch.equal(x, before)
