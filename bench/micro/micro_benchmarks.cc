// The micro benchmarks of bench/micro/micro_benchmarks.h. One thread, no pinning of its own
// (`sluice bench micro --cpus N` pins the calling thread). Names are "what/variant/arg";
// `sluice bench micro` turns "crc32c/4096" into the figures micro_crc32c_4096_ns and
// micro_crc32c_4096_bytes_per_s.
//
//   record_encode/N   the log's record encoder + commit store, N-byte payload
//     memcpy/N          baseline: copying the same record bytes (the encoder's floor)
//   record_decode/N   validating one record (header, CRC32C) as a reader does
//   crc32c/N          CRC32C over N bytes (checked against a bitwise reference)
//   append_none/N     LogWriter::append under durability none (real log, rolls included)
//   codec_{encode,decode}/{raw,flatbuffers,json}/{small,medium}
//                     testing::Deposited (3 fields) and testing::Order (21 fields)
//   histogram_record  counters::record: one latency into the stats file's log-linear histogram
//   keyed_store_{get,put}/N        KeyedStore<Balance> with N keys, random keys
//     unordered_map_{find,assign}/N  baseline: std::unordered_map, same keys, same order
#include "micro/micro_benchmarks.h"

#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "internal/record_codec.h"
#include "sluice/bus/counters.h"
#include "sluice/bus/crc32c.h"
#include "sluice/bus/log_writer.h"
#include "sluice/projections/keyed_store.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/serialization/testing/events.h"

namespace sluice::bench::micro {
namespace {

using benchmark::State;

// The payload sizes the log suite reports (64, 256) and a large one.
constexpr int64_t kPayloads[] = {64, 256, 4096};

std::vector<std::byte> pattern(size_t n) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + 7) & 0xff);
  return v;
}

// ---- the log's record ------------------------------------------------------------------------

void record_encode(State& state) {
  const std::vector<std::byte> payload = pattern(static_cast<size_t>(state.range(0)));
  EventData e;
  e.type = 1;
  e.payload = payload;
  const uint64_t padded = log_format::align_up(log_internal::record_length(e));
  // 64 slots, so the stores do not all hit one line (the log writes forward through memory).
  std::vector<std::byte> out(padded * 64 + 64);
  log_internal::RecordFields f;
  f.stream_id = 1;
  uint64_t slot = 0;
  for (auto _ : state) {
    ++f.position;
    ++f.stream_version;
    std::byte* dst = out.data() + (slot++ & 63) * padded;
    const uint32_t len = log_internal::encode_record(dst, 7, f, e);
    log_internal::commit_record(dst, len);
    benchmark::DoNotOptimize(dst);
    benchmark::ClobberMemory();
  }
  // The last record written must read back as a valid record.
  uint32_t len = 0;
  const std::byte* last = out.data() + ((slot - 1) & 63) * padded;
  if (slot > 0 && log_internal::decode_record(last, padded, 7, &len) != log_internal::Decode::ok)
    state.SkipWithError("record_encode: the last record written does not decode");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(padded));
}

// Baseline: the same number of bytes copied into the same rotating slots.
void memcpy_record(State& state) {
  EventData e;
  const std::vector<std::byte> payload = pattern(static_cast<size_t>(state.range(0)));
  e.payload = payload;
  const uint64_t padded = log_format::align_up(log_internal::record_length(e));
  const std::vector<std::byte> src = pattern(padded);
  std::vector<std::byte> out(padded * 64 + 64);
  uint64_t slot = 0;
  for (auto _ : state) {
    std::byte* dst = out.data() + (slot++ & 63) * padded;
    std::memcpy(dst, src.data(), padded);
    benchmark::DoNotOptimize(dst);
    benchmark::ClobberMemory();
  }
  if (slot > 0 && std::memcmp(out.data() + ((slot - 1) & 63) * padded, src.data(), padded) != 0)
    state.SkipWithError("memcpy: copy differs");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(padded));
}

void record_decode(State& state) {
  const std::vector<std::byte> payload = pattern(static_cast<size_t>(state.range(0)));
  EventData e;
  e.type = 1;
  e.payload = payload;
  std::vector<std::byte> out(log_format::align_up(log_internal::record_length(e)) + 64);
  log_internal::RecordFields f;
  f.stream_id = 1;
  f.position = 1;
  f.stream_version = 1;
  const uint32_t written = log_internal::encode_record(out.data(), 7, f, e);
  log_internal::commit_record(out.data(), written);
  for (auto _ : state) {
    uint32_t len = 0;
    const log_internal::Decode d = log_internal::decode_record(out.data(), out.size(), 7, &len);
    if (d != log_internal::Decode::ok || len != written) {
      state.SkipWithError("record_decode: a valid record did not decode");
      break;
    }
    benchmark::DoNotOptimize(len);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(written));
}

// ---- CRC32C ----------------------------------------------------------------------------------

uint32_t crc32c_bitwise(const std::byte* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= static_cast<uint8_t>(p[i]);
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
  }
  return ~c;
}

void crc32c_extend(State& state) {
  const std::vector<std::byte> buf = pattern(static_cast<size_t>(state.range(0)));
  if (crc32c::value(buf.data(), buf.size()) != crc32c_bitwise(buf.data(), buf.size())) {
    state.SkipWithError("crc32c: differs from the bitwise reference");
    return;
  }
  uint32_t c = 0;
  for (auto _ : state) {
    c = crc32c::extend(c, buf.data(), buf.size());
    benchmark::DoNotOptimize(c);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

// ---- one append ------------------------------------------------------------------------------

std::string scratch_base(const std::string& dir) {
  if (!dir.empty()) return dir;
  const char* t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

// LogWriter::append under durability none into a real log (64 MiB segments, rolls included):
// the hot path `sluice bench log` compares with memcpy, here one call at a time. The log is
// opened on the first call and kept for the later ones (Google Benchmark calls a benchmark
// several times while it sizes the iteration count; opening prepares a 64 MiB segment).
class AppendFixture {
 public:
  explicit AppendFixture(std::string base) : base_(std::move(base)) {}
  ~AppendFixture() {
    writer_.reset();  // closed before its files go
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  // The writer, opened on first use; nullptr and error() when it could not be.
  LogWriter* writer() {
    if (writer_ || !error_.empty()) return writer_.get();
    std::string dir = scratch_base(base_) + "/sluice-micro-append-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) {
      error_ = "append_none: mkdtemp failed under " + scratch_base(base_);
      return nullptr;
    }
    dir_ = dir;
    LogOptions o;
    o.segment_size = 64ull << 20;
    auto w = LogWriter::open(dir_ + "/log", o);
    if (!w.ok()) {
      error_ = "append_none: " + w.status().to_string();
      return nullptr;
    }
    auto s = (*w)->stream("bench");
    if (!s.ok()) {
      error_ = "append_none: " + s.status().to_string();
      return nullptr;
    }
    stream_ = *s;
    writer_ = std::move(*w);
    return writer_.get();
  }
  const std::string& error() const { return error_; }
  StreamId stream() const { return stream_; }
  uint64_t appended = 0;  // over every call, for the stream version check

 private:
  std::string base_, dir_, error_;
  std::unique_ptr<LogWriter> writer_;
  StreamId stream_{};
};

void append_none(State& state, AppendFixture& fx) {
  LogWriter* w = fx.writer();
  if (w == nullptr) {
    state.SkipWithError(fx.error().c_str());
    return;
  }
  const std::vector<std::byte> payload = pattern(static_cast<size_t>(state.range(0)));
  EventData e;
  e.type = 1;
  e.payload = payload;
  for (auto _ : state) {
    const AppendResult r = w->append(fx.stream(), ExpectedVersion::any(), e);
    if (!r.ok()) {
      state.SkipWithError("append_none: append failed");
      return;
    }
    ++fx.appended;
    benchmark::DoNotOptimize(r);
  }
  // Every append took the next stream version.
  if (w->stream_version(fx.stream()) != fx.appended)
    state.SkipWithError("append_none: stream version differs from the appends counted");
  state.SetItemsProcessed(state.iterations());
}

// ---- codecs ----------------------------------------------------------------------------------

using serialization::CodecId;
using serialization::EncodeBuffer;
using serialization::SchemaRegistry;
using sluice::testing::Deposited;
using sluice::testing::Order;

constexpr size_t kVariants = 64;  // distinct events cycled through, so nothing is constant

Deposited make_deposit(uint64_t i) {
  return Deposited{7700 + i % 13, static_cast<int64_t>(100 + i), i % 2 ? "USD" : "EUR"};
}
Order make_order(uint64_t i) { return sluice::testing::sample_order(i); }

template <class T>
struct CodecFixture {
  SchemaRegistry registry;
  serialization::EventBinding<T> binding;
  std::vector<T> events;
  std::vector<std::vector<std::byte>> payloads;
  std::string error;

  template <class Make>
  CodecFixture(CodecId c, Make make) {
    auto b = registry.bind<T>(c);
    if (!b.ok()) {
      error = b.status().to_string();
      return;
    }
    binding = *b;
    EncodeBuffer buf;
    for (size_t i = 0; i < kVariants; ++i) {
      events.push_back(make(i));
      auto d = binding.encode(events.back(), buf);
      if (!d.ok()) {
        error = d.status().to_string();
        return;
      }
      payloads.emplace_back(d->payload.begin(), d->payload.end());
    }
  }
};

template <class T, class Make>
void codec_encode(State& state, CodecId c, Make make) {
  CodecFixture<T> fx(c, make);
  if (!fx.error.empty()) {
    state.SkipWithError(fx.error.c_str());
    return;
  }
  EncodeBuffer buf;
  uint64_t i = 0;
  for (auto _ : state) {
    auto d = fx.binding.encode(fx.events[i++ % kVariants], buf);
    if (!d.ok()) {
      state.SkipWithError("codec_encode: encode failed");
      break;
    }
    benchmark::DoNotOptimize(d->payload.data());
    benchmark::ClobberMemory();
  }
  // The bytes of the last encode are those of the fixture's encode of the same event.
  if (i > 0) {
    auto d = fx.binding.encode(fx.events[(i - 1) % kVariants], buf);
    const auto& want = fx.payloads[(i - 1) % kVariants];
    if (!d.ok() || d->payload.size() != want.size() || std::memcmp(d->payload.data(), want.data(), want.size()) != 0)
      state.SkipWithError("codec_encode: encoding is not deterministic");
  }
  state.SetItemsProcessed(state.iterations());
}

template <class T, class Make>
void codec_decode(State& state, CodecId c, Make make) {
  CodecFixture<T> fx(c, make);
  if (!fx.error.empty()) {
    state.SkipWithError(fx.error.c_str());
    return;
  }
  T out{};
  uint64_t i = 0;
  for (auto _ : state) {
    const Status st = fx.binding.decode(fx.binding.type_id(), fx.binding.version(), c, fx.payloads[i++ % kVariants], &out);
    if (!st.ok()) {
      state.SkipWithError(("codec_decode: " + st.to_string()).c_str());
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  // The last decode gave back the event it was encoded from.
  if (i > 0 && !(out == fx.events[(i - 1) % kVariants]))
    state.SkipWithError("codec_decode: decoded event differs from the one encoded");
  state.SetItemsProcessed(state.iterations());
}

// ---- the latency histogram -------------------------------------------------------------------

// counters::record: the log-linear histogram of the stats file (projection, relay latency).
// Latencies cycle through 1024 values spread log-uniformly over 200 ns .. 20 ms.
void histogram_record(State& state) {
  auto h = std::make_unique<counters::HistogramWords>();
  std::memset(h.get(), 0, sizeof *h);
  h->min = UINT64_MAX;
  std::array<uint64_t, 1024> values;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (uint64_t& v : values) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64
    const double exp10 = 2.3 + 5.0 * static_cast<double>(x % 10000) / 10000.0;  // 10^2.3 .. 10^7.3 ns
    v = static_cast<uint64_t>(std::pow(10.0, exp10));
  }
  uint64_t i = 0;
  for (auto _ : state) {
    counters::record(*h, values[i++ & 1023]);
    benchmark::ClobberMemory();
  }
  if (counters::get(h->count) != static_cast<uint64_t>(state.iterations()))
    state.SkipWithError("histogram_record: count differs from the values recorded");
  state.SetItemsProcessed(state.iterations());
}

// ---- the keyed store (read models) -----------------------------------------------------------

struct Balance {
  int64_t balance;
  uint64_t version;
};

// N keys (scattered, as account ids are) and 4096 lookups in a random order over them.
struct KeySet {
  std::vector<uint64_t> keys;
  std::vector<uint32_t> order;
  explicit KeySet(size_t n) : keys(n), order(4096) {
    for (size_t i = 0; i < n; ++i) keys[i] = store_internal::mix64(i + 1) | 1;
    uint64_t x = 88172645463325252ull;
    for (uint32_t& o : order) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      o = static_cast<uint32_t>(x % n);
    }
  }
  uint64_t key(uint64_t i) const { return keys[order[i & 4095]]; }
};

// The value every benchmark below stores for key k (so a lookup can check what it read).
int64_t balance_of(uint64_t k) { return static_cast<int64_t>(k & 0xffff); }

// The store and the map with N keys, built on first use and shared by the get and put
// benchmarks (a put stores the same balance, a new version): building 1 Mi keys costs far
// more than measuring them, and Google Benchmark calls each benchmark several times.
struct StoreFixture {
  KeySet ks;
  KeyedStore<Balance> store;
  explicit StoreFixture(size_t n) : ks(n) {
    store.reserve(n);
    for (uint64_t k : ks.keys) store.put(k, Balance{balance_of(k), 0});
  }
};
struct MapFixture {
  KeySet ks;
  std::unordered_map<uint64_t, Balance> map;
  explicit MapFixture(size_t n) : ks(n) {
    map.reserve(n);
    for (uint64_t k : ks.keys) map[k] = Balance{balance_of(k), 0};
  }
};
class KeyedFixtures {
 public:
  explicit KeyedFixtures(size_t n) : n_(n) {}
  StoreFixture& store() {
    if (!store_) store_ = std::make_unique<StoreFixture>(n_);
    return *store_;
  }
  MapFixture& map() {
    if (!map_) map_ = std::make_unique<MapFixture>(n_);
    return *map_;
  }

 private:
  size_t n_;
  std::unique_ptr<StoreFixture> store_;
  std::unique_ptr<MapFixture> map_;
};

void keyed_store_get(State& state, StoreFixture& fx) {
  uint64_t i = 0;
  int64_t sum = 0;
  for (auto _ : state) {
    const uint64_t k = fx.ks.key(i++);
    const std::optional<Balance> b = fx.store.get(k);
    if (!b || b->balance != balance_of(k)) {
      state.SkipWithError("keyed_store_get: a stored key was missing or wrong");
      break;
    }
    sum += b->balance;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}

void unordered_map_find(State& state, MapFixture& fx) {
  uint64_t i = 0;
  int64_t sum = 0;
  for (auto _ : state) {
    const uint64_t k = fx.ks.key(i++);
    const auto it = fx.map.find(k);
    if (it == fx.map.end() || it->second.balance != balance_of(k)) {
      state.SkipWithError("unordered_map_find: a stored key was missing or wrong");
      break;
    }
    sum += it->second.balance;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}

// put() of existing keys (the read model's update path: no growth), random order.
void keyed_store_put(State& state, StoreFixture& fx) {
  uint64_t i = 0;
  for (auto _ : state) {
    const uint64_t k = fx.ks.key(i);
    fx.store.put(k, Balance{balance_of(k), ++i});
  }
  if (i > 0) {
    const std::optional<Balance> b = fx.store.peek(fx.ks.key(i - 1));
    if (!b || b->version != i || fx.store.size_estimate() != fx.ks.keys.size())
      state.SkipWithError("keyed_store_put: the last put is not what the store holds");
  }
  state.SetItemsProcessed(state.iterations());
}

void unordered_map_assign(State& state, MapFixture& fx) {
  uint64_t i = 0;
  for (auto _ : state) {
    const uint64_t k = fx.ks.key(i);
    fx.map[k] = Balance{balance_of(k), ++i};
    benchmark::ClobberMemory();
  }
  if (i > 0 && (fx.map[fx.ks.key(i - 1)].version != i || fx.map.size() != fx.ks.keys.size()))
    state.SkipWithError("unordered_map_assign: the last assignment is not what the map holds");
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

void register_micro_benchmarks(const MicroOptions& o) {
  const auto reg = [&o](const std::string& name, auto fn) {
    benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(name.c_str(), fn);
    if (o.min_time_s > 0) b->MinTime(o.min_time_s);
    return b;
  };
  for (int64_t n : kPayloads) {
    reg("record_encode", record_encode)->Arg(n);
    reg("memcpy", memcpy_record)->Arg(n);
  }
  for (int64_t n : kPayloads) reg("record_decode", record_decode)->Arg(n);
  reg("crc32c", crc32c_extend)->Arg(64)->Arg(256)->Arg(4096)->Arg(64 << 10);
  for (int64_t n : {64, 256}) {
    auto fx = std::make_shared<AppendFixture>(o.dir);  // one log per payload size
    reg("append_none", [fx](State& s) { append_none(s, *fx); })->Arg(n);
  }

  for (CodecId c : {CodecId::raw, CodecId::flatbuffers, CodecId::json}) {
    const std::string codec(serialization::to_string(c));
    reg("codec_encode/" + codec + "/small", [c](State& s) { codec_encode<Deposited>(s, c, make_deposit); });
    reg("codec_decode/" + codec + "/small", [c](State& s) { codec_decode<Deposited>(s, c, make_deposit); });
    reg("codec_encode/" + codec + "/medium", [c](State& s) { codec_encode<Order>(s, c, make_order); });
    reg("codec_decode/" + codec + "/medium", [c](State& s) { codec_decode<Order>(s, c, make_order); });
  }

  reg("histogram_record", histogram_record);

  // 1 Ki keys stay in the L1/L2 caches; 1 Mi keys (a read model of a million accounts) do not.
  for (int64_t n : {int64_t{1} << 10, int64_t{1} << 20}) {
    auto fx = std::make_shared<KeyedFixtures>(static_cast<size_t>(n));  // freed with the registrations
    reg("keyed_store_get", [fx](State& s) { keyed_store_get(s, fx->store()); })->Arg(n);
    reg("unordered_map_find", [fx](State& s) { unordered_map_find(s, fx->map()); })->Arg(n);
    reg("keyed_store_put", [fx](State& s) { keyed_store_put(s, fx->store()); })->Arg(n);
    reg("unordered_map_assign", [fx](State& s) { unordered_map_assign(s, fx->map()); })->Arg(n);
  }
}

}  // namespace sluice::bench::micro
