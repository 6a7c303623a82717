// The JetStream relay against a real nats-server: every event of the log appears in the
// stream exactly once and in order — after kill -9 of the relay at random moments, a
// server restart (orderly and kill -9), and an outage longer than the duplicate window —
// and the relay refuses a stream whose subjects conflict with its own.
#include "sluice/connectors/jetstream_relay.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "sluice/connectors/testing/nats_server.h"
#include "sluice/bus/log_writer.h"
#include "sluice/connectors/message.h"

namespace sluice::connectors {
namespace {

using namespace std::chrono_literals;
using testing::NatsServer;

int rounds_from_env(int fallback) {
  const char* v = std::getenv("SLUICE_CONNECTOR_ROUNDS");
  return v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : fallback;
}

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_REQUIRE_NATS_SERVER();
    char tmpl[] = "/tmp/sluice_relay_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    log_dir_ = dir_ + "/log";
    server_ = std::make_unique<NatsServer>(dir_ + "/nats");
    ASSERT_TRUE(server_->start()) << "nats-server did not start; see " << dir_ << "/nats/server.log";
    LogOptions lo;
    lo.segment_size = 1 << 20;  // several segments: the relay follows the writer across rolls
    auto w = LogWriter::open(log_dir_, lo);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    writer_ = std::move(*w);
  }
  void TearDown() override {
    if (writer_) writer_->close().ignore();
    server_.reset();
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Appends n events over 16 streams; the payload names stream and version.
  void append(int n) {
    for (int i = 0; i < n; ++i) {
      const int s = static_cast<int>(rng_() % 16);
      auto id = writer_->stream("account-" + std::to_string(s));
      ASSERT_TRUE(id.ok());
      const std::string payload = "s" + std::to_string(s) + "v" + std::to_string(writer_->stream_version(*id) + 1);
      EventData e;
      e.type = 1 + static_cast<uint32_t>(s % 3);
      e.payload = std::as_bytes(std::span(payload.data(), payload.size()));
      ASSERT_TRUE(writer_->append(*id, ExpectedVersion::any(), e).ok());
    }
  }

  JetStreamRelayOptions options() const {
    JetStreamRelayOptions o;
    o.servers = {server_->url()};
    o.max_in_flight = 256;
    o.backoff_initial = 20ms;
    o.backoff_max = 200ms;
    o.ack_timeout = 2000ms;
    return o;
  }

  // The stream holds exactly the log's events [0, end), in log order, each once.
  void expect_exactly_once_in_order(const std::string& urls, const std::string& stream = "SLUICE") {
    std::string error;
    auto msgs = testing::read_stream(urls, stream, &error);
    ASSERT_TRUE(error.empty()) << error;
    const uint64_t end = writer_->committed_position();
    ASSERT_EQ(msgs.size(), end) << "the stream must hold every event exactly once";
    auto source = load_or_create_source_id(log_dir_);
    ASSERT_TRUE(source.ok());
    std::map<std::string, uint64_t> versions;
    for (uint64_t i = 0; i < msgs.size(); ++i) {
      const auto& m = msgs[i];
      ASSERT_EQ(m.msg_id, message_id(*source, i)) << "message " << m.seq << " is out of log order";
      EventMeta meta;
      ASSERT_TRUE(parse_event_meta(m.event, &meta)) << m.event;
      ASSERT_EQ(meta.stream_version, ++versions[m.stream]) << "per-stream order broken in " << m.stream;
      const std::string want = "s" + m.stream.substr(8) + "v" + std::to_string(meta.stream_version);
      ASSERT_EQ(m.payload, want);
      ASSERT_EQ(m.subject, default_subject("sluice", m.stream, meta.type));
    }
  }

  std::string dir_, log_dir_;
  std::unique_ptr<NatsServer> server_;
  std::unique_ptr<LogWriter> writer_;
  std::mt19937_64 rng_{std::random_device{}()};
};

TEST_F(RelayTest, PublishesEveryEventOnceInOrderAndCheckpoints) {
  append(3000);
  auto r = JetStreamRelay::open(log_dir_, options());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto& relay = **r;
  ASSERT_TRUE(relay.connect().ok());
  ASSERT_TRUE(relay.wait_acknowledged(writer_->committed_position(), 30s).ok()) << relay.status().last_error;
  append(500);  // tailing: events appended after the relay caught up
  ASSERT_TRUE(relay.wait_acknowledged(writer_->committed_position(), 30s).ok()) << relay.status().last_error;
  const RelayStatus st = relay.status();
  EXPECT_EQ(st.acknowledged_position, writer_->committed_position());
  EXPECT_EQ(st.duplicates, 0u);
  EXPECT_EQ(st.lag_events, 0u);
  ASSERT_TRUE(relay.close().ok());
  expect_exactly_once_in_order(server_->url());

  // Reopened, the relay starts from its checkpoint and publishes nothing again.
  auto again = JetStreamRelay::open(log_dir_, options());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->acknowledged_position(), writer_->committed_position());
  ASSERT_TRUE((*again)->wait_acknowledged(writer_->committed_position(), 10s).ok());
  EXPECT_EQ((*again)->status().published, 0u);
}

TEST_F(RelayTest, ExactlyOnceInOrderAcrossKill9OfTheRelayAtRandomMoments) {
  const int rounds = rounds_from_env(12);
  std::uniform_int_distribution<int> pause_ms(1, 120);
  for (int round = 0; round < rounds; ++round) {
    append(400);
    const pid_t child = testing::spawn({RELAY_CHILD, log_dir_, server_->url(), "SLUICE", "sluice", "50", "120000"},
                                       dir_ + "/relay_child.log");
    ASSERT_GT(child, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng_)));
    testing::kill_and_wait(child, SIGKILL);
  }
  auto r = JetStreamRelay::open(log_dir_, options());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE((*r)->wait_acknowledged(writer_->committed_position(), 60s).ok()) << (*r)->status().last_error;
  ASSERT_TRUE((*r)->close().ok());
  expect_exactly_once_in_order(server_->url());
}

TEST_F(RelayTest, ResumesAfterTheStreamsLastIdWhenTheOutageOutlastsTheDuplicateWindow) {
  append(2000);
  // A relay that never checkpoints (kill -9 before its first), with a 300 ms duplicate window.
  const pid_t child = testing::spawn({RELAY_CHILD, log_dir_, server_->url(), "SLUICE", "sluice", "3600000", "300"},
                                     dir_ + "/relay_child.log");
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (testing::stream_message_count(server_->url(), "SLUICE") < 2000 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  testing::kill_and_wait(child, SIGKILL);
  ASSERT_EQ(testing::stream_message_count(server_->url(), "SLUICE"), 2000u) << "the child relay did not finish in time";
  std::this_thread::sleep_for(1s);  // longer than the duplicate window: dedupe cannot help now
  append(100);
  auto o = options();
  auto r = JetStreamRelay::open(log_dir_, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->acknowledged_position(), 0u) << "the child never wrote a checkpoint";
  // Connected, before publishing anything: the stream's last id moved the start to 2000.
  ASSERT_TRUE((*r)->connect().ok()) << (*r)->status().last_error;
  EXPECT_EQ((*r)->acknowledged_position(), 2000u);
  EXPECT_EQ((*r)->status().resumed_from_stream, 1u);
  EXPECT_EQ((*r)->status().published, 0u);
  ASSERT_TRUE((*r)->wait_acknowledged(writer_->committed_position(), 30s).ok()) << (*r)->status().last_error;
  ASSERT_TRUE((*r)->close().ok());
  expect_exactly_once_in_order(server_->url());
}

// Restarts the server under a running relay (orderly, then kill -9) while events keep coming.
void restart_under_relay(RelayTest* t, NatsServer& server, JetStreamRelay& relay, int sig,
                         const std::function<void(int)>& append) {
  append(1500);
  for (int i = 0; i < 5; ++i) relay.poll(5ms);
  server.stop(sig);
  append(500);
  // The relay notices (however long the machine takes), then retries with backoff.
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (relay.status().connected && std::chrono::steady_clock::now() < until) relay.poll(10ms);
  EXPECT_FALSE(relay.status().connected);
  for (int i = 0; i < 10; ++i) relay.poll(10ms);
  ASSERT_TRUE(server.start());
  append(500);
  (void)t;
}

TEST_F(RelayTest, ReconnectsAcrossAnOrderlyServerRestart) {
  auto r = JetStreamRelay::open(log_dir_, options());
  ASSERT_TRUE(r.ok());
  restart_under_relay(this, *server_, **r, SIGTERM, [this](int n) { append(n); });
  ASSERT_TRUE((*r)->wait_acknowledged(writer_->committed_position(), 60s).ok()) << (*r)->status().last_error;
  EXPECT_GE((*r)->status().reconnects, 1u);
  ASSERT_TRUE((*r)->close().ok());
  expect_exactly_once_in_order(server_->url());
}

TEST_F(RelayTest, ReconnectsAcrossAServerKill9) {
  auto r = JetStreamRelay::open(log_dir_, options());
  ASSERT_TRUE(r.ok());
  restart_under_relay(this, *server_, **r, SIGKILL, [this](int n) { append(n); });
  ASSERT_TRUE((*r)->wait_acknowledged(writer_->committed_position(), 60s).ok()) << (*r)->status().last_error;
  ASSERT_TRUE((*r)->close().ok());
  expect_exactly_once_in_order(server_->url());
}

TEST_F(RelayTest, RefusesAStreamWhoseSubjectsOverlapAnotherStreams) {
  ASSERT_EQ(testing::add_stream(server_->url(), "OTHER", "sluice.>"), "");
  append(10);
  auto r = JetStreamRelay::open(log_dir_, options());
  ASSERT_TRUE(r.ok());
  Status st = (*r)->connect();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::invalid_argument);
  EXPECT_NE(st.message().find("overlaps"), std::string::npos) << st.message();
  EXPECT_TRUE((*r)->failed());
}

TEST_F(RelayTest, RefusesAnExistingStreamWithOtherSubjects) {
  ASSERT_EQ(testing::add_stream(server_->url(), "SLUICE", "orders.>"), "");
  auto r = JetStreamRelay::open(log_dir_, options());
  ASSERT_TRUE(r.ok());
  Status st = (*r)->connect();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("do not cover the relay's sluice.>"), std::string::npos) << st.message();
}

TEST_F(RelayTest, ReportsAnUnreachableServerNamingIt) {
  auto o = options();
  const int port = testing::free_loopback_port();
  o.servers = {"nats://127.0.0.1:" + std::to_string(port)};
  o.connect_timeout = 500ms;
  auto r = JetStreamRelay::open(log_dir_, o);
  ASSERT_TRUE(r.ok());
  Status st = (*r)->connect();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("127.0.0.1:" + std::to_string(port)), std::string::npos) << st.message();
  EXPECT_FALSE((*r)->failed()) << "unreachable is transient: poll() keeps retrying";
}

}  // namespace
}  // namespace sluice::connectors

#include "sluice/stats/counters_file.h"
#include "sluice/stats/metrics_server.h"

namespace sluice::connectors {
namespace {

TEST_F(RelayTest, PublishesLagInFlightAndLatencyInARelaySlotOfTheStatsFile) {
  auto file = counters::CountersFile::create(counters::relay_stats_path(log_dir_, "jetstream"), {log_dir_, 0, 1});
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  auto slot = (*file)->allocate(counters::SlotKind::relay, "jetstream");
  ASSERT_TRUE(slot.ok());
  append(1000);
  auto o = options();
  o.stats_slot = *slot;
  auto r = JetStreamRelay::open(log_dir_, o);
  ASSERT_TRUE(r.ok());
  {
    counters::EngineStat before;
    counters::add_relay_files(log_dir_, &before);
    ASSERT_EQ(before.relays.size(), 1u);
    EXPECT_EQ(before.relays[0].lag_events, 1000u) << "nothing acknowledged yet: the whole log is lag";
  }
  ASSERT_TRUE((*r)->wait_acknowledged(1000, 30s).ok());
  (*r)->poll(1ms);
  counters::EngineStat e;
  counters::add_relay_files(log_dir_, &e);
  ASSERT_EQ(e.relays.size(), 1u);
  const counters::RelayStat& st = e.relays[0];
  EXPECT_EQ(st.name, "jetstream");
  EXPECT_EQ(st.acknowledged_position, 1000u);
  EXPECT_EQ(st.head_position, 1000u);
  EXPECT_EQ(st.lag_events, 0u);
  EXPECT_EQ(st.in_flight, 0u);
  EXPECT_TRUE(st.connected);
  EXPECT_EQ(st.latency.count, 1000u) << "one append -> acknowledged latency per event";
  const std::string page = prometheus_text(e, 0);
  for (const char* line : {"sluice_relay_lag_events{relay=\"jetstream\"} 0", "sluice_relay_in_flight{relay=\"jetstream\"} 0",
                           "sluice_relay_acknowledged_position{relay=\"jetstream\"} 1000",
                           "sluice_relay_latency_seconds_count{relay=\"jetstream\"} 1000"})
    EXPECT_NE(page.find(line), std::string::npos) << line << "\n" << page;
  ASSERT_TRUE((*r)->close().ok());
  counters::EngineStat after;
  counters::add_relay_files(log_dir_, &after);
  EXPECT_EQ(after.relays[0].state, counters::SlotState::stopped);
  EXPECT_EQ(after.relays[0].checkpoint_position, 1000u);
}

}  // namespace
}  // namespace sluice::connectors
