// Micro benchmarks of the log's inner loops: CRC32C and the record encoder.
#include <benchmark/benchmark.h>

#include <vector>

#include "internal/record_codec.h"
#include "sluice/bus/crc32c.h"

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

}  // namespace
