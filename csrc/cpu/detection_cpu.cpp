// CPU backend of detection_boxes and detection_choose (the rules are in ../detection.h).
// detection_boxes makes two passes over the boxes, count, then place, with no per-box
// temporary. Pass 2 works each box's fate out again rather than keeping it from pass 1, which
// costs less than writing it and reading it back.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "../detection.h"
#include "../plan.h"

namespace cutmix_ext {

namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> detection_boxes_cpu(
    const at::Tensor& boxes, const at::Tensor& idx, const at::Tensor& perm,
    const std::optional<at::Tensor>& patch, const at::Tensor& lam, int64_t height, int64_t width,
    double min_visibility) {
  const Plan plan =
      make_detection_plan(boxes, idx, perm, patch, lam, height, width, min_visibility);
  const at::Tensor b = boxes.contiguous(), ix = idx.contiguous();
  const int64_t m = b.size(0), n = perm.size(0);
  refuse_bad_boxes(b, ix, n);
  std::vector<int32_t> scratch(3 * n + 1, 0);
  BoxArgs a = make_box_args(b, ix, plan.table.data(), n, height, width, min_visibility,
                            patch.has_value(), scratch.data());
  int32_t* start = a.start;
  int32_t* into = a.into;
  for (int64_t i = 0; i < n; ++i) into[a.table[i].src] = static_cast<int32_t>(i);

  // Pass 1: start[key + 1] counts the rows of each key; summed up, start[key] is its first row.
  for (int64_t k = 0; k < m; ++k) {
    const int64_t s = a.idx[k];
    const Fate f = box_fate(a, k, s);
    start[2 * s + 1] += f.keep_own;
    start[2 * into[s] + 2] += f.keep_pasted;
  }
  for (int64_t key = 0; key < 2 * n; ++key) start[key + 1] += start[key];
  const int64_t rows = start[2 * n];

  BoxOutputs o = box_outputs(a, b, ix, rows);
  // Pass 2: every kept row into its place, in source order within its key.
  for (int64_t k = 0; k < m; ++k) {
    const int64_t s = a.idx[k];
    const Fate f = box_fate(a, k, s);
    if (f.keep_own) put_row(a, start[2 * s]++, k, s, true, f.own_box);
    if (f.keep_pasted) put_row(a, start[2 * into[s] + 1]++, k, into[s], false, f.pasted_box);
  }
  return {o.boxes, o.src, o.dst, o.own, o.weights};
}

at::Tensor detection_choose_cpu(const at::Tensor& boxes, const at::Tensor& idx,
                               const at::Tensor& perm, const at::Tensor& candidates,
                               int64_t height, int64_t width, double min_visibility) {
  const std::vector<int32_t> rows =
      make_choose_rows(boxes, idx, perm, candidates, height, width, min_visibility);
  const at::Tensor b = boxes.contiguous(), ix = idx.contiguous();
  const int64_t n = perm.size(0), k = candidates.size(1);
  refuse_bad_boxes(b, ix, n);
  at::Tensor chosen = at::empty({n + 1, 4}, perm.options().dtype(at::kLong));
  std::vector<int32_t> marks(n * k, 0);
  const ChooseArgs a = make_choose_args(b, ix, rows.data(), n, k, height, width, min_visibility,
                                        marks.data(), chosen.data_ptr<int64_t>());
  for (int64_t q = 0; q < a.m; ++q) {
    const Marker m = marker(a, q, a.idx[q]);
    for (int64_t c = 0; c < k; ++c) {
      const Marks mk = box_marks(a, m, c);
      a.marks[m.s * k + c] |= mk.own;
      a.marks[m.t * k + c] |= mk.pasted;
    }
  }
  for (int64_t i = 0; i < n; ++i) choose_patch(a, i, a.marks + i * k);
  return chosen.narrow(0, 0, n);
}

}  // namespace

TORCH_LIBRARY_IMPL(cutmix_ext, CPU, m) {
  m.impl("detection_boxes", &detection_boxes_cpu);
  m.impl("detection_choose", &detection_choose_cpu);
}

}  // namespace cutmix_ext
