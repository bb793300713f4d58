"""Builds cutmix_ext._C: the CPU kernels always, the CUDA kernels when torch has CUDA and nvcc
is found (FORCE_CUDA=1 insists, FORCE_CUDA=0 skips them). Every decision is printed. The metadata
is in pyproject.toml."""
import contextlib
import glob
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import setuptools
from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ARCHS = "8.0;9.0+PTX"
# libstdc++ linked dynamically, whatever the compiler driver adds: the library then shares torch's
# C++ runtime. A copy linked in statically (some environments' CXX wrappers pass
# -static-libstdc++) has std::locale facets of its own, and streaming a number into an error
# message then crashes the process. Named before the driver's own libraries, the shared one
# defines every symbol first, so a static archive after it adds nothing.
LINK_SHARED_LIBSTDCXX = ["-Wl,--push-state,-Bdynamic,-lstdc++,--pop-state"]
# The tested range (.ci/run): 2.11 (the CUDA build, with Python 3.12), 2.13 (the CPU build) and 2.14
# (the CUDA build). pyproject.toml's torch>=2.11 says the same; a newer torch builds, saying so.
MIN_TORCH = (2, 11)
MAX_TESTED_TORCH = (2, 14)

try:
    import torch
except ImportError:
    # pip's isolated build environment has no torch, and installing one there would be a 5 GB
    # download of a torch the library would not match at run time: say what to run instead.
    sys.exit(
        "[cutmix_ext] no torch in this build environment. cutmix_ext is compiled against the torch of\n"
        "the environment that will run it, so pip must build it there, without build isolation:\n"
        "    pip install --no-build-isolation .        (editable: pip install --no-build-isolation -e .)\n"
        "with torch installed there first (README.md, Install).")


def say(msg):
    print(f"[cutmix_ext] {msg}", flush=True)


def check_torch_version():
    release = tuple(int(x) for x in re.findall(r"\d+", torch.__version__)[:2])
    if release < MIN_TORCH:
        sys.exit(f"[cutmix_ext] torch {torch.__version__} is older than {'.'.join(map(str, MIN_TORCH))}, "
                 f"the oldest torch cutmix_ext is tested with: install a newer torch first")
    if release > MAX_TESTED_TORCH:
        say(f"torch {torch.__version__} is newer than {'.'.join(map(str, MAX_TESTED_TORCH))}, the newest torch "
            f"cutmix_ext is tested with: building anyway (python -m cutmix_ext.check tells whether it works)")


def is_toolkit(prefix):
    return bool(prefix) and os.path.isfile(os.path.join(prefix, "bin", "nvcc")) and os.path.isfile(
        os.path.join(prefix, "include", "cuda_runtime.h"))


def find_cuda_home():
    """The toolkit prefix. torch guesses it from the nvcc on PATH, which is wrong when that nvcc
    is a wrapper script outside the toolkit, so look for bin/nvcc next to include/cuda_runtime.h."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if is_toolkit(os.environ.get(var)):
            return os.environ[var], f"${var}"
    nvcc = shutil.which("nvcc")
    if nvcc:
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
        if is_toolkit(prefix):
            return prefix, f"nvcc on PATH ({nvcc})"
        try:  # a wrapper script: read the path it execs
            with open(nvcc, errors="ignore") as f:
                for path in re.findall(r"(/\S+)/bin/nvcc", f.read(4096)):
                    if is_toolkit(path):
                        return path, f"the nvcc wrapper {nvcc}"
        except OSError:
            pass
    for prefix in ["/usr/local/cuda"] + sorted(glob.glob("/usr/local/cuda-*"), reverse=True):
        if is_toolkit(prefix):
            return prefix, "the standard location"
    return None, "no toolkit found"


def nvcc_version(cuda_home):
    out = subprocess.run([os.path.join(cuda_home, "bin", "nvcc"), "--version"],
                         capture_output=True, text=True).stdout
    m = re.search(r"release (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def decide_cuda(torch):
    force = os.environ.get("FORCE_CUDA")
    if force == "0":
        return False, "FORCE_CUDA=0"
    if torch.version.cuda is None:
        if force == "1":
            sys.exit("[cutmix_ext] FORCE_CUDA=1 but this torch has no CUDA support")
        return False, f"torch {torch.__version__} is a CPU-only build"
    cuda_home, how = find_cuda_home()
    if cuda_home is None:
        if force == "1":
            sys.exit("[cutmix_ext] FORCE_CUDA=1 but no CUDA toolkit (bin/nvcc) was found; set CUDA_HOME")
        return False, "no CUDA toolkit (nvcc) found; set CUDA_HOME to build the CUDA kernels"
    os.environ["CUDA_HOME"] = cuda_home  # before torch.utils.cpp_extension reads it
    version = nvcc_version(cuda_home)
    torch_major = int(torch.version.cuda.split(".")[0])
    if version is None or version[0] != torch_major:
        sys.exit(f"[cutmix_ext] nvcc in {cuda_home} is CUDA {version}, torch was built with CUDA "
                 f"{torch.version.cuda}: the majors must match")
    return True, f"torch {torch.__version__} has CUDA {torch.version.cuda}, nvcc {version[0]}.{version[1]} at {cuda_home} (from {how})"


def extensions():
    check_torch_version()
    sanitize = os.environ.get("CUTMIX_SANITIZE")  # scripts/sanitize.sh: e.g. address,undefined
    with_cuda, why = (False, f"CUTMIX_SANITIZE={sanitize}") if sanitize else decide_cuda(torch)
    say(f"torch {torch.__version__}, python {sys.version.split()[0]}")
    say(("building CUDA kernels: " if with_cuda else "CPU kernels only: ") + why)

    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    sources = [os.path.relpath(p, ROOT) for p in sorted(glob.glob(os.path.join(ROOT, "csrc", "*.cpp")))]
    sources += [os.path.relpath(p, ROOT) for p in sorted(glob.glob(os.path.join(ROOT, "csrc", "cpu", "*.cpp")))]
    # -ffp-contract=off: no fused multiply-add, so CPU results equal the GPU's bit for bit.
    # -fopenmp: without it at::parallel_for compiles to a serial loop.
    cxx = ["-O3", "-ffp-contract=off", "-fvisibility=hidden", "-fopenmp"]
    link = ["-fopenmp"] + LINK_SHARED_LIBSTDCXX
    macros = [("CUTMIX_EXT_TORCH_VERSION", f'"{torch.__version__}"')]
    if sanitize:
        flags = [f"-fsanitize={sanitize}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
        cxx = ["-O1"] + cxx[1:] + flags
        link += flags
    if not with_cuda:
        config = f"torch {torch.__version__}, CPU kernels" + (f", sanitize={sanitize}" if sanitize else "")
        return CppExtension("cutmix_ext._C", sources, extra_compile_args={"cxx": cxx}, extra_link_args=link,
                            define_macros=macros), config

    archs = os.environ.get("TORCH_CUDA_ARCH_LIST")
    say(f"CUDA architectures: {archs} (from TORCH_CUDA_ARCH_LIST)" if archs else
        f"CUDA architectures: {DEFAULT_ARCHS} (the default; set TORCH_CUDA_ARCH_LIST to change)")
    archs = archs or DEFAULT_ARCHS
    os.environ["TORCH_CUDA_ARCH_LIST"] = archs
    sources += [os.path.relpath(p, ROOT) for p in sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cpp")))]
    sources += [os.path.relpath(p, ROOT) for p in sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu")))]
    macros += [("CUTMIX_EXT_WITH_CUDA", None), ("CUTMIX_EXT_CUDA_ARCHS", f'"{archs}"')]
    nvcc = ["-O3", "--expt-relaxed-constexpr"]
    config = f"torch {torch.__version__}, CUDA kernels for {archs}"
    return CUDAExtension("cutmix_ext._C", sources, extra_compile_args={"cxx": cxx, "nvcc": nvcc}, extra_link_args=link,
                         define_macros=macros), config


def own_libstdcxx(library):
    """Whether a built library defines std::locale itself (a static libstdc++ in it) rather than
    taking it from the shared libstdc++; None when readelf cannot tell."""
    try:
        out = subprocess.run(["readelf", "-W", "--dyn-syms", library], capture_output=True, text=True)
    except OSError:
        return None
    if out.returncode != 0:
        return None
    return any(f[7].startswith("_ZNSt6locale") and f[6] != "UND"
               for f in (line.split() for line in out.stdout.splitlines()) if len(f) >= 8)


@contextlib.contextmanager
def compact_progress():
    """Shortens ninja's progress lines to `[n/m] compiling <source>`: torch runs ninja verbosely,
    so each line is a compiler command of a few thousand characters, which buries the progress
    under `pip install -v`. Everything else (compiler errors and warnings) passes as it is."""
    sys.stdout.flush()
    saved = os.dup(1)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)  # ninja inherits the descriptor, not sys.stdout
    os.close(write_end)
    start = time.monotonic()

    def relay():
        with os.fdopen(read_end, "rb") as lines, os.fdopen(os.dup(saved), "wb", buffering=0) as out:
            for line in lines:
                m = re.match(rb"(\[\d+/\d+\]) .*?(\S+\.(?:cpp|cu))\b", line)
                if m:
                    source = os.path.relpath(m.group(2).decode(errors="replace"), ROOT)
                    line = f"{m.group(1).decode()} compiling {source} ({time.monotonic() - start:.0f} s)\n".encode()
                out.write(line)

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)  # closes the pipe's last write end: the relay reaches its end
        thread.join()
        os.close(saved)


def build_ext_class(config):
    from torch.utils.cpp_extension import BuildExtension

    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 1))
    base = BuildExtension.with_options(no_python_abi_suffix=True)
    # One object folder per configuration (unless --build-temp names one): switching to another
    # torch, or between the CUDA and the CPU-only build, and back then recompiles nothing, and a
    # wheel built after the in-place build reuses its objects.
    temp = os.path.join("build", "temp." + re.sub(r"[^\w.+-]+", "_", config.replace("torch ", "torch-")))

    class build_ext(base):
        def finalize_options(self):
            if self.build_temp is None:
                self.build_temp = temp
            super().finalize_options()
            # Always ask ninja (torch does so too when it has ninja): it recompiles what changed,
            # headers included, and the relink, a few seconds, means that a library built for
            # another torch is never kept as up to date.
            self.force = True

        def run(self):
            say(f"{len(self.extensions[0].sources)} source files: ninja compiles those that changed, "
                f"{os.environ['MAX_JOBS']} at a time (MAX_JOBS)")
            with compact_progress():
                super().run()
            for ext in self.extensions:
                library = self.get_ext_fullpath(ext.name)
                own = own_libstdcxx(library)
                if own:
                    os.remove(library)
                    sys.exit(f"[cutmix_ext] {library} carries a static copy of libstdc++ (the compiler "
                             f"{os.environ.get('CXX', 'c++')} links it so): beside torch's, it crashes the "
                             f"first error message with a number in it. Removed; build with a compiler "
                             f"that links libstdc++ dynamically, e.g. CXX=g++.")
                if own is None:
                    say("readelf not found: the check that libstdc++ is linked dynamically was skipped")

    return build_ext


def license_metadata():
    """setuptools 77 and newer take an SPDX expression; older ones a free-text license."""
    major = int(re.match(r"\d+", setuptools.__version__).group())
    return {"license_expression": "MIT"} if major >= 77 else {"license": "MIT"}


if __name__ == "__main__":  # as python setup.py and pip run it; tests read the helpers above
    ext, config = extensions()
    setup(ext_modules=[ext], cmdclass={"build_ext": build_ext_class(config)}, **license_metadata())
