"""The built CUDA kernels' resources on sm_90 (H100, H200), read from the library itself with
cuobjdump: every in-place kernel that serves N <= 2048 keeps at least 3 blocks resident per SM,
the larger tile at least 2, nothing spills or uses local memory, the launch bounds are the ones
the kernels are launched with, and small calls get a small parameter block. No GPU needed: CI
builds the kernels and runs this. `pytest tests/test_occupancy.py -s` prints the table."""
import glob
import os
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass

import pytest

import cutmix_ext
from cutmix_ext import _library

EXPECT_CUDA = os.environ.get("CUTMIX_EXPECT_CUDA") == "1"

# sm_90 per-SM limits (CUDA C++ Programming Guide, compute capability 9.0).
REGS_PER_SM = 65536
REG_UNIT = 256            # registers are allocated per warp in units of 256
REGS_PER_PARTITION = REGS_PER_SM // 4  # a warp's registers come from one of 4 sub-partitions
MAX_WARPS = 64
MAX_BLOCKS = 32
SMEM_PER_SM = 228 * 1024
SMEM_RESERVED = 1024      # per block, for the system

SMALL_N, LARGE_N = 2048, 8192
ROW_BYTES = {"mix_kernel": 32, "gather_kernel": 56}  # csrc/mix.h: Sample, GatherRow


def find_tool(name):
    cands = [os.path.join(os.environ.get(v, ""), "bin", name) for v in ("CUDA_HOME", "CUDA_PATH")]
    cands += [shutil.which(name) or "", "/usr/local/cuda/bin/" + name]
    try:  # the CUDA build of torch brings triton, which ships cuobjdump
        import triton
        cands.append(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name))
    except ImportError:
        pass
    return next((c for c in cands if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


def need(condition, why):
    """Skip where the environment lacks it, but fail where CI promised the CUDA build."""
    if not condition:
        if EXPECT_CUDA:
            pytest.fail(why + " (CUTMIX_EXPECT_CUDA=1)")
        pytest.skip(why)


@dataclass
class Kernel:
    name: str       # demangled, without namespaces
    regs: int
    stack: int
    local: int
    shared: int     # static
    max_threads: int = 0
    param_bytes: int = 0

    @property
    def tile(self):
        """(threads, per, min_blocks, vec_bytes, group) of an in-place kernel, else None."""
        m = re.search(r"Tile<(\d+), (\d+), (\d+), (\d+), (\d+)>", self.name)
        return None if m is None else tuple(map(int, m.groups()))

    @property
    def chunk_bytes(self):
        m = re.search(r"(?:CutMixOp|MixUpOp|ElemOp)<[^,]+, (\d+)>", self.name)
        return int(m.group(1))

    @property
    def cap(self):
        """Table rows in the parameter block (0: in memory, -1: drawn in the kernel)."""
        m = re.search(r", (-?\d+)>\((?:LaunchArgs|GatherLaunch)<", self.name)
        return int(m.group(1))

    @property
    def kind(self):
        return re.match(r"(?:void )?(\w+)[<(]", self.name).group(1)

    @property
    def dynamic_shared(self):
        """The in-place kernels keep their new chunks in shared memory till the barrier, behind
        them a 16-bit word a thread (kEdgeBytes) and the inline tables of more than 64 rows
        (kernels.cuh, staged)."""
        t = self.tile
        if t is None:
            return 0
        edges = (t[0] * 2 + 15) // 16 * 16
        return t[0] * t[1] * self.chunk_bytes + edges + (self.cap * ROW_BYTES["mix_kernel"] if self.cap > 64 else 0)

    def resident_blocks(self, threads):
        warps = -(-threads // 32)
        per_warp = -(-self.regs * 32 // REG_UNIT) * REG_UNIT
        by_regs = min(REGS_PER_SM // (per_warp * warps), 4 * (REGS_PER_PARTITION // per_warp) // warps)
        # sm_90 cubins count the reserved kilobyte in their static shared memory already
        reserved = 0 if self.shared >= SMEM_RESERVED else SMEM_RESERVED
        smem = self.shared + self.dynamic_shared + reserved
        return min(by_regs, SMEM_PER_SM // smem, MAX_WARPS // warps, MAX_BLOCKS)


def demangle(names):
    cxxfilt = shutil.which("c++filt")
    need(cxxfilt is not None, "c++filt (binutils) not found")
    out = subprocess.run([cxxfilt], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    strip = re.compile(r"cutmix_ext::\(anonymous namespace\)::|cutmix_ext::")
    return [strip.sub("", d) for d in out.splitlines()]


def cuobjdump(*args):
    """cuobjdump's output on the built library, skipping (or failing, in CI) where it is missing."""
    need(cutmix_ext.WITH_CUDA, "cutmix_ext was built without its CUDA kernels")
    tool = find_tool("cuobjdump")
    need(tool is not None, "cuobjdump not found (CUDA toolkit or the triton package)")
    return subprocess.run([tool, *args, _library._C.__file__], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def kernels():
    elves = cuobjdump("--list-elf")
    need("sm_90" in elves, f"the build has no sm_90 code (built for {cutmix_ext.CUDA_ARCHS})")

    usage = cuobjdump("--dump-resource-usage", "-arch", "sm_90")
    found, mangled = [], []
    for fn, res in re.findall(r"Function (\S+):\s*\n\s*(REG:.*)", usage):
        fields = dict(re.findall(r"(\w+(?:\[\d+\])?):(\d+)", res))
        mangled.append(fn)
        found.append(Kernel("", int(fields["REG"]), int(fields["STACK"]), int(fields["LOCAL"]),
                            int(fields["SHARED"])))
    for k, name in zip(found, demangle(mangled)):
        k.name = name
    info = cuobjdump("-elf", "-arch", "sm_90")
    by_mangled = dict(zip(mangled, found))
    for section in re.split(r"\n(?=\.\S)", info):  # a section starts with its name at column 0
        head, _, body = section.partition("\n")
        fn = head[len(".nv.info."):].strip() if head.startswith(".nv.info.") else None
        if fn not in by_mangled:
            continue
        m = re.search(r"EIATTR_MAX_THREADS\s+Format:\s+\S+\s+Value:\s+(0x[0-9a-f]+)", body)
        p = re.search(r"EIATTR_CBANK_PARAM_SIZE\s+Format:\s+\S+\s+Value:\s+(0x[0-9a-f]+)", body)
        by_mangled[fn].max_threads = int(m.group(1), 16) if m else 0
        by_mangled[fn].param_bytes = int(p.group(1), 16) if p else 0
    return found


def report(kernels):
    rows = defaultdict(list)
    for k in kernels:
        t = k.tile
        key = f"mix_kernel {t[0]} threads x {t[1]} chunks (N <= {t[0] * t[1]})" if t else k.name.split("<")[0]
        rows[key].append(k)
    lines = ["kernels | count | registers | stack | shared (static + dynamic) | blocks/SM (worst)"]
    for key, ks in sorted(rows.items()):
        regs = sorted(k.regs for k in ks)
        blocks = min(k.resident_blocks(k.max_threads) for k in ks)
        smem = max(k.shared + k.dynamic_shared for k in ks)
        lines.append(f"{key} | {len(ks)} | {regs[0]}-{regs[-1]} | {max(k.stack for k in ks)} | "
                     f"up to {smem} B | {blocks}")
    return "\n".join(lines)


DETECTION = ("detection_boxes_kernel", "detection_choose_kernel")  # one block each, one of each


def test_every_kernel_was_read(kernels):
    mix = [k for k in kernels if k.kind == "mix_kernel"]
    gather = [k for k in kernels if k.kind == "gather_kernel"]
    boxes = [k for k in kernels if k.kind in DETECTION]
    assert len(mix) + len(gather) + len(boxes) == len(kernels) and len(mix) >= 100 and len(gather) >= 20
    assert sorted(k.kind for k in boxes) == sorted(DETECTION)
    assert all(k.tile is not None for k in mix)
    assert all(k.max_threads > 0 and k.param_bytes > 0 for k in kernels), \
        [k.name for k in kernels if not k.max_threads]
    print("\n" + report(kernels))


def test_nothing_spills(kernels):
    """No stack frame and no local memory: no spilled register, no local array."""
    bad = [(k.name, k.regs, k.stack, k.local) for k in kernels if k.stack or k.local]
    assert not bad, bad


def test_resident_blocks_per_sm(kernels):
    """>= 3 blocks per SM for the kernels of N <= 2048, >= 2 for larger N; each at least what
    its launch bounds promise, and launch bounds that are the block size it runs with."""
    seen = set()
    for k in kernels:
        t = k.tile
        if t is None:
            assert k.resident_blocks(k.max_threads) >= 2, (k.name, k.regs)
            continue
        threads, per, min_blocks, _, _ = t
        seen.add(threads * per)
        assert k.max_threads == threads, (k.name, k.max_threads)
        want = 3 if threads * per <= SMALL_N else 2
        blocks = k.resident_blocks(threads)
        assert blocks >= max(want, min_blocks), (k.name, k.regs, k.shared, k.dynamic_shared, blocks)
    assert seen == {SMALL_N, LARGE_N}, seen


def test_small_calls_have_small_parameter_blocks(kernels):
    """A launch copies its parameter block: the 64- and 256-row forms stay within their rows and
    1 KiB, and only the largest inline tables come near the 32 KiB limit."""
    caps = defaultdict(set)
    for k in kernels:
        if k.kind in DETECTION:  # no table inside: pointers to it
            assert k.param_bytes <= 256, (k.name, k.param_bytes)
            continue
        caps[k.kind].add(k.cap)
        assert k.param_bytes <= 32764, (k.name, k.param_bytes)
        if k.cap <= 256:
            assert k.param_bytes <= max(k.cap, 0) * ROW_BYTES[k.kind] + 1024, (k.name, k.param_bytes)
    assert caps == {"mix_kernel": {-1, 0, 64, 256, 960}, "gather_kernel": {0, 64, 512}}, caps


def test_library_holds_the_architectures_it_reports():
    """cutmix_ext.CUDA_ARCHS (what python -m cutmix_ext.check prints) is what the library holds."""
    elves, ptx = cuobjdump("--list-elf"), cuobjdump("--list-ptx")
    archs = [a.strip() for a in cutmix_ext.CUDA_ARCHS.replace(",", ";").split(";") if a.strip()]
    want = {"sm_" + a.split("+")[0].replace(".", "") for a in archs}
    assert set(re.findall(r"\.(sm_\d+a?)\.cubin", elves)) == want, (elves, archs)
    want_ptx = {"sm_" + a.split("+")[0].replace(".", "") for a in archs if a.endswith("+PTX")}
    assert set(re.findall(r"\.(sm_\d+a?)\.ptx", ptx)) == want_ptx, (ptx, archs)


def test_tool_lookup_finds_a_real_cuobjdump():
    tool = find_tool("cuobjdump")
    need(tool is not None, "cuobjdump not found")
    out = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
    assert "cuobjdump" in out.lower() or "cuda" in out.lower(), out
    assert glob.glob(os.path.dirname(_library._C.__file__) + "/_C*.so")


@pytest.fixture(scope="module")
def sass(kernels):
    """{demangled kernel name: its sm_90 SASS instruction mnemonics, in order}."""
    text = cuobjdump("-sass", "-arch", "sm_90")
    names, bodies = [], []
    for part in text.split("Function : ")[1:]:
        head, _, body = part.partition("\n")
        names.append(head.strip())
        bodies.append(re.findall(r"^\s+/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][\w.]*)", body, re.M))
    return dict(zip(demangle(names), bodies))


def instructions_per_byte(kernel, code):
    """Static instructions of an in-place kernel over the bytes one thread moves per item (kPer
    chunks): its loop over the samples is unrolled, so this is about what one item costs."""
    return len(code) / (kernel.tile[1] * kernel.chunk_bytes)


def test_wide_chunks_move_16_bytes_an_instruction(kernels, sass):
    """The uint8 kernels that rows of any width take when their samples lie at one phase of 16
    bytes (224 and 300 wide alike, tests/test_cuda_emulated.py checks which shape takes which)
    load and store 16 bytes an instruction, and their code costs at most a quarter of the
    instructions per byte of the one-byte kernels that samples at different phases take (225 and
    299 wide uint8). `pytest -s` prints the comparison."""
    byname = {k.name: k for k in kernels}
    rows = []
    for op in ("CutMixOp<1, {}>", "MixUpOp<unsigned char, {}>", "ElemOp<unsigned char, {}>"):
        for tile, cap in (("Tile<256, 8, 3, 16, 4>", 0), ("Tile<256, 8, 3, 16, 4>", 960),
                          ("Tile<512, 16, 2, 8, 2>", 0)):
            wide_bytes = 16 if tile.startswith("Tile<256") else 8
            name = "void mix_kernel<{}, {}, {}>(LaunchArgs<{}>)"
            wide = name.format(op.format(wide_bytes), tile, cap, cap)
            narrow = name.format(op.format(1), tile, cap, cap)
            assert wide in sass and narrow in sass, (wide, narrow)
            width = {16: "128", 8: "64"}[wide_bytes]
            assert any(i.startswith("LDG") and i.endswith("." + width) for i in sass[wide]), wide
            # stores through the address made opaque after the barrier are generic (ST), not STG
            assert any(i.startswith("ST") and i.endswith("." + width) for i in sass[wide]), wide
            w, nw = instructions_per_byte(byname[wide], sass[wide]), instructions_per_byte(byname[narrow], sass[narrow])
            rows.append(f"{op.format('*')} {tile} rows {cap} | {len(sass[wide])} | {w:.1f} | "
                        f"{len(sass[narrow])} | {nw:.1f} | {nw / w:.1f}x")
            assert w <= nw / 4, rows[-1]
    print("\nkernel | wide: instructions | per byte | one byte: instructions | per byte | ratio")
    print("\n".join(rows))
