#include "plan.h"

#include <ATen/ATen.h>
#include <ATen/EmptyTensor.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace cutmix_ext {

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kByte: return "torch.uint8";
    case at::kChar: return "torch.int8";
    case at::kShort: return "torch.int16";
    case at::kInt: return "torch.int32";
    case at::kLong: return "torch.int64";
    case at::kBool: return "torch.bool";
    case at::kHalf: return "torch.float16";
    case at::kBFloat16: return "torch.bfloat16";
    case at::kFloat: return "torch.float32";
    case at::kDouble: return "torch.float64";
    case at::kComplexHalf: return "torch.complex32";
    case at::kComplexFloat: return "torch.complex64";
    case at::kComplexDouble: return "torch.complex128";
    default: return std::string("torch.") + c10::toString(t);
  }
}

std::string dtype_name(const at::Tensor& t) { return t.defined() ? dtype_name(t.scalar_type()) : "None"; }

void check_disjoint(const at::Tensor& written, const char* written_name, const at::Tensor& other,
                    const char* other_name) {
  if (!written.defined() || !other.defined() || written.numel() == 0 || other.numel() == 0 ||
      !written.has_storage() || !other.has_storage() ||
      !written.storage().is_alias_of(other.storage())) {
    return;
  }
  // The byte ranges the two views span within their storage; intersecting spans are refused
  // even where the views interleave without a common element: telling those apart costs more
  // than such a call is worth.
  auto span = [](const at::Tensor& t) {
    int64_t last = 0;
    for (int64_t d = 0; d < t.dim(); ++d) last += (t.size(d) - 1) * t.stride(d);
    const int64_t begin = t.storage_offset() * static_cast<int64_t>(t.element_size());
    return std::pair<int64_t, int64_t>{begin, begin + (last + 1) * static_cast<int64_t>(t.element_size())};
  };
  const auto [wb, we] = span(written);
  const auto [ob, oe] = span(other);
  TORCH_CHECK_VALUE(!(wb < oe && ob < we), other_name, ": shares memory with ", written_name,
                    ", which the call writes in place; pass a tensor of its own (",
                    other_name, ".clone())");
}

namespace {

ScalarKind image_scalar(const at::Tensor& images, const char* name) {
  switch (images.scalar_type()) {
    case at::kByte: return kU8;
    case at::kHalf: return kF16;
    case at::kBFloat16: return kBF16;
    case at::kFloat: return kF32;
    case at::kDouble: return kF64;
    case at::kChar:
    case at::kShort:
    case at::kInt:
    case at::kLong:
    case at::kBool: return kBits;
    default:
      TORCH_CHECK_TYPE(false, name, ": unsupported dtype ", dtype_name(images),
                       "; expected uint8, float16, bfloat16, float32 or float64 (or an integer "
                       "or bool mask for CutMix and CutOut)");
  }
}

// Views the images as (n, a, h, w * q) with a contiguous last dimension. Two layouts qualify:
// q = 1 (W is the innermost dim: contiguous, cropped or batch-sliced tensors) and q = C (the
// channels are innermost: channels_last, channels_last_3d). Writing in place rules out copying
// into a friendlier layout, so anything else is refused.
// Returns false when the tensor fits neither form.
bool layout_of(const at::Tensor& images, MixArgs& m) {
  const int64_t d = images.dim();
  const auto sizes = images.sizes();
  const auto strides = images.strides();
  const int64_t H = sizes[d - 2], W = sizes[d - 1];
  m.n = sizes[0];
  m.h = H;
  m.w = W;
  m.stride_n = strides[0];
  m.stride_h = strides[d - 2];

  auto merge_outer = [&](int64_t first) -> bool {
    m.a = 1;
    m.stride_a = 0;
    int64_t prev = -1;
    for (int64_t j = first; j < d - 2; ++j) {
      if (sizes[j] == 1) continue;
      if (prev >= 0 && strides[prev] != strides[j] * sizes[j]) return false;
      m.a *= sizes[j];
      m.stride_a = strides[j];
      prev = j;
    }
    return true;
  };

  bool ok = false;
  if (W == 1 || strides[d - 1] == 1) {
    m.q = 1;
    ok = merge_outer(1);
  }
  const int64_t C = sizes[1];
  if (!ok && d >= 4 && (C == 1 || strides[1] == 1) && (W == 1 || strides[d - 1] == C)) {
    m.q = C;
    ok = merge_outer(2);
  }
  return ok;
}

void describe_layout(const at::Tensor& images, MixArgs& m, const char* name) {
  const auto sizes = images.sizes();
  const auto strides = images.strides();
  TORCH_CHECK_VALUE(layout_of(images, m), name, ": unsupported memory layout (shape ", sizes,
                    ", strides ", strides, "); in-place mixing needs the width or the channels "
                    "innermost, as in a contiguous or channels_last tensor");

  // Distinct elements: every stride clears the extent of the dims inside it.
  struct Dim {
    int64_t size, stride;
  };
  Dim dims[4] = {{m.n, m.stride_n}, {m.a, m.stride_a}, {m.h, m.stride_h}, {m.w * m.q, 1}};
  std::sort(dims, dims + 4, [](const Dim& x, const Dim& y) { return x.stride < y.stride; });
  int64_t extent = 1;
  for (const Dim& dim : dims) {
    if (dim.size <= 1) continue;
    TORCH_CHECK_VALUE(dim.stride >= extent, name, ": overlapping memory (shape ", sizes,
                      ", strides ", strides, "), as in an expanded view; in-place mixing ",
                      "needs every element stored once");
    extent = dim.stride * dim.size;
  }
}

void describe_labels(const at::Tensor& images, const at::Tensor& labels,
                     std::optional<int64_t> num_classes, MixArgs& m) {
  if (!labels.defined()) {  // mix_ without labels: no targets (K = 0)
    m.label_kind = kLabelF32;
    m.labels = nullptr;
    m.num_classes = 0;
    return;
  }
  TORCH_CHECK_VALUE(labels.device() == images.device(), "labels: expected on the images' device ",
                    images.device(), ", got ", labels.device());
  if (num_classes.has_value()) {
    TORCH_CHECK_VALUE(*num_classes > 0, "num_classes: must be positive, got ", *num_classes);
  }
  const auto dt = labels.scalar_type();
  if (dt == at::kLong || dt == at::kInt) {
    TORCH_CHECK_VALUE(labels.dim() == 1 && labels.size(0) == m.n,
                      "labels: class indices must have shape (N,) = (", m.n, ",), got ",
                      labels.sizes());
    TORCH_CHECK_VALUE(num_classes.has_value(),
                      "num_classes: required with class-index labels, got None");
    m.label_kind = dt == at::kLong ? kLabelI64 : kLabelI32;
    m.label_stride_n = labels.stride(0);
    m.label_stride_k = 0;
    m.num_classes = *num_classes;
  } else if (dt == at::kHalf || dt == at::kBFloat16 || dt == at::kFloat || dt == at::kDouble) {
    TORCH_CHECK_VALUE(labels.dim() == 2 && labels.size(0) == m.n && labels.size(1) > 0,
                      "labels: soft targets must have shape (N, K) = (", m.n, ", K), got ",
                      labels.sizes());
    TORCH_CHECK_VALUE(!num_classes.has_value() || *num_classes == labels.size(1),
                      "num_classes: ", *num_classes, " does not match the labels' K = ",
                      labels.size(1));
    m.label_kind = dt == at::kHalf       ? kLabelF16
                   : dt == at::kBFloat16 ? kLabelBF16
                   : dt == at::kFloat    ? kLabelF32
                                         : kLabelF64;
    m.label_stride_n = labels.stride(0);
    m.label_stride_k = labels.stride(1);
    m.num_classes = labels.size(1);
  } else {
    TORCH_CHECK_TYPE(false, "labels: expected int64/int32 class indices of shape (N,) or ",
                     "floating-point targets of shape (N, K), got dtype ", dtype_name(dt));
  }
  m.labels = labels.data_ptr();

  // A device-side check would cost a host sync; the CUDA kernel guards those labels instead.
  if (labels.is_cpu() && is_index_label(m)) {
    for (int64_t i = 0; i < m.n; ++i) {
      const int64_t y = label_index(m, i);
      TORCH_CHECK_VALUE(0 <= y && y < m.num_classes, "labels: class index ", y, " at position ",
                        i, " is outside [0, num_classes = ", m.num_classes, ")");
    }
  }
}

void describe_perm(const at::Tensor& perm, Plan& p, const char* name = "params.perm") {
  MixArgs& m = p.args;
  TORCH_CHECK_TYPE(perm.defined() && perm.scalar_type() == at::kLong, name,
                   ": expected an int64 tensor, got ", dtype_name(perm));
  TORCH_CHECK_VALUE(perm.is_cpu(), name, ": expected a CPU tensor, got ", perm.device());
  TORCH_CHECK_VALUE(perm.dim() == 1 && perm.size(0) == m.n, name, ": expected shape (", m.n,
                    ",), got ", perm.sizes());
  const auto acc = perm.accessor<int64_t, 1>();
  std::vector<char> seen(m.n, 0);
  bool roll = true, flip = true;
  for (int64_t i = 0; i < m.n; ++i) {
    const int64_t j = acc[i];
    TORCH_CHECK_VALUE(0 <= j && j < m.n, name, ": entry ", i, " is ", j, ", outside [0, N = ",
                      m.n, ")");
    TORCH_CHECK_VALUE(!seen[j], name, ": not a permutation, ", j, " appears twice");
    seen[j] = 1;
    p.table[i].src = static_cast<int32_t>(j);
    roll = roll && j == (i == 0 ? m.n - 1 : i - 1);
    flip = flip && j == m.n - 1 - i;
  }
  m.pairing = roll ? kPairRoll : flip ? kPairFlip : kPairTable;
}

void describe_boxes(const at::Tensor& boxes, Plan& p) {
  MixArgs& m = p.args;
  TORCH_CHECK_TYPE(boxes.defined() && boxes.scalar_type() == at::kLong,
                   "params.boxes: expected an int64 tensor, got ",
                   dtype_name(boxes));
  TORCH_CHECK_VALUE(boxes.is_cpu(), "params.boxes: expected a CPU tensor, got ", boxes.device());
  TORCH_CHECK_VALUE(boxes.dim() == 2 && boxes.size(0) == m.n && boxes.size(1) == 4,
                    "params.boxes: expected shape (N, 4) = (", m.n, ", 4), got ", boxes.sizes());
  const auto acc = boxes.accessor<int64_t, 2>();
  int64_t ux1 = m.w, uy1 = m.h, ux2 = 0, uy2 = 0;
  for (int64_t i = 0; i < m.n; ++i) {
    const int64_t x1 = acc[i][0], y1 = acc[i][1], x2 = acc[i][2], y2 = acc[i][3];
    TORCH_CHECK_VALUE(0 <= x1 && x1 <= x2 && x2 <= m.w && 0 <= y1 && y1 <= y2 && y2 <= m.h,
                      "params.boxes: row ", i, " (x1, y1, x2, y2) = (", x1, ", ", y1, ", ", x2,
                      ", ", y2, ") is not a box inside the ", m.h, "x", m.w,
                      " image (0 <= x1 <= x2 <= W, 0 <= y1 <= y2 <= H)");
    Sample& s = p.table[i];
    s.x1 = static_cast<int32_t>(x1);
    s.y1 = static_cast<int32_t>(y1);
    s.x2 = static_cast<int32_t>(x2);
    s.y2 = static_cast<int32_t>(y2);
    if (x1 < x2 && y1 < y2) {
      ux1 = std::min(ux1, x1), uy1 = std::min(uy1, y1);
      ux2 = std::max(ux2, x2), uy2 = std::max(uy2, y2);
    }
    const Sample& s0 = p.table[0];
    p.shared = p.shared && s.x1 == s0.x1 && s.y1 == s0.y1 && s.x2 == s0.x2 && s.y2 == s0.y2;
  }
  if (ux1 >= ux2 || uy1 >= uy2) ux1 = uy1 = ux2 = uy2 = 0;
  m.ux1 = static_cast<int32_t>(ux1), m.uy1 = static_cast<int32_t>(uy1);
  m.ux2 = static_cast<int32_t>(ux2), m.uy2 = static_cast<int32_t>(uy2);
  if (m.n > 0) {
    m.x1 = p.table[0].x1, m.y1 = p.table[0].y1, m.x2 = p.table[0].x2, m.y2 = p.table[0].y2;
  }
}

void describe_lam(const at::Tensor& lam, Plan& p) {
  MixArgs& m = p.args;
  TORCH_CHECK_TYPE(lam.defined() && (lam.scalar_type() == at::kDouble ||
                                     lam.scalar_type() == at::kFloat),
                   "params.lam: expected a float64 or float32 tensor, got ",
                   dtype_name(lam));
  TORCH_CHECK_VALUE(lam.is_cpu(), "params.lam: expected a CPU tensor, got ", lam.device());
  TORCH_CHECK_VALUE(lam.dim() == 1 && lam.size(0) == m.n, "params.lam: expected shape (", m.n,
                    ",), got ", lam.sizes());
  const at::Tensor l = lam.to(at::kDouble);
  const auto acc = l.accessor<double, 1>();
  for (int64_t i = 0; i < m.n; ++i) {
    const double v = acc[i];
    TORCH_CHECK_VALUE(v >= 0.0 && v <= 1.0, "params.lam: entry ", i, " is ", v,
                      ", outside [0, 1]");
    p.table[i].lam = v;
    p.shared = p.shared && v == p.table[0].lam;
  }
  if (m.n > 0) m.lam = p.table[0].lam;
}

// MixUp touches every element, so dense rows can be walked as one long row, as long as it
// stays under kMaxRowBytes.
void merge_rows(MixArgs& m) {
  const int64_t bytes = m.elem_size * m.q;
  if ((m.stride_h == m.w * m.q || m.h == 1) && m.w * m.h * bytes < kMaxRowBytes) {
    m.w *= m.h;
    m.h = 1;
    m.stride_h = m.w * m.q;
    if ((m.stride_a == m.w * m.q || m.a == 1) && m.w * m.a * bytes < kMaxRowBytes) {
      m.w *= m.a;
      m.a = 1;
      m.stride_a = m.w * m.q;
    }
  }
}

// Fills p.table (and the shared fields of p.args) from perm and the boxes or lam; needs
// p.args.n, h and w.
void describe_params(bool cutmix, const at::Tensor& perm, const at::Tensor& params, Plan& p) {
  p.table.assign(p.args.n, Sample{});
  describe_perm(perm, p);
  if (cutmix) {
    describe_boxes(params, p);
  } else {
    describe_lam(params, p);
  }
}

}  // namespace

void check_pairs(const at::Tensor& perm, const at::Tensor& lam, int64_t n,
                 const char* perm_name) {
  Plan p;
  p.args.n = n;
  p.table.assign(n, Sample{});
  describe_perm(perm, p, perm_name);
  if (lam.defined()) describe_lam(lam, p);
}

void check_image_shape(const at::Tensor& images, const char* name) {
  TORCH_CHECK_TYPE(images.defined(), name, ": expected a tensor, got None");
  TORCH_CHECK_VALUE(images.dim() >= 4, name, ": expected a batch of shape (N, C, H, W) or ",
                    "(N, ..., H, W), got shape ", images.sizes());
  TORCH_CHECK_VALUE(images.size(-1) > 0 && images.size(-2) > 0,
                    name, ": height and width must be positive, got shape ", images.sizes());
  TORCH_CHECK_VALUE(images.size(0) < std::numeric_limits<int32_t>::max() &&
                        images.size(-1) < std::numeric_limits<int32_t>::max() &&
                        images.size(-2) < std::numeric_limits<int32_t>::max(),
                    name, ": batch size, height and width must be below 2^31, got shape ",
                    images.sizes());
}

namespace {

// The checks and the description shared by every in-place op, before its parameters.
Plan describe_call(const at::Tensor& images, const at::Tensor& labels,
                   std::optional<int64_t> num_classes, double label_smoothing, const char* name) {
  Plan p;
  MixArgs& m = p.args;
  check_image_shape(images, name);
  m.scalar = image_scalar(images, name);
  describe_layout(images, m, name);
  m.elem_size = static_cast<int32_t>(images.element_size());
  m.images = images.data_ptr();

  describe_labels(images, labels, num_classes, m);
  TORCH_CHECK_VALUE(std::isfinite(label_smoothing) && label_smoothing >= 0.0 &&
                        label_smoothing < 1.0,
                    "label_smoothing: must be in [0, 1), got ", label_smoothing);
  m.smoothing = label_smoothing;
  return p;
}

// The images are written in place: nothing the call reads may share their memory.
void check_inputs_apart(const at::Tensor& images, const char* name, const at::Tensor& labels,
                        const at::Tensor& perm, const at::Tensor& boxes, const at::Tensor& lam,
                        const at::Tensor& mode) {
  check_disjoint(images, name, labels, "labels");
  check_disjoint(images, name, perm, "params.perm");
  check_disjoint(images, name, boxes, "params.boxes");
  check_disjoint(images, name, lam, "params.lam");
  check_disjoint(images, name, mode, "params.mode");
}

}  // namespace

namespace {

void check_detection_args(const at::Tensor& boxes, const at::Tensor& idx, const at::Tensor& perm,
                          double min_visibility) {
  TORCH_CHECK_VALUE(boxes.dim() == 2 && boxes.size(1) == 4 && boxes.scalar_type() == at::kDouble,
                    "boxes: expected float64 (M, 4), got ", dtype_name(boxes), " ",
                    boxes.sizes());
  const int64_t m = boxes.size(0);
  TORCH_CHECK_VALUE(m < (int64_t{1} << 30), "boxes: at most 2^30 boxes, got ", m);
  TORCH_CHECK_VALUE(idx.scalar_type() == at::kLong && idx.dim() == 1 && idx.size(0) == m &&
                        idx.device() == boxes.device(),
                    "idx: expected int64 (", m, ",) on ", boxes.device(), ", got ",
                    dtype_name(idx), " ", idx.sizes(), " on ", idx.device());
  TORCH_CHECK_VALUE(min_visibility >= 0.0 && min_visibility <= 1.0,
                    "min_visibility: expected a number in [0, 1], got ", min_visibility);
  TORCH_CHECK_VALUE(perm.dim() == 1 && perm.size(0) < (int64_t{1} << 30),
                    "params.perm: expected shape (N,) with N < 2^30, got ", perm.sizes());
}

}  // namespace

void refuse_bad_boxes(const at::Tensor& boxes, const at::Tensor& idx, int64_t n) {
  const at::Tensor b = boxes.to(at::kCPU).contiguous(), ix = idx.to(at::kCPU).contiguous();
  const double* r = b.data_ptr<double>();
  const int64_t* s = ix.data_ptr<int64_t>();
  for (int64_t k = 0; k < b.size(0); ++k) {
    TORCH_CHECK_VALUE(0 <= s[k] && s[k] < n, "idx: box ", k, " belongs to sample ", s[k],
                      ", outside the batch of ", n);
    TORCH_CHECK_VALUE(valid_box(r + 4 * k), "boxes: row ", k, " (x1, y1, x2, y2) = (", r[4 * k],
                      ", ", r[4 * k + 1], ", ", r[4 * k + 2], ", ", r[4 * k + 3],
                      ") is not a box: it needs x2 >= x1 and y2 >= y1");
  }
}

std::vector<int32_t> make_choose_rows(const at::Tensor& boxes, const at::Tensor& idx,
                                      const at::Tensor& perm, const at::Tensor& candidates,
                                      int64_t height, int64_t width, double min_visibility) {
  check_detection_args(boxes, idx, perm, min_visibility);
  const int64_t n = perm.size(0);
  check_pairs(perm, at::Tensor(), n);
  TORCH_CHECK_VALUE(0 < height && height <= std::numeric_limits<int32_t>::max() && 0 < width &&
                        width <= std::numeric_limits<int32_t>::max(),
                    "height, width: expected in [1, 2^31), got ", height, " and ", width);
  TORCH_CHECK_TYPE(candidates.scalar_type() == at::kLong, "candidates: expected int64, got ",
                   dtype_name(candidates));
  TORCH_CHECK_VALUE(candidates.is_cpu() && candidates.dim() == 3 && candidates.size(0) == n &&
                        candidates.size(1) >= 1 && candidates.size(2) == 4,
                    "candidates: expected a CPU tensor (N, K, 4) with N = ", n,
                    " and K >= 1, got ", candidates.sizes(), " on ", candidates.device());
  const int64_t k = candidates.size(1);
  TORCH_CHECK_VALUE(n * k < (int64_t{1} << 26), "candidates: at most 2^26 in all, got ", n * k);
  const at::Tensor c = candidates.contiguous(), partners = perm.contiguous();
  const int64_t* v = c.data_ptr<int64_t>();
  const int64_t* j = partners.data_ptr<int64_t>();
  std::vector<int32_t> rows(n * (1 + 4 * k));
  for (int64_t i = 0; i < n; ++i) {
    rows[j[i] * (1 + 4 * k)] = static_cast<int32_t>(i);  // j's boxes are pasted into i
    for (int64_t q = 0; q < k; ++q) {
      const int64_t* r = v + 4 * (i * k + q);
      TORCH_CHECK_VALUE(0 <= r[0] && r[0] <= r[2] && r[2] <= width && 0 <= r[1] && r[1] <= r[3] &&
                            r[3] <= height,
                        "candidates: [", i, ", ", q, "] (x1, y1, x2, y2) = (", r[0], ", ", r[1],
                        ", ", r[2], ", ", r[3], ") is not a box inside the ", height, "x", width,
                        " image");
      for (int e = 0; e < 4; ++e) rows[i * (1 + 4 * k) + 1 + 4 * q + e] = static_cast<int32_t>(r[e]);
    }
  }
  return rows;
}

ChooseArgs make_choose_args(const at::Tensor& boxes, const at::Tensor& idx, const int32_t* rows,
                            int64_t n, int64_t k, int64_t height, int64_t width,
                            double min_visibility, int32_t* marks, int64_t* chosen) {
  ChooseArgs a{};
  a.boxes = boxes.data_ptr<double>();
  a.idx = idx.data_ptr<int64_t>();
  a.rows = rows;
  a.m = boxes.size(0), a.n = n, a.k = k;
  a.width = static_cast<double>(width), a.height = static_cast<double>(height);
  a.min_visibility = min_visibility;
  a.marks = marks;
  a.chosen = chosen;
  a.status = chosen + 4 * n;
  return a;
}

Plan make_detection_plan(const at::Tensor& boxes, const at::Tensor& idx,
                         const at::Tensor& perm, const std::optional<at::Tensor>& patch,
                         const at::Tensor& lam, int64_t height, int64_t width,
                         double min_visibility) {
  check_detection_args(boxes, idx, perm, min_visibility);
  const bool cutmix = patch.has_value();
  Plan p;
  p.args.n = perm.size(0);
  p.args.h = height;
  p.args.w = width;
  describe_params(cutmix, perm, cutmix ? *patch : lam, p);
  return p;
}

BoxArgs make_box_args(const at::Tensor& boxes, const at::Tensor& idx, const Sample* table,
                      int64_t n, int64_t height, int64_t width, double min_visibility, bool cutmix,
                      int32_t* scratch) {
  BoxArgs a{};
  a.boxes = boxes.data_ptr<double>();
  a.idx = idx.data_ptr<int64_t>();
  a.table = table;
  a.m = boxes.size(0), a.n = n;
  a.width = static_cast<double>(width), a.height = static_cast<double>(height);
  a.min_visibility = min_visibility;
  a.cutmix = cutmix;
  a.start = scratch;
  a.into = scratch + 2 * n + 1;
  return a;
}

BoxOutputs box_outputs(BoxArgs& a, const at::Tensor& boxes, const at::Tensor& idx, int64_t rows) {
  BoxOutputs o{at::empty({rows, 4}, boxes.options()), at::empty({rows}, idx.options()),
               at::empty({rows}, idx.options()), at::empty({rows}, idx.options().dtype(at::kBool)),
               at::empty({rows}, boxes.options().dtype(at::kFloat))};
  a.out = o.boxes.data_ptr<double>();
  a.src = o.src.data_ptr<int64_t>();
  a.dst = o.dst.data_ptr<int64_t>();
  a.own = o.own.data_ptr<bool>();
  a.weights = o.weights.data_ptr<float>();
  return o;
}

Plan make_plan(bool cutmix, const at::Tensor& images, const at::Tensor& labels,
               const at::Tensor& perm, const at::Tensor& params,
               std::optional<int64_t> num_classes, double label_smoothing) {
  Plan p = describe_call(images, labels, num_classes, label_smoothing, "images");
  TORCH_CHECK_TYPE(cutmix || p.args.scalar != kBits, "images: MixUp blends values, so it needs ",
                   "uint8 or floating-point images, got ", dtype_name(images));
  describe_params(cutmix, perm, params, p);
  check_inputs_apart(images, "images", labels, perm, cutmix ? params : at::Tensor(),
                     cutmix ? at::Tensor() : params, at::Tensor());
  if (!cutmix) merge_rows(p.args);
  return p;
}

Plan make_elem_plan(const at::Tensor& images, const at::Tensor& labels, const at::Tensor& perm,
                    const at::Tensor& boxes, const at::Tensor& lam, const at::Tensor& mode,
                    double fill, std::optional<int64_t> num_classes, double label_smoothing,
                    const char* name) {
  Plan p = describe_call(images, labels, num_classes, label_smoothing, name);
  MixArgs& m = p.args;
  describe_params(true, perm, boxes, p);
  describe_lam(lam, p);  // overwrites only lam (and the shared flag, unused here)
  TORCH_CHECK_TYPE(mode.defined() && (mode.scalar_type() == at::kLong ||
                                      mode.scalar_type() == at::kChar ||
                                      mode.scalar_type() == at::kByte),
                   "params.mode: expected an int64 or int8 tensor, got ",
                   dtype_name(mode));
  TORCH_CHECK_VALUE(mode.is_cpu(), "params.mode: expected a CPU tensor, got ", mode.device());
  TORCH_CHECK_VALUE(mode.dim() == 1 && mode.size(0) == m.n, "params.mode: expected shape (", m.n,
                    ",), got ", mode.sizes());
  const at::Tensor md = mode.to(at::kLong);
  const auto acc = md.accessor<int64_t, 1>();
  bool any_fill = false;
  for (int64_t i = 0; i < m.n; ++i) {
    const int64_t v = acc[i];
    TORCH_CHECK_VALUE(v == kModeCut || v == kModeBlend || v == kModeFill, "params.mode: entry ",
                      i, " is ", v, "; expected 0 (paste), 1 (blend) or 2 (fill)");
    TORCH_CHECK_TYPE(v != kModeBlend || m.scalar != kBits, "params.mode: sample ", i,
                     " blends (MixUp), which needs uint8 or floating-point ", name, ", got ",
                     dtype_name(images));
    p.table[i].mode = static_cast<int32_t>(v);
    any_fill = any_fill || v == kModeFill;
  }
  m.fill_bits = 0;
  if (any_fill) {
    TORCH_CHECK_VALUE(images.is_floating_point() || (std::isfinite(fill) && std::abs(fill) < 1e18),
                      "fill: ", fill, " is not a value of dtype ", dtype_name(images));
    const at::Tensor f = at::scalar_tensor(fill, at::kDouble).to(images.scalar_type());
    TORCH_CHECK_VALUE(images.is_floating_point() || f.to(at::kDouble).item<double>() == fill,
                      "fill: ", fill, " is not a value of dtype ", dtype_name(images));
    std::memcpy(&m.fill_bits, f.data_ptr(), f.element_size());
  }
  check_inputs_apart(images, name, labels, perm, boxes, lam, mode);
  p.shared = false;  // the kernels read every sample's mode from the table
  return p;
}

Plan make_drawn_plan(bool cutmix, const at::Tensor& images, const at::Tensor& labels,
                     std::optional<int64_t> num_classes, double label_smoothing) {
  check_image_shape(images);
  const int64_t n = images.size(0);
  const at::Tensor perm = at::arange(n, at::kLong);
  const at::Tensor params = cutmix ? at::zeros({n, 4}, at::kLong) : at::ones({n}, at::kDouble);
  Plan p = make_plan(cutmix, images, labels, perm, params, num_classes, label_smoothing);
  MixArgs& m = p.args;
  p.table.clear();
  p.shared = false;
  m.pairing = kPairTable;
  m.table = nullptr;
  if (cutmix) m.ux1 = 0, m.uy1 = 0, m.ux2 = static_cast<int32_t>(m.w), m.uy2 = static_cast<int32_t>(m.h);
  return p;
}

at::Tensor allocate_targets(Plan& plan, const at::Tensor& images) {
  // On the CPU straight from the allocator: the dispatcher's at::empty is a good part of a small
  // batch's whole call.
  const std::vector<int64_t> shape{plan.args.n, plan.args.num_classes};
  at::Tensor targets = images.is_cpu() ? at::Tensor(at::detail::empty_cpu(shape, at::kFloat))
                                       : at::empty(shape, images.options().dtype(at::kFloat));
  plan.args.targets = targets.data_ptr<float>();
  return targets;
}

// The output of the out-of-place form: channels_last(_3d) when x is, else contiguous. The fake
// kernel in cutmix_ext/_fake.py follows the same rule.
static at::MemoryFormat out_format(const at::Tensor& x) {
  if (x.is_contiguous()) return at::MemoryFormat::Contiguous;
  if (x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return at::MemoryFormat::ChannelsLast;
  }
  if (x.dim() == 5 && x.is_contiguous(at::MemoryFormat::ChannelsLast3d)) {
    return at::MemoryFormat::ChannelsLast3d;
  }
  return at::MemoryFormat::Contiguous;
}

GatherPlan make_gather_plan(bool cutmix, bool transpose, const at::Tensor& x,
                            const at::Tensor& perm, const at::Tensor& params) {
  TORCH_CHECK_TYPE(x.defined(), "x: expected a tensor, got None");
  TORCH_CHECK_VALUE(x.dim() >= 4, "x: expected a batch of shape (N, C, H, W) or (N, ..., H, W), "
                    "got shape ", x.sizes());
  TORCH_CHECK_VALUE(x.size(0) < std::numeric_limits<int32_t>::max() &&
                        x.size(-1) < std::numeric_limits<int32_t>::max() &&
                        x.size(-2) < std::numeric_limits<int32_t>::max(),
                    "x: batch size, height and width must be below 2^31, got shape ", x.sizes());
  const ScalarKind scalar = image_scalar(x, "x");
  TORCH_CHECK_TYPE(scalar != kBits, "x: expected uint8 or floating-point values, got ",
                   dtype_name(x));
  // The transposed form adds two values where boxes overlap; only gradients take it.
  TORCH_CHECK_TYPE(!transpose || scalar != kU8, "x: the transposed (backward) form needs a "
                   "floating-point tensor, got ", dtype_name(x));

  Plan p;
  p.args.n = x.size(0);
  p.args.h = x.size(-2);
  p.args.w = x.size(-1);
  describe_params(cutmix, perm, params, p);

  GatherPlan g;
  g.out = at::empty(x.sizes(), x.options().memory_format(out_format(x)));
  MixArgs in_layout{}, out_layout{};
  TORCH_INTERNAL_ASSERT(layout_of(g.out, out_layout));
  g.in = x;
  // Any other layout (an expanded gradient, a cropped channels_last view) is read from a copy.
  if (!layout_of(x, in_layout) || in_layout.q != out_layout.q || in_layout.a != out_layout.a) {
    g.in = x.contiguous(out_format(x));
    TORCH_INTERNAL_ASSERT(layout_of(g.in, in_layout) && in_layout.q == out_layout.q &&
                          in_layout.a == out_layout.a);
  }

  GatherArgs& a = g.args;
  a.in = g.in.data_ptr();
  a.out = g.out.data_ptr();
  a.n = out_layout.n, a.a = out_layout.a, a.h = out_layout.h, a.w = out_layout.w;
  a.q = out_layout.q;
  a.in_stride_n = in_layout.stride_n, a.in_stride_a = in_layout.stride_a;
  a.in_stride_h = in_layout.stride_h;
  a.out_stride_n = out_layout.stride_n, a.out_stride_a = out_layout.stride_a;
  a.out_stride_h = out_layout.stride_h;
  a.elem_size = static_cast<int32_t>(x.element_size());
  a.scalar = scalar;
  a.cutmix = cutmix;

  // Forward: out[j] = x[j] outside box_j + x[perm j] inside box_j (MixUp: lam_j, 1 - lam_j).
  // Transposed, the adjoint: out[j] = x[j] outside box_j + x[s] inside box_s, s = perm^-1(j)
  // (MixUp: lam_j x[j] + (1 - lam_s) x[s]). The transpose of the transpose is the forward.
  std::vector<int32_t> inv(a.n);
  for (int64_t i = 0; i < a.n; ++i) inv[p.table[i].src] = static_cast<int32_t>(i);
  g.rows.resize(a.n);
  for (int64_t j = 0; j < a.n; ++j) {
    const Sample& own = p.table[j];
    const int32_t s = transpose ? inv[j] : own.src;
    const Sample& taken = transpose ? p.table[s] : own;
    GatherRow& r = g.rows[j];
    r.src = s;
    r.keep = Box{own.x1, own.y1, own.x2, own.y2};
    r.take = Box{taken.x1, taken.y1, taken.x2, taken.y2};
    r.wa = own.lam;
    r.wb = 1.0 - taken.lam;
  }
  return g;
}

}  // namespace cutmix_ext
