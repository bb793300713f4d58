// The kernels' global loads and stores, through which the emulation sees which block touched
// which bytes. On the GPU they are the plain accesses they replace and cost nothing; under
// CUTMIX_EXT_EMULATE (tests/emulation/cuda_shim.h) they also log the access, so that a byte one
// block writes and another block reads or writes fails a test whatever order the blocks run in:
// on a GPU the blocks run at once and such a byte is a race. Shared memory is not global: the
// kernels access it directly.
#pragma once
#include <cuda_runtime.h>

#include <type_traits>

namespace cutmix_ext {
namespace {

template <class V>
__device__ __forceinline__ V load(const void* p) {
#ifdef CUTMIX_EXT_EMULATE
  emulated_access(p, sizeof(V), emu::kRead);
#endif
  return *static_cast<const V*>(p);
}

// Only p decides T (v converts to it), as with `*p = v`.
template <class T>
__device__ __forceinline__ void store(T* p, const std::remove_cv_t<T>& v) {
#ifdef CUTMIX_EXT_EMULATE
  emulated_access(p, sizeof(T), emu::kWrite);
#endif
  *p = v;
}

}  // namespace
}  // namespace cutmix_ext
