// WorkerHeap: read models allocate from per-worker mimalloc heaps, while the host process —
// this test binary links sluice::projections like any application — keeps its own malloc.
#include "sluice/projections/worker_heap.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

namespace sluice {
namespace {

TEST(WorkerHeap, TheHostKeepsItsOwnAllocator) {
  // malloc and new of the host: never memory mimalloc manages. (With mimalloc linked, as
  // before, both came from mimalloc: the library had replaced the host's allocator.)
  void* m = std::malloc(100);
  auto s = std::make_unique<std::string>(1000, 'x');
  EXPECT_FALSE(WorkerHeap::owns(m)) << "malloc() of the host came from mimalloc";
  EXPECT_FALSE(WorkerHeap::owns(s->data())) << "operator new of the host came from mimalloc";
  std::free(m);
}

TEST(WorkerHeap, WorkerAllocationsComeFromItsHeapAndAreFreedAnywhere) {
  if (!WorkerHeap::uses_mimalloc()) GTEST_SKIP() << "built without mimalloc (sanitizers) or libmimalloc.so.2 absent";
  void* p = nullptr;
  std::thread worker([&] {
    WorkerHeap::Scope scope;
    EXPECT_TRUE(WorkerHeap::active());
    p = WorkerHeap::allocate(4096, 64);
  });
  worker.join();  // the heap is gone; its live block migrated and stays valid
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  EXPECT_TRUE(WorkerHeap::owns(p));
  static_cast<char*>(p)[4095] = 1;
  WorkerHeap::free(p, 4096, 64);  // from another thread than the one that allocated
  EXPECT_FALSE(WorkerHeap::active()) << "no heap on a thread without a Scope";
}

}  // namespace
}  // namespace sluice
