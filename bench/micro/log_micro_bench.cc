// Micro benchmarks of the log's inner loops: CRC32C and the record encoder.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "internal/record_codec.h"
#include "sluice/bus/crc32c.h"
#include "sluice/bus/log_writer.h"

namespace {

void BM_Crc32c(benchmark::State& state) {
  std::vector<std::byte> buf(static_cast<size_t>(state.range(0)), std::byte{0x42});
  uint32_t c = 0;
  for (auto _ : state) {
    c = sluice::crc32c::extend(c, buf.data(), buf.size());
    benchmark::DoNotOptimize(c);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Crc32c)->Arg(64)->Arg(256)->Arg(4096)->Arg(1 << 20);

void BM_EncodeRecord(benchmark::State& state) {
  std::vector<std::byte> payload(static_cast<size_t>(state.range(0)), std::byte{0x5a});
  std::vector<std::byte> out(payload.size() + 256);
  sluice::EventData e;
  e.type = 1;
  e.payload = payload;
  sluice::log_internal::RecordFields f;
  f.stream_id = 1;
  for (auto _ : state) {
    ++f.position;
    ++f.stream_version;
    uint32_t len = sluice::log_internal::encode_record(out.data(), 7, f, e);
    sluice::log_internal::commit_record(out.data(), len);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeRecord)->Arg(64)->Arg(256)->Arg(4096);

void BM_DecodeRecord(benchmark::State& state) {
  std::vector<std::byte> payload(static_cast<size_t>(state.range(0)), std::byte{0x5a});
  std::vector<std::byte> out(payload.size() + 256);
  sluice::EventData e;
  e.payload = payload;
  sluice::log_internal::RecordFields f;
  f.stream_id = 1;
  uint32_t len = sluice::log_internal::encode_record(out.data(), 7, f, e);
  sluice::log_internal::commit_record(out.data(), len);
  for (auto _ : state) {
    uint32_t l = 0;
    auto d = sluice::log_internal::decode_record(out.data(), out.size(), 7, &l);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeRecord)->Arg(64)->Arg(256)->Arg(4096);

// One append under durability none into a real log (64 MiB segments, rolls included): the
// hot path that `sluice bench log` compares with memcpy.
void BM_AppendNone(benchmark::State& state) {
  std::string dir = "/tmp/sluice-micro-append-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    state.SkipWithError("mkdtemp");
    return;
  }
  {
    sluice::LogOptions o;
    o.segment_size = 64ull << 20;
    auto w = sluice::LogWriter::open(dir + "/log", o);
    if (!w.ok()) {
      state.SkipWithError(w.status().to_string().c_str());
      return;
    }
    auto s = (*w)->stream("bench");
    std::vector<std::byte> payload(static_cast<size_t>(state.range(0)), std::byte{0x5a});
    sluice::EventData e;
    e.type = 1;
    e.payload = payload;
    for (auto _ : state) {
      auto r = (*w)->append(*s, sluice::ExpectedVersion::any(), e);
      benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
  }
  std::string cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) state.SkipWithError("cleanup");
}
BENCHMARK(BM_AppendNone)->Arg(64)->Arg(256);

}  // namespace
