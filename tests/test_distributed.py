"""Distributed data parallel: two processes in a gloo (CPU) process group, started from the test.

Each rank mixes its own local batches with its own generator, torch.Generator().manual_seed(
base_seed + rank). The test checks that every step matches the reference, that the two ranks'
draws differ (all-gathered and compared on the ranks), that a second run with the same base seed
gives every rank bit-identical draws and outputs, that a rank's draws are those of a plain single
process with its seed, and that another base seed gives other draws.
"""
import datetime
import time
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import cutmix_ext
from cutmix_ext.reference import cutmix_reference, mixup_reference

WORLD_SIZE = 2
STEPS = 3
N, C, H, W, K = 16, 3, 12, 16, 10
KEYS = ("cutmix_perm", "cutmix_boxes", "cutmix_lam", "mixup_perm", "mixup_lam")
TIMEOUT_S = 60.0

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this build of torch")


def rank_generator(base_seed, rank):
    """The pattern under test: one generator per rank, seeded from the run's seed and the rank."""
    return torch.Generator().manual_seed(base_seed + rank)


def run_steps(rank, base_seed):
    """A rank's work without any communication: STEPS batches, each CutMixed and MixUped in place
    with per-sample parameters and random pairing, each checked against the reference. Returns
    the stacked draws and outputs. The data comes from a generator of its own, so that the
    mixing generator draws the parameters only."""
    g = rank_generator(base_seed, rank)
    data = torch.Generator().manual_seed((1 << 40) + 16 * base_seed + rank)
    out = {key: [] for key in KEYS + ("cutmix_images", "cutmix_targets", "mixup_images",
                                      "mixup_targets")}
    for _ in range(STEPS):
        labels = torch.randint(0, K, (N,), generator=data)

        images = torch.randint(1, 256, (N, C, H, W), dtype=torch.uint8, generator=data)
        original = images.clone()
        mixed, targets, p = cutmix_ext.cutmix_(images, labels, K, per_sample=True,
                                               pairing="random", generator=g, return_params=True)
        assert mixed is images
        assert torch.equal(p.perm.sort().values, torch.arange(N)), "perm is not a permutation"
        want, want_targets, want_lam = cutmix_reference(original, labels, p.perm, p.boxes, K)
        assert torch.equal(images, want) and torch.equal(targets, want_targets)
        assert torch.equal(p.lam, want_lam)
        for key, value in (("perm", p.perm), ("boxes", p.boxes), ("lam", p.lam),
                           ("images", images), ("targets", targets)):
            out["cutmix_" + key].append(value)

        images = torch.rand(N, C, H, W, generator=data) + 0.5  # non-zero
        original = images.clone()
        mixed, targets, p = cutmix_ext.mixup_(images, labels, K, per_sample=True,
                                              pairing="random", generator=g, return_params=True)
        assert mixed is images and p.boxes is None
        assert torch.equal(p.perm.sort().values, torch.arange(N)), "perm is not a permutation"
        want, want_targets = mixup_reference(original, labels, p.perm, p.lam, K)
        assert torch.equal(images, want) and torch.equal(targets, want_targets)
        for key, value in (("perm", p.perm), ("lam", p.lam), ("images", images),
                           ("targets", targets)):
            out["mixup_" + key].append(value)
    out = {key: torch.stack(values) for key, values in out.items()}
    for key in KEYS:  # the generator moves on: no two steps draw the same parameters
        for s in range(1, STEPS):
            assert not torch.equal(out[key][s], out[key][0]), f"{key}: step {s} repeats step 0"
    return out


def assert_differ(a, b, what):
    """Draws of two independent streams: lam and boxes differ at every step, perm somewhere."""
    for key in KEYS:
        if key.endswith("perm"):
            assert not torch.equal(a[key], b[key]), f"{what}: {key} identical"
        else:
            for s in range(STEPS):
                assert not torch.equal(a[key][s], b[key][s]), f"{what}: {key} identical at step {s}"


def _rank_main(rank, world_size, run_dir, seeds, package_file):
    """The body of one spawned process. A failure's traceback is also written to
    rank<r>.err, before this rank's connections close, so that the parent can show the failing
    rank's error and not only the other rank's lost connection."""
    try:
        _rank_runs(rank, world_size, run_dir, seeds, package_file)
    except BaseException:
        with open(f"{run_dir}/rank{rank}.err", "w") as f:
            f.write(traceback.format_exc())
        raise


def _rank_runs(rank, world_size, run_dir, seeds, package_file):
    """One run per base seed, each in a process group of its own, with a fresh generator."""
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    assert cutmix_ext.__file__ == package_file, (cutmix_ext.__file__, package_file)
    for i, base_seed in enumerate(seeds):
        dist.init_process_group("gloo", init_method=f"file://{run_dir}/store{i}", rank=rank,
                                world_size=world_size, timeout=datetime.timedelta(seconds=30))
        try:
            assert dist.get_rank() == rank and dist.get_world_size() == world_size
            mine = run_steps(rank, base_seed)
            gathered = {}
            for key in KEYS:
                parts = [torch.empty_like(mine[key]) for _ in range(world_size)]
                dist.all_gather(parts, mine[key])
                assert torch.equal(parts[rank], mine[key])
                gathered[key] = parts
            ranks = [{key: gathered[key][r] for key in KEYS} for r in range(world_size)]
            if rank == 0:
                for r in range(1, world_size):
                    assert_differ(ranks[0], ranks[r], f"ranks 0 and {r} (seeds {base_seed}, "
                                                      f"{base_seed + r})")
            dist.barrier()
            torch.save({"mine": mine, "ranks": ranks}, f"{run_dir}/seed{i}_rank{rank}.pt")
        finally:
            dist.destroy_process_group()


def run_world(tmp_path, name, seeds):
    """Starts WORLD_SIZE fresh processes (spawned: each imports torch anew), which run once per
    base seed in `seeds`; waits for them (a failing rank fails the test with its traceback, a
    hang after TIMEOUT_S) and returns, per seed, each rank's saved results."""
    run_dir = tmp_path / name
    run_dir.mkdir()
    ctx = mp.start_processes(_rank_main, args=(WORLD_SIZE, str(run_dir), list(seeds),
                                               cutmix_ext.__file__),
                             nprocs=WORLD_SIZE, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not ctx.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                pytest.fail(f"run {name!r}: the ranks did not finish in {TIMEOUT_S:.0f} s")
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as e:
        errors = [f"--- rank {r} ---\n{err.read_text()}" for r in range(WORLD_SIZE)
                  if (err := run_dir / f"rank{r}.err").exists()]
        seen = str(e).strip() if isinstance(e, mp.ProcessExitedException) else "an exception"
        pytest.fail(f"run {name!r}: rank {e.error_index} failed ({seen}); the ranks' errors:\n"
                    + "\n".join(errors))
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
                p.join(5)
    for r, p in enumerate(ctx.processes):
        assert p.exitcode == 0, f"run {name!r}: rank {r} exited with {p.exitcode}"
    return [[torch.load(run_dir / f"seed{i}_rank{r}.pt") for r in range(WORLD_SIZE)]
            for i in range(len(seeds))]


def assert_same(a, b, what):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), f"{what}: {key} differs"


def test_ranks_draw_independent_reproducible_parameters(tmp_path, gen, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # inherited by the spawned processes
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    base_seed = int(torch.randint(1 << 30, (1,), generator=gen))
    other_seed = base_seed + 1000  # not base_seed + 1, which would give rank 0 rank 1's seed
    print(f"base_seed={base_seed} other_seed={other_seed}")

    # two launches of fresh processes; the second also runs the other seed, after the first
    (first,) = run_world(tmp_path, "first", [base_seed])
    again, other = run_world(tmp_path, "second", [base_seed, other_seed])

    for r in range(WORLD_SIZE):
        # what rank r all-gathered agrees with what each rank saved
        for q in range(WORLD_SIZE):
            assert_same(first[r]["ranks"][q], {k: first[q]["mine"][k] for k in KEYS},
                        f"rank {r}'s copy of rank {q}'s draws")
        # reproducible per rank: the same seed gives bit-identical draws, images and targets
        assert_same(again[r]["mine"], first[r]["mine"], f"rank {r}, run again with the same seed")
        # a rank's draws depend on its seed only, not on the process group or the other rank
        assert_same(run_steps(r, base_seed), first[r]["mine"], f"rank {r} replayed in one process")
        # another base seed, other draws
        assert_differ(other[r]["mine"], first[r]["mine"], f"rank {r}, base seeds {base_seed} and "
                                                          f"{other_seed}")
    # independent across ranks, in both runs
    assert_differ(first[0]["mine"], first[1]["mine"], "ranks 0 and 1")
    assert_differ(other[0]["mine"], other[1]["mine"], "ranks 0 and 1 (other seed)")
