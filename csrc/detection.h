// The boxes' side of CutMix and MixUp for detection batches (the op detection_boxes), shared by
// the CPU backend and the CUDA kernel so that both apply the rule with the very same float64
// operations. cutmix_ext/detection.py states the rule; cutmix_ext/reference.py has it in plain
// arithmetic, sample by sample, for the tests.
//
// The rows come out ordered by sample, then own before partner, then source row: a counting
// sort keyed by 2 * sample + part (0 own, 1 pasted), which keeps the source order within a key
// whatever order the flat form lists its boxes in.
#pragma once
#include <cstdint>

#include "mix.h"

namespace cutmix_ext {

struct BoxArgs {
  const double* boxes;  // (m, 4) XYXY pixels, contiguous
  const int64_t* idx;   // (m,) the sample of each box
  const Sample* table;  // (n,) partner, patch and lam of each sample
  int64_t m, n;
  double width, height, min_visibility;
  int32_t cutmix;       // 0: MixUp, every box kept as it is
  int32_t* into;        // scratch (n,): the boxes of sample j are pasted into sample into[j]
  int32_t* start;       // scratch (2n + 1,): the first row of each key, once counted
  // The rows, (total, 4) / (total,): boxes, source row, sample, own?, weight.
  double* out;
  int64_t* src;
  int64_t* dst;
  bool* own;
  float* weights;
};

struct Rect {
  double x1, y1, x2, y2;
};

// As torch.minimum(v.clamp_min(0), hi): NaN stays NaN, and its box is dropped.
CUTMIX_HD double clip_to(double v, double hi) {
  v = v < 0.0 ? 0.0 : v;
  return v > hi ? hi : v;
}

CUTMIX_HD double rect_area(const Rect& b) {
  const double w = dadd(b.x2, -b.x1), h = dadd(b.y2, -b.y1);
  return dmul(w < 0.0 ? 0.0 : w, h < 0.0 ? 0.0 : h);
}

CUTMIX_HD Rect intersect(const Rect& a, const Rect& b) {
  return Rect{a.x1 > b.x1 ? a.x1 : b.x1, a.y1 > b.y1 ? a.y1 : b.y1, a.x2 < b.x2 ? a.x2 : b.x2,
              a.y2 < b.y2 ? a.y2 : b.y2};
}

CUTMIX_HD Rect patch_of(const Sample& s) {
  return Rect{static_cast<double>(s.x1), static_cast<double>(s.y1), static_cast<double>(s.x2),
              static_cast<double>(s.y2)};
}

// What becomes of box k of sample s: kept by s (shrunk where the patch covers one whole end),
// pasted into into[s] (cut to the patch there).
struct Fate {
  bool keep_own, keep_pasted;
  Rect own_box, pasted_box;
};

CUTMIX_HD Fate box_fate(const BoxArgs& a, int64_t k, int64_t s) {
  const double* r = a.boxes + 4 * k;
  const Rect b{clip_to(r[0], a.width), clip_to(r[1], a.height), clip_to(r[2], a.width),
               clip_to(r[3], a.height)};
  Fate f{false, false, b, b};
  const double area = rect_area(b);
  if (!(area > 0.0)) return f;
  if (!a.cutmix) {
    f.keep_own = f.keep_pasted = true;
    return f;
  }
  const Rect p = patch_of(a.table[s]);
  const double covered = rect_area(intersect(b, p));
  const double visible = dadd(area, -covered);
  f.keep_own = visible > 0.0 && visible >= dmul(a.min_visibility, area);
  const bool hit = covered > 0.0;
  const bool tall = hit && p.y1 <= b.y1 && p.y2 >= b.y2;  // the patch crosses b top to bottom
  const bool wide = hit && p.x1 <= b.x1 && p.x2 >= b.x2;
  f.own_box = Rect{tall && p.x1 <= b.x1 ? p.x2 : b.x1, wide && p.y1 <= b.y1 ? p.y2 : b.y1,
                   tall && p.x2 >= b.x2 ? p.x1 : b.x2, wide && p.y2 >= b.y2 ? p.y1 : b.y2};
  f.pasted_box = intersect(b, patch_of(a.table[a.into[s]]));
  const double got = rect_area(f.pasted_box);
  f.keep_pasted = got > 0.0 && got >= dmul(a.min_visibility, area);
  return f;
}

CUTMIX_HD void put_row(const BoxArgs& a, int64_t row, int64_t k, int64_t sample, bool own,
                       const Rect& b) {
  double* o = a.out + 4 * row;
  o[0] = b.x1, o[1] = b.y1, o[2] = b.x2, o[3] = b.y2;
  a.src[row] = k;
  a.dst[row] = sample;
  a.own[row] = own;
  const double lam = a.table[sample].lam;
  a.weights[row] = a.cutmix ? 1.0f : static_cast<float>(own ? lam : 1.0 - lam);
}

}  // namespace cutmix_ext
