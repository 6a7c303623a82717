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
//   Without mimalloc (sanitizer builds, where it would hide the allocations from ASan), both
//   fall back to aligned operator new/delete.
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
  // True when built with mimalloc.
  static bool uses_mimalloc() noexcept;
};

}  // namespace sluice
