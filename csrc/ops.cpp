// Every op schema of cutmix_ext, in one place. The kernels register themselves from their own
// backend files (cpu/mix_cpu.cpp, cpu/detection_cpu.cpp, cuda/mix_cuda.cpp, sample.cpp), the
// gradients from autograd.cpp; the Python module and its direct entry points are in module.cpp.
#include <torch/library.h>

TORCH_LIBRARY(cutmix_ext, m) {
  // Draws (perm, boxes, lam) on the host; boxes is (0, 4) for MixUp.
  // Tagged so that compilers keep every call: each one advances the generator.
  m.def(
      "sample(int n, int height, int width, float alpha, bool cutmix, bool per_sample, "
      "str pairing, Generator? generator=None) -> (Tensor perm, Tensor boxes, Tensor lam)",
      {at::Tag::nondeterministic_seeded});
  // timm.data.Mixup's draws for mix_: (perm, boxes, lam, per-sample mode), see sample.cpp.
  m.def(
      "sample_timm(int n, int height, int width, float mixup_alpha, float cutmix_alpha, "
      "float[]? cutmix_minmax, float prob, float switch_prob, str mode, bool correct_lam, "
      "Generator? generator=None) -> (Tensor perm, Tensor boxes, Tensor lam, Tensor mode)",
      {at::Tag::nondeterministic_seeded});
  // For feature-level mixing: which of `sites` layers mixes this step, -1 for none (1 - p).
  m.def("choose(int sites, float p, Generator? generator=None) -> Tensor",
        {at::Tag::nondeterministic_seeded});
  // In place: images[i][..., y1:y2, x1:x2] = images[perm[i]][..., y1:y2, x1:x2]; returns the
  // (N, K) float32 targets with lam the exact box area.
  m.def(
      "cutmix_(Tensor(a!) images, Tensor labels, Tensor perm, Tensor boxes, int? num_classes, "
      "float label_smoothing) -> Tensor");
  // In place: images[i] = lam[i] * images[i] + (1 - lam[i]) * images[perm[i]]; returns targets.
  m.def(
      "mixup_(Tensor(a!) images, Tensor labels, Tensor perm, Tensor lam, int? num_classes, "
      "float label_smoothing) -> Tensor");
  // The general form, one launch for a batch that mixes kinds: inside box i, sample i pastes
  // images[perm[i]] (mode 0, CutMix), blends lam[i] * own + (1 - lam[i]) * partner (1, MixUp,
  // box = whole image) or writes `fill` (2, CutOut), by kind[i] (params.mode in Python). lam[i] is also the weight of i's own label.
  // labels=None: no targets, (N, 0). Integer and bool images (masks) take modes 0 and 2.
  m.def(
      "mix_(Tensor(a!) images, Tensor? labels, Tensor perm, Tensor boxes, Tensor lam, "
      "Tensor kind, float fill, int? num_classes, float label_smoothing) -> Tensor");
  // Out of place, differentiable, for activations: out[i] = x[i] outside box_i and x[perm[i]]
  // inside it. transpose=True is the adjoint (the backward): out[j] = x[j] outside box_j plus
  // x[s] inside box_s, s = perm^-1(j).
  m.def("cutmix(Tensor x, Tensor perm, Tensor boxes, bool transpose=False) -> Tensor");
  // out[i] = lam[i] * x[i] + (1 - lam[i]) * x[perm[i]]; transposed:
  // out[j] = lam[j] * x[j] + (1 - lam[s]) * x[s], s = perm^-1(j).
  m.def("mixup(Tensor x, Tensor perm, Tensor lam, bool transpose=False) -> Tensor");
  // sampling="device" (CUDA): the kernel draws perm, boxes and lam itself from torch's CUDA
  // generator, so a captured CUDA graph draws anew on every replay. Returns them on the device.
  m.def(
      "mix_device_sampled_(Tensor(a!) images, Tensor labels, int? num_classes, "
      "float label_smoothing, float alpha, bool cutmix, bool per_sample, str pairing, "
      "Generator? generator=None) -> (Tensor targets, Tensor perm, Tensor boxes, Tensor lam)",
      {at::Tag::nondeterministic_seeded});
  // Detection batches, the boxes' side (the rule: cutmix_ext/detection.py, csrc/detection.h):
  // boxes (M, 4) float64 XYXY pixels, row k of sample idx[k], clipped to width x height
  // here; patch the (N, 4) CutMix boxes, None for MixUp. Returns the rows each sample keeps and
  // gets, ordered by sample, then own before partner, then source row: their boxes, source rows,
  // samples, whether each is the sample's own, and float32 weights (1 for CutMix; lam[i] and
  // 1 - lam[i] for MixUp).
  m.def(
      "detection_boxes(Tensor boxes, Tensor idx, Tensor perm, Tensor? patch, Tensor lam, "
      "int height, int width, float min_visibility) "
      "-> (Tensor boxes, Tensor src, Tensor dst, Tensor own, Tensor weights)");
  // The rule that keeps objects visible (csrc/detection.h): per sample the first of its
  // candidates (N, K, 4) that overlaps none of its own boxes, when it pastes at least one
  // partner box (min_visibility of it inside the patch); else an empty patch. Returns the (N, 4)
  // patches on the CPU, where the images' parameters live.
  m.def(
      "detection_choose(Tensor boxes, Tensor idx, Tensor perm, Tensor candidates, int height, "
      "int width, float min_visibility) -> Tensor");
  // sample, then cutmix_ / mixup_, in one call from Python. `perm` given: that pairing.
  m.def(
      "cutmix_sampled_(Tensor(a!) images, Tensor labels, int? num_classes, float label_smoothing, "
      "float alpha, str pairing, Tensor? perm, bool per_sample, Generator? generator=None) "
      "-> (Tensor targets, Tensor perm, Tensor boxes, Tensor lam)");
  m.def(
      "mixup_sampled_(Tensor(a!) images, Tensor labels, int? num_classes, float label_smoothing, "
      "float alpha, str pairing, Tensor? perm, bool per_sample, Generator? generator=None) "
      "-> (Tensor targets, Tensor perm, Tensor boxes, Tensor lam)");
}
