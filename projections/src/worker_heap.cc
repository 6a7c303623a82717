#include "sluice/projections/worker_heap.h"

#include <dlfcn.h>

#include <new>

namespace sluice {

#if SLUICE_HAVE_MIMALLOC
namespace {

// mimalloc, loaded privately: dlopen with RTLD_LOCAL puts none of its symbols (its malloc,
// free, new ...) into the process's global scope, so the host keeps its own allocator —
// linking libmimalloc.so.2 instead would replace malloc for the whole process the moment it
// loads. Sluice reaches mimalloc only through these entry points of its heap API.
struct MimallocApi {
  void* (*heap_new)() = nullptr;
  void (*heap_delete)(void*) = nullptr;
  void* (*heap_malloc_aligned)(void*, size_t, size_t) = nullptr;
  void* (*malloc_aligned)(size_t, size_t) = nullptr;
  void (*free)(void*) = nullptr;
  bool (*is_in_heap_region)(const void*) = nullptr;
};

template <class F>
bool bind(void* lib, const char* name, F* out) {
  *out = reinterpret_cast<F>(::dlsym(lib, name));
  return *out != nullptr;
}

// Loaded once, on first use (thread-safe static); nullptr when libmimalloc.so.2 is absent:
// WorkerHeap then falls back to aligned operator new.
const MimallocApi* mimalloc() noexcept {
  static const MimallocApi* api = []() -> const MimallocApi* {
    void* lib = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return nullptr;
    static MimallocApi a;
    const bool ok = bind(lib, "mi_heap_new", &a.heap_new) && bind(lib, "mi_heap_delete", &a.heap_delete) &&
                    bind(lib, "mi_heap_malloc_aligned", &a.heap_malloc_aligned) &&
                    bind(lib, "mi_malloc_aligned", &a.malloc_aligned) && bind(lib, "mi_free", &a.free) &&
                    bind(lib, "mi_is_in_heap_region", &a.is_in_heap_region);
    return ok ? &a : nullptr;  // the library stays loaded for the process's life
  }();
  return api;
}

thread_local void* t_heap = nullptr;  // this worker's mi_heap_t

}  // namespace

WorkerHeap::Scope::Scope() noexcept {
  if (const MimallocApi* mi = mimalloc(); mi && t_heap == nullptr) t_heap = mi->heap_new();
}
WorkerHeap::Scope::~Scope() {
  if (t_heap) mimalloc()->heap_delete(t_heap);  // live blocks migrate to mimalloc's default heap
  t_heap = nullptr;
}
void* WorkerHeap::allocate(size_t bytes, size_t alignment) noexcept {
  const MimallocApi* mi = mimalloc();
  if (mi == nullptr) return ::operator new(bytes, std::align_val_t(alignment), std::nothrow);
  return t_heap ? mi->heap_malloc_aligned(t_heap, bytes, alignment) : mi->malloc_aligned(bytes, alignment);
}
void WorkerHeap::free(void* p, size_t, size_t alignment) noexcept {
  const MimallocApi* mi = mimalloc();
  if (mi == nullptr) ::operator delete(p, std::align_val_t(alignment));
  else mi->free(p);
}
bool WorkerHeap::active() noexcept { return t_heap != nullptr; }
bool WorkerHeap::uses_mimalloc() noexcept { return mimalloc() != nullptr; }
bool WorkerHeap::owns(const void* p) noexcept {
  const MimallocApi* mi = mimalloc();
  return mi != nullptr && mi->is_in_heap_region(p);
}
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
bool WorkerHeap::owns(const void*) noexcept { return false; }
#endif

}  // namespace sluice
