// libFuzzer target: arbitrary bytes as a read model's snapshot (the checkpoint payload),
// loaded by SnapshotReader into KeyedStore read models of two value sizes. A hostile or
// truncated snapshot must load or fail with a clear error, never crash, read out of bounds,
// or allocate what its bytes cannot back (an entry count larger than the bytes that follow).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "fuzz_files.h"
#include "sluice/projections/keyed_store.h"
#include "sluice/projections/snapshot.h"

namespace {

struct Small {
  int64_t balance;
};
struct Wide {
  uint64_t a, b, c;
};

template <class V>
void load_into(std::span<const std::byte> in) {
  sluice::KeyedStore<V> store(16);
  sluice::SnapshotReader r(in);
  sluice::Status st = store.load(r, "fuzz");
  if (st.ok()) {
    // What loaded saves again and loads to the same digest.
    std::string out;
    sluice::SnapshotWriter w(&out);
    store.save(w);
    sluice::KeyedStore<V> again(16);
    sluice::SnapshotReader r2(std::as_bytes(std::span(out.data(), out.size())));
    if (!again.load(r2, "again").ok() || again.digest() != store.digest()) std::abort();
  }
}

void seed() {
  static bool done = false;
  if (done) return;
  done = true;
  sluice::KeyedStore<Small> s(16);
  for (uint64_t k = 1; k <= 5; ++k) s.put(k, Small{static_cast<int64_t>(k * 100)});
  std::string out;
  sluice::SnapshotWriter w(&out);
  s.save(w);
  sluice::fuzz::write_seed("snapshot_small", out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  seed();
  const auto in = std::as_bytes(std::span(data, size));
  load_into<Small>(in);
  load_into<Wide>(in);
  return 0;
}
