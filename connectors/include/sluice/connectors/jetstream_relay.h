// JetStreamRelay: the log is the outbox. The relay tails a Sluice log (from its checkpoint,
// catching up from the files when behind) and publishes every event to NATS JetStream, once
// and in log order, with no dual write in the application.
//
//   LogReader ──read──▶ relay thread ──js_PublishMsgAsync (≤ max_in_flight)──▶ JetStream
//       ▲                    │  ▲                                                  │
//       │ refresh            │  └──── window: acked / pending per position ◀── ack callback
//       │                    ▼                                           (nats.c thread)
//   the writer         checkpoints/relay.<name>.ckpt  (everything below it acknowledged)
//
// Design
//   Each event becomes one message (subject, id and headers in message.h) whose Nats-Msg-Id
//   is "<source id>:<position>". Publishing is asynchronous with at most max_in_flight
//   messages unacknowledged. The acknowledged checkpoint is the position below which every
//   event is acknowledged by JetStream; it is written atomically (projections' checkpoint
//   file: temp file, fsync, rename) every checkpoint_interval and on close. An acknowledgement
//   flagged "duplicate" means the server already holds the message: success.
//
//   Order. Every message but the first after a (re)connection carries
//   Nats-Expected-Last-Msg-Id = the id of the event before it, so the server stores event p
//   only right after event p-1: if p fails (timeout, leader change) every later message in
//   flight is refused too, and the relay resends from p — the stream holds the log's order,
//   per stream and overall. The first message after a (re)connection carries
//   Nats-Expected-Last-Sequence = the stream's last sequence as just read.
//
//   Reconnection. On any failure (a refused publish, an acknowledgement timeout, a closed
//   connection) the relay drops the connection and everything in flight, waits (exponential
//   backoff from backoff_initial to backoff_max), reconnects (nats.c's own reconnect is off,
//   so nothing buffered is sent behind its back), reads the stream's last message and, when
//   its id is one of this log's, resumes right after it — whatever the checkpoint says and
//   however long the outage was (the server's duplicate window does not matter) — else from
//   its checkpoint.
//
// Thread safety
//   One thread drives a relay (open, poll/run, close); status() and acknowledged_position()
//   may be read from any thread. nats.c calls the acknowledgement handler on its own thread;
//   the in-flight window it shares with the relay thread is guarded by a mutex (the relay is
//   not on the append hot path: it reads the log like any consumer).
//
// Invariants
//   - Every event below acknowledged_position() is in the JetStream stream. It only grows,
//     except after a reconnection that finds the stream's last event of this log below it
//     (a server that lost acknowledged messages in a crash): the relay sends them again.
//   - At most max_in_flight events are published and not yet acknowledged.
//   - The stream never holds event p+1 without event p before it (for events of this source).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/bus/counters.h"
#include "sluice/status.h"

namespace sluice {
class LogReader;
namespace counters {
struct Slot;
}
}  // namespace sluice

namespace sluice::connectors {

namespace internal {
class NatsConnection;
}

struct JetStreamRelayOptions {
  std::vector<std::string> servers;           // nats://host:port (parse_nats_urls); required
  std::string stream = "SLUICE";              // JetStream stream name
  std::string subject_prefix = "sluice";      // subjects <prefix>.<stream>.<type>
  // Overrides the subject of each event; nullptr: default_subject(prefix, stream, type). The
  // result must fall under "<prefix>.>" (the stream's subject).
  std::function<std::string(std::string_view stream, uint32_t type)> subject;
  std::string name = "jetstream";             // checkpoint "relay.<name>" in <log>/checkpoints
  std::string source_id;                      // "": the log's own (load_or_create_source_id)
  uint32_t max_in_flight = 1024;              // unacknowledged publishes, 1..65536
  bool create_stream = true;                  // create the stream when missing
  int replicas = 1;                           // when creating it
  std::chrono::milliseconds duplicate_window{120'000};  // when creating it
  std::chrono::milliseconds ack_timeout{5'000};         // per publish
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds api_timeout{5'000};         // stream info / get message
  std::chrono::milliseconds checkpoint_interval{200};
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2'000};
  // Returns one past the last committed position (e.g. the in-process writer's
  // committed_position()), so an idle poll skips refreshing the reader; nullptr: refresh.
  std::function<uint64_t()> committed_hint;
  // A slot of kind relay in a stats file (stats/counters_file.h): the relay publishes its
  // RelayCounters there every poll and records append -> acknowledged latencies in the
  // slot's histogram. nullptr: none (status() still reports them).
  counters::Slot* stats_slot = nullptr;
};

struct RelayStatus {
  bool connected = false;
  bool failed = false;               // a configuration error stopped the relay (see last_error)
  uint64_t acknowledged_position = 0;  // every event below it is in the stream
  uint64_t published_position = 0;   // next event to publish
  uint64_t head_position = 0;        // end of the log as last read
  uint64_t in_flight = 0;
  uint64_t lag_events = 0;           // head - acknowledged
  uint64_t lag_bytes = 0;            // log bytes between them (estimate)
  int64_t lag_ns = 0;                // age of the oldest unacknowledged event (0 when none)
  uint64_t published = 0;            // messages sent (resends included)
  uint64_t acknowledged = 0;         // acknowledgements, duplicates included
  uint64_t duplicates = 0;           // acknowledgements flagged duplicate
  uint64_t failures = 0;             // refused or timed-out publishes
  uint64_t reconnects = 0;           // connections made after the first
  uint64_t checkpoints = 0;          // checkpoints written
  uint64_t resumed_from_stream = 0;  // times the stream's last id moved the start forward
  std::string last_error;            // "" when none since the last success
  counters::HistogramSummary latency;  // append -> acknowledged by JetStream (ns)
};

class JetStreamRelay {
 public:
  // Opens the log for reading and the relay's checkpoint; does not connect (poll() does, or
  // connect()). Errors: invalid_argument (options), not_found (no log), corruption, io_error.
  static Result<std::unique_ptr<JetStreamRelay>> open(const std::string& log_dir,
                                                      const JetStreamRelayOptions& options);
  ~JetStreamRelay();
  JetStreamRelay(const JetStreamRelay&) = delete;
  JetStreamRelay& operator=(const JetStreamRelay&) = delete;

  // One connection attempt now (stream checked or created, position resynchronised).
  // Errors name the servers: io_error (unreachable), timeout, invalid_argument (a stream
  // whose subjects conflict with the relay's; fatal: the relay is then failed).
  Status connect();
  // One round: (re)connect when due, publish up to the in-flight bound, take
  // acknowledgements, checkpoint when due. Waits at most `max_wait` for work. Returns the
  // number of events published or acknowledged in this round.
  uint64_t poll(std::chrono::milliseconds max_wait = std::chrono::milliseconds(10));
  // Polls until `stop` is true or the relay is failed.
  void run(const std::atomic<bool>& stop);
  // Polls until every event below `position` is acknowledged. Errors: timeout, or the
  // failure that stopped the relay.
  Status wait_acknowledged(uint64_t position, std::chrono::milliseconds timeout);
  // Waits up to `drain` for what is in flight, writes the checkpoint, disconnects.
  Status close(std::chrono::milliseconds drain = std::chrono::milliseconds(2'000));

  uint64_t acknowledged_position() const noexcept;
  RelayStatus status() const;
  const std::string& source_id() const noexcept;
  bool failed() const noexcept;

  struct Impl;

 private:
  explicit JetStreamRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::connectors
