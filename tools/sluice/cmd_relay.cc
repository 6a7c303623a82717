// sluice relay DIR --nats URL[,URL...] [--subject-prefix P] [--stream NAME] ...
// sluice relay DIR --kafka BROKERS --topic T [--transactional]
//   Publishes the log in DIR to NATS JetStream (connectors' JetStreamRelay) until
//   interrupted, or until caught up with --until-caught-up. Progress on stderr every second;
//   --json prints a JSON status line on stdout instead (every second, and a final one).
// sluice ingest DIR --nats URL --stream NAME [--name N] ...
//   Follows the JetStream stream into the log in DIR (created if missing).
//
// Exit codes: 0 done; 1 the server could not be reached, the relay or ingest failed;
// 2 usage (bad URL, missing directory, bad option).
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "sluice/bus/clock.h"
#include "sluice/connectors/jetstream_ingest.h"
#include "sluice/connectors/jetstream_relay.h"
#include "sluice/connectors/kafka_relay.h"
#include "sluice/connectors/message.h"
#include "sluice/stats/counters_file.h"

namespace sluice::tools {
namespace {

volatile sig_atomic_t g_interrupted = 0;
void on_signal(int) { g_interrupted = 1; }
void install_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

nlohmann::json to_json(const connectors::RelayStatus& s) {
  return {{"connected", s.connected},
          {"failed", s.failed},
          {"acknowledged_position", s.acknowledged_position},
          {"head_position", s.head_position},
          {"in_flight", s.in_flight},
          {"lag_events", s.lag_events},
          {"lag_bytes", s.lag_bytes},
          {"lag_ns", s.lag_ns},
          {"published", s.published},
          {"acknowledged", s.acknowledged},
          {"duplicates", s.duplicates},
          {"failures", s.failures},
          {"reconnects", s.reconnects},
          {"checkpoints", s.checkpoints},
          {"last_error", s.last_error}};
}

nlohmann::json to_json(const connectors::IngestStatus& s) {
  return {{"connected", s.connected},
          {"next_sequence", s.next_sequence},
          {"stream_last_sequence", s.stream_last_sequence},
          {"next_source_position", s.next_source_position},
          {"appended", s.appended},
          {"duplicates", s.duplicates},
          {"parked", s.parked},
          {"reconnects", s.reconnects},
          {"source_id", s.source_id},
          {"last_error", s.last_error},
          {"last_parked_reason", s.last_parked_reason}};
}

struct RelayArgs {
  std::string dir, nats, stream = "SLUICE", prefix = "sluice", name;
  std::string kafka, topic;
  bool transactional = false;
  uint32_t max_in_flight = 1024;
  int replicas = 1;
  bool json = false, until_caught_up = false;
};

int run_kafka_relay(const RelayArgs& a) {
  if (a.topic.empty()) {
    error_line("relay", "--kafka needs --topic");
    return kExitUsage;
  }
  connectors::KafkaRelayOptions o;
  o.brokers = a.kafka;
  o.topic = a.topic;
  o.name = a.name.empty() ? "kafka" : a.name;
  o.transactional = a.transactional;
  auto r = connectors::KafkaRelay::open(a.dir, o);
  if (!r.ok()) {
    error_line("relay", r.status().message());
    return r.status().code() == StatusCode::invalid_argument ? kExitUsage : kExitFailed;
  }
  auto& relay = **r;
  install_signals();
  auto last = std::chrono::steady_clock::now();
  auto report = [&] {
    const auto s = relay.status();
    if (a.json) {
      nlohmann::json j = {{"acknowledged_position", s.acknowledged_position}, {"head_position", s.head_position},
                          {"in_flight", s.in_flight}, {"published", s.published}, {"acknowledged", s.acknowledged},
                          {"skipped_already_in_topic", s.skipped_already_in_topic},
                          {"producers_created", s.producers_created},
                          {"transactions_committed", s.transactions_committed}, {"last_error", s.last_error}};
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
    } else {
      std::fprintf(stderr, "relay %s: acknowledged %llu/%llu, in flight %llu%s%s\n", o.name.c_str(),
                   static_cast<unsigned long long>(s.acknowledged_position),
                   static_cast<unsigned long long>(s.head_position), static_cast<unsigned long long>(s.in_flight),
                   s.last_error.empty() ? "" : ": ", s.last_error.c_str());
    }
  };
  while (!g_interrupted) {
    relay.poll(std::chrono::milliseconds(10));
    const auto s = relay.status();
    if (a.until_caught_up && s.in_flight == 0 && s.acknowledged_position >= s.head_position) break;
    if (std::chrono::steady_clock::now() - last >= std::chrono::seconds(1)) {
      report();
      last = std::chrono::steady_clock::now();
    }
  }
  Status st = relay.close();
  report();
  if (!st.ok()) {
    error_line("relay", describe(st));
    return kExitFailed;
  }
  return kExitOk;
}

int run_relay(const RelayArgs& a) {
  int code = kExitOk;
  if (!check_log_dir("relay", a.dir, &code)) return code;
  if (!a.kafka.empty() && !a.nats.empty()) {
    error_line("relay", "give --nats or --kafka, not both");
    return kExitUsage;
  }
  if (!a.kafka.empty()) return run_kafka_relay(a);
  if (a.nats.empty()) {
    error_line("relay", "give --nats URL[,URL...] or --kafka BROKERS --topic T");
    return kExitUsage;
  }
  auto servers = connectors::parse_nats_urls(a.nats);
  if (!servers.ok()) {
    error_line("relay", servers.status().message());
    return kExitUsage;
  }
  connectors::JetStreamRelayOptions o;
  o.servers = *servers;
  o.stream = a.stream;
  o.subject_prefix = a.prefix;
  o.name = a.name.empty() ? "jetstream" : a.name;
  o.max_in_flight = a.max_in_flight;
  o.replicas = a.replicas;
  // Its own stats file beside the engine's: `sluice stat DIR` shows it (stats/).
  std::unique_ptr<counters::CountersFile> stats;
  if (auto f = counters::CountersFile::create(counters::relay_stats_path(a.dir, o.name), {a.dir, 0, 1}); f.ok()) {
    if (auto slot = (*f)->allocate(counters::SlotKind::relay, o.name); slot.ok()) o.stats_slot = *slot;
    stats = std::move(*f);
  } else {
    error_line("relay", "no stats file (continuing without): " + f.status().message());
  }
  auto r = connectors::JetStreamRelay::open(a.dir, o);
  if (!r.ok()) {
    error_line("relay", describe(r.status()));
    return r.status().code() == StatusCode::invalid_argument || r.status().code() == StatusCode::not_found ? kExitUsage
                                                                                                            : kExitFailed;
  }
  auto& relay = **r;
  if (Status st = relay.connect(); !st.ok()) {
    error_line("relay", st.message());
    return kExitFailed;
  }
  install_signals();
  auto last = std::chrono::steady_clock::now();
  uint64_t last_acked = relay.acknowledged_position();
  auto report = [&](bool final) {
    const auto s = relay.status();
    if (a.json) {
      std::printf("%s\n", to_json(s).dump().c_str());
      std::fflush(stdout);
      return;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - last).count();
    std::fprintf(stderr, "relay %s: acknowledged %llu/%llu, in flight %llu, lag %llu events %.1f ms, %.0f events/s%s%s%s\n",
                 o.name.c_str(), static_cast<unsigned long long>(s.acknowledged_position),
                 static_cast<unsigned long long>(s.head_position), static_cast<unsigned long long>(s.in_flight),
                 static_cast<unsigned long long>(s.lag_events), s.lag_ns / 1e6,
                 secs > 0 ? (s.acknowledged_position - last_acked) / secs : 0.0, s.connected ? "" : ", disconnected",
                 s.last_error.empty() ? "" : ": ", s.last_error.c_str());
    last_acked = s.acknowledged_position;
    (void)final;
  };
  while (!g_interrupted && !relay.failed()) {
    relay.poll(std::chrono::milliseconds(10));
    if (a.until_caught_up) {
      const auto s = relay.status();
      if (s.connected && s.in_flight == 0 && s.acknowledged_position >= s.head_position) break;
    }
    if (std::chrono::steady_clock::now() - last >= std::chrono::seconds(1)) {
      report(false);
      last = std::chrono::steady_clock::now();
      if (stats) counters::put(stats->header().heartbeat_ns, static_cast<uint64_t>(realtime_ns()));
    }
  }
  const bool failed = relay.failed();
  Status st = relay.close();
  report(true);
  if (failed) {
    error_line("relay", relay.status().last_error);
    return kExitFailed;
  }
  if (!st.ok()) {
    error_line("relay", describe(st));
    return kExitFailed;
  }
  return kExitOk;
}

struct IngestArgs {
  std::string dir, nats, stream, name = "jetstream";
  bool json = false, until_caught_up = false;
};

int run_ingest(const IngestArgs& a) {
  auto servers = connectors::parse_nats_urls(a.nats);
  if (!servers.ok()) {
    error_line("ingest", servers.status().message());
    return kExitUsage;
  }
  connectors::JetStreamIngestOptions o;
  o.servers = *servers;
  o.stream = a.stream;
  o.name = a.name;
  auto in = connectors::JetStreamIngest::open(a.dir, o);
  if (!in.ok()) {
    error_line("ingest", describe(in.status()));
    return in.status().code() == StatusCode::invalid_argument ? kExitUsage : kExitFailed;
  }
  auto& ingest = **in;
  if (Status st = ingest.connect(); !st.ok()) {
    error_line("ingest", st.message());
    return kExitFailed;
  }
  install_signals();
  auto report = [&] {
    const auto s = ingest.status();
    if (a.json) {
      std::printf("%s\n", to_json(s).dump().c_str());
      std::fflush(stdout);
    } else {
      std::fprintf(stderr, "ingest %s: sequence %llu/%llu, %llu appended, %llu duplicates, %llu parked%s%s\n",
                   a.name.c_str(), static_cast<unsigned long long>(s.next_sequence - 1),
                   static_cast<unsigned long long>(s.stream_last_sequence), static_cast<unsigned long long>(s.appended),
                   static_cast<unsigned long long>(s.duplicates), static_cast<unsigned long long>(s.parked),
                   s.last_error.empty() ? "" : ": ", s.last_error.c_str());
    }
  };
  Status result;
  if (a.until_caught_up) {
    result = ingest.catch_up(std::chrono::hours(24));
  } else {
    auto last = std::chrono::steady_clock::now();
    while (!g_interrupted) {
      ingest.poll(std::chrono::milliseconds(200));
      if (std::chrono::steady_clock::now() - last >= std::chrono::seconds(1)) {
        report();
        last = std::chrono::steady_clock::now();
      }
    }
  }
  Status st = ingest.close();
  report();
  if (!result.ok() || !st.ok()) {
    error_line("ingest", describe((!result.ok() ? result : st)));
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

void add_relay(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<RelayArgs>();
  CLI::App* c = app.add_subcommand("relay", "publish the log to NATS JetStream (the log as outbox)");
  c->add_option("dir", a->dir, "log directory")->required();
  c->add_option("--nats", a->nats, "NATS server URLs, comma-separated (nats://host:port)");
  c->add_option("--kafka", a->kafka, "Kafka bootstrap brokers (host:port,...): relay to Kafka instead");
  c->add_option("--topic", a->topic, "Kafka topic (with --kafka)");
  c->add_flag("--transactional", a->transactional, "Kafka: transactions with a stable transactional.id");
  c->add_option("--stream", a->stream, "JetStream stream name (created if missing; default SLUICE)");
  c->add_option("--subject-prefix", a->prefix, "subjects are <prefix>.<stream>.<type> (default sluice)");
  c->add_option("--name", a->name, "relay name: its checkpoint is checkpoints/relay.<name>.ckpt (jetstream, kafka)");
  c->add_option("--max-in-flight", a->max_in_flight, "unacknowledged publishes (default 1024)")
      ->check(CLI::Range(1, 65536));
  c->add_option("--replicas", a->replicas, "replicas of the stream when the relay creates it")->check(CLI::Range(1, 5));
  c->add_flag("--json", a->json, "JSON status lines on stdout instead of progress on stderr");
  c->add_flag("--until-caught-up", a->until_caught_up, "stop once everything in the log is acknowledged");
  c->callback([a, exit_code] { *exit_code = run_relay(*a); });
}

void add_ingest(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<IngestArgs>();
  CLI::App* c = app.add_subcommand("ingest", "follow a JetStream stream into a local log");
  c->add_option("dir", a->dir, "log directory (created if missing)")->required();
  c->add_option("--nats", a->nats, "NATS server URLs, comma-separated (nats://host:port)")->required();
  c->add_option("--stream", a->stream, "JetStream stream name")->required();
  c->add_option("--name", a->name, "ingest name: its checkpoint is checkpoints/ingest.<name>.ckpt");
  c->add_flag("--json", a->json, "JSON status lines on stdout instead of progress on stderr");
  c->add_flag("--until-caught-up", a->until_caught_up, "stop once everything the stream holds is taken");
  c->callback([a, exit_code] { *exit_code = run_ingest(*a); });
}

}  // namespace sluice::tools
