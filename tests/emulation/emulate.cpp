// The CUDA kernels, run on the CPU through cuda_shim.h, behind an op the tests compare with the
// CPU backend: cutmix_ext_emulated::mix (in place), ::gather (the out-of-place form) and
// ::detection_boxes; and what shows the emulation's own checks work: ::planted (a tiny kernel
// that breaks one rule on request) and ::check_tiles (the tile geometry for every batch size).
#include "cuda_shim.h"
// clang-format off
#include "../../csrc/cuda/mix_kernel.cu"
#include "../../csrc/cuda/mix_large.cu"
#include "../../csrc/cuda/mix_rows64.cu"
#include "../../csrc/cuda/mix_rows256.cu"
#include "../../csrc/cuda/mix_rows960.cu"
#include "../../csrc/cuda/mix_drawn.cu"
#include "../../csrc/cuda/gather_kernel.cu"
#include "../../csrc/cuda/detection_kernel.cu"
// clang-format on
#include <ATen/ATen.h>
#include <ATen/core/PhiloxRNGEngine.h>
#include <torch/library.h>

#include "../../csrc/plan.h"

namespace {

using namespace cutmix_ext;
using emu::buffer;

// The bytes a tensor's elements span, from its first element.
size_t span(const at::Tensor& t) {
  if (t.numel() == 0) return 0;
  int64_t last = 0;
  for (int64_t d = 0; d < t.dim(); ++d) last += (t.size(d) - 1) * t.stride(d);
  return static_cast<size_t>(last + 1) * t.element_size();
}
emu::Buffer buffer(const char* name, const at::Tensor& t, bool read_only = false) {
  return buffer(name, t.data_ptr(), span(t), read_only);
}

at::Tensor mix(bool cutmix, const at::Tensor& images, const at::Tensor& labels,
               const at::Tensor& perm, const at::Tensor& params, std::optional<int64_t> num_classes,
               double label_smoothing, bool table_in_memory,
               const std::optional<at::Tensor>& unchecked_labels, bool plant_row_overlap) {
  using namespace cutmix_ext;
  Plan p = make_plan(cutmix, images, labels, perm, params, num_classes, label_smoothing);
  // Labels the host never checked, as CUDA labels are: the kernels must guard them themselves.
  if (unchecked_labels.has_value()) p.args.labels = unchecked_labels->data_ptr();
  at::Tensor targets = allocate_targets(p, images);
  if (p.args.n == 0) return targets;
  // A planted fault in the real kernel: rows one element closer together than they are long,
  // so that a row's last element is the next row's first, which another block may own.
  if (plant_row_overlap) p.args.stride_h -= 1;
  const emu::Buffers named({buffer("images", images), buffer("targets", targets),
                            buffer("labels", labels, true),
                            buffer("table", p.table.data(), p.table.size() * sizeof(Sample), true)});
  const Sample* inline_rows = nullptr;
  p.args.table = nullptr;
  if (needs_table(p)) {
    if (p.args.n <= kInlineSamples && !table_in_memory) {
      inline_rows = p.table.data();
    } else {
      p.args.table = p.table.data();  // stands in for the device copy
    }
  }
  TORCH_CHECK(launch_mix(cutmix ? kOpCutMix : kOpMixUp, p.args, inline_rows, nullptr) == cudaSuccess);
  return targets;
}

// The general op (`mix_`), as mix above.
at::Tensor elem(const at::Tensor& images, const std::optional<at::Tensor>& labels,
                const at::Tensor& perm, const at::Tensor& boxes, const at::Tensor& lam,
                const at::Tensor& mode, double fill, std::optional<int64_t> num_classes,
                double label_smoothing, bool table_in_memory) {
  using namespace cutmix_ext;
  Plan p = make_elem_plan(images, labels.value_or(at::Tensor()), perm, boxes, lam, mode, fill,
                          num_classes, label_smoothing);
  at::Tensor targets = allocate_targets(p, images);
  if (p.args.n == 0) return targets;
  const emu::Buffers named({buffer("images", images), buffer("targets", targets),
                            buffer("table", p.table.data(), p.table.size() * sizeof(Sample), true)});
  const bool inline_rows = p.args.n <= kInlineSamples && !table_in_memory;
  p.args.table = inline_rows ? nullptr : p.table.data();
  TORCH_CHECK(launch_mix(kOpElem, p.args, inline_rows ? p.table.data() : nullptr, nullptr) ==
              cudaSuccess);
  return targets;
}

at::Tensor gather(bool cutmix, const at::Tensor& x, const at::Tensor& perm,
                  const at::Tensor& params, bool transpose, bool table_in_memory) {
  using namespace cutmix_ext;
  GatherPlan g = make_gather_plan(cutmix, transpose, x, perm, params);
  if (g.args.n == 0) return g.out;
  const emu::Buffers named({buffer("x", g.args.in, span(x), true), buffer("out", g.out),
                            buffer("table", g.rows.data(), g.rows.size() * sizeof(GatherRow), true)});
  const bool inline_rows = g.args.n <= kGatherInlineRows && !table_in_memory;
  g.args.table = inline_rows ? nullptr : g.rows.data();
  TORCH_CHECK(launch_gather(g.args, inline_rows ? g.rows.data() : nullptr, nullptr) == cudaSuccess);
  return g.out;
}

// detection_boxes as cuda/mix_cuda.cpp launches it: outputs of 2m rows, cut to those written.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> detection_boxes(
    const at::Tensor& boxes, const at::Tensor& idx, const at::Tensor& perm,
    const std::optional<at::Tensor>& patch, const at::Tensor& lam, int64_t height, int64_t width,
    double min_visibility) {
  using namespace cutmix_ext;
  const Plan plan =
      make_detection_plan(boxes, idx, perm, patch, lam, height, width, min_visibility);
  const at::Tensor b = boxes.contiguous(), ix = idx.contiguous();
  const int64_t m = b.size(0), n = perm.size(0);
  std::vector<int32_t> scratch(3 * n + 1, 12345);  // garbage: the kernel clears what it uses
  BoxArgs a = make_box_args(b, ix, plan.table.data(), n, height, width, min_visibility,
                            patch.has_value(), scratch.data());
  BoxOutputs o = box_outputs(a, b, ix, 2 * m);
  const emu::Buffers named({buffer("boxes", b, true), buffer("idx", ix, true),
                            buffer("table", plan.table.data(), plan.table.size() * sizeof(Sample), true),
                            buffer("start", a.start, (2 * n + 1) * sizeof(int32_t)),
                            buffer("into", a.into, n * sizeof(int32_t)), buffer("out", o.boxes),
                            buffer("src", o.src), buffer("dst", o.dst), buffer("own", o.own),
                            buffer("weights", o.weights)});
  int64_t rows = 0;
  if (m > 0) {
    TORCH_CHECK(launch_detection_boxes(a, nullptr) == cudaSuccess);
    rows = scratch[2 * n];
    if (rows < 0) refuse_bad_boxes(b, ix, n);
  }
  return {o.boxes.narrow(0, 0, rows), o.src.narrow(0, 0, rows), o.dst.narrow(0, 0, rows),
          o.own.narrow(0, 0, rows), o.weights.narrow(0, 0, rows)};
}

// detection_choose as cuda/mix_cuda.cpp launches it.
at::Tensor detection_choose(const at::Tensor& boxes, const at::Tensor& idx, const at::Tensor& perm,
                            const at::Tensor& candidates, int64_t height, int64_t width,
                            double min_visibility) {
  using namespace cutmix_ext;
  const std::vector<int32_t> rows =
      make_choose_rows(boxes, idx, perm, candidates, height, width, min_visibility);
  const at::Tensor b = boxes.contiguous(), ix = idx.contiguous();
  const int64_t n = perm.size(0), k = candidates.size(1);
  if (n == 0 || b.size(0) == 0) {
    refuse_bad_boxes(b, ix, n);
    return at::zeros({n, 4}, perm.options().dtype(at::kLong));
  }
  // garbage where the kernel writes: it must write every patch and the status
  at::Tensor out = at::full({n + 1, 4}, -7, perm.options().dtype(at::kLong));
  std::vector<int32_t> marks(n * k, 12345);  // and clear the marks itself
  const ChooseArgs a = make_choose_args(b, ix, rows.data(), n, k, height, width, min_visibility,
                                        marks.data(), out.data_ptr<int64_t>());
  const emu::Buffers named({buffer("boxes", b, true), buffer("idx", ix, true),
                            buffer("rows", rows.data(), rows.size() * sizeof(int32_t), true),
                            buffer("marks", a.marks, n * k * sizeof(int32_t)),
                            buffer("chosen", out)});
  TORCH_CHECK(launch_detection_choose(a, nullptr) == cudaSuccess);
  if (out[n][0].item<int64_t>() != 0) refuse_bad_boxes(b, ix, n);
  TORCH_CHECK(out[n][0].item<int64_t>() == 0, "the kernel reported bad boxes the host cannot find");
  return out.narrow(0, 0, n);
}

// sampling="device" with the given generator state. captured=True reads seed and offset through
// pointers, as during CUDA graph capture, with `intragraph` added to the offset.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> mix_drawn(
    bool cutmix, const at::Tensor& images, const at::Tensor& labels,
    std::optional<int64_t> num_classes, double label_smoothing, double alpha, bool per_sample,
    int64_t pairing, int64_t seed, int64_t offset, bool captured, int64_t intragraph) {
  using namespace cutmix_ext;
  Plan p = make_drawn_plan(cutmix, images, labels, num_classes, label_smoothing);
  at::Tensor targets = allocate_targets(p, images);
  const int64_t n = p.args.n;
  at::Tensor perm = at::empty({n}, at::kLong), boxes = at::empty({cutmix ? n : 0, 4}, at::kLong);
  at::Tensor lam = at::empty({n}, at::kDouble);
  static int64_t seed_cell, offset_cell;
  seed_cell = seed;
  offset_cell = offset;
  DeviceDraw d{};
  if (captured) {
    d.captured = 1, d.seed_ptr = &seed_cell, d.offset_ptr = &offset_cell;
    d.offset_intragraph = static_cast<uint64_t>(intragraph);
  } else {
    d.seed = static_cast<uint64_t>(seed), d.offset = static_cast<uint64_t>(offset);
  }
  d.per_sample = per_sample, d.pairing = static_cast<int32_t>(pairing), d.alpha = alpha;
  d.perm_out = perm.data_ptr<int64_t>(), d.lam_out = lam.data_ptr<double>();
  d.boxes_out = cutmix ? boxes.data_ptr<int64_t>() : nullptr;
  const emu::Buffers named({buffer("images", images), buffer("targets", targets), buffer("perm", perm),
                            buffer("boxes", boxes), buffer("lam", lam), buffer("labels", labels, true),
                            buffer("seed", &seed_cell, sizeof(seed_cell), true),
                            buffer("offset", &offset_cell, sizeof(offset_cell), true)});
  if (n > 0) TORCH_CHECK(launch_mix_drawn(cutmix, p.args, d, nullptr) == cudaSuccess);
  return {targets, perm, boxes, lam};
}

// `count` words of the kernels' Philox stream and of torch's own at::Philox4_32.
std::tuple<at::Tensor, at::Tensor> philox_words(int64_t seed, int64_t subsequence, int64_t offset,
                                                int64_t count) {
  at::Tensor ours = at::empty({count}, at::kLong), torchs = at::empty({count}, at::kLong);
  cutmix_ext::PhiloxStream s(static_cast<uint64_t>(seed), static_cast<uint64_t>(subsequence),
                             static_cast<uint64_t>(offset));
  at::Philox4_32 engine(static_cast<uint64_t>(seed), static_cast<uint64_t>(subsequence),
                        static_cast<uint64_t>(offset));
  for (int64_t i = 0; i < count; ++i) {
    ours.data_ptr<int64_t>()[i] = s.next();
    torchs.data_ptr<int64_t>()[i] = engine();
  }
  return {ours, torchs};
}

// The seed of the emulated blocks' shuffled order, the emulated device's SM count, and whether
// the ownership tracer and the shared-memory poison are on (tests turn them off only to show
// what they catch).
void configure(int64_t block_seed, int64_t sm_count, bool trace, bool poison) {
  emu::block_seed = static_cast<uint64_t>(block_seed);
  emu::sm_count = static_cast<int>(sm_count);
  emu::trace = trace;
  emu::poison = poison;
}

// The bytes the last launch read, wrote and updated atomically in global memory, and its blocks.
std::tuple<int64_t, int64_t, int64_t, int64_t> last_trace() {
  return {emu::last.read, emu::last.written, emu::last.atomic, emu::last.blocks};
}
std::string last_kernel() { return emu::last.kernel; }

// log, exp and cos(2 pi x) as the device draws compute them (mix.h), element by element.
std::tuple<at::Tensor, at::Tensor, at::Tensor> draw_math(const at::Tensor& x) {
  const at::Tensor in = x.to(at::kDouble).contiguous();
  at::Tensor l = at::empty_like(in), e = at::empty_like(in), c = at::empty_like(in);
  for (int64_t i = 0; i < in.numel(); ++i) {
    const double v = in.data_ptr<double>()[i];
    l.data_ptr<double>()[i] = log_hd(v);
    e.data_ptr<double>()[i] = exp_hd(v);
    c.data_ptr<double>()[i] = cos_2pi(v);
  }
  return {l, e, c};
}

// ---- Planted faults: a tiny kernel of kPlantBlocks blocks, each owning its own run of `data`
// as the real kernels own their positions, that breaks one rule when asked to ----

enum Plant : int64_t {
  kPlantNone, kCrossRead, kCrossWrite, kAtomics, kAtomicRead, kReadOnlyWrite, kStaticShared,
  kDynamicShared
};
constexpr int kPlantThreads = 32, kPlantBlocks = 4;
struct PlantArgs {
  int32_t* data;          // (kPlantBlocks * kPlantThreads,)
  const int32_t* input;   // as data, read only
  int32_t* counter;       // (1,)
  int64_t plant;
};

__global__ void planted_kernel(const PlantArgs a) {
  // Both hold the thread's index, the same in every block, so a block that skips writing one
  // finds the right value there unless the emulation poisons shared memory between blocks.
  __shared__ int32_t cell[kPlantThreads];
  int32_t* dynamic = cutmix_ext::dynamic_shared<int32_t>();
  const int t = static_cast<int>(threadIdx.x), b = static_cast<int>(blockIdx.x);
  const int64_t own = int64_t{b} * kPlantThreads + t;
  const bool planted = b == 2 && t == 0;
  if (!(planted && a.plant == kStaticShared)) cell[t] = t;
  if (!(planted && a.plant == kDynamicShared)) dynamic[t] = t;
  __syncthreads();
  int32_t v = cutmix_ext::load<int32_t>(a.input + own) + cell[t] + dynamic[t];
  if (a.plant == kCrossRead && b == 1 && t == 0) v += cutmix_ext::load<int32_t>(a.data + 2 * kPlantThreads);
  if (a.plant == kCrossWrite && b == 1 && t == 0) cutmix_ext::store(a.data + 2 * kPlantThreads + 5, 7);
  if ((a.plant == kAtomics || a.plant == kAtomicRead) && t == 0) atomicAdd(a.counter, 1);
  if (a.plant == kAtomicRead && b == 3 && t == 0) v += cutmix_ext::load<int32_t>(a.counter);
  if (a.plant == kReadOnlyWrite && b == 1 && t == 3) cutmix_ext::store(const_cast<int32_t*>(a.input) + 5, 0);
  cutmix_ext::store(a.data + own, v);
}

// (data, counter) after the planted kernel; data[i] = 2 * i + 2 * (i % kPlantThreads) when no
// fault shows.
std::tuple<at::Tensor, at::Tensor> planted(int64_t plant) {
  at::Tensor data = at::zeros({kPlantBlocks * kPlantThreads}, at::kInt), counter = at::zeros({1}, at::kInt);
  const at::Tensor input = at::arange(kPlantBlocks * kPlantThreads, at::kInt) * 2;
  const emu::Buffers named({buffer("data", data), buffer("input", input, true), buffer("counter", counter)});
  PlantArgs a{data.data_ptr<int32_t>(), input.data_ptr<int32_t>(), counter.data_ptr<int32_t>(), plant};
  emulate_launch<planted_kernel>(kPlantBlocks, kPlantThreads, a, kPlantThreads * sizeof(int32_t));
  return {data, counter};
}


// ---- The tile geometry (kernels.cuh: Tile, Geometry, geometry(), boxed_geometry(),
// whole_geometry()), checked through the real code for every batch size a tile takes ----

#define TILE_CHECK(cond, ...) TORCH_CHECK(cond, "tile geometry: ", #cond, ": ", __VA_ARGS__)

// Walks the kernel's own mapping (mix_kernel: pos = thread % P, slot = thread / P, position
// item * P + pos, sample slot + k * S for k < R) over every item of a launch of `positions`
// positions, and checks that each (sample, position) is computed by exactly one thread.
template <class TILE>
void check_samples(int64_t n, int64_t positions, std::vector<uint8_t>& seen) {
  MixArgs m{};
  m.n = n;
  const Geometry g = geometry<TILE>(m, positions, positions, 0, 0, 1);
  const auto where = [&] { return "N = " + std::to_string(n) + ", " + std::to_string(positions) + " positions, kThreads = " + std::to_string(TILE::kThreads); };
  // The slots split the batch: R samples each, at most kPer (the stash holds kPer chunks a
  // thread, `live` one bit each), no slot empty and no more slots than needed.
  TILE_CHECK(g.S >= 1 && g.R >= 1 && g.R <= TILE::kPer && int64_t{g.S} * g.R >= n && g.S <= n, where());
  TILE_CHECK(int64_t{g.S - 1} * g.R < n, where(), ": more slots than R samples each need");
  // The block holds S slots of P positions: every slot a thread, none beyond the block.
  TILE_CHECK(g.P >= 1 && int64_t{g.S} * g.P <= TILE::kThreads, where());
  // The items tile the positions with no idle item.
  TILE_CHECK(g.positions == positions && g.patch_items * g.P >= positions &&
                 (g.patch_items - 1) * g.P < positions, where());
  seen.assign(static_cast<size_t>(n * positions), 0);
  for (int64_t item = 0; item < g.patch_items; ++item) {
    for (int thread = 0; thread < TILE::kThreads; ++thread) {
      const int pos = thread % g.P, slot = thread / g.P;
      const int64_t at = item * g.P + pos;
      if (slot >= g.S || at >= g.positions) continue;
      for (int k = 0; k < TILE::kPer && k < g.R; ++k) {
        const int64_t i = slot + int64_t{k} * g.S;
        if (i < n) ++seen[static_cast<size_t>(i * positions + at)];
      }
    }
  }
  for (size_t j = 0; j < seen.size(); ++j) {
    TILE_CHECK(seen[j] == 1, where(), ": sample ", j / positions, " at position ", j % positions,
               " computed ", int(seen[j]), " times");
  }
}

// Chunks of `bytes` (elements of `es`) of each row of the box [x1, x2) x [y1, y2) of an image
// (a, h, w, q) whose dense rows start `offset` bytes past a `bytes` boundary: every byte of the
// box's columns in exactly one chunk, no chunk byte outside its row, each row of the box visited
// once, each chunk aligned.
template <class TILE>
void check_chunks(bool boxed, int64_t a, int64_t h, int64_t w, int64_t q, int64_t es,
                  int64_t bytes, int64_t offset, int32_t x1, int32_t y1, int32_t x2, int32_t y2) {
  MixArgs m{};
  m.n = 1, m.a = a, m.h = h, m.w = w, m.q = q, m.elem_size = static_cast<int32_t>(es);
  m.stride_h = w * q, m.stride_a = h * w * q;
  m.images = reinterpret_cast<void*>(static_cast<uintptr_t>(bytes * 64 + offset));
  m.ux1 = x1, m.uy1 = y1, m.ux2 = x2, m.uy2 = y2;
  if (!boxed) m.ux1 = 0, m.uy1 = 0, m.ux2 = static_cast<int32_t>(w), m.uy2 = static_cast<int32_t>(h);
  const Geometry g = boxed ? boxed_geometry<TILE>(m, es, bytes) : whole_geometry<TILE>(m, es, bytes);
  const int64_t row_bytes = w * q * es, lo = m.ux1 * q * es, hi = m.ux2 * q * es;
  const auto where = [&] {
    return std::string(boxed ? "boxed" : "whole") + " a=" + std::to_string(a) + " h=" + std::to_string(h) +
           " w=" + std::to_string(w) + " q=" + std::to_string(q) + " es=" + std::to_string(es) +
           " chunk=" + std::to_string(bytes) + " offset=" + std::to_string(offset) + " box x " +
           std::to_string(m.ux1) + ".." + std::to_string(m.ux2) + " y " + std::to_string(m.uy1) +
           ".." + std::to_string(m.uy2);
  };
  std::vector<uint8_t> seen(static_cast<size_t>(a * h * row_bytes), 0);
  for (int64_t at = 0; at < g.positions; ++at) {
    const int64_t row = at / g.chunks, y = g.y0 + row % g.rows_h, aa = row / g.rows_h;
    TILE_CHECK(aa < a && y >= m.uy1 && y < m.uy2, where());
    const char* start = static_cast<const char*>(m.images) + (aa * m.stride_a + y * m.stride_h) * es;
    const Span s = span_of(g.chunk_lo + at % g.chunks, phase_of(start, static_cast<int32_t>(bytes)),
                           row_bytes, static_cast<int32_t>(bytes));
    TILE_CHECK(reinterpret_cast<uintptr_t>(start + s.lo) % bytes == 0, where(), ": chunk at byte ", s.lo);
    TILE_CHECK(s.first % es == 0 && s.last % es == 0 && s.first >= 0 && s.last <= bytes, where());
    for (int64_t j = s.lo + s.first; j < s.lo + s.last; ++j) {
      TILE_CHECK(j >= 0 && j < row_bytes, where(), ": chunk byte ", j, " outside its row");
      ++seen[static_cast<size_t>((aa * h + y) * row_bytes + j)];
    }
  }
  for (int64_t aa = 0; aa < a; ++aa) {
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t j = 0; j < row_bytes; ++j) {
        const int count = seen[static_cast<size_t>((aa * h + y) * row_bytes + j)];
        const bool inside = y >= m.uy1 && y < m.uy2 && j >= lo && j < hi;
        TILE_CHECK(inside ? count == 1 : count <= 1, where(), ": byte ", j, " of row ", y, " visited ", count, " times");
      }
    }
  }
}

// Every N from 1 to max_n on each tile that takes it (the small tile up to kMaxSmallBatch, the
// drawn table up to kMaxDrawnBatch, the large one up to kMaxBatch), with 1, P - 1, P + 1 and
// 2P positions; then the chunks of boxes and whole rows for every element size and chunk width.
// Returns the number of configurations checked; any violation is an error naming it.
int64_t check_tiles(int64_t max_n) {
  static_assert(SmallTile::kPer <= 32 && LargeTile::kPer <= 32, "live holds one bit a sample");
  static_assert(SmallTile::kPer % SmallTile::kGroup == 0 && LargeTile::kPer % LargeTile::kGroup == 0);
  static_assert(SmallTile::kThreads * SmallTile::kPer * SmallTile::kVecBytes == 32 * 1024);
  static_assert(LargeTile::kThreads * LargeTile::kPer * LargeTile::kVecBytes == 64 * 1024);
  static_assert(kMaxDrawnBatch * sizeof(Sample) == 32 * 1024);
  int64_t checked = 0;
  std::vector<uint8_t> seen;
  auto samples = [&](auto tile, int64_t n) {
    using TILE = decltype(tile);
    if (n > TILE::kMaxBatch) return;
    MixArgs m{};
    m.n = n;
    const int64_t p = geometry<TILE>(m, 1, 1, 0, 0, 1).P;
    for (const int64_t positions : {int64_t{1}, p - 1, p + 1, 2 * p}) {
      if (positions < 1) continue;
      check_samples<TILE>(n, positions, seen);
      ++checked;
    }
  };
  for (int64_t n = 1; n <= max_n; ++n) {
    samples(SmallTile{}, n);
    samples(LargeTile{}, n);
  }
  for (const bool boxed : {false, true}) {
    for (const int64_t es : {1, 2, 4, 8}) {
      for (const int64_t bytes : {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{8}, int64_t{16}}) {
        if (bytes < es) continue;
        for (int64_t w = 1; w <= 13; ++w) {
          for (const int64_t q : {1, 3}) {
            for (int64_t offset = 0; offset < bytes; offset += es) {
              for (int32_t x1 = 0; x1 < w; ++x1) {
                for (int32_t x2 = x1 + 1; x2 <= w; ++x2) {
                  check_chunks<SmallTile>(boxed, 2, 3, w, q, es, bytes, offset, x1, 1, x2, 3);
                  check_chunks<LargeTile>(boxed, 1, 2, w, q, es, bytes, offset, x1, 0, x2, 1);
                  checked += 2;
                  if (!boxed) break;
                }
                if (!boxed) break;
              }
            }
          }
        }
      }
    }
  }
  return checked;
}

}  // namespace

TORCH_LIBRARY(cutmix_ext_emulated, m) {
  m.def("configure(int block_seed, int sm_count, bool trace=True, bool poison=True) -> ()", &configure);
  m.def("last_trace() -> (int, int, int, int)", &last_trace);
  m.def("last_kernel() -> str", &last_kernel);
  m.def("planted(int plant) -> (Tensor, Tensor)", &planted);
  m.def("check_tiles(int max_n) -> int", &check_tiles);
  m.def("draw_math(Tensor x) -> (Tensor, Tensor, Tensor)", &draw_math);
  m.def(
      "mix(bool cutmix, Tensor(a!) images, Tensor labels, Tensor perm, Tensor params, "
      "int? num_classes, float label_smoothing, bool table_in_memory, "
      "Tensor? unchecked_labels=None, bool plant_row_overlap=False) -> Tensor",
      &mix);
  m.def("elem(Tensor(a!) images, Tensor? labels, Tensor perm, Tensor boxes, Tensor lam, "
        "Tensor mode, float fill, int? num_classes, float label_smoothing, "
        "bool table_in_memory) -> Tensor",
        &elem);
  m.def("gather(bool cutmix, Tensor x, Tensor perm, Tensor params, bool transpose, "
        "bool table_in_memory) -> Tensor",
        &gather);
  m.def("mix_drawn(bool cutmix, Tensor(a!) images, Tensor labels, int? num_classes, "
        "float label_smoothing, float alpha, bool per_sample, int pairing, int seed, int offset, "
        "bool captured, int intragraph) -> (Tensor, Tensor, Tensor, Tensor)",
        &mix_drawn);
  m.def("detection_boxes(Tensor boxes, Tensor idx, Tensor perm, Tensor? patch, Tensor lam, "
        "int height, int width, float min_visibility) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
        &detection_boxes);
  m.def("detection_choose(Tensor boxes, Tensor idx, Tensor perm, Tensor candidates, int height, "
        "int width, float min_visibility) -> Tensor",
        &detection_choose);
  m.def("philox_words(int seed, int subsequence, int offset, int count) -> (Tensor, Tensor)",
        &philox_words);
}
