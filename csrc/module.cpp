// The Python module cutmix_ext._C: what the build contains, and direct entry points for the calls
// a training loop makes on every batch (cutmix_ and mixup_ with drawn or given parameters, and
// the general op mix_ behind the timm drop-ins).
//
// Calling an op through torch.ops parses every argument against the schema in Python-facing
// code: about as many instructions as the whole CutMix of a small batch. These entry points take
// plain arguments and call the very same ops through the dispatcher (so autograd, the CPU and
// CUDA kernels, fake tensors and dispatch modes behave exactly as with torch.ops). Anything
// unusual (a tensor subclass, an active torch function mode, a CUDA tensor without the CUDA
// kernels, tensors on two devices, an argument of another type than the plain one) returns
// NotImplemented, and the Python wrapper then goes through torch.ops, which converts or reports
// it.
#include <ATen/PythonTorchFunctionTLS.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/Generator.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/utils/pybind.h>

#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "plan.h"

#ifndef CUTMIX_EXT_TORCH_VERSION
#define CUTMIX_EXT_TORCH_VERSION "unknown"
#endif
#ifndef CUTMIX_EXT_CUDA_ARCHS
#define CUTMIX_EXT_CUDA_ARCHS ""
#endif
#ifdef CUTMIX_EXT_WITH_CUDA
constexpr bool kWithCuda = true;
#else
constexpr bool kWithCuda = false;
#endif

namespace {

// Converters: true when `o` is the plain form, with the value stored in `out`.
bool plain_tensor(PyObject* o, at::Tensor& out) {
  if (!THPVariable_CheckExact(o)) return false;
  out = THPVariable_Unpack(o);
  return kWithCuda || !out.is_cuda();
}

bool plain_optional_tensor(PyObject* o, std::optional<at::Tensor>& out) {
  if (o == Py_None) {
    out.reset();
    return true;
  }
  at::Tensor t;
  if (!plain_tensor(o, t)) return false;
  out = std::move(t);
  return true;
}

bool plain_number(PyObject* o, double& out) {
  if (PyFloat_CheckExact(o)) {
    out = PyFloat_AS_DOUBLE(o);
    return true;
  }
  if (!PyLong_CheckExact(o)) return false;
  out = PyLong_AsDouble(o);
  if (out == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    return false;
  }
  return true;
}

bool plain_optional_int(PyObject* o, std::optional<int64_t>& out) {
  if (o == Py_None) {
    out.reset();
    return true;
  }
  if (!PyLong_CheckExact(o)) return false;
  const long long v = PyLong_AsLongLong(o);
  if (v == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    return false;
  }
  out = v;
  return true;
}

bool plain_bool(PyObject* o, bool& out) {
  if (o != Py_True && o != Py_False) return false;
  out = o == Py_True;
  return true;
}

bool plain_str(PyObject* o, std::string_view& out) {
  if (!PyUnicode_CheckExact(o)) return false;
  Py_ssize_t len = 0;
  const char* s = PyUnicode_AsUTF8AndSize(o, &len);
  if (s == nullptr) {
    PyErr_Clear();
    return false;
  }
  out = std::string_view(s, static_cast<size_t>(len));
  return true;
}

bool plain_generator(PyObject* o, std::optional<at::Generator>& out) {
  if (o == Py_None) {
    out.reset();
    return true;
  }
  if (Py_TYPE(o) != reinterpret_cast<PyTypeObject*>(THPGeneratorClass)) return false;
  out = reinterpret_cast<THPGenerator*>(o)->cdata;
  return true;
}

PyObject* not_implemented() { Py_RETURN_NOTIMPLEMENTED; }

// True, with a TypeError set, when entry point `name` was called with other than `want` arguments.
bool wrong_arity(Py_ssize_t nargs, Py_ssize_t want, const char* name) {
  if (nargs == want) return false;
  PyErr_Format(PyExc_TypeError, "%s: expected %zd arguments", name, want);
  return true;
}

c10::OperatorHandle op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

using Sampled = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, std::optional<int64_t>, double, double,
    c10::string_view, const std::optional<at::Tensor>&, bool, std::optional<at::Generator>);

// sampled_(cutmix, images, labels, num_classes, label_smoothing, alpha, pairing, per_sample,
//          generator, with_params) -> (targets, perm, boxes, lam), or targets alone: the op
// cutmix_sampled_ or mixup_sampled_ with the partners drawn by name.
PyObject* sampled(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (wrong_arity(nargs, 10, "sampled_")) return nullptr;
  if (at::impl::torch_function_mode_enabled()) return not_implemented();
  bool cutmix = false, per_sample = false, with_params = false;
  at::Tensor images, labels;
  std::optional<int64_t> num_classes;
  double smoothing = 0.0, alpha = 0.0;
  std::string_view pairing;
  std::optional<at::Generator> generator;
  if (!plain_bool(args[0], cutmix) || !plain_tensor(args[1], images) ||
      !plain_tensor(args[2], labels) || !plain_optional_int(args[3], num_classes) ||
      !plain_number(args[4], smoothing) || !plain_number(args[5], alpha) ||
      !plain_str(args[6], pairing) || !plain_bool(args[7], per_sample) ||
      !plain_generator(args[8], generator) || !plain_bool(args[9], with_params) ||
      labels.device() != images.device()) {
    return not_implemented();
  }
  static const auto cut = op("cutmix_ext::cutmix_sampled_").typed<Sampled>();
  static const auto mix = op("cutmix_ext::mixup_sampled_").typed<Sampled>();
  std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> out;
  {
    pybind11::gil_scoped_release no_gil;
    out = (cutmix ? cut : mix)
              .call(images, labels, num_classes, smoothing, alpha,
                    c10::string_view(pairing.data(), pairing.size()), std::nullopt, per_sample,
                    std::move(generator));
  }
  auto& [targets, perm, boxes, lam] = out;
  if (!with_params) return THPVariable_Wrap(std::move(targets));
  PyObject* result = PyTuple_New(4);
  if (result == nullptr) return nullptr;
  PyTuple_SET_ITEM(result, 0, THPVariable_Wrap(std::move(targets)));  // steals the references
  PyTuple_SET_ITEM(result, 1, THPVariable_Wrap(std::move(perm)));
  PyTuple_SET_ITEM(result, 2, THPVariable_Wrap(std::move(boxes)));
  PyTuple_SET_ITEM(result, 3, THPVariable_Wrap(std::move(lam)));
  return result;
  END_HANDLE_TH_ERRORS
}

using Given = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                         const at::Tensor&, std::optional<int64_t>, double);

// given_(cutmix, images, labels, perm, boxes or lam, num_classes, label_smoothing) -> targets:
// the op cutmix_ or mixup_ with parameters drawn earlier (replayed, or shared across ranks).
PyObject* given(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (wrong_arity(nargs, 7, "given_")) return nullptr;
  if (at::impl::torch_function_mode_enabled()) return not_implemented();
  bool cutmix = false;
  at::Tensor images, labels, perm, table;
  std::optional<int64_t> num_classes;
  double smoothing = 0.0;
  if (!plain_bool(args[0], cutmix) || !plain_tensor(args[1], images) ||
      !plain_tensor(args[2], labels) || !plain_tensor(args[3], perm) ||
      !plain_tensor(args[4], table) || !plain_optional_int(args[5], num_classes) ||
      !plain_number(args[6], smoothing) || labels.device() != images.device() ||
      !perm.device().is_cpu() || !table.device().is_cpu()) {
    return not_implemented();
  }
  static const auto cut = op("cutmix_ext::cutmix_").typed<Given>();
  static const auto mix = op("cutmix_ext::mixup_").typed<Given>();
  at::Tensor targets;
  {
    pybind11::gil_scoped_release no_gil;
    targets = (cutmix ? cut : mix).call(images, labels, perm, table, num_classes, smoothing);
  }
  return THPVariable_Wrap(std::move(targets));
  END_HANDLE_TH_ERRORS
}

using Mix = at::Tensor(const at::Tensor&, const std::optional<at::Tensor>&, const at::Tensor&,
                       const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                       std::optional<int64_t>, double);

// mix_(images, labels or None, perm, boxes, lam, mode, fill, num_classes, label_smoothing)
//   -> targets: the general op mix_ (per-sample paste, blend or fill; timm's Mixup, the paper's
// variants, CutOut).
PyObject* mix(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (wrong_arity(nargs, 9, "mix_")) return nullptr;
  if (at::impl::torch_function_mode_enabled()) return not_implemented();
  at::Tensor images, perm, boxes, lam, mode;
  std::optional<at::Tensor> labels;
  std::optional<int64_t> num_classes;
  double fill = 0.0, smoothing = 0.0;
  if (!plain_tensor(args[0], images) || !plain_optional_tensor(args[1], labels) ||
      !plain_tensor(args[2], perm) || !plain_tensor(args[3], boxes) ||
      !plain_tensor(args[4], lam) || !plain_tensor(args[5], mode) ||
      !plain_number(args[6], fill) || !plain_optional_int(args[7], num_classes) ||
      !plain_number(args[8], smoothing) ||
      (labels.has_value() && labels->device() != images.device()) || !perm.device().is_cpu() ||
      !boxes.device().is_cpu() || !lam.device().is_cpu() || !mode.device().is_cpu()) {
    return not_implemented();
  }
  static const auto general = op("cutmix_ext::mix_").typed<Mix>();
  at::Tensor targets;
  {
    pybind11::gil_scoped_release no_gil;
    targets = general.call(images, labels, perm, boxes, lam, mode, fill, num_classes, smoothing);
  }
  return THPVariable_Wrap(std::move(targets));
  END_HANDLE_TH_ERRORS
}

// Pairs (name, tensor) from a tuple; false, with a TypeError set, for anything else.
bool named_tensors(PyObject* o, std::vector<std::pair<std::string, at::Tensor>>& out) {
  if (!PyTuple_Check(o)) {
    PyErr_SetString(PyExc_TypeError, "expected a tuple of (name, tensor) pairs");
    return false;
  }
  for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(o); ++k) {
    PyObject* pair = PyTuple_GET_ITEM(o, k);
    std::string_view name;
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
        !plain_str(PyTuple_GET_ITEM(pair, 0), name) ||
        !THPVariable_Check(PyTuple_GET_ITEM(pair, 1))) {
      PyErr_SetString(PyExc_TypeError, "expected a tuple of (name, tensor) pairs");
      return false;
    }
    out.emplace_back(std::string(name), THPVariable_Unpack(PyTuple_GET_ITEM(pair, 1)));
  }
  return true;
}

// check_mix_(name, tensor, perm, boxes, lam, mode, fill, others) -> None: every check the op mix_
// makes of `tensor` (called `name` in the messages; no labels), and that it shares no memory
// with any of `others`, (name, tensor) pairs. For what a call mixes after its images (masks, a
// second image): checked before the images are written.
PyObject* check_mix(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (wrong_arity(nargs, 8, "check_mix_")) return nullptr;
  std::string_view name_view;
  double fill = 0.0;
  std::vector<std::pair<std::string, at::Tensor>> others;
  if (!plain_str(args[0], name_view) || !THPVariable_Check(args[1]) ||
      !THPVariable_Check(args[2]) || !THPVariable_Check(args[3]) || !THPVariable_Check(args[4]) ||
      !THPVariable_Check(args[5]) || !plain_number(args[6], fill)) {
    PyErr_SetString(PyExc_TypeError, "check_mix_: unexpected argument types");
    return nullptr;
  }
  if (!named_tensors(args[7], others)) return nullptr;
  const std::string name(name_view);
  const at::Tensor tensor = THPVariable_Unpack(args[1]);
  cutmix_ext::make_elem_plan(tensor, at::Tensor(), THPVariable_Unpack(args[2]),
                             THPVariable_Unpack(args[3]), THPVariable_Unpack(args[4]),
                             THPVariable_Unpack(args[5]), fill, std::nullopt, 0.0, name.c_str());
  for (const auto& [other_name, other] : others) {
    cutmix_ext::check_disjoint(tensor, name.c_str(), other, other_name.c_str());
  }
  Py_RETURN_NONE;
  END_HANDLE_TH_ERRORS
}

// check_pairs_(perm, lam or None, n, perm_name) -> None: the op's checks of params.perm (named
// perm_name) and params.lam for a batch of n, where no images are mixed (mix_targets, a pairing
// tensor given to sample_params).
PyObject* check_pairs(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (wrong_arity(nargs, 4, "check_pairs_")) return nullptr;
  std::optional<at::Tensor> lam;
  std::optional<int64_t> n;
  std::string_view name_view;
  if (!THPVariable_Check(args[0]) || !(args[1] == Py_None || THPVariable_Check(args[1])) ||
      !plain_optional_int(args[2], n) || !n.has_value() || !plain_str(args[3], name_view)) {
    PyErr_SetString(PyExc_TypeError, "check_pairs_: unexpected argument types");
    return nullptr;
  }
  if (args[1] != Py_None) lam = THPVariable_Unpack(args[1]);
  const std::string name(name_view);
  cutmix_ext::check_pairs(THPVariable_Unpack(args[0]), lam.value_or(at::Tensor()), *n,
                          name.c_str());
  Py_RETURN_NONE;
  END_HANDLE_TH_ERRORS
}

PyMethodDef methods[] = {
    {"sampled_", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&sampled)),
     METH_FASTCALL, "cutmix_/mixup_ with drawn parameters; NotImplemented for unusual arguments"},
    {"given_", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&given)),
     METH_FASTCALL, "cutmix_/mixup_ with given parameters; NotImplemented for unusual arguments"},
    {"mix_", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&mix)), METH_FASTCALL,
     "the general op mix_; NotImplemented for unusual arguments"},
    {"check_mix_", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&check_mix)),
     METH_FASTCALL, "the checks of mix_ on a tensor mixed after the images"},
    {"check_pairs_", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&check_pairs)),
     METH_FASTCALL, "the checks of params.perm and params.lam"},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

// Importing cutmix_ext._C loads the library, which runs the op registrations. The constants let
// Python report what this build contains and which torch it was built against.
PyMODINIT_FUNC PyInit__C(void) {
  static PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};
  PyObject* mod = PyModule_Create(&def);
  if (mod == nullptr) return nullptr;
  PyModule_AddStringConstant(mod, "TORCH_VERSION", CUTMIX_EXT_TORCH_VERSION);
  PyModule_AddIntConstant(mod, "WITH_CUDA", kWithCuda ? 1 : 0);
  PyModule_AddStringConstant(mod, "CUDA_ARCHS", CUTMIX_EXT_CUDA_ARCHS);
  return mod;
}
