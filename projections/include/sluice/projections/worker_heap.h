// WorkerHeap: per-worker-thread allocation for read models (mimalloc heaps).
//
// Design
//   A projection worker calls WorkerHeap::Scope at the start of its thread: it creates a
//   mimalloc heap (mi_heap_new) owned by that thread, and every allocate() on that thread
//   takes memory from it, so read models of different workers never share allocator pages
//   or locks. allocate() on any other thread falls back to the process allocator. free()
//   works from any thread (mimalloc frees cross-thread blocks to their owning page). When the
//   worker ends, the heap is deleted and blocks still alive migrate to the default heap, so a
//   read model may outlive its worker.
//   Without mimalloc (sanitizer builds, where it would hide the allocations from ASan, or a
//   machine without libmimalloc.so.2), both fall back to aligned operator new/delete.
//
//   The host's allocator is left alone: mimalloc is loaded privately (dlopen, RTLD_LOCAL)
//   and reached only through its heap API, never linked — Debian's libmimalloc.so.2
//   overrides malloc/free for the whole process as soon as it is linked and loaded, and a
//   library embedded in a trading process must not change its host's allocator.
//
// Thread safety
//   Scope: one per thread. allocate(): any thread. free(): any thread.
#pragma once

#include <cstddef>

namespace sluice {

class WorkerHeap {
 public:
  // Creates the calling thread's heap; deletes it at scope exit.
  class Scope {
   public:
    Scope() noexcept;
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
  };
  static void* allocate(size_t bytes, size_t alignment) noexcept;  // nullptr when out of memory
  static void free(void* p, size_t bytes, size_t alignment) noexcept;
  // True when this thread allocates from its own worker heap.
  static bool active() noexcept;
  // True when mimalloc is in use (built for it, and libmimalloc.so.2 could be loaded).
  static bool uses_mimalloc() noexcept;
  // True when `p` lies in memory mimalloc manages (for tests: the host's malloc never does).
  static bool owns(const void* p) noexcept;
};

}  // namespace sluice
