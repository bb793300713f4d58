// Lets csrc/cuda/mix_kernel.cu compile with the host compiler and run on the CPU: every CUDA
// thread of a block is a std::thread and __syncthreads is a std::barrier, so the tests can check
// the kernels' indexing, chunking and barrier placement on a machine without a GPU.
//
// Blocks run one after another here, which would hide two kinds of fault a GPU shows, so the
// emulation closes them as a CPU can:
//   ownership  the kernels route their global loads and stores through load / store (and the
//              atomics below), which log the bytes each block touches; after the launch a byte
//              that one block writes and another block reads or writes is an error (on a GPU
//              the blocks run at once, in no order, so such a byte is a race);
//   shared     static __shared__ arrays and the dynamic shared memory are poisoned before every
//              block (on a GPU a block finds whatever the last one left there, not its own
//              earlier values), so a read of shared memory the block never wrote gives garbage.
#pragma once
// The CUDA headers come first: their declarations use the names defined below.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#define CUTMIX_EXT_EMULATE 1
// All threads of an emulated block run the same function, so a static array is their shared
// memory. They all live in one section, whose bounds the linker provides, so that the launch
// can poison them before each block. GCC ignores the section of a static declared in a template,
// so the kernels declare __shared__ arrays in functions that are not templates
// (test_cuda_emulated.py checks that every one of them lands in the section).
#undef __shared__
#define __shared__ static __attribute__((section("cutmix_emu_shared")))
extern "C" char __start_cutmix_emu_shared[], __stop_cutmix_emu_shared[];
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

namespace emu {
struct Index {
  unsigned x = 0, y = 0, z = 0;
};
inline thread_local Index thread_index, block_index;
inline thread_local unsigned or_calls = 0;
inline Index block_dim, grid_dim;
inline std::barrier<>* barrier = nullptr;
inline std::atomic<int> or_flags[2];
inline std::vector<uint4> dynamic_shared;  // the launch's dynamic shared memory
// The order the blocks run in is shuffled with this seed (set by the tests), advanced per launch:
// the kernels must not depend on it.
inline uint64_t block_seed = 0;
// Streaming multiprocessors the emulated device has: few, so that kernels whose grid is one
// wave of resident blocks (sampling="device") give each block several items.
inline int sm_count = 2;
// The checks above, on unless a test turns one off to show what it catches.
inline bool trace = true, poison = true;
constexpr unsigned char kPoison = 0xA5;  // 0xA5A5A5A5 reads as -2.9e-16f, a large int, no index

// ---- The ownership tracer ----

enum Kind : uint8_t { kRead, kWrite, kAtomic };
struct Touch {
  uintptr_t at;
  uint32_t bytes, block;
  Kind kind;
};
// The running thread's log: null outside a launch, so host code calling a helper logs nothing.
inline thread_local std::vector<Touch>* touches = nullptr;

// What the harness passes the launch, by name, for the reports. Read-only buffers (labels,
// tables, sources) may be read by every block, but no block may write them.
struct Buffer {
  const char* name;
  uintptr_t begin, end;
  bool read_only;
};
inline std::vector<Buffer> buffers;
struct Totals {  // the last launch's, for the tests
  int64_t read = 0, written = 0, atomic = 0, blocks = 0;
  std::string kernel;
};
inline Totals last;
struct Buffers {  // names buffers for the launches of one harness call
  explicit Buffers(std::vector<Buffer> b) { buffers = std::move(b); }
  ~Buffers() { buffers.clear(); }
};
inline Buffer buffer(const char* name, const void* p, size_t bytes, bool read_only = false) {
  const auto at = reinterpret_cast<uintptr_t>(p);
  return Buffer{name, at, at + bytes, read_only};
}

inline bool is_shared(uintptr_t at) {
  const auto in = [&](const void* lo, const void* hi) {
    return at >= reinterpret_cast<uintptr_t>(lo) && at < reinterpret_cast<uintptr_t>(hi);
  };
  return in(__start_cutmix_emu_shared, __stop_cutmix_emu_shared) ||
         in(dynamic_shared.data(), dynamic_shared.data() + dynamic_shared.size());
}

inline std::string where(uintptr_t at) {
  for (const Buffer& b : buffers) {
    if (at >= b.begin && at < b.end) return "byte " + std::to_string(at - b.begin) + " of " + b.name;
  }
  char text[40];
  std::snprintf(text, sizeof(text), "address %#llx", static_cast<unsigned long long>(at));
  return std::string(text) + " (no named buffer)";
}

// Who touched one byte, by kind: the smallest and largest block of each, -1 if none. That is
// enough to tell whether two different blocks met there, and to name the same two blocks
// whatever order the blocks ran in.
struct Owners {
  int32_t lo[3] = {-1, -1, -1}, hi[3] = {-1, -1, -1};
  void add(Kind k, int32_t b) {
    lo[k] = lo[k] < 0 ? b : std::min(lo[k], b);
    hi[k] = std::max(hi[k], b);
  }
  bool has(Kind k) const { return lo[k] >= 0; }
  // A block of kind k other than b, or -1.
  int32_t other(Kind k, int32_t b) const { return !has(k) ? -1 : lo[k] != b ? lo[k] : hi[k] != b ? hi[k] : -1; }
};

// The first conflict at the lowest address, as a sentence, or "". Conflicts: a plain write and
// any access by another block; an atomic and a plain read by another block. Atomics of several
// blocks on one word commute, so they are the one way blocks may share a byte they change.
inline std::string find_conflict(std::vector<Touch>& all, std::string_view kernel) {
  static const char* const verb[3] = {"read", "written", "updated atomically"};
  auto report = [&](uintptr_t at, Kind ka, int32_t a, Kind kb, int32_t b) {
    return "emulated " + std::string(kernel) + ": " + where(at) + " is " + verb[ka] + " by block " +
           std::to_string(a) + " and " + verb[kb] + " by block " + std::to_string(b) +
           ": a byte one block writes must be touched by no other block";
  };
  // In address order, and the same whatever order the blocks ran in.
  std::sort(all.begin(), all.end(), [](const Touch& a, const Touch& b) {
    return a.at != b.at ? a.at < b.at : a.block != b.block ? a.block < b.block : a.kind < b.kind;
  });
  for (const Touch& t : all) {
    if (t.kind == kRead) continue;
    for (const Buffer& b : buffers) {
      if (b.read_only && t.at < b.end && t.at + t.bytes > b.begin) {
        return "emulated " + std::string(kernel) + ": " + where(std::max(t.at, b.begin)) + " is " +
               verb[t.kind] + " by block " + std::to_string(t.block) + ", but " + b.name +
               " is an input the launch only reads";
      }
    }
  }
  std::vector<Owners> span;
  for (size_t first = 0; first < all.size();) {  // runs of touches whose bytes meet or adjoin
    uintptr_t lo = all[first].at, hi = lo + all[first].bytes;
    size_t last = first + 1;
    for (; last < all.size() && all[last].at <= hi; ++last) hi = std::max<uintptr_t>(hi, all[last].at + all[last].bytes);
    span.assign(hi - lo, Owners{});
    for (size_t k = first; k < last; ++k) {
      for (uint32_t j = 0; j < all[k].bytes; ++j) {
        span[all[k].at - lo + j].add(all[k].kind, static_cast<int32_t>(all[k].block));
      }
    }
    for (size_t j = 0; j < span.size(); ++j) {
      const Owners& o = span[j];
      const uintptr_t at = lo + j;
      if (o.has(kWrite)) {
        const int32_t w = o.lo[kWrite];
        for (const Kind k : {kWrite, kAtomic, kRead}) {
          if (o.other(k, w) >= 0) return report(at, kWrite, w, k, o.other(k, w));
        }
      }
      if (o.has(kAtomic) && o.has(kRead)) {
        const int32_t a = o.lo[kAtomic];
        if (o.other(kRead, a) >= 0) return report(at, kAtomic, a, kRead, o.other(kRead, a));
        if (o.other(kAtomic, o.lo[kRead]) >= 0) return report(at, kAtomic, o.other(kAtomic, o.lo[kRead]), kRead, o.lo[kRead]);
      }
    }
    first = last;
  }
  return "";
}

// The kernel's name, from the template argument GCC spells out in __PRETTY_FUNCTION__.
template <auto kKernel>
std::string_view kernel_name() {
  std::string_view s = __PRETTY_FUNCTION__;
  const size_t from = s.find("kKernel = ");
  if (from == std::string_view::npos) return "kernel";
  s.remove_prefix(from + 10);
  return s.substr(0, s.find_first_of(";]"));
}

inline void poison_shared() {
  if (!poison) return;
  std::memset(__start_cutmix_emu_shared, kPoison, __stop_cutmix_emu_shared - __start_cutmix_emu_shared);
  std::memset(dynamic_shared.data(), kPoison, dynamic_shared.size() * sizeof(uint4));
}
}  // namespace emu

#define threadIdx emu::thread_index
#define blockIdx emu::block_index
#define blockDim emu::block_dim
#define gridDim emu::grid_dim

inline void __syncthreads() { emu::barrier->arrive_and_wait(); }

inline int __syncthreads_or(int predicate) {
  const unsigned k = emu::or_calls++ & 1;
  if (predicate) emu::or_flags[k].store(1);
  emu::barrier->arrive_and_wait();
  const int result = emu::or_flags[k].load();
  if (threadIdx.x == 0) emu::or_flags[k ^ 1].store(0);  // no one touches it before the next barrier
  emu::barrier->arrive_and_wait();
  return result;
}

// Called by the kernels' load / store helpers (csrc/cuda/access.cuh) for every global access.
inline void emulated_access(const void* p, size_t bytes, emu::Kind kind) {
  if (emu::touches != nullptr) {
    emu::touches->push_back(emu::Touch{reinterpret_cast<uintptr_t>(p), static_cast<uint32_t>(bytes),
                                       blockIdx.x, kind});
  }
}

inline int atomicAdd(int* p, int v) {
  if (!emu::is_shared(reinterpret_cast<uintptr_t>(p))) emulated_access(p, sizeof(int), emu::kAtomic);
  return std::atomic_ref<int>(*p).fetch_add(v);
}

inline int atomicOr(int* p, int v) {
  if (!emu::is_shared(reinterpret_cast<uintptr_t>(p))) emulated_access(p, sizeof(int), emu::kAtomic);
  return std::atomic_ref<int>(*p).fetch_or(v);
}

inline int emulated_sm_count() { return emu::sm_count; }
inline void* emulated_dynamic_shared() { return emu::dynamic_shared.data(); }

// Runs the blocks one after another, in a shuffled order, each on `threads` std::threads, then
// checks which block touched which global bytes (a std::runtime_error names a conflict).
template <auto kKernel, class Args>
void emulate_launch(unsigned blocks, unsigned threads, const Args& args, int64_t shared_bytes = 0) {
  std::barrier<> barrier(threads);
  emu::barrier = &barrier;
  emu::block_dim = {threads, 1, 1};
  emu::grid_dim = {blocks, 1, 1};
  emu::or_flags[0] = 0;
  emu::or_flags[1] = 0;
  emu::dynamic_shared.assign(static_cast<size_t>((shared_bytes + 15) / 16), uint4{});
  std::vector<unsigned> order(blocks);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(emu::block_seed++));
  // The last thread to finish a block poisons shared memory for the next, before any starts it.
  std::barrier next_block(threads, []() noexcept { emu::poison_shared(); });
  std::vector<std::vector<emu::Touch>> logs(threads);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      threadIdx = {t, 0, 0};
      emu::or_calls = 0;
      emu::touches = emu::trace ? &logs[t] : nullptr;
      for (const unsigned b : order) {
        next_block.arrive_and_wait();
        blockIdx = {b, 0, 0};
        kKernel(args);
      }
    });
  }
  for (auto& t : pool) t.join();
  emu::last = emu::Totals{0, 0, 0, blocks, std::string(emu::kernel_name<kKernel>())};
  if (!emu::trace) return;
  std::vector<emu::Touch> all;
  for (auto& log : logs) all.insert(all.end(), log.begin(), log.end());
  for (const emu::Touch& t : all) {
    (t.kind == emu::kRead ? emu::last.read : t.kind == emu::kWrite ? emu::last.written : emu::last.atomic) += t.bytes;
  }
  const std::string conflict = emu::find_conflict(all, emu::kernel_name<kKernel>());
  if (!conflict.empty()) throw std::runtime_error(conflict);
}
