// Argument checks and the host-side plan of one call, shared by the CPU and CUDA backends.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "detection.h"
#include "mix.h"

namespace cutmix_ext {

// Offsets inside one image row are 32-bit in the CUDA kernels.
constexpr int64_t kMaxRowBytes = int64_t{1} << 31;

struct Plan {
  MixArgs args{};
  std::vector<Sample> table;  // one row per sample, always filled
  bool shared = true;         // one box (CutMix) or one lam (MixUp) for the whole batch
};

// Validates every argument before anything is written (errors name the argument and the bad
// value) and describes the call. `params` is the boxes (CutMix) or lam (MixUp) tensor.
Plan make_plan(bool cutmix, const at::Tensor& images, const at::Tensor& labels,
               const at::Tensor& perm, const at::Tensor& params,
               std::optional<int64_t> num_classes, double label_smoothing);

// The general op `mix_`: per sample a box, a mode (SampleMode) and lam, which weighs the
// targets and, for kModeBlend, the pixels. labels may be undefined: no targets (K = 0).
// `name` is what the messages call the images (a mask mixed with the same parameters: "masks").
Plan make_elem_plan(const at::Tensor& images, const at::Tensor& labels, const at::Tensor& perm,
                    const at::Tensor& boxes, const at::Tensor& lam, const at::Tensor& mode,
                    double fill, std::optional<int64_t> num_classes, double label_smoothing,
                    const char* name = "images");

// sampling="device": the same checks, without parameters. The kernels draw the table
// themselves, so the plan visits the whole image and reads no host table.
Plan make_drawn_plan(bool cutmix, const at::Tensor& images, const at::Tensor& labels,
                     std::optional<int64_t> num_classes, double label_smoothing);

// detection_boxes (../detection.h): checks its arguments, and the parameters' table.
Plan make_detection_plan(const at::Tensor& boxes, const at::Tensor& idx,
                         const at::Tensor& perm, const std::optional<at::Tensor>& patch,
                         const at::Tensor& lam, int64_t height, int64_t width,
                         double min_visibility);

// Its kernels' arguments: boxes and idx contiguous, table (n rows) where the kernel reads it,
// scratch 3n + 1 ints. box_outputs allocates `rows` rows of outputs and points `a` at them.
BoxArgs make_box_args(const at::Tensor& boxes, const at::Tensor& idx, const Sample* table,
                      int64_t n, int64_t height, int64_t width, double min_visibility, bool cutmix,
                      int32_t* scratch);
// detection_choose: the checks, and per sample the sample its boxes are pasted into followed
// by its candidates (ChooseArgs::rows). make_choose_args wants n * k ints of marks and n + 1
// rows of (4,) int64 for the patches and, after them, the status.
std::vector<int32_t> make_choose_rows(const at::Tensor& boxes, const at::Tensor& idx,
                                      const at::Tensor& perm, const at::Tensor& candidates,
                                      int64_t height, int64_t width, double min_visibility);
ChooseArgs make_choose_args(const at::Tensor& boxes, const at::Tensor& idx, const int32_t* rows,
                            int64_t n, int64_t k, int64_t height, int64_t width,
                            double min_visibility, int32_t* marks, int64_t* chosen);

// The error a kernel's status code stands for, named by the host: the first box of a sample
// outside the batch of n, or the first that is not a box (x2 < x1, y2 < y1 or NaN). Returns
// when there is none.
void refuse_bad_boxes(const at::Tensor& boxes, const at::Tensor& idx, int64_t n);

struct BoxOutputs {
  at::Tensor boxes, src, dst, own, weights;
};
BoxOutputs box_outputs(BoxArgs& a, const at::Tensor& boxes, const at::Tensor& idx, int64_t rows);

// The checks of params.perm (called `perm_name` in the messages: a pairing tensor) and, when
// defined, params.lam for a batch of n, where no images are mixed (mix_targets, sample_params).
void check_pairs(const at::Tensor& perm, const at::Tensor& lam, int64_t n,
                 const char* perm_name = "params.perm");

// The checks on the images that come before sampling: a tensor of shape (N, ..., H, W), H, W > 0.
void check_image_shape(const at::Tensor& images, const char* name = "images");

// A dtype as Python spells it ("torch.int8", where C++ says "Char"); "None" for no tensor.
std::string dtype_name(at::ScalarType t);
std::string dtype_name(const at::Tensor& t);

// Refuses `other` when its memory meets that of `written`, which the call writes in place: a
// view of the images passed as labels would be read after it was overwritten. Messages name
// both.
void check_disjoint(const at::Tensor& written, const char* written_name, const at::Tensor& other,
                    const char* other_name);

// The out-of-place form (the ops `cutmix` and `mixup`, also their backward): validates x and
// the parameters, allocates the output and fills one GatherRow per sample.
struct GatherPlan {
  GatherArgs args{};
  std::vector<GatherRow> rows;
  at::Tensor in;   // x, or a copy of it when its layout is one the kernels do not read
  at::Tensor out;
};
GatherPlan make_gather_plan(bool cutmix, bool transpose, const at::Tensor& x,
                            const at::Tensor& perm, const at::Tensor& params);

// Whether the kernels need the per-sample table: per-sample parameters or a partner table. One
// box or lam for the batch with a "roll" or "flip" pairing fits in a few scalars.
inline bool needs_table(const Plan& p) { return !p.shared || p.args.pairing == kPairTable; }

// The (N, K) float32 targets on the images' device, with args.targets pointing at them.
at::Tensor allocate_targets(Plan& plan, const at::Tensor& images);

}  // namespace cutmix_ext
