// The ingest against a real nats-server: a follower log fed from the relay's stream holds the
// leader's events (same streams, versions, types, payloads, batches), its bank-ledger read
// models' digests equal the leader's, duplicates are skipped across a crash of the ingest,
// and malformed, foreign and oversized messages are parked with a reason, never appended.
#include "sluice/connectors/jetstream_ingest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include "bank_model.h"
#include "sluice/connectors/testing/nats_server.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "sluice/connectors/jetstream_relay.h"
#include "sluice/connectors/message.h"
#include "sluice/projections/rebuild.h"

namespace sluice::connectors {
namespace {

using namespace std::chrono_literals;
using testing::NatsServer;

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_REQUIRE_NATS_SERVER();
    char tmpl[] = "/tmp/sluice_ingest_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    leader_ = dir_ + "/leader";
    follower_ = dir_ + "/follower";
    server_ = std::make_unique<NatsServer>(dir_ + "/nats");
    ASSERT_TRUE(server_->start());
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Bank events on the leader (some as atomic batches, one overdraft that a projection
  // parks), relayed to the stream.
  void write_leader_and_relay(int events) {
    auto w = LogWriter::open(leader_);
    ASSERT_TRUE(w.ok());
    std::mt19937_64 rng(42);
    for (int i = 0; i < events;) {
      const uint64_t account = rng() % 50;
      auto sid = (*w)->stream(bank::stream_name(account));
      ASSERT_TRUE(sid.ok());
      if (i % 10 == 0) {  // an atomic batch of three deposits
        bank::Deposited d[3];
        EventData e[3];
        for (int k = 0; k < 3; ++k) {
          d[k] = {account, 100 + k, 20000};
          e[k] = encode_raw(d[k]);
          e[k].correlation_id = Id128{7, static_cast<uint64_t>(i)};
        }
        ASSERT_TRUE((*w)->append(*sid, ExpectedVersion::any(), std::span<const EventData>(e, 3)).ok());
        i += 3;
      } else if (i % 3 == 0) {
        bank::Withdrawn wd{account, static_cast<int64_t>(rng() % 500), 20001};
        ASSERT_TRUE((*w)->append(*sid, ExpectedVersion::any(), encode_raw(wd)).ok());
        ++i;
      } else {
        bank::Deposited d{account, static_cast<int64_t>(rng() % 1000 + 1), 20000};
        ASSERT_TRUE((*w)->append(*sid, ExpectedVersion::any(), encode_raw(d)).ok());
        ++i;
      }
    }
    leader_end_ = (*w)->committed_position();
    ASSERT_TRUE((*w)->close().ok());
    JetStreamRelayOptions o;
    o.servers = {server_->url()};
    auto r = JetStreamRelay::open(leader_, o);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE((*r)->wait_acknowledged(leader_end_, 30s).ok()) << (*r)->status().last_error;
    ASSERT_TRUE((*r)->close().ok());
  }

  JetStreamIngestOptions options() const {
    JetStreamIngestOptions o;
    o.servers = {server_->url()};
    o.fetch_batch = 128;
    return o;
  }

  uint64_t digest(const std::string& log, std::string_view projection) {
    auto r = rebuild_projection(log, projection, bank::factory_for(projection), ProjectionOptions{});
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r->digest : 0;
  }

  void expect_same_events() {
    auto a = LogReader::open(leader_);
    auto b = LogReader::open(follower_);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ((*b)->end_position(), (*a)->end_position()) << "each event once in the follower";
    auto source = load_or_create_source_id(leader_);
    ASSERT_TRUE(source.ok());
    for (uint64_t p = 0; p < (*a)->end_position(); ++p) {
      RecordView x, y;
      ASSERT_TRUE((*a)->read(p, &x) && (*b)->read(p, &y));
      ASSERT_EQ((*a)->stream_name(x.stream_id()), (*b)->stream_name(y.stream_id()));
      ASSERT_EQ(x.stream_version(), y.stream_version());
      ASSERT_EQ(x.event_type(), y.event_type());
      ASSERT_EQ(x.header->flags & log_format::kFlagBatchContinues, y.header->flags & log_format::kFlagBatchContinues)
          << "atomic batches stay batches";
      ASSERT_TRUE(std::equal(x.payload().begin(), x.payload().end(), y.payload().begin(), y.payload().end()));
      ASSERT_EQ(y.idempotency_key(), idempotency_key_for(*source, p));
      ASSERT_EQ(x.correlation_id(), y.correlation_id());
    }
  }

  std::string dir_, leader_, follower_;
  uint64_t leader_end_ = 0;
  std::unique_ptr<NatsServer> server_;
};

TEST_F(IngestTest, FollowerHoldsTheLeadersEventsAndItsReadModelDigestsEqualTheLeaders) {
  write_leader_and_relay(3000);
  auto in = JetStreamIngest::open(follower_, options());
  ASSERT_TRUE(in.ok()) << in.status().to_string();
  ASSERT_TRUE((*in)->catch_up(30s).ok()) << (*in)->status().last_error;
  EXPECT_EQ((*in)->status().appended, leader_end_);
  EXPECT_EQ((*in)->status().parked, 0u);
  ASSERT_TRUE((*in)->close().ok());
  expect_same_events();
  for (std::string_view p : bank::kProjectionNames) EXPECT_EQ(digest(follower_, p), digest(leader_, p)) << p;
}

TEST_F(IngestTest, SkipsDuplicatesAfterACrashBeforeItsCheckpoint) {
  write_leader_and_relay(2000);
  {
    auto o = options();
    o.checkpoint_interval = 1h;  // the first checkpoint would come only at close
    auto in = JetStreamIngest::open(follower_, o);
    ASSERT_TRUE(in.ok());
    for (int i = 0; i < 4; ++i) (*in)->poll(200ms);
    ASSERT_GT((*in)->status().appended, 0u);
    ASSERT_TRUE((*in)->close().ok());
  }
  // As if it had crashed before its checkpoint: the stream is read again from the start.
  std::filesystem::remove(checkpoint_path(follower_, "ingest.jetstream"));
  auto in = JetStreamIngest::open(follower_, options());
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE((*in)->catch_up(30s).ok()) << (*in)->status().last_error;
  EXPECT_GT((*in)->status().duplicates, 0u);
  ASSERT_TRUE((*in)->close().ok());
  expect_same_events();
}

TEST_F(IngestTest, ParksMalformedForeignOversizedAndGappedMessagesWithAReason) {
  write_leader_and_relay(30);
  auto source = load_or_create_source_id(leader_);
  ASSERT_TRUE(source.ok());
  auto msg = [](const std::string& id, const std::string& event, size_t payload_size) {
    natsMsg* m = nullptr;
    const std::string payload(payload_size, 'x');
    natsMsg_Create(&m, "sluice.account-1.1", nullptr, payload.data(), static_cast<int>(payload.size()));
    if (!id.empty()) natsMsgHeader_Set(m, kHeaderMsgId, id.c_str());
    natsMsgHeader_Set(m, kHeaderStream, "account-1");
    if (!event.empty()) natsMsgHeader_Set(m, kHeaderEvent, event.c_str());
    return m;
  };
  const std::string good_event = "1 1 1 0 1700000000000000000 0";
  natsMsg* bad[] = {
      msg("", good_event, 24),                                        // no message id
      msg("not an id", good_event, 24),                               // malformed id
      msg(*source + ":1000", "", 24),                                 // no Sluice-Event
      msg(*source + ":1001", "1 1 1 0", 24),                          // malformed Sluice-Event
      msg("0123456789abcdef:1002", good_event, 24),                   // foreign source
      msg(*source + ":1003", good_event, 100'000),                   // oversized (limit 64 KiB)
      msg(*source + ":5000", "900 1 1 0 1700000000000000000 0", 24), // a version gap
  };
  for (natsMsg* m : bad) {
    ASSERT_EQ(testing::publish(server_->url(), m), "");
    natsMsg_Destroy(m);
  }
  auto o = options();
  o.max_payload = 64 * 1024;
  auto in = JetStreamIngest::open(follower_, o);
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE((*in)->catch_up(30s).ok()) << (*in)->status().last_error;
  const IngestStatus st = (*in)->status();
  EXPECT_EQ(st.appended, leader_end_) << "only the relay's events are appended";
  EXPECT_EQ(st.parked, 7u);
  ASSERT_TRUE((*in)->close().ok());
  std::ifstream f((*in)->parked_path());
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 7u);
  const char* reasons[] = {"malformed: no Nats-Msg-Id", "malformed: Nats-Msg-Id", "malformed: Sluice-Event",
                           "malformed: Sluice-Event", "foreign: source", "oversized", "gap: local stream account-1"};
  for (size_t i = 0; i < 7; ++i) EXPECT_NE(lines[i].find(reasons[i]), std::string::npos) << lines[i];
  expect_same_events();
}

TEST_F(IngestTest, ReportsAMissingStreamNamingIt) {
  auto o = options();
  o.stream = "NOPE";
  auto in = JetStreamIngest::open(follower_, o);
  ASSERT_TRUE(in.ok());
  Status st = (*in)->connect();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::not_found);
  EXPECT_NE(st.message().find("NOPE"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace sluice::connectors
