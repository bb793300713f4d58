"""The CUDA kernels' own code, compiled for the host and run on the CPU (tests/emulation: one
std::thread per CUDA thread, std::barrier for __syncthreads), against the CPU backend bit for bit.
This checks the kernels' indexing, chunking, partial chunks, tables and barrier placement on a
machine without a GPU; where there is one, the real kernels are tested instead (test_mix.py)."""
import glob
import os
import random
import re

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


def build_folder():
    # One folder per torch: torch 2.14 keeps a lock file there that torch 2.13 waits on forever.
    return os.path.join(ROOT, "build", f"emulation-torch-{torch.__version__}{sanitizer_flags()[1]}")


@pytest.fixture(scope="module")
def emulated():
    from torch.utils.cpp_extension import load

    flags, _ = sanitizer_flags()
    build = build_folder()
    os.makedirs(build, exist_ok=True)
    load(name="cutmix_ext_emulated", sources=[os.path.join(ROOT, "tests", "emulation", "emulate.cpp"),
                                              os.path.join(ROOT, "csrc", "plan.cpp")],
         extra_include_paths=[cuda_include()], extra_cflags=["-O1", "-std=c++20", "-pthread", "-ffp-contract=off"] + flags,
         extra_ldflags=["-pthread"] + flags, build_directory=build, is_python_module=False)
    return torch.ops.cutmix_ext_emulated.mix


@pytest.fixture(autouse=True)
def block_order(emulated, gen):
    """Each test runs the emulated blocks in an order of its own (from its seed) on a device of
    two SMs: the kernels own disjoint positions, so no order may change a bit."""
    torch.ops.cutmix_ext_emulated.configure(int(torch.randint(1 << 62, (1,), generator=gen)), 2)


def clone_layout(x):
    """A copy with x's strides and storage offset: clone() gives a view's copy (layout "cropped")
    contiguous strides."""
    base = x if x._base is None else x._base
    return base.clone().as_strided(x.shape, x.stride(), x.storage_offset())


def both(emulated, op, images, labels, params, k, eps, table_in_memory=False):
    """(emulated images, emulated targets, CPU-backend images, CPU-backend targets), each mixed
    in a copy of `images` that keeps its layout."""
    on_kernels = clone_layout(images)
    on_cpu = clone_layout(images)
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
    ((200, 2, 3, 8), True, "random"),   # the 256-row parameter block; 8-byte rows: heads, tails
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


# Rows that do not start on a 16-byte boundary in samples that do (the sample stride a multiple
# of 16 bytes): the kernels move each row as a head, whole 16-byte chunks and a tail. SSD300 and
# 300-wide fp16 (heights cut to keep the emulation quick), 14x14 feature maps, and 299 wide, whose
# samples lie at different phases and move element by element.
ODD_WIDTHS = [((3, 4, 300), torch.uint8), ((3, 2, 300), torch.float16), ((3, 2, 300), torch.bfloat16),
              ((8, 14, 14), torch.float32), ((8, 14, 14), torch.float16), ((8, 14, 14), torch.uint8),
              ((2, 3, 5), torch.float64), ((3, 2, 299), torch.uint8)]


def run_every_family(emulated, images, k, gen):
    """Each kernel family on `images` (CutMix and MixUp in place, the general op, the out-of-place
    form and its transpose), per-sample random pairing, the table inline and in memory, against
    the CPU backend bit for bit; the tracer and the shared-memory poison are on."""
    from test_general import rand_general

    n = images.shape[0]
    labels = rand_labels(n, k, "int64", gen)
    for op in ["cutmix", "mixup"]:
        params = cutmix_ext.sample_params(images, op, pairing="random", per_sample=True, alpha=1.0,
                                          generator=gen)
        second = params.boxes if op == "cutmix" else params.lam
        for table_in_memory in [False, True]:
            got, t_got, want, t_want = both(emulated, op, images, labels, params, k, 0.1, table_in_memory)
            assert torch.equal(got, want) and torch.equal(t_got, t_want), (op, images.shape, table_in_memory)
        fn = torch.ops.cutmix_ext.cutmix if op == "cutmix" else torch.ops.cutmix_ext.mixup
        for transpose in [False, True] if images.dtype != torch.uint8 else [False]:
            got = torch.ops.cutmix_ext_emulated.gather(op == "cutmix", images, params.perm, second, transpose, False)
            assert torch.equal(got, fn(images, params.perm, second, transpose)), (op, images.shape, transpose)
    p = rand_general(n, images.shape[-2], images.shape[-1], gen)
    want = clone_layout(images)
    _, t_want = cutmix_ext.mix_(want, labels, p, k, label_smoothing=0.1, fill=1)
    got = clone_layout(images)
    t_got = torch.ops.cutmix_ext_emulated.elem(got, labels, p.perm, p.boxes, p.lam, p.mode, 1.0, k, 0.1, False)
    assert torch.equal(got, want) and torch.equal(t_got, t_want), ("mix_", images.shape)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "cropped"])
@pytest.mark.parametrize("shape,dtype", ODD_WIDTHS, ids=lambda v: str(v))
def test_rows_off_16_byte_boundaries(emulated, shape, dtype, layout, gen):
    for n in [1, 5, 70]:
        run_every_family(emulated, rand_images((n,) + shape, dtype, gen, "cpu", layout), 6, gen)


@pytest.mark.parametrize("shape,dtype,layout,wide", [  # heights cut: the widths decide
    ((3, 8, 224), torch.uint8, "contiguous", True),
    ((3, 8, 300), torch.uint8, "contiguous", True),       # rows off 16 bytes, samples on them
    ((3, 8, 300), torch.uint8, "channels_last", True),
    ((3, 8, 300), torch.float16, "contiguous", True),
    ((64, 14, 14), torch.float32, "contiguous", True),
    ((3, 8, 300), torch.uint8, "cropped", False),         # a view into 3x11x305 samples
    ((3, 8, 299), torch.uint8, "contiguous", False),      # samples at different offsets
    ((3, 8, 225), torch.uint8, "contiguous", False),
], ids=str)
def test_which_chunk_each_shape_moves(emulated, shape, dtype, layout, wide, gen):
    """16-byte chunks (8 bytes for the general op on float64) wherever every sample's rows lie
    at one phase of 16 bytes, whatever the rows' width; one element a thread where samples lie at
    different phases. The result is checked too."""
    images = rand_images((2,) + shape, dtype, gen, "cpu", layout)
    labels = rand_labels(2, 4, "int64", gen)
    for op in ["cutmix", "mixup"]:
        params = cutmix_ext.sample_params(images, op, alpha=1.0, generator=gen)
        got, _, want, _ = both(emulated, op, images, labels, params, 4, 0.0)
        assert torch.equal(got, want)
        name = torch.ops.cutmix_ext_emulated.last_kernel()
        chunk = int(re.search(r"(?:CutMixOp|MixUpOp)<[^<>]+, (\d+)>", name).group(1))
        assert chunk == (16 if wide else images.element_size()), name
        second = params.boxes if op == "cutmix" else params.lam
        torch.ops.cutmix_ext_emulated.gather(op == "cutmix", images, params.perm, second, False, False)
        name = torch.ops.cutmix_ext_emulated.last_kernel()
        assert re.search(r"gather_kernel<[^,]+, (true|false),", name).group(1) == ("true" if wide else "false"), name


@pytest.mark.parametrize("n", [5, 2049])  # the small tile (heads and tails), the large one
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=str)
def test_bytes_beside_a_view_stay_untouched(emulated, n, dtype, gen):
    """A view whose rows end inside a chunk (13 bytes or 7 floats of rows of 16 elements, every
    row start aligned): each in-place family writes the view's bytes only and the rest of the
    tensor keeps its own, bit for bit."""
    from test_general import rand_general

    base = rand_images((n, 2, 3, 16), dtype, gen)
    w = 13 if dtype == torch.uint8 else 7
    labels = rand_labels(n, 5, "int64", gen)
    for op in ["cutmix", "mixup"]:
        params = cutmix_ext.sample_params(base[..., :w], op, pairing="random", per_sample=True, alpha=1.0,
                                          generator=gen)
        second = params.boxes if op == "cutmix" else params.lam
        got = base.clone()
        emulated(op == "cutmix", got[..., :w], labels, params.perm, second, 5, 0.1, False)
        want = base[..., :w].clone()
        (cutmix_ext.cutmix_ if op == "cutmix" else cutmix_ext.mixup_)(want, labels, 5, params=params)
        assert torch.equal(got[..., :w], want) and torch.equal(got[..., w:], base[..., w:]), op
    p = rand_general(n, 3, w, gen)
    got = base.clone()
    torch.ops.cutmix_ext_emulated.elem(got[..., :w], labels, p.perm, p.boxes, p.lam, p.mode, 1.0, 5, 0.1, False)
    want = base[..., :w].clone()
    cutmix_ext.mix_(want, labels, p, 5, label_smoothing=0.1, fill=1)
    assert torch.equal(got[..., :w], want) and torch.equal(got[..., w:], base[..., w:])


# Every batch size where the kernels change their tiling: the parameter blocks of 64, 256 and
# 960 rows, the drawn table's 1024, the small tile's 2048 (then the large one), with rows of 12
# bytes (uint8) and 20 bytes (float16): heads and tails in every row but the first.
TILE_EDGES = [63, 64, 65, 255, 256, 257, 959, 960, 961, 1023, 1024, 1025, 2047, 2048, 2049]


@pytest.mark.parametrize("dtype,width", [(torch.uint8, 12), (torch.float16, 10)], ids=str)
def test_rows_off_16_byte_boundaries_at_every_tile_edge(emulated, dtype, width, gen):
    for n in TILE_EDGES:
        run_every_family(emulated, rand_images((n, 1, 4, width), dtype, gen), 5, gen)


@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def test_bad_label_in_kernel_writes_nothing_and_nan_targets(emulated, op, gen):
    """On CUDA the host does not read the labels (that would need a sync): an out-of-range
    class index makes the kernel write no pixel and NaN targets."""
    images = rand_images((8, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(8, 5, "int64", gen)
    bad = labels.clone()
    bad[5] = random.choice([5, -1])
    before = clone_layout(images)
    for per_sample in [False, True]:
        params = cutmix_ext.sample_params(images, op, per_sample=per_sample, generator=gen)
        second = params.boxes if op == "cutmix" else params.lam
        targets = emulated(op == "cutmix", images, labels, params.perm, second, 5, 0.0, False, bad)
        assert torch.isnan(targets).all()
        assert torch.equal(images, before)
        targets = emulated(op == "cutmix", images, labels, params.perm, second, 5, 0.0, False, labels)
        assert not torch.isnan(targets).any()
        before = clone_layout(images)


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
        want = clone_layout(x)
        _, t_want = cutmix_ext.mix_(want, labels, p, 5 if labels is not None else None,
                                    label_smoothing=0.1, fill=1)
        for table_in_memory in [False, True]:
            got = clone_layout(x)
            t_got = elem(got, labels, p.perm, p.boxes, p.lam, p.mode, 1.0,
                         5 if labels is not None else None, 0.1, table_in_memory)
            assert torch.equal(got, want), (shape, table_in_memory)
            if labels is not None:
                assert torch.equal(t_got, t_want)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_self_pairs_are_kept_exactly(emulated, dtype, gen):
    """Samples paired with themselves come out of every kernel family as out of the CPU backend
    (which test_self_pairs.py holds to: unchanged), -0.0, infinities and NaN included; the
    others' blends of those values agree as numbers (a NaN's payload may differ)."""
    from test_self_pairs import bits, self_pairing, with_specials

    def same(a, b, fixed):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
        return torch.equal(bits(a[fixed]), bits(b[fixed]))

    elem = torch.ops.cutmix_ext_emulated.elem
    gather = torch.ops.cutmix_ext_emulated.gather
    for shape, per_sample in [((1, 3, 5, 7), False), ((1, 2, 4, 9), True), ((7, 3, 9, 16), True),
                              ((40, 1, 3, 8), True)]:
        n = shape[0]
        x = with_specials(rand_images(shape, dtype, gen), gen)
        labels = rand_labels(n, 7, "int64", gen)
        perm = self_pairing(n, gen)
        fixed = perm == torch.arange(n)
        for op in ["cutmix", "mixup"]:
            params = cutmix_ext.sample_params(x, op, per_sample=per_sample, pairing=perm, generator=gen)
            got, t_got, want, t_want = both(emulated, op, x, labels, params, 7, 0.1, per_sample)
            assert same(got, want, fixed) and torch.equal(t_got, t_want), (shape, op)
            if dtype != torch.uint8:
                second = params.boxes if op == "cutmix" else params.lam
                fn = torch.ops.cutmix_ext.cutmix if op == "cutmix" else torch.ops.cutmix_ext.mixup
                for transpose in [False, True]:
                    assert same(gather(op == "cutmix", x, perm, second, transpose, False),
                                fn(x, perm, second, transpose), fixed), (shape, op, transpose)
        mode = torch.randint(0, 3, (n,), generator=gen, dtype=torch.int8)
        general = cutmix_ext.sample_params(x, "cutmix", per_sample=True, pairing=perm, generator=gen)
        general = general._replace(mode=mode, lam=torch.rand(n, generator=gen, dtype=torch.float64))
        want = clone_layout(x)
        _, t_want = cutmix_ext.mix_(want, labels, general, 7, label_smoothing=0.1, fill=2)
        got = clone_layout(x)
        t_got = elem(got, labels, perm, general.boxes, general.lam, mode, 2.0, 7, 0.1, False)
        assert same(got, want, fixed) and torch.equal(t_got, t_want), shape


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
                                       ((4, 2, 4, 10), False, "flip"),  # rows off 16-byte boundaries
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
        # p < 1: samples left alone (an empty patch, lam = 1); "random" pairs some with themselves
        params = cutmix_ext.sample_params(torch.empty(n, 0, h, w), op, per_sample=True, pairing="random",
                                          generator=gen, p=random.choice([1.0, 0.6]))
        patch = params.boxes if op == "cutmix" else None
        min_vis = random.choice([0.0, 0.25, 1.0, float(torch.rand((), generator=gen))])
        got = kernel(boxes, idx, params.perm, patch, params.lam, h, w, min_vis)
        want = cpu(boxes, idx, params.perm, patch, params.lam, h, w, min_vis)
        assert want[0].shape[0] > 0 or m < 8
        for name, g, e in zip(("boxes", "src", "dst", "own", "weights"), got, want):
            assert g.dtype == e.dtype and g.shape == e.shape, (m, name)
            assert torch.equal(g, e), (m, name)
    idx[3] = n  # a sample outside the batch: the kernel reports it and writes nothing
    args = (params.perm, patch, params.lam, h, w, 0.25)
    same_refusal(kernel, cpu, (boxes, idx, *args), rf"idx: box 3 belongs to sample {n}, outside the batch")
    idx[3] = 0
    boxes[m - 2, 2] = boxes[m - 2, 0] - 0.5  # x2 < x1: reported, and the host names the row
    same_refusal(kernel, cpu, (boxes, idx, *args), rf"boxes: row {m - 2} \(x1, y1, x2, y2\) = .* is not a box")


def same_refusal(kernel, cpu, args, pattern):
    """The emulated kernel's op refuses what the CPU op refuses, with its message. (Where the
    compiler links a second C++ runtime into the emulation's module, as CI's does, its messages
    stop at the first number: they are then the start of the CPU op's.)"""
    with pytest.raises(ValueError, match=pattern) as on_cpu:
        cpu(*args)
    with pytest.raises(ValueError) as on_kernel:
        kernel(*args)
    message = str(on_kernel.value)
    assert len(message) > 8 and str(on_cpu.value).startswith(message), (message, str(on_cpu.value))


def test_detection_choose_kernel_matches_cpu_backend(emulated, gen):
    """rule="avoid"'s kernel (threads over the boxes mark the candidates, then threads over the
    samples choose) against the CPU op: past a block's worth of boxes and of samples."""
    kernel, cpu = torch.ops.cutmix_ext_emulated.detection_choose, torch.ops.cutmix_ext.detection_choose
    chosen = skipped = 0
    # then rounds of 9 boxes till some image took a patch and some was left alone (a draw may give
    # only one of the two)
    for r, m in enumerate([0, 1, 9, 256, 700] + [9] * 50):
        if r >= 5 and chosen > 0 and skipped > 0:
            break
        n = int(torch.randint(1, 300, (), generator=gen))
        k = int(torch.randint(1, 5, (), generator=gen))
        h, w = (int(v) for v in torch.randint(1, 60, (2,), generator=gen))
        boxes = grid_boxes(m, h, w, gen) / 4  # small boxes: many candidates stay clear of them
        idx = torch.randint(0, n, (m,), generator=gen)
        perm = torch.randperm(n, generator=gen)
        cands = cutmix_ext.sample_params(torch.empty(n * k, 0, h, w), "cutmix", per_sample=True,
                                         generator=gen).boxes.view(n, k, 4)
        min_vis = random.choice([0.0, 0.1, 0.5])
        got, want = kernel(boxes, idx, perm, cands, h, w, min_vis), cpu(boxes, idx, perm, cands, h, w, min_vis)
        assert torch.equal(got, want), m
        some = int(((want[:, 2] > want[:, 0]) & (want[:, 3] > want[:, 1])).sum())
        chosen, skipped = chosen + some, skipped + n - some
    assert chosen > 0 and skipped > 0
    boxes[5, 3] = float("nan")
    same_refusal(kernel, cpu, (boxes, idx, perm, cands, h, w, 0.1), r"boxes: row 5 .* is not a box")


class KernelOps:
    """torch.ops.cutmix_ext with the detection ops replaced by their CUDA kernels, emulated."""

    calls = set()

    def __getattr__(self, name):
        if name.startswith("detection_"):
            self.calls.add(name)
            return getattr(torch.ops.cutmix_ext_emulated, name)
        return getattr(torch.ops.cutmix_ext, name)


def test_detection_api_on_the_kernels(emulated, monkeypatch, gen):
    """cutmix_ext.detection end to end with its ops on the emulated CUDA kernels gives what it
    gives on the CPU backend (which the tests hold to the per-sample reference): a YOLO batch
    under both rules and under MixUp with p, self-pairs, and a bad box refused alike."""
    from cutmix_ext import detection as D
    from test_detection_rules import fixed_point_perm, same, snapshot, yolo_batch

    n, h, w = 9, 40, 48
    perm = fixed_point_perm(n, gen)
    cases = [(D.cutmix_, {"rule": "avoid", "pairing": "random"}), (D.cutmix_, {"pairing": perm}),
             (D.mixup_, {"p": 0.5, "pairing": perm}), (D.cutmix_, {"p": 0.5, "rule": "avoid", "candidates": 5})]
    for fn, kw in cases:
        batch = yolo_batch(n, h, w, gen)
        seed = int(torch.randint(1 << 40, (), generator=gen))
        on_cpu = fn(snapshot(batch), generator=torch.Generator().manual_seed(seed), return_params=True, **kw)
        with monkeypatch.context() as m:
            m.setattr(D, "_ops", KernelOps())
            on_kernels = fn(snapshot(batch), generator=torch.Generator().manual_seed(seed), return_params=True, **kw)
        assert same(on_kernels[0], on_cpu[0]) and same(tuple(on_kernels[1][:3]), tuple(on_cpu[1][:3])), kw
        assert len(on_cpu[0]["cls"]) > 0
    assert KernelOps.calls == {"detection_boxes", "detection_choose"}
    batch = yolo_batch(n, h, w, gen)
    batch["bboxes"][3, 2] = -0.25
    for rule in ("occlude", "avoid"):
        with monkeypatch.context() as m:
            m.setattr(D, "_ops", KernelOps())
            with pytest.raises(ValueError, match=r"batch\['bboxes'\]: box 3 \(cx, cy, w, h\) = .*-0.25"):
                D.cutmix_(batch, rule=rule)


# ---- The emulation's own checks: block ownership, shared memory poison, tile geometry ----
#
# Blocks run one after another in the emulation, so by themselves they could not show a byte
# two blocks race on, nor a read of shared memory a block never wrote (it would find the last
# block's value, often the right one). The harness traces every global access the kernels make
# through csrc/cuda/access.cuh and poisons shared memory before each block; the tests above run
# under both. These show that each catches what it claims to, on faults planted on purpose.

PLANTS = {"none": 0, "cross_read": 1, "cross_write": 2, "atomics": 3, "atomic_read": 4,
          "read_only_write": 5, "static_shared": 6, "dynamic_shared": 7}


def planted(name, seed, trace=True, poison=True):
    """(data, counter) of the harness's tiny kernel (4 blocks of 32 threads) with fault `name`."""
    ops = torch.ops.cutmix_ext_emulated
    ops.configure(seed, 2, trace, poison)
    try:
        return ops.planted(PLANTS[name])
    finally:
        ops.configure(seed, 2, True, True)


def planted_right(data):
    i = torch.arange(128, dtype=torch.int32)
    return data == 2 * i + 2 * (i % 32)


@pytest.mark.parametrize("name", ["none", "atomics"])
def test_tracer_passes_owned_bytes_and_atomics(emulated, name):
    """Blocks that touch only their own bytes pass, and so do atomics several blocks share."""
    for seed in range(4):
        data, counter = planted(name, seed)
        assert planted_right(data).all()
        assert int(counter) == (4 if name == "atomics" else 0)


@pytest.mark.parametrize("name, message", [
    ("cross_read", "byte 256 of data is written by block 2 and read by block 1"),
    ("cross_write", "byte 276 of data is written by block 1 and written by block 2"),
    ("atomic_read", "byte 0 of counter is updated atomically by block 0 and read by block 3"),
    ("read_only_write", "byte 20 of input is written by block 1, but input is an input the launch only reads"),
])
def test_tracer_fails_planted_cross_block_access(emulated, name, message):
    """One block reads or writes a byte another block writes (or reads a word others update
    atomically, or writes an input): an error naming the kernel, the byte and both blocks, the
    same whatever order the blocks ran in."""
    for seed in range(6):
        with pytest.raises(RuntimeError, match=r"emulated \{anonymous\}::planted_kernel: " + message):
            planted(name, seed)


def test_without_the_tracer_a_cross_block_read_passes_in_some_orders(emulated):
    """What the tracer closes: the planted read gives the right data whenever block 1 runs
    before block 2, so comparing results alone misses it in about half the block orders."""
    right = [bool(planted_right(planted("cross_read", seed, trace=False)[0]).all()) for seed in range(20)]
    assert any(right) and not all(right)


@pytest.mark.parametrize("name", ["static_shared", "dynamic_shared"])
def test_unwritten_shared_memory_reads_poison(emulated, name):
    """Thread 0 of block 2 skips its write to a static __shared__ array (or to the dynamic shared
    memory) and reads it back: poisoned, it reads 0xA5A5A5A5 and its result is wrong; without
    the poison it would read the previous block's (or fresh memory's) value, the right one."""
    for seed in range(4):
        data, _ = planted(name, seed)
        wrong = ~planted_right(data)
        assert wrong.nonzero().flatten().tolist() == [64]
        assert int(data[64]) == 128 + int(torch.tensor(0xA5A5A5A5 - (1 << 32), dtype=torch.int32))
        data, _ = planted(name, seed, poison=False)
        assert planted_right(data).all()


def test_every_static_shared_array_is_poisoned(emulated):
    """The poison covers the section that cuda_shim.h puts __shared__ arrays in; GCC silently
    leaves out those declared in templates. So every __shared__ array of the kernels (and of the
    planted kernel) must sit in that section of the built module."""
    import re
    import shutil
    import subprocess

    if shutil.which("nm") is None:
        pytest.skip("no nm (binutils)")
    names = set()
    for path in glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu*")) + [os.path.join(ROOT, "tests", "emulation", "emulate.cpp")]:
        with open(path) as f:
            for line in f:
                m = re.search(r"^\s*__shared__\s+[\w:<>, ]+?\s+(\w+)\s*[\[;]", line)
                if m:
                    names.add(m.group(1))
    assert {"keys", "sums", "bad", "rows", "cell"} <= names
    out = subprocess.run(["nm", "-C", "--defined-only", os.path.join(build_folder(), "cutmix_ext_emulated.so")],
                         capture_output=True, text=True, check=True).stdout
    symbols = [line.split(" ", 2) for line in out.splitlines() if line.count(" ") >= 2]
    start = next(int(a, 16) for a, _, name in symbols if name == "__start_cutmix_emu_shared")
    stop = next(int(a, 16) for a, _, name in symbols if name == "__stop_cutmix_emu_shared")
    for var in names:
        found = [(int(a, 16), name) for a, _, name in symbols if name.endswith(")::" + var)]
        assert found, var
        for address, name in found:
            assert start <= address < stop, f"{name} is outside the poisoned section"


def test_tracer_sees_the_real_kernels(emulated, gen):
    """Every byte the in-place MixUp kernel moves is logged: each sample's chunk and its
    partner's read, the chunk and the targets written; nothing of a sample paired with itself."""
    images = rand_images((6, 3, 8, 8), torch.float32, gen)
    labels = rand_labels(6, 5, "int64", gen)
    params = cutmix_ext.sample_params(images, "mixup", per_sample=True, pairing="random", generator=gen)
    targets = emulated(False, images, labels, params.perm, params.lam, 5, 0.0, False)
    read, written, atomic, blocks = torch.ops.cutmix_ext_emulated.last_trace()
    moved = int((params.perm != torch.arange(6)).sum()) * images[0].numel() * 4
    assert (read, written, atomic) == (2 * moved, moved + targets.numel() * 4, 0)
    assert blocks > 1


def test_tracer_fails_overlapping_rows_in_the_real_kernel(emulated, gen):
    """A fault planted in the in-place kernel's input: rows one element closer together than they
    are long, so that the last element of row 0 is the first of row 1. With 700 samples a block
    owns 2 positions (16-byte chunks here: row 0's tail, row 1's head), so bytes 16..31 of row 0
    fall to blocks 0 and 1 (row 1 starts at byte 28), which both write bytes 28..31 of the first
    image."""
    n = 700
    images = rand_images((n, 1, 2, 8), torch.float32, gen)
    labels = rand_labels(n, 3, "int64", gen)
    perm = torch.arange(n).roll(1)
    boxes = torch.tensor([[0, 0, 8, 2]]).expand(n, 4).contiguous()
    for _ in range(3):  # a new block order each call
        with pytest.raises(RuntimeError, match=r"mix_kernel<.*>: byte 28 of images is written by block 0 "
                                               r"and written by block 1"):
            emulated(True, images.clone(), labels, perm, boxes, 3, 0.0, True, None, True)
    emulated(True, images.clone(), labels, perm, boxes, 3, 0.0, True, None, False)  # unplanted: fine


def test_tile_geometry_for_every_batch_size(emulated):
    """kernels.cuh's own geometry(), boxed_geometry() and whole_geometry() for every N from 1 to
    8192 on each tile that takes it: slots and positions fit the block and the stash, and every
    (sample, position) is computed by exactly one thread of one block; chunks of every width
    cover each byte of a box's (or a row's) columns exactly once and never leave the row."""
    assert torch.ops.cutmix_ext_emulated.check_tiles(8192) > 8192


def test_draw_math_is_accurate(emulated):
    """The plain-arithmetic log, exp and cos(2 pi x) of the device draws (mix.h), which make the
    emulated draws the GPU's bit for bit, against the C library's: within 2 ulp (cos: 4e-16)."""
    import math

    g = torch.Generator().manual_seed(0)
    u = torch.cat([torch.rand(4000, generator=g, dtype=torch.float64),
                   torch.tensor([2.0**-53, 0.5, 1 - 2.0**-53, 0.25, 0.125, 0.375, 0.75, 0.875, 1.0, 0.0],
                                dtype=torch.float64)])
    logs, _, cosines = torch.ops.cutmix_ext_emulated.draw_math(u)
    wide = torch.cat([torch.exp(torch.empty(4000, dtype=torch.float64).uniform_(-740, 700, generator=g)),
                      torch.tensor([5e-324, 2.2250738585072014e-308, 1e-310, 1.0, 2.0, 1.4142135623730951, 1e308],
                                   dtype=torch.float64)])
    wide_logs, _, _ = torch.ops.cutmix_ext_emulated.draw_math(wide)
    x = torch.empty(4000, dtype=torch.float64).uniform_(-708, 709, generator=g)
    _, exps, _ = torch.ops.cutmix_ext_emulated.draw_math(torch.cat([x, torch.tensor([0.0, -1e-300, 1e-300], dtype=torch.float64)]))
    ulp = 2.0**-52
    for v, got in zip(torch.cat([u, wide]).tolist(), torch.cat([logs, wide_logs]).tolist()):
        want = math.log(v) if v > 0 else -math.inf
        assert got == want or abs(got - want) <= 2 * ulp * abs(want), (v, got, want)
    for v, got in zip(torch.cat([x, torch.tensor([0.0, -1e-300, 1e-300], dtype=torch.float64)]).tolist(), exps.tolist()):
        want = math.exp(v)
        assert abs(got - want) <= 2 * ulp * want, (v, got, want)
    for v, got in zip(u.tolist(), cosines.tolist()):  # the reference's own argument rounds too
        assert abs(got - math.cos(2 * math.pi * (v - round(v)))) <= 4e-16, (v, got)
    exact = {0.0: 1.0, 0.25: 0.0, 0.5: -1.0, 0.75: 0.0, 1.0: 1.0}
    for v, want in exact.items():
        assert abs(torch.ops.cutmix_ext_emulated.draw_math(torch.tensor([v]))[2].item() - want) < 1e-16
