"""The CUDA kernels' own code, compiled for the host and run on the CPU (tests/emulation: one
std::thread per CUDA thread, std::barrier for __syncthreads), against the CPU backend bit for bit.
This checks the kernels' indexing, chunking, partial chunks, tables and barrier placement on a
machine without a GPU; where there is one, the real kernels are tested instead (test_mix.py)."""
import glob
import os
import random

import pytest
import torch
from conftest import CUDA
from helpers import DTYPES, grid_boxes, rand_images, rand_labels

import cutmix_ext
from cutmix_ext.reference import cutmix_reference, mixup_reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cuda_include():
    for prefix in [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda",
                   *sorted(glob.glob("/usr/local/cuda-*"), reverse=True)]:
        if prefix and os.path.isfile(os.path.join(prefix, "include", "cuda_runtime_api.h")):
            return os.path.join(prefix, "include")
    return None


pytestmark = [
    pytest.mark.skipif(CUDA, reason="a GPU is present: the real kernels are tested"),
    pytest.mark.skipif(cuda_include() is None, reason="no CUDA toolkit headers"),
]


def sanitizer_flags():
    """CUTMIX_SANITIZE=address,undefined or thread (scripts/sanitize.sh): the emulated kernels
    built with that sanitizer, into a build folder of their own."""
    which = os.environ.get("CUTMIX_SANITIZE", "")
    if not which:
        return [], ""
    return [f"-fsanitize={which}", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all", "-g"], \
        "-" + which.replace(",", "-")


@pytest.fixture(scope="module")
def emulated():
    from torch.utils.cpp_extension import load

    flags, suffix = sanitizer_flags()
    # One folder per torch: torch 2.14 keeps a lock file there that torch 2.13 waits on forever.
    build = os.path.join(ROOT, "build", f"emulation-torch-{torch.__version__}{suffix}")
    os.makedirs(build, exist_ok=True)
    load(name="cutmix_ext_emulated", sources=[os.path.join(ROOT, "tests", "emulation", "emulate.cpp"),
                                              os.path.join(ROOT, "csrc", "plan.cpp")],
         extra_include_paths=[cuda_include()], extra_cflags=["-O1", "-std=c++20", "-pthread"] + flags,
         extra_ldflags=["-pthread"] + flags, build_directory=build, is_python_module=False)
    return torch.ops.cutmix_ext_emulated.mix


@pytest.fixture(autouse=True)
def block_order(emulated, gen):
    """Each test runs the emulated blocks in an order of its own (from its seed) on a device of
    two SMs: the kernels own disjoint positions, so no order may change a bit."""
    torch.ops.cutmix_ext_emulated.configure(int(torch.randint(1 << 62, (1,), generator=gen)), 2)


def both(emulated, op, images, labels, params, k, eps, table_in_memory=False):
    """(emulated images, emulated targets, CPU-backend images, CPU-backend targets)."""
    on_kernels = images.clone()
    on_cpu = images.clone()
    second = params.boxes if op == "cutmix" else params.lam
    t_kernels = emulated(op == "cutmix", on_kernels, labels, params.perm, second, k, eps, table_in_memory)
    fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
    _, t_cpu = fn(on_cpu, labels, k, params=params, label_smoothing=eps)
    return on_kernels, t_kernels, on_cpu, t_cpu


CASES = [  # (shape, per_sample, pairing): small images keep the emulated grids small
    ((1, 3, 5, 7), False, "roll"),
    ((5, 3, 9, 16), True, "random"),
    ((17, 2, 8, 8), False, "flip"),
    ((40, 1, 6, 12), True, "random"),   # more than 16 samples: several slots per position
    ((3, 2, 3, 6, 8), True, "flip"),    # video
    ((700, 1, 2, 16), True, "random"),  # many slots, few positions
    ((1000, 1, 1, 4), True, "random"),  # more than 960 samples: the table from memory
    ((2051, 1, 1, 3), True, "random"),  # more than 2048: the large tile, chunks in shared memory
]


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "cropped"])
def test_kernels_match_cpu_backend(emulated, op, dtype, layout, gen):
    for shape, per_sample, pairing in CASES:
        if layout == "channels_last" and len(shape) == 5:
            continue
        images = rand_images(shape, dtype, gen, "cpu", layout)
        labels = rand_labels(shape[0], 7, random.choice(["int64", "int32", "float32", "bfloat16"]), gen)
        params = cutmix_ext.sample_params(images, op, pairing=pairing, per_sample=per_sample,
                                          alpha=0.6, generator=gen)
        for table_in_memory in [False, True]:
            got, t_got, want, t_want = both(emulated, op, images, labels, params, 7, 0.1, table_in_memory)
            assert torch.equal(got, want), (shape, per_sample, pairing)
            assert torch.equal(t_got, t_want), (shape, per_sample, pairing)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.float64], ids=str)
def test_cutmix_edge_boxes_and_unaligned_chunks(emulated, dtype, gen):
    """Boxes whose edges cut 16-byte chunks, touch the borders, are empty or full."""
    n, h, w = 9, 5, 19
    images = rand_images((n, 3, h, w), dtype, gen)
    labels = rand_labels(n, 4, "int64", gen)
    boxes = torch.tensor([[0, 0, w, h], [0, 0, 0, 0], [1, 1, 18, 4], [3, 0, 4, 5], [w - 1, h - 1, w, h],
                          [5, 2, 13, 3], [0, 4, 17, 5], [2, 1, 2, 4], [7, 0, 16, 5]])
    lam = 1 - ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).double() / (h * w)
    for perm in [torch.randperm(n, generator=gen), torch.arange(n).roll(1)]:
        params = cutmix_ext.MixParams(perm, boxes, lam)
        got, t_got, _, _ = both(emulated, "cutmix", images, labels, params, 4, 0.0)
        want, t_want, _ = cutmix_reference(images, labels, perm, boxes, 4)
        assert torch.equal(got, want) and torch.equal(t_got, t_want)


def test_mixup_against_reference(emulated, gen):
    images = rand_images((6, 3, 14, 14), torch.float32, gen)  # 56-byte rows: rows merged to one
    labels = rand_labels(6, 5, "int64", gen)
    params = cutmix_ext.sample_params(images, "mixup", per_sample=True, pairing="random", generator=gen)
    got, t_got, _, _ = both(emulated, "mixup", images, labels, params, 5, 0.2)
    want, t_want = mixup_reference(images, labels, params.perm, params.lam, 5, 0.2)
    assert torch.equal(got, want) and torch.equal(t_got, t_want)


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_bad_label_in_kernel_writes_nothing_and_nan_targets(emulated, op, gen):
    """On CUDA the host does not read the labels (that would need a sync): an out-of-range
    class index makes the kernel write no pixel and NaN targets."""
    images = rand_images((8, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(8, 5, "int64", gen)
    bad = labels.clone()
    bad[5] = random.choice([5, -1])
    before = images.clone()
    for per_sample in [False, True]:
        params = cutmix_ext.sample_params(images, op, per_sample=per_sample, generator=gen)
        second = params.boxes if op == "cutmix" else params.lam
        targets = emulated(op == "cutmix", images, labels, params.perm, second, 5, 0.0, False, bad)
        assert torch.isnan(targets).all()
        assert torch.equal(images, before)
        targets = emulated(op == "cutmix", images, labels, params.perm, second, 5, 0.0, False, labels)
        assert not torch.isnan(targets).any()
        before = images.clone()


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "cropped"])
def test_gather_kernel_matches_cpu_backend(emulated, op, dtype, layout, gen):
    """The out-of-place kernel and its transposed (backward) form, bit for bit."""
    gather = torch.ops.cutmix_ext_emulated.gather
    fn = torch.ops.cutmix_ext.cutmix if op == "cutmix" else torch.ops.cutmix_ext.mixup
    # up to 64 rows in the small parameter block, up to 512 in the large one, then from memory
    for shape, per_sample, pairing in CASES[:5] + [((100, 1, 2, 8), True, "random"), ((600, 1, 2, 8), True, "random")]:
        if layout == "channels_last" and len(shape) == 5:
            continue
        x = rand_images(shape, dtype, gen, "cpu", layout)
        params = cutmix_ext.sample_params(x, op, pairing=pairing, per_sample=per_sample, alpha=0.6,
                                          generator=gen)
        second = params.boxes if op == "cutmix" else params.lam
        for transpose in [False, True] if dtype != torch.uint8 else [False]:
            want = fn(x, params.perm, second, transpose)
            for table_in_memory in [False, True]:
                got = gather(op == "cutmix", x, params.perm, second, transpose, table_in_memory)
                assert got.stride() == want.stride()
                assert torch.equal(got, want), (shape, per_sample, pairing, transpose)


@pytest.mark.parametrize("dtype", DTYPES + [torch.int64, torch.int16, torch.bool], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "cropped"])
def test_general_kernel_matches_cpu_backend(emulated, dtype, layout, gen):
    """The per-sample paste / blend / fill kernel (op `mix_`), bit for bit, with and without
    labels, the table inline or in memory; integer images paste and fill only."""
    from test_general import rand_general, rand_mask

    elem = torch.ops.cutmix_ext_emulated.elem
    modes = (0, 1, 2) if dtype.is_floating_point or dtype == torch.uint8 else (0, 2)
    for shape in [(1, 3, 5, 7), (7, 3, 9, 16), (12, 2, 6, 33), (40, 1, 3, 8)]:
        if dtype.is_floating_point or dtype == torch.uint8:
            x = rand_images(shape, dtype, gen, "cpu", layout)
        else:
            x = rand_mask(shape, dtype, gen)
            x = x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x
        p = rand_general(shape[0], shape[-2], shape[-1], gen, modes)
        labels = rand_labels(shape[0], 5, "int64", gen) if modes == (0, 1, 2) else None
        want = x.clone()
        _, t_want = cutmix_ext.mix_(want, labels, p, 5 if labels is not None else None,
                                    label_smoothing=0.1, fill=1)
        for table_in_memory in [False, True]:
            got = x.clone()
            t_got = elem(got, labels, p.perm, p.boxes, p.lam, p.mode, 1.0,
                         5 if labels is not None else None, 0.1, table_in_memory)
            assert torch.equal(got, want), (shape, table_in_memory)
            if labels is not None:
                assert torch.equal(t_got, t_want)


# ---- sampling="device": the kernels draw their own parameters (CUDA graphs) ----

def test_philox_stream_is_torchs(emulated):
    """The kernels' Philox4x32-10 gives the words of torch's at::Philox4_32 (which curand and
    torch's CUDA generator share) for the same seed, subsequence and offset."""
    words = torch.ops.cutmix_ext_emulated.philox_words
    for seed, subsequence, offset in [(0, 0, 0), (random.getrandbits(63), random.getrandbits(20), random.getrandbits(30)),
                                      (2**63 - 1, 2**40 + 3, 2**32 - 1)]:
        ours, torchs = words(seed, subsequence, offset, 37)
        assert torch.equal(ours, torchs)
        assert len(set(ours.tolist())) > 30


PAIRING_CODE = {"roll": 0, "flip": 1, "random": 2}


def drawn(op, images, labels, k, alpha, per_sample, pairing, seed, offset, captured=False, intragraph=0):
    return torch.ops.cutmix_ext_emulated.mix_drawn(op == "cutmix", images, labels, k, 0.1, alpha, per_sample,
                                                   PAIRING_CODE[pairing], seed, offset, captured, intragraph)


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.bfloat16, torch.float32], ids=str)
def test_device_sampling_applies_what_it_reports(emulated, op, dtype, gen):
    """Replaying the reported (perm, boxes, lam) through the CPU backend gives the same bits."""
    for shape, per_sample, pairing in [((6, 3, 9, 11), True, "random"), ((5, 2, 7, 8), False, "roll"),
                                       ((33, 1, 4, 6), True, "flip"), ((1, 3, 5, 5), True, "random")]:
        images = rand_images(shape, dtype, gen)
        labels = rand_labels(shape[0], 7, "int64", gen)
        mixed = images.clone()
        seed, offset = random.getrandbits(62), 4 * random.getrandbits(20)
        targets, perm, boxes, lam = drawn(op, mixed, labels, 7, 0.8, per_sample, pairing, seed, offset)
        assert sorted(perm.tolist()) == list(range(shape[0]))
        assert ((lam >= 0) & (lam <= 1)).all()
        if not per_sample:
            assert (lam == lam[0]).all()
        if pairing != "random":
            want_perm = torch.arange(shape[0]).roll(1) if pairing == "roll" else torch.arange(shape[0]).flip(0)
            assert torch.equal(perm, want_perm)
        params = cutmix_ext.MixParams(perm, boxes if op == "cutmix" else None, lam)
        replay = images.clone()
        fn = cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_
        _, t_replay = fn(replay, labels, 7, params=params, label_smoothing=0.1)
        assert torch.equal(mixed, replay) and torch.equal(targets, t_replay)


def test_device_sampling_is_a_function_of_seed_and_offset(emulated, gen):
    """Same state, same draw (reproducible under a seed); a new offset, as each replay of a
    captured graph gets, a new draw; captured (pointer) state reads like the plain one."""
    images = rand_images((16, 3, 12, 12), torch.float32, gen)
    labels = rand_labels(16, 5, "int64", gen)
    seed = random.getrandbits(62)
    runs = [drawn("cutmix", images.clone(), labels, 5, 1.0, True, "random", seed, off) for off in (0, 0, 4 * kdraw(), 8 * kdraw())]
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not torch.equal(runs[0][2], runs[2][2]) and not torch.equal(runs[2][2], runs[3][2])
    assert not torch.equal(runs[0][0], runs[2][0])
    captured = drawn("cutmix", images.clone(), labels, 5, 1.0, True, "random", seed, 4 * kdraw(), True, 4 * kdraw())
    assert all(torch.equal(a, b) for a, b in zip(captured, runs[3]))
    other_seed = drawn("cutmix", images.clone(), labels, 5, 1.0, True, "random", seed + 1, 0)
    assert not torch.equal(other_seed[2], runs[0][2])


def kdraw():
    return 1024  # kDrawWords: the words each call reserves in torch's CUDA generator


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_device_sampling_statistics(emulated, alpha):
    """Fixed seeds: the device lam follows Beta(alpha, alpha) and the exact-area lam of the paper's
    box (KS against independent samplers), box centres cover the image, random pairings differ."""
    from test_sampler import ks_critical, ks_statistic, paper_boxes

    n, h, w = 1024, 1, 1
    images = torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(1))
    labels = torch.zeros(n, dtype=torch.int64)
    _, perm, _, lam = drawn("mixup", images, labels, 2, alpha, True, "random", 12345, 0)
    beta = torch.distributions.Beta(torch.tensor(alpha), torch.tensor(alpha))
    torch.manual_seed(3)
    ref = beta.sample((20000,)).double()
    assert ks_statistic(lam, ref) < ks_critical(n, len(ref))
    lams, centres = [], []
    for k in range(4):
        imgs = torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(k))
        _, perm, boxes, lam = drawn("cutmix", imgs, labels, 2, alpha, True, "random", 777, 4 * kdraw() * k)
        lams.append(lam)
        centres.append(boxes)
        assert (perm != torch.arange(n)).float().mean() > 0.9
    lam = torch.cat(lams)
    ref = paper_boxes(20000, 32, 32, alpha, torch.Generator().manual_seed(5))
    assert ks_statistic(lam, ref) < ks_critical(len(lam), len(ref))
    b = torch.cat(centres)
    # the box corners against the paper's formula drawn with torch's own samplers
    g = torch.Generator().manual_seed(9)
    m = 20000
    ref_lam = torch.distributions.Beta(torch.tensor(alpha), torch.tensor(alpha)).sample((m,)).double()
    r = 0.5 * torch.sqrt(1 - ref_lam)
    rx, ry = torch.randint(32, (m,), generator=g), torch.randint(32, (m,), generator=g)
    ref = [(rx - (r * 32).long()).clamp(min=0), (ry - (r * 32).long()).clamp(min=0),
           (rx + (r * 32).long()).clamp(max=32), (ry + (r * 32).long()).clamp(max=32)]
    for j in range(4):
        assert ks_statistic(b[:, j], ref[j]) < ks_critical(len(b), m), j


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_detection_kernel_matches_cpu_backend(emulated, op, gen):
    """The detection_boxes kernel (one block, chunks of 256 boxes) against the CPU op, element
    for element: fewer boxes than a chunk, exactly one, across several; in any order of samples."""
    kernel, cpu = torch.ops.cutmix_ext_emulated.detection_boxes, torch.ops.cutmix_ext.detection_boxes
    for m in [0, 1, 7, 255, 256, 257, 600, 1300]:
        n = int(torch.randint(1, 70, (), generator=gen))
        h, w = (int(v) for v in torch.randint(1, 40, (2,), generator=gen))
        boxes = grid_boxes(m, h, w, gen)
        idx = torch.randint(0, n, (m,), generator=gen)
        if m % 2:
            idx = idx.sort().values  # as the list form and most flat forms come
        params = cutmix_ext.sample_params(torch.empty(n, 0, h, w), op, per_sample=True, pairing="random",
                                          generator=gen)
        patch = params.boxes if op == "cutmix" else None
        min_vis = random.choice([0.0, 0.25, 1.0, float(torch.rand((), generator=gen))])
        got = kernel(boxes, idx, params.perm, patch, params.lam, h, w, min_vis)
        want = cpu(boxes, idx, params.perm, patch, params.lam, h, w, min_vis)
        assert want[0].shape[0] > 0 or m < 8
        for name, g, e in zip(("boxes", "src", "dst", "own", "weights"), got, want):
            assert g.dtype == e.dtype and g.shape == e.shape, (m, name)
            assert torch.equal(g, e), (m, name)
    idx[3] = n  # a sample outside the batch: the kernel reports it and writes nothing
    with pytest.raises(ValueError, match="idx: a box belongs to a sample outside the batch"):
        kernel(boxes, idx, params.perm, patch, params.lam, h, w, 0.25)
