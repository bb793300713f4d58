// What sampling="device" costs per drawn row, on the host CPU: the same code the kernels run
// (csrc/mix.h), timed on one core. A relative measure (a GPU thread is slower, and runs
// thousands at once); benchmarks/NOTES.md turns it into the per-launch cost.
//   g++ -O2 -std=c++17 -ffp-contract=off benchmarks/draw_cost.cpp -o build/draw_cost && build/draw_cost
#include <chrono>
#include <cstdio>
#include <initializer_list>

#include "../csrc/mix.h"

template <class F>
double ns_per_call(F f, int calls) {
  const auto start = std::chrono::steady_clock::now();
  double sink = 0;
  for (int i = 0; i < calls; ++i) sink += f(i);
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  if (sink == -1.0) std::puts("");  // keeps the loop
  return ns / calls;
}

int main() {
  using namespace cutmix_ext;
  const int n = 256, calls = 400000;
  for (const double alpha : {1.0, 0.4}) {
    DeviceDraw d{};
    d.alpha = alpha, d.per_sample = 1, d.pairing = 2;
    const U4 keys = feistel_keys(42, 7);  // once per call in the kernel
    const double row = ns_per_call([&](int i) {
      Sample s{};
      draw_row(alpha, 224, 224, 42, static_cast<uint64_t>(i / n), static_cast<uint64_t>(i % n), true, &s);
      return s.lam + static_cast<double>(s.x1);
    }, calls);
    const double partner = ns_per_call([&](int i) {
      return static_cast<double>(drawn_partner(d, keys, i % n, n));
    }, calls);
    std::printf("alpha %.1f: lam and box %.0f ns a row, random partner %.0f ns (N = %d)\n", alpha, row,
                partner, n);
  }
}
