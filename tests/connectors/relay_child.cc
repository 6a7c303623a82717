// A relay in its own process, for tests that kill it with SIGKILL at random moments:
//   relay_child LOG_DIR URLS STREAM PREFIX CHECKPOINT_MS DUP_WINDOW_MS
// Runs until killed (or until the relay fails, exit 3).
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "sluice/connectors/jetstream_relay.h"
#include "sluice/connectors/message.h"

int main(int argc, char** argv) {
  using namespace sluice::connectors;
  if (argc != 7) {
    std::fprintf(stderr, "usage: relay_child LOG_DIR URLS STREAM PREFIX CHECKPOINT_MS DUP_WINDOW_MS\n");
    return 2;
  }
  auto urls = parse_nats_urls(argv[2]);
  if (!urls.ok()) return 2;
  JetStreamRelayOptions o;
  o.servers = *urls;
  o.stream = argv[3];
  o.subject_prefix = argv[4];
  o.checkpoint_interval = std::chrono::milliseconds(std::atoll(argv[5]));
  o.duplicate_window = std::chrono::milliseconds(std::atoll(argv[6]));
  o.max_in_flight = 256;
  auto r = JetStreamRelay::open(argv[1], o);
  if (!r.ok()) {
    std::fprintf(stderr, "relay_child: %s\n", r.status().to_string().c_str());
    return 3;
  }
  std::atomic<bool> stop{false};
  (*r)->run(stop);
  std::fprintf(stderr, "relay_child: failed: %s\n", (*r)->status().last_error.c_str());
  return 3;
}
