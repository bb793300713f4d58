// Lets csrc/cuda/mix_kernel.cu compile with the host compiler and run on the CPU: every CUDA
// thread of a block is a std::thread and __syncthreads is a std::barrier, so the tests can check
// the kernels' indexing, chunking and barrier placement on a machine without a GPU.
#pragma once
// The CUDA headers come first: their declarations use the names defined below.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#define CUTMIX_EXT_EMULATE 1
// All threads of an emulated block run the same function, so a static array is their shared
// memory (blocks run one after another).
#undef __shared__
#define __shared__ static
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

inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v); }

inline int emulated_sm_count() { return emu::sm_count; }
inline void* emulated_dynamic_shared() { return emu::dynamic_shared.data(); }

// Runs the blocks one after another, in a shuffled order, each on `threads` std::threads.
template <class Kernel, class Args>
void emulate_launch(Kernel kernel, unsigned blocks, unsigned threads, const Args& args,
                    int64_t shared_bytes = 0) {
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
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      threadIdx = {t, 0, 0};
      emu::or_calls = 0;
      for (const unsigned b : order) {
        blockIdx = {b, 0, 0};
        kernel(args);
        barrier.arrive_and_wait();  // a block ends for all of its threads
      }
    });
  }
  for (auto& t : pool) t.join();
}
