// Typed handlers over the serialization layer: the same bank projections (samples/bank_ledger)
// over logs written with each codec, and with codecs mixed, give equal digests; raw and
// FlatBuffers decodes on the apply path allocate nothing; a type the registry does not know
// fails open() by name; an event that does not decode is parked with the decoder's message.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <new>
#include <string>
#include <unistd.h>

#include "bank_model.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "sluice/projections/rebuild.h"

// Counts heap allocations made on the calling thread (the apply path is measured on it).
// The replacement pairs malloc with free on purpose; GCC cannot see that through inlining.
// Not under the sanitizers: they own operator new/delete (ASan reports a mismatch when a
// library's allocation meets our delete), so the count is checked in the plain build only.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SLUICE_COUNT_ALLOCATIONS 0
#else
#define SLUICE_COUNT_ALLOCATIONS 1
#endif
namespace {
thread_local uint64_t g_allocations = 0;
}
#if SLUICE_COUNT_ALLOCATIONS
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace sluice {
namespace {

using serialization::CodecId;
using serialization::SchemaRegistry;

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    dir_ = (std::filesystem::temp_directory_path() /
            ("sluice-typed-" + std::to_string(::getpid()) + "-" + std::to_string(n++)))
               .string();
    std::filesystem::remove_all(dir_);
  }
  ~TempDir() { std::filesystem::remove_all(dir_); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// `codec_of(i)` picks the codec of event i: one codec for all, or a mix.
template <class CodecOf>
void write_history(const std::string& dir, CodecOf codec_of) {
  LogOptions o;
  o.segment_size = 1 << 20;
  auto w = LogWriter::open(dir, o);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  SchemaRegistry reg;
  std::map<CodecId, serialization::EventBinding<bank::Deposited>> dep;
  std::map<CodecId, serialization::EventBinding<bank::Withdrawn>> wd;
  for (CodecId c : {CodecId::raw, CodecId::flatbuffers, CodecId::json}) {
    auto d = reg.bind<bank::Deposited>(c, w->get());
    auto x = reg.bind<bank::Withdrawn>(c, w->get());
    ASSERT_TRUE(d.ok() && x.ok()) << d.status().to_string() << x.status().to_string();
    dep[c] = *d;
    wd[c] = *x;
  }
  serialization::EncodeBuffer buf;
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 8; ++a) ids.push_back((*w)->stream(bank::stream_name(a)).value());
  for (uint64_t i = 0; i < 600; ++i) {
    const uint64_t a = i % 8;
    const CodecId c = codec_of(i);
    // Every 7th event withdraws; event 300 overdraws account 4 (parked, and its key after it).
    auto e = i == 300  ? wd[c].encode(bank::Withdrawn{a, int64_t{1} << 40, 19'905}, buf)
             : i % 7 == 6 ? wd[c].encode(bank::Withdrawn{a, 50, static_cast<int64_t>(19'900 + i / 100)}, buf)
                          : dep[c].encode(bank::Deposited{a, static_cast<int64_t>(100 + i), static_cast<int64_t>(19'900 + i / 100)}, buf);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    ASSERT_TRUE((*w)->append(ids[a], ExpectedVersion::any(), *e).ok());
  }
  ASSERT_TRUE((*w)->close().ok());
}

struct Digests {
  std::map<std::string, uint64_t> digest;
  std::map<std::string, uint64_t> dead_letters;
  bool operator==(const Digests&) const = default;
};

Digests replay(const std::string& dir) {
  Digests out;
  SchemaRegistry reg;
  EXPECT_TRUE(reg.load(dir).ok());
  EXPECT_TRUE(bank::register_for_reading(reg).ok());
  RebuildOptions ro;
  ro.registry = &reg;
  for (std::string_view name : bank::kProjectionNames) {
    auto r = rebuild_projection(dir, name, bank::factory_for(name), ProjectionOptions{}, ro);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (!r.ok()) continue;
    EXPECT_EQ(r->events, 600u);
    out.digest[std::string(name)] = r->digest;
    out.dead_letters[std::string(name)] = r->dead_letters;
  }
  return out;
}

TEST(TypedHandlers, SameProjectionsGiveEqualDigestsWithEveryCodec) {
  std::map<CodecId, Digests> results;
  for (CodecId c : {CodecId::raw, CodecId::flatbuffers, CodecId::json}) {
    TempDir t;
    write_history(t.dir(), [c](uint64_t) { return c; });
    results[c] = replay(t.dir());
    EXPECT_EQ(results[c].digest.size(), 3u) << to_string(c);
    EXPECT_GT(results[c].dead_letters["balances"], 0u) << to_string(c);  // the overdraft
  }
  EXPECT_EQ(results[CodecId::raw], results[CodecId::flatbuffers]);
  EXPECT_EQ(results[CodecId::raw], results[CodecId::json]);
}

TEST(TypedHandlers, LogMixingCodecsGivesTheSameDigests) {
  TempDir single, mixed;
  write_history(single.dir(), [](uint64_t) { return CodecId::raw; });
  write_history(mixed.dir(), [](uint64_t i) {
    return i % 3 == 0 ? CodecId::raw : i % 3 == 1 ? CodecId::flatbuffers : CodecId::json;
  });
  EXPECT_EQ(replay(single.dir()), replay(mixed.dir()));
}

// A projection whose handler itself allocates nothing, so the count is the decode's.
class Sum final : public Projection {
 public:
  Sum() {
    on<bank::Deposited>([this](const bank::Deposited& d, const Event&) {
      total_ += d.amount + d.day + static_cast<int64_t>(d.account);
      return ApplyResult::ok;
    });
  }
  void save(SnapshotWriter&) const override {}
  Status load(SnapshotReader&) override { return Status::OK(); }
  uint64_t digest() const noexcept override { return static_cast<uint64_t>(total_); }

 private:
  int64_t total_ = 0;
};

TEST(TypedHandlers, RawAndFlatBuffersDecodesAllocateNothing) {
  if (!SLUICE_COUNT_ALLOCATIONS) GTEST_SKIP() << "allocation counting is off under the sanitizers";
  for (CodecId c : {CodecId::raw, CodecId::flatbuffers}) {
    TempDir t;
    write_history(t.dir(), [c](uint64_t) { return c; });
    SchemaRegistry reg;
    ASSERT_TRUE(reg.load(t.dir()).ok());
    ASSERT_TRUE(bank::register_for_reading(reg).ok());
    Sum sum;
    ASSERT_TRUE(sum.resolve_types(&reg, "sum").ok());
    auto r = LogReader::open(t.dir());
    ASSERT_TRUE(r.ok());
    RecordView v;
    uint64_t applied = 0;
    const uint64_t before = g_allocations;
    for (uint64_t p = 0; p < (*r)->end_position(); ++p) {
      if (!(*r)->read(p, &v)) continue;
      if (sum.apply(Event(v)) == ApplyResult::ok) ++applied;
    }
    EXPECT_EQ(g_allocations - before, 0u) << to_string(c);
    EXPECT_GT(applied, 400u) << to_string(c);
  }
}

TEST(TypedHandlers, TypeMissingFromTheRegistryFailsOpenByName) {
  TempDir t;
  write_history(t.dir(), [](uint64_t) { return CodecId::json; });
  SchemaRegistry reg;
  ASSERT_TRUE(reg.load(t.dir()).ok());
  ASSERT_TRUE(reg.register_for_reading<bank::Deposited>().ok());  // Withdrawn left out
  ProjectionRunner::Context ctx;
  ctx.log_dir = t.dir();
  ctx.registry = &reg;
  ProjectionRunner runner("balances", bank::factory_for("balances"), ProjectionOptions{}, ctx);
  Status st = runner.open(600, /*use_checkpoint=*/false);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("balances"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("bank.Withdrawn"), std::string::npos) << st.message();
}

TEST(TypedHandlers, UndecodableEventIsParkedWithTheDecodersMessage) {
  TempDir t;
  {
    auto w = LogWriter::open(t.dir(), LogOptions{});
    ASSERT_TRUE(w.ok());
    SchemaRegistry reg;
    auto dep = reg.bind<bank::Deposited>(CodecId::json, w->get());
    ASSERT_TRUE(dep.ok() && reg.bind<bank::Withdrawn>(CodecId::json, w->get()).ok());
    const StreamId s = (*w)->stream(bank::stream_name(1)).value();
    EventData bad;
    bad.type = dep->type_id();
    bad.schema_version = 1;
    bad.codec = static_cast<uint8_t>(CodecId::json);
    const std::string text = "{\"account\":1,\"amount\":\"lots\",\"day\":1}";
    bad.payload = std::as_bytes(std::span<const char>(text));
    ASSERT_TRUE((*w)->append(s, ExpectedVersion::any(), bad).ok());
    ASSERT_TRUE((*w)->close().ok());
  }
  SchemaRegistry reg;
  ASSERT_TRUE(reg.load(t.dir()).ok());
  ASSERT_TRUE(bank::register_for_reading(reg).ok());
  ProjectionRunner::Context ctx;
  ctx.log_dir = t.dir();
  ctx.registry = &reg;
  ProjectionRunner runner("balances", bank::factory_for("balances"), ProjectionOptions{}, ctx);
  ASSERT_TRUE(runner.open(1, false).ok());
  auto r = LogReader::open(t.dir());
  ASSERT_TRUE(r.ok());
  RecordView v;
  ASSERT_TRUE((*r)->read(0, &v));
  runner.on_record(v, true);
  auto dl = runner.dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_NE(dl[0].reason.find("bank.Deposited"), std::string::npos) << dl[0].reason;
  EXPECT_NE(dl[0].reason.find("amount"), std::string::npos) << dl[0].reason;
}

// One codec byte per encoding: encode_raw (the kEventType convention) and a registry binding
// of codec raw write the same struct bytes under the same byte, the log format's raw (0).
TEST(TypedHandlers, EncodeRawAndABoundRawCodecWriteTheSameByte) {
  const bank::Deposited d{7, 250, 20000};
  const EventData by_convention = encode_raw(d);
  EXPECT_EQ(by_convention.codec, 0);
  EXPECT_EQ(by_convention.codec, static_cast<uint8_t>(CodecId::raw));
  EXPECT_EQ(codec_name(by_convention.codec), "raw");
  serialization::SchemaRegistry reg;
  auto b = reg.bind<bank::Deposited>(CodecId::raw);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  serialization::EncodeBuffer buf;
  auto bound = b->encode(d, buf);
  ASSERT_TRUE(bound.ok());
  EXPECT_EQ(bound->codec, by_convention.codec);
  ASSERT_EQ(bound->payload.size(), by_convention.payload.size());
  EXPECT_TRUE(std::equal(bound->payload.begin(), bound->payload.end(), by_convention.payload.begin()));
}

}  // namespace
}  // namespace sluice
