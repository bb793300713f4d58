// The boxes' side of CutMix and MixUp for detection batches (the op detection_boxes), shared by
// the CPU backend and the CUDA kernel so that both apply the rule with the very same float64
// operations. cutmix_ext/detection.py states the rule; cutmix_ext/reference.py has it in plain
// arithmetic, sample by sample, for the tests.
//
// The rows come out ordered by sample, then own before partner, then source row: a counting
// sort keyed by 2 * sample + part (0 own, 1 pasted), which keeps the source order within a key
// whatever order the flat form lists its boxes in.
//
// detection_choose is the rule that keeps objects visible (ultralytics' CutMix): each sample's
// patch is the first of its candidates that overlaps none of its own boxes, kept only when at
// least one partner box would be pasted; otherwise the sample is left alone (an empty patch).
// Candidates are drawn independently, so the first usable one is a uniform pick among them.
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

// Codes the kernels leave for the host, which then names the culprit: or-ed together.
constexpr int32_t kBadSample = 1;  // a box of a sample outside the batch
constexpr int32_t kBadBox = 2;     // a box with x2 < x1 or y2 < y1 (or NaN)

// A box as stated: x2 >= x1 and y2 >= y1, which NaN fails.
CUTMIX_HD bool valid_box(const double* r) { return r[2] >= r[0] && r[3] >= r[1]; }

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

CUTMIX_HD Rect clipped_box(const double* r, double width, double height) {
  return Rect{clip_to(r[0], width), clip_to(r[1], height), clip_to(r[2], width),
              clip_to(r[3], height)};
}

// A sample paired with itself is left as it was, boxes and weights too. Under MixUp a row of
// weight 0 is dropped: the partner's boxes of a sample left alone (lam = 1), or its own at lam = 0.
CUTMIX_HD Fate box_fate(const BoxArgs& a, int64_t k, int64_t s) {
  const Rect b = clipped_box(a.boxes + 4 * k, a.width, a.height);
  Fate f{false, false, b, b};
  const double area = rect_area(b);
  if (!(area > 0.0)) return f;
  const int64_t t = a.into[s];  // the sample box k is pasted into
  if (t == s) {
    f.keep_own = true;
    return f;
  }
  if (!a.cutmix) {
    f.keep_own = a.table[s].lam > 0.0;
    f.keep_pasted = a.table[t].lam < 1.0;
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
  f.pasted_box = intersect(b, patch_of(a.table[t]));
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
  const Sample& t = a.table[sample];
  a.weights[row] = a.cutmix || t.src == sample ? 1.0f : static_cast<float>(own ? t.lam : 1.0 - t.lam);
}

struct ChooseArgs {
  const double* boxes;  // (m, 4) XYXY pixels, contiguous
  const int64_t* idx;   // (m,) the sample of each box
  // (n, 1 + 4k): per sample, the sample its boxes are pasted into, then k candidate patches.
  const int32_t* rows;
  int64_t m, n, k;
  double width, height, min_visibility;
  int32_t* marks;   // scratch (n * k): kCoversOwn | kPastes per candidate
  int64_t* chosen;  // (n, 4) the patches
  int64_t* status;  // kBadSample | kBadBox, or 0: right after the patches, which the host
                    // then reads back in one copy
};

constexpr int32_t kCoversOwn = 1;  // the candidate overlaps one of the sample's own boxes
constexpr int32_t kPastes = 2;     // it would paste at least one partner box

CUTMIX_HD Rect candidate(const ChooseArgs& a, int64_t s, int64_t c) {
  const int32_t* r = a.rows + s * (1 + 4 * a.k) + 1 + 4 * c;
  return Rect{static_cast<double>(r[0]), static_cast<double>(r[1]), static_cast<double>(r[2]),
              static_cast<double>(r[3])};
}

// Box k of sample s, clipped, and the sample it is pasted into: what its marks need.
struct Marker {
  Rect b;
  double area;
  int64_t s, t;
};

CUTMIX_HD Marker marker(const ChooseArgs& a, int64_t k, int64_t s) {
  const Rect b = clipped_box(a.boxes + 4 * k, a.width, a.height);
  return Marker{b, rect_area(b), s, a.rows[s * (1 + 4 * a.k)]};
}

// The marks a box leaves on candidate c of its own sample and of the sample it is pasted into:
// the same tests as box_fate's.
struct Marks {
  int32_t own, pasted;
};

CUTMIX_HD Marks box_marks(const ChooseArgs& a, const Marker& m, int64_t c) {
  Marks mk{0, 0};
  if (!(m.area > 0.0)) return mk;
  if (rect_area(intersect(m.b, candidate(a, m.s, c))) > 0.0) mk.own = kCoversOwn;
  const double got = rect_area(intersect(m.b, candidate(a, m.t, c)));
  if (m.t != m.s && got > 0.0 && got >= dmul(a.min_visibility, m.area)) mk.pasted = kPastes;
  return mk;
}

// Sample i's patch, from the marks on its candidates; an empty one leaves it alone.
CUTMIX_HD void choose_patch(const ChooseArgs& a, int64_t i, const int32_t* marks) {
  int64_t* o = a.chosen + 4 * i;
  o[0] = o[1] = o[2] = o[3] = 0;
  for (int64_t c = 0; c < a.k; ++c) {
    if (marks[c] & kCoversOwn) continue;
    if (marks[c] & kPastes) {
      const int32_t* r = a.rows + i * (1 + 4 * a.k) + 1 + 4 * c;
      o[0] = r[0], o[1] = r[1], o[2] = r[2], o[3] = r[3];
    }
    return;
  }
}

}  // namespace cutmix_ext
