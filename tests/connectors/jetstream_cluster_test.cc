// The relay against a 3-node JetStream cluster on loopback (stream replicas = 3): killing
// the stream's leader with SIGKILL mid-relay loses nothing and duplicates nothing — the
// relay times out, reconnects to another node, reads the stream's last id and resumes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "sluice/connectors/testing/nats_server.h"
#include "sluice/bus/log_writer.h"
#include "sluice/connectors/jetstream_relay.h"
#include "sluice/connectors/message.h"

namespace sluice::connectors {
namespace {

using namespace std::chrono_literals;

TEST(JetStreamCluster, KillingTheStreamLeaderMidRelayLosesAndDuplicatesNothing) {
  SLUICE_REQUIRE_NATS_SERVER();
  char tmpl[] = "/tmp/sluice_cluster_test_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, log_dir = dir + "/log";
  testing::NatsCluster cluster(dir);
  ASSERT_TRUE(cluster.start()) << "see " << dir << "/n*/server.log";
  auto w = LogWriter::open(log_dir);
  ASSERT_TRUE(w.ok());
  auto append = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto sid = (*w)->stream("order-" + std::to_string(i % 8));
      ASSERT_TRUE(sid.ok());
      const std::string payload = "event " + std::to_string((*w)->next_position());
      EventData e;
      e.type = 1;
      e.payload = std::as_bytes(std::span(payload.data(), payload.size()));
      ASSERT_TRUE((*w)->append(*sid, ExpectedVersion::any(), e).ok());
    }
  };
  JetStreamRelayOptions o;
  o.servers = cluster.url_list();
  o.replicas = 3;
  o.max_in_flight = 256;
  o.ack_timeout = 2000ms;
  o.api_timeout = 2000ms;
  o.backoff_initial = 50ms;
  o.backoff_max = 500ms;
  auto r = JetStreamRelay::open(log_dir, o);
  ASSERT_TRUE(r.ok());
  auto& relay = **r;
  append(2000);
  // The cluster elects its metadata leader first: the relay retries until the stream exists.
  ASSERT_TRUE(relay.wait_acknowledged(1000, 60s).ok()) << relay.status().last_error;
  const std::string leader = testing::stream_leader(cluster.urls(), "SLUICE");
  ASSERT_FALSE(leader.empty());
  append(2000);
  for (int i = 0; i < 3; ++i) relay.poll(5ms);  // publishes in flight when the leader dies
  const int victim = leader[1] - '0';
  cluster.node(victim).stop(SIGKILL);
  append(1000);
  ASSERT_TRUE(relay.wait_acknowledged((*w)->committed_position(), 90s).ok()) << relay.status().last_error;
  ASSERT_TRUE(relay.close().ok());

  std::string survivors;
  for (int i = 0; i < 3; ++i)
    if (i != victim) survivors += (survivors.empty() ? "" : ",") + cluster.node(i).url();
  std::string error;
  auto msgs = testing::read_stream(survivors, "SLUICE", &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(msgs.size(), (*w)->committed_position()) << "every event exactly once";
  for (uint64_t i = 0; i < msgs.size(); ++i) {
    ASSERT_EQ(msgs[i].msg_id, message_id(relay.source_id(), i)) << "in log order";
    ASSERT_EQ(msgs[i].payload, "event " + std::to_string(i));
  }
  ASSERT_TRUE((*w)->close().ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::connectors
