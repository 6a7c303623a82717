#include "sluice/projections/worker_heap.h"

#include <new>

#if SLUICE_HAVE_MIMALLOC
#include <mimalloc.h>
#endif

namespace sluice {

#if SLUICE_HAVE_MIMALLOC
namespace {
thread_local mi_heap_t* t_heap = nullptr;
}
WorkerHeap::Scope::Scope() noexcept {
  if (t_heap == nullptr) t_heap = mi_heap_new();
}
WorkerHeap::Scope::~Scope() {
  if (t_heap) mi_heap_delete(t_heap);  // live blocks migrate to the default heap
  t_heap = nullptr;
}
void* WorkerHeap::allocate(size_t bytes, size_t alignment) noexcept {
  return t_heap ? mi_heap_malloc_aligned(t_heap, bytes, alignment) : mi_malloc_aligned(bytes, alignment);
}
void WorkerHeap::free(void* p, size_t, size_t) noexcept { mi_free(p); }
bool WorkerHeap::active() noexcept { return t_heap != nullptr; }
bool WorkerHeap::uses_mimalloc() noexcept { return true; }
#else
WorkerHeap::Scope::Scope() noexcept = default;
WorkerHeap::Scope::~Scope() = default;
void* WorkerHeap::allocate(size_t bytes, size_t alignment) noexcept {
  return ::operator new(bytes, std::align_val_t(alignment), std::nothrow);
}
void WorkerHeap::free(void* p, size_t, size_t alignment) noexcept {
  ::operator delete(p, std::align_val_t(alignment));
}
bool WorkerHeap::active() noexcept { return false; }
bool WorkerHeap::uses_mimalloc() noexcept { return false; }
#endif

}  // namespace sluice
