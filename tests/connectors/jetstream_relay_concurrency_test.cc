// The relay on its own thread (run()) while the writer appends on another and a third reads
// its status: the acknowledgement handler (a nats.c thread), the relay thread and the
// readers share the window and the counters. Runs under TSan in CI (label concurrency).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "sluice/bus/log_writer.h"
#include "sluice/connectors/jetstream_relay.h"
#include "sluice/connectors/message.h"
#include "sluice/connectors/testing/nats_server.h"

namespace sluice::connectors {
namespace {

using namespace std::chrono_literals;

TEST(JetStreamRelayConcurrency, RunsOnItsOwnThreadWhileTheWriterAppendsAndOthersReadItsStatus) {
  SLUICE_REQUIRE_NATS_SERVER();
  char tmpl[] = "/tmp/sluice_relay_conc_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, log_dir = dir + "/log";
  testing::NatsServer server(dir + "/nats");
  ASSERT_TRUE(server.start());
  auto w = LogWriter::open(log_dir);
  ASSERT_TRUE(w.ok());
  LogWriter* writer = w->get();
  JetStreamRelayOptions o;
  o.servers = {server.url()};
  o.max_in_flight = 64;  // a small window: it fills and drains many times
  o.committed_hint = [writer] { return writer->committed_position(); };
  auto r = JetStreamRelay::open(log_dir, o);
  ASSERT_TRUE(r.ok());
  JetStreamRelay* relay = r->get();
  std::atomic<bool> stop{false};
  std::thread relay_thread([&] { relay->run(stop); });
  std::atomic<bool> reading{true};
  std::thread reader([&] {
    uint64_t last = 0;
    // Acquire: pairs with the release store below.
    while (reading.load(std::memory_order_acquire)) {
      const uint64_t now = relay->acknowledged_position();
      EXPECT_GE(now, last) << "acknowledged position went back with the server up";
      last = now;
      (void)relay->status();
      std::this_thread::sleep_for(100us);
    }
  });
  constexpr int kEvents = 3000;
  for (int i = 0; i < kEvents; ++i) {
    auto sid = writer->stream("s-" + std::to_string(i % 7));
    ASSERT_TRUE(sid.ok());
    const std::string p = std::to_string(i);
    EventData e;
    e.type = 3;
    e.payload = std::as_bytes(std::span(p.data(), p.size()));
    ASSERT_TRUE(writer->append(*sid, ExpectedVersion::any(), e).ok());
    if (i % 500 == 0) std::this_thread::sleep_for(1ms);
  }
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (relay->acknowledged_position() < kEvents && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  stop.store(true, std::memory_order_release);  // pairs with the acquire in run()
  relay_thread.join();
  reading.store(false, std::memory_order_release);
  reader.join();
  EXPECT_EQ(relay->acknowledged_position(), uint64_t{kEvents}) << relay->status().last_error;
  ASSERT_TRUE(relay->close().ok());
  std::string error;
  auto msgs = testing::read_stream(server.url(), "SLUICE", &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(msgs.size(), size_t{kEvents});
  for (size_t i = 0; i < msgs.size(); ++i) ASSERT_EQ(msgs[i].payload, std::to_string(i));
  ASSERT_TRUE(writer->close().ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::connectors
