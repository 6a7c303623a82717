// sluice bench codec: encode and decode per codec, for a small and a medium event.
//
//   struct ──encode──► payload bytes ──decode──► struct          raw | json | flatbuffers
//                         │
//                         └──verify + read 3 fields in place──►  flatbuffers access (no decode)
//
//   small  = testing::Deposited (3 fields: u64, i64, FixedString<8>;  24 B raw)
//   medium = testing::Order     (21 fields, 2 strings;                144 B raw)
//
// Baselines, same run: the JSON decode of the medium event is the yardstick of both ratios;
// the JSON decode is also run through a nlohmann/json DOM (the parser not chosen), and one
// upcaster step is timed against decoding the current version directly.
//
// Figures (--json): ratio_flatbuffers_access_vs_json_decode_medium (target >= 10),
// ratio_raw_decode_vs_json_decode_medium, {encode,decode}_{raw,json,flatbuffers}_{small,medium}
// (events/s), flatbuffers_access_medium (events/s), upcaster_step_ns, payload sizes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/figures.h"
#include "sluice/serialization/document.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/serialization/testing/events.h"
#include "suites.h"

namespace sluice::bench {
namespace {

using namespace sluice::serialization;
using sluice::testing::Deposited;
using sluice::testing::DepositedV1;
using sluice::testing::Order;
using Clock = std::chrono::steady_clock;

template <class T>
inline void keep(const T& x) {
  asm volatile("" : : "g"(&x) : "memory");
}

// Events per second of `op(i)`, the best of `reps` runs of `n` calls (the least disturbed
// run on a shared machine).
template <class Op>
double rate(uint64_t n, Op&& op, int reps = 5) {
  for (uint64_t i = 0; i < n / 10 + 1; ++i) op(i);  // warm-up: buffers grown, caches hot
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    for (uint64_t i = 0; i < n; ++i) op(i);
    best = std::max(best, static_cast<double>(n) / seconds_since(t0));
  }
  return best;
}

[[noreturn]] void fail(const char* what, const Status& st) {
  bench_fail("codec: %s: %s", what, st.to_string().c_str());
}

template <class T>
EventBinding<T> bind_or_die(SchemaRegistry& reg, CodecId c) {
  auto b = reg.bind<T>(c);
  if (!b.ok()) fail("bind", b.status());
  return *b;
}

constexpr size_t kVariants = 64;  // distinct events cycled through, so nothing is constant

Deposited sample_deposit(uint64_t i) {
  return Deposited{7700 + i % 13, static_cast<int64_t>(100 + i), i % 2 ? "USD" : "EUR"};
}

// Encode and decode rates of one event type with one codec.
template <class T, class Make>
void measure(Figures& fig, CodecId c, const std::string& size, Make make, uint64_t n) {
  SchemaRegistry reg;
  EventBinding<T> b = bind_or_die<T>(reg, c);
  std::vector<T> events;
  for (size_t i = 0; i < kVariants; ++i) events.push_back(make(i));
  EncodeBuffer buf;
  const std::string sfx = std::string(to_string(c)) + "_" + size;
  fig.add("encode_" + sfx, rate(n, [&](uint64_t i) {
            auto e = b.encode(events[i % kVariants], buf);
            if (!e.ok()) fail("encode", e.status());
            keep(e);
          }),
          "events/s");
  std::vector<std::vector<std::byte>> payloads;
  for (const T& e : events) {
    auto d = b.encode(e, buf);
    if (!d.ok()) fail("encode", d.status());
    payloads.emplace_back(d->payload.begin(), d->payload.end());
  }
  fig.add(std::string(to_string(c)) + "_bytes_" + size, static_cast<double>(payloads[0].size()), "bytes");
  T out;
  fig.add("decode_" + sfx, rate(n, [&](uint64_t i) {
            Status st = b.decode(b.type_id(), b.version(), c, payloads[i % kVariants], &out);
            if (!st.ok()) fail("decode", st);
            keep(out);
          }),
          "events/s");
  // Every variant decodes back to the event it was encoded from.
  for (size_t i = 0; i < kVariants; ++i) {
    if (Status st = b.decode(b.type_id(), b.version(), c, payloads[i], &out); !st.ok()) fail("decode", st);
    if (!(out == events[i]))
      fail("decode", Status(StatusCode::corruption, "decode_" + sfx + ": variant " + std::to_string(i) +
                                                       " does not decode to the event it was encoded from"));
  }
}

}  // namespace

int run_codec_suite(const SuiteArgs& args) {
  Figures fig;
  check_workload(args, "codec", kOptEvents | kOptCodec);
  const auto n = [&](double base) { return events_or(args, static_cast<uint64_t>(std::max(1000.0, base * args.scale))); };
  pin_this_thread(args.cpus.empty() ? -1 : args.cpus[0]);
  const std::string machine = machine_description(args.dir.empty() ? "/tmp" : args.dir);
  fig.config("machine", machine);
  fig.config("scale", std::to_string(args.scale));
  fig.config("cpus", args.cpus.empty() ? "unpinned" : std::to_string(args.cpus[0]));
  fig.config("method", "best of 5 runs per figure, 64 distinct events cycled");
  std::printf("sluice bench codec — %s\n", machine.c_str());

  for (CodecId c : {CodecId::raw, CodecId::flatbuffers, CodecId::json}) {
    if (!args.workload.codec.empty() && args.workload.codec != to_string(c)) continue;  // --codec: that one only
    progress("codec", std::string("encode/decode ") + std::string(to_string(c)));
    const double k = c == CodecId::raw ? 10 : c == CodecId::flatbuffers ? 2 : 1;
    measure<Deposited>(fig, c, "small", sample_deposit, n(k * 500'000));
    measure<Order>(fig, c, "medium", sluice::testing::sample_order, n(k * 300'000));
  }

  // FlatBuffers field access without decoding: verify, then read three fields in place.
  progress("codec", "field access, nlohmann, upcasting");
  {
    SchemaRegistry reg;
    auto b = bind_or_die<Order>(reg, CodecId::flatbuffers);
    EncodeBuffer buf;
    std::vector<std::vector<std::byte>> payloads;
    for (size_t i = 0; i < kVariants; ++i) {
      auto d = b.encode(sluice::testing::sample_order(i), buf);
      if (!d.ok()) fail("encode", d.status());
      payloads.emplace_back(d->payload.begin(), d->payload.end());
    }
    fig.add("flatbuffers_access_medium", rate(n(3'000'000), [&](uint64_t i) {
              auto t = FlatBuffersCodec::access<sluice::testing::fb::Order>(payloads[i % kVariants]);
              if (!t.ok()) fail("flatbuffers access", t.status());
              const auto* o = *t;
              double v = o->price() * static_cast<double>(o->quantity()) + static_cast<double>(o->order_id());
              keep(v);
            }),
            "events/s", "Verifier + 3 fields read in place");
    fig.add("flatbuffers_access_unverified_medium", rate(n(10'000'000), [&](uint64_t i) {
              const auto* o = flatbuffers::GetRoot<sluice::testing::fb::Order>(payloads[i % kVariants].data());
              double v = o->price() * static_cast<double>(o->quantity()) + static_cast<double>(o->order_id());
              keep(v);
            }),
            "events/s", "no Verifier: only for bytes this process built");
  }

  // The JSON parser not chosen: nlohmann/json DOM, then the fields.
  {
    SchemaRegistry reg;
    auto b = bind_or_die<Order>(reg, CodecId::json);
    EncodeBuffer buf;
    std::vector<std::string> payloads;
    for (size_t i = 0; i < kVariants; ++i) {
      auto d = b.encode(sluice::testing::sample_order(i), buf);
      if (!d.ok()) fail("encode", d.status());
      payloads.emplace_back(reinterpret_cast<const char*>(d->payload.data()), d->payload.size());
    }
    Order out;
    fig.add("json_nlohmann_decode_medium", rate(n(200'000), [&](uint64_t i) {
              const std::string& p = payloads[i % kVariants];
              Status st = b.core().decode_json_dom(std::as_bytes(std::span(p.data(), p.size())), &out);
              if (!st.ok()) fail("nlohmann decode", st);
              keep(out);
            }),
            "events/s", "nlohmann DOM; the codec uses simdjson");
  }

  // One upcaster step: a v1 JSON event read as v2 through one upcaster, vs a v2 event.
  {
    SchemaRegistry reg;
    auto v1 = bind_or_die<DepositedV1>(reg, CodecId::json);
    reg.add_upcaster("testing.Deposited", 1, [](nlohmann::json& e) {
      e["currency"] = "EUR";
      return Status();
    });
    auto v2 = bind_or_die<Deposited>(reg, CodecId::json);
    EncodeBuffer buf;
    std::vector<std::string> old_payloads;
    for (size_t i = 0; i < kVariants; ++i) {
      auto d = v1.encode(DepositedV1{7700 + i, static_cast<int64_t>(100 + i)}, buf);
      if (!d.ok()) fail("encode", d.status());
      old_payloads.emplace_back(reinterpret_cast<const char*>(d->payload.data()), d->payload.size());
    }
    Deposited out;
    const double upcast = rate(n(200'000), [&](uint64_t i) {
      const std::string& p = old_payloads[i % kVariants];
      Status st = v2.decode(v2.type_id(), 1, CodecId::json, std::as_bytes(std::span(p.data(), p.size())), &out);
      if (!st.ok()) fail("upcast", st);
      keep(out);
    });
    nlohmann::json doc = {{"account", 1}, {"amount", 2}};
    Upcaster step = [](nlohmann::json& e) {
      e["currency"] = "EUR";
      return Status();
    };
    const double step_only = rate(n(1'000'000), [&](uint64_t) {
      nlohmann::json d = doc;
      Status st = step(d);
      if (!st.ok()) fail("upcaster step", st);
      keep(d);
    });
    const double copy_only = rate(n(1'000'000), [&](uint64_t) {
      nlohmann::json d = doc;
      keep(d);
    });
    fig.add("upcast_decode_small", upcast, "events/s", "v1 JSON -> document -> 1 upcaster -> v2 struct");
    fig.add("upcaster_step_ns", std::max(0.0, 1e9 / step_only - 1e9 / copy_only), "ns",
            "the upcaster itself on a document (adds a field)");
    fig.add("upcast_overhead_ns", 1e9 / upcast - 1e9 / fig.get("decode_json_small"), "ns",
            "read of an old version minus read of the current one (JSON, small)");
  }

  const double json_medium = fig.get("decode_json_medium");
  fig.add("ratio_flatbuffers_access_vs_json_decode_medium", fig.get("flatbuffers_access_medium") / json_medium,
          "ratio", "verified access; target >= 10");
  fig.add("ratio_flatbuffers_unverified_access_vs_json_decode_medium",
          fig.get("flatbuffers_access_unverified_medium") / json_medium, "ratio");
  fig.add("ratio_raw_decode_vs_json_decode_medium", fig.get("decode_raw_medium") / json_medium, "ratio");
  fig.add("ratio_flatbuffers_decode_vs_json_decode_medium", fig.get("decode_flatbuffers_medium") / json_medium,
          "ratio");
  fig.add("ratio_simdjson_vs_nlohmann_decode_medium", json_medium / fig.get("json_nlohmann_decode_medium"),
          "ratio", "why the JSON codec parses with simdjson");
  fig.print_table();
  if (!args.json_path.empty() && !fig.write_json(args.json_path, "codec")) return 1;
  return 0;
}

}  // namespace sluice::bench
