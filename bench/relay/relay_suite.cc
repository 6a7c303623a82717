// sluice bench relay: the JetStream relay against a local single-node nats-server, beside
// raw nats.c asynchronous publishing of the same messages, same run.
//
//   throughput (catch-up: the log is written first)
//     relay:    LogReader ─► JetStreamRelay ─(js_PublishMsgAsync, ≤ W in flight)─► nats-server ─► file store
//     baseline: loop ─────────────────────────(js_PublishMsgAsync, ≤ W in flight)─► nats-server ─► file store
//               the same messages: subjects, payloads and headers (Nats-Msg-Id, the
//               Nats-Expected-Last-Msg-Id order guard, Sluice-Stream, Sluice-Event), formatted
//               in the loop as any publisher of them would; W = 1024 for both
//
//   lag (live): producer appends at a fixed rate ─► log ─► relay ─► JetStream ack
//               latency = acknowledgement time - the event's append timestamp (relay histogram)
//
// Figures (--json): ratio_relay_vs_raw_nats (relay events/s ÷ raw events/s; target >= 0.8),
// relay and raw events/s, relay_lag_p50_ns / relay_lag_p99_ns at the live rate, and the bare
// atomic round trip and load average beside them (a shared, noisy machine: see the results).
// The producer appends on a fixed schedule, late appends go at once; latency counts from the
// actual append (the relay is under test, not the producer).
#include <nats/nats.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/figures.h"
#include "common/histogram.h"
#include "sluice/bus/log_writer.h"
#include "sluice/connectors/jetstream_relay.h"
#include "sluice/connectors/message.h"
#include "sluice/connectors/testing/nats_server.h"
#include "suites.h"

namespace sluice::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr uint32_t kInFlight = 1024;
constexpr int kStreams = 16;
constexpr size_t kPayload = 100;

std::string payload_for(uint64_t i) {
  std::string p(kPayload, 'x');
  const std::string tag = std::to_string(i);
  std::copy(tag.begin(), tag.end(), p.begin());
  return p;
}

bool write_log(const std::string& dir, uint64_t events) {
  auto w = LogWriter::open(dir);
  if (!w.ok()) return false;
  std::vector<StreamId> ids;
  for (int s = 0; s < kStreams; ++s) ids.push_back((*w)->stream("account-" + std::to_string(s)).value());
  for (uint64_t i = 0; i < events; ++i) {
    const std::string p = payload_for(i);
    EventData e;
    e.type = 1;
    e.payload = std::as_bytes(std::span(p.data(), p.size()));
    if (!(*w)->append(ids[i % kStreams], ExpectedVersion::any(), e).ok()) return false;
  }
  return (*w)->close().ok();
}

// Raw nats.c: the same messages (subject, payload, Nats-Msg-Id), W in flight. Events/s, or
// a negative value on failure.
double raw_publish(const std::string& url, const std::string& stream, uint64_t events) {
  natsOptions* o = nullptr;
  natsOptions_Create(&o);
  natsOptions_SetURL(o, url.c_str());
  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_Connect(&nc, o);
  natsOptions_Destroy(o);
  if (s != NATS_OK) return -1;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = kInFlight;
  jsCtx* js = nullptr;
  natsConnection_JetStream(&js, nc, &jo);
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const std::string subj = stream + ".>";
  const char* subjects[] = {subj.c_str()};
  cfg.Name = stream.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_AddStream(&si, js, &cfg, nullptr, &jerr) == NATS_OK) jsStreamInfo_Destroy(si);
  std::vector<std::string> subjects_by_stream, stream_names;
  for (int k = 0; k < kStreams; ++k) {
    stream_names.push_back("account-" + std::to_string(k));
    subjects_by_stream.push_back(stream + "." + stream_names.back() + ".1");
  }
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < events && s == NATS_OK; ++i) {
    const std::string p = payload_for(i);
    natsMsg* m = nullptr;
    s = natsMsg_Create(&m, subjects_by_stream[i % kStreams].c_str(), nullptr, p.data(), static_cast<int>(p.size()));
    // The relay's headers, byte for byte the same kind (message.h): id, order guard, stream,
    // event fields.
    if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Msg-Id", connectors::message_id("raw", i).c_str());
    if (s == NATS_OK && i > 0)
      s = natsMsgHeader_Set(m, "Nats-Expected-Last-Msg-Id", connectors::message_id("raw", i - 1).c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(m, connectors::kHeaderStream, stream_names[i % kStreams].c_str());
    const connectors::EventMeta meta{i / kStreams + 1, 1, 1, 0, 1'700'000'000'000'000'000 + static_cast<int64_t>(i), false};
    if (s == NATS_OK) s = natsMsgHeader_Set(m, connectors::kHeaderEvent, connectors::format_event_meta(meta).c_str());
    if (s == NATS_OK) s = js_PublishMsgAsync(js, &m, nullptr);
    natsMsg_Destroy(m);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60'000;
  if (s == NATS_OK) s = js_PublishAsyncComplete(js, &po);
  const double secs = seconds_since(t0);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return s == NATS_OK ? static_cast<double>(events) / secs : -1;
}

double relay_catch_up(const std::string& url, const std::string& log, const std::string& stream, uint64_t events) {
  connectors::JetStreamRelayOptions o;
  o.servers = {url};
  o.stream = stream;
  o.subject_prefix = stream;
  o.max_in_flight = kInFlight;
  auto r = connectors::JetStreamRelay::open(log, o);
  if (!r.ok() || !(*r)->connect().ok()) return -1;
  const auto t0 = Clock::now();
  if (!(*r)->wait_acknowledged(events, 300s).ok()) return -1;
  const double secs = seconds_since(t0);
  (*r)->close().ignore();
  return static_cast<double>(events) / secs;
}

struct Lag {
  double p50 = -1, p99 = -1, rate = 0;
  // Each event's intended append time (the producer's fixed-rate schedule, so coordinated
  // omission is corrected) -> the poll after which acknowledged_position() covered it.
  Histogram polled;
};

// A producer thread appends at `rate` events/s for `seconds`; the relay (this thread)
// follows it live. Latencies: the relay's append -> acknowledged histogram.
Lag relay_live(const std::string& url, const std::string& log, double rate, double seconds) {
  Lag out;
  auto w = LogWriter::open(log);
  if (!w.ok()) return out;
  LogWriter* writer = w->get();
  std::vector<StreamId> ids;
  for (int s = 0; s < kStreams; ++s) ids.push_back(writer->stream("account-" + std::to_string(s)).value());
  connectors::JetStreamRelayOptions o;
  o.servers = {url};
  o.stream = "LIVE";
  o.subject_prefix = "live";
  o.max_in_flight = kInFlight;
  o.committed_hint = [writer] { return writer->committed_position(); };
  auto r = connectors::JetStreamRelay::open(log, o);
  if (!r.ok() || !(*r)->connect().ok()) return out;
  const uint64_t total = static_cast<uint64_t>(rate * seconds);
  std::atomic<bool> done{false};
  const auto p0 = Clock::now() + 1ms;
  auto due_at = [&](uint64_t i) { return p0 + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(i) * 1e9 / rate)); };
  std::thread producer([&] {
    for (uint64_t i = 0; i < total; ++i) {
      const auto due = due_at(i);
      while (Clock::now() < due) std::this_thread::sleep_until(due);
      const std::string p = payload_for(i);
      EventData e;
      e.type = 1;
      e.payload = std::as_bytes(std::span(p.data(), p.size()));
      if (!writer->append(ids[i % kStreams], ExpectedVersion::any(), e).ok()) break;
    }
    done.store(true, std::memory_order_release);  // pairs with the acquire below
  });
  const auto t0 = Clock::now();
  uint64_t seen = 0;  // events of this (fresh) log are at positions 0..total-1
  while (!done.load(std::memory_order_acquire) || (*r)->acknowledged_position() < writer->committed_position()) {
    (*r)->poll(1ms);
    const auto now = Clock::now();
    for (const uint64_t acked = std::min<uint64_t>((*r)->acknowledged_position(), total); seen < acked; ++seen)
      out.polled.record(std::chrono::duration_cast<std::chrono::nanoseconds>(now - due_at(seen)).count());
    if (seconds_since(t0) > seconds + 60) break;
  }
  producer.join();
  const auto st = (*r)->status();
  out.p50 = static_cast<double>(st.latency.p50);
  out.p99 = static_cast<double>(st.latency.p99);
  out.rate = static_cast<double>(total) / seconds_since(t0);
  (*r)->close().ignore();
  writer->close().ignore();
  return out;
}

}  // namespace

int run_relay_suite(const SuiteArgs& args) {
  if (connectors::testing::nats_server_binary().empty())
    bench_skip("relay: nats-server is not installed (apt-get install nats-server)");
  check_workload(args, "relay", kOptEvents | kOptRate);
  ScratchDir scratch(args.dir, "relay");
  std::printf("sluice bench relay — %s\n", machine_description(scratch.path()).c_str());
  Figures fig;
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  fig.add("load_average_1m", load[0], "", "uptime's 1-minute load average when the suite started");
  double rtt = 0;
  {
    const int a = args.cpus.size() > 0 ? args.cpus[0] : 0, b = args.cpus.size() > 1 ? args.cpus[1] : 1;
    std::thread t([&] { rtt = atomic_rtt_p50(a, b, 200'000); });  // pins that thread, not this one
    t.join();
  }
  fig.add("atomic_rtt_p50_ns", rtt, "ns", "bare std::atomic ping-pong (the machine's hand-off floor)");

  progress("relay", "nats-server, log");
  connectors::testing::NatsServer server(scratch.path() + "/nats");
  if (!server.start()) {
    std::fprintf(stderr, "sluice bench relay: nats-server did not start (see %s/nats/server.log)\n",
                 scratch.path().c_str());
    return 1;
  }
  const uint64_t events = events_or(args, std::max<uint64_t>(1000, static_cast<uint64_t>(200'000 * args.scale)));
  fig.config("events", std::to_string(events));
  fig.config("payload_bytes", std::to_string(kPayload));
  fig.config("max_in_flight", std::to_string(kInFlight));
  fig.config("server", "nats-server (single node, JetStream file store, loopback)");
  const std::string log = scratch.path() + "/log";
  if (!write_log(log, events)) {
    std::fprintf(stderr, "sluice bench relay: cannot write the log in %s\n", log.c_str());
    return 1;
  }
  // Interleaved, twice each: raw, relay, raw, relay; the better of each pair.
  double raw = -1, relay = -1;
  progress("relay", "relay vs raw nats.c");
  for (int round = 0; round < 2; ++round) {
    const std::string sfx = std::to_string(round);
    raw = std::max(raw, raw_publish(server.url(), "RAW" + sfx, events));
    std::filesystem::remove(log + "/checkpoints/relay.jetstream.ckpt");
    relay = std::max(relay, relay_catch_up(server.url(), log, "RELAY" + sfx, events));
  }
  if (raw <= 0 || relay <= 0) {
    std::fprintf(stderr, "sluice bench relay: a run failed (raw %.0f, relay %.0f events/s)\n", raw, relay);
    return 1;
  }
  fig.add("raw_nats_events_per_s", raw, "events/s", "nats.c js_PublishMsgAsync, same messages, same bound");
  fig.add("relay_events_per_s", relay, "events/s", "JetStreamRelay catching up from the log");
  fig.add("ratio_relay_vs_raw_nats", relay / raw, "", "target >= 0.8");

  const double rate = args.workload.rate != 0 ? args.workload.rate : 20'000 * std::min(1.0, args.scale * 5);
  progress("relay", "live lag");
  const Lag lag = relay_live(server.url(), scratch.path() + "/live", rate, 3.0);
  fig.config("live_rate_events_per_s", std::to_string(static_cast<int>(rate)));
  fig.add("relay_lag_p50_ns", lag.p50, "ns", "append -> acknowledged by JetStream, live at the configured rate");
  fig.add("relay_lag_p99_ns", lag.p99, "ns", "append -> acknowledged by JetStream, live");
  write_distribution(args.data_dir, "relay-lag_intended_append_to_acked_polled", lag.polled);
  fig.add("ratio_lag_p50_vs_atomic_rtt", rtt > 0 ? lag.p50 / rtt : 0, "", "for scale: a network round trip per batch");
  fig.print_table();
  if (!args.json_path.empty() && !fig.write_json(args.json_path, "relay")) return 1;
  return 0;
}

}  // namespace sluice::bench
