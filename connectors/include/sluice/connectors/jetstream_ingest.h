// JetStreamIngest: follows a JetStream stream that a JetStreamRelay fills, appending what it
// receives to a local log, so that a second process — on this machine or another — follows
// the first (its projections see the same events in the same per-stream order).
//
//   JetStream stream ──pull consumer (from checkpoint seq)──▶ ingest ──append──▶ local log
//                                                              │
//                                   parked (<log>/connectors/ingest.<name>.parked, JSON lines)
//
// Design
//   Each message is checked (Nats-Msg-Id "<source>:<position>", Sluice-Stream, Sluice-Event,
//   payload size; message.h) and appended with the event's type, schema version, codec,
//   correlation and causation ids; its idempotency key is idempotency_key_for(source,
//   position). Events of one atomic batch (Sluice-Event's <more> flag) are appended as one
//   batch. Deduplication: the ingest is the log's only writer and appends in the source's
//   order, so the last event of the local log names the last source position taken; a
//   message at or below it is a duplicate (redelivered after a crash, or resent by the relay)
//   and is skipped. The checkpoint ("ingest.<name>" in <log>/checkpoints, atomic like the
//   projections') holds the next stream sequence to fetch and the source id followed; it is
//   written after the log is flushed, never ahead of it.
//
//   Rejected, with a reason, and parked (one JSON line each, not appended): a message with no
//   or a malformed Sluice id or headers ("malformed"), from another source than the one
//   followed ("foreign"), with a payload over max_payload ("oversized"), or whose stream
//   version does not follow the local stream's ("gap": the stream lost earlier events).
//
// Thread safety: one thread drives an ingest (open, poll, close); status() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/bus/log_types.h"
#include "sluice/status.h"

namespace sluice::connectors {

struct JetStreamIngestOptions {
  std::vector<std::string> servers;          // required (parse_nats_urls)
  std::string stream = "SLUICE";             // the JetStream stream to follow
  std::string name = "jetstream";            // checkpoint "ingest.<name>", consumer "sluice-ingest-<name>"
  std::string source_id;                     // "": follow the first source seen, then only it
  uint32_t fetch_batch = 512;                // messages per fetch
  uint32_t max_payload = 1u << 20;           // larger payloads are parked as oversized
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds api_timeout{5'000};
  std::chrono::milliseconds checkpoint_interval{200};
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2'000};
  LogOptions log;                            // for the local log (created if missing)
};

struct IngestStatus {
  bool connected = false;
  uint64_t next_sequence = 1;      // next JetStream sequence to take
  uint64_t stream_last_sequence = 0;  // as last seen (fetch metadata or stream info)
  uint64_t next_source_position = 0;  // source events below it are in the local log
  uint64_t appended = 0;           // events appended
  uint64_t duplicates = 0;         // skipped as already in the log
  uint64_t parked = 0;             // rejected and parked
  uint64_t reconnects = 0;
  std::string source_id;           // the source followed ("" until the first message)
  std::string last_error;
  std::string last_parked_reason;
};

class JetStreamIngest {
 public:
  // Opens (creating) the local log as its writer and reads the checkpoint. Errors:
  // invalid_argument, busy (another writer holds the log), io_error, corruption.
  static Result<std::unique_ptr<JetStreamIngest>> open(const std::string& log_dir,
                                                       const JetStreamIngestOptions& options);
  ~JetStreamIngest();
  JetStreamIngest(const JetStreamIngest&) = delete;
  JetStreamIngest& operator=(const JetStreamIngest&) = delete;

  // One connection attempt now. Errors name the servers: io_error, timeout, not_found (no
  // such stream).
  Status connect();
  // One round: (re)connect when due, fetch one batch (waiting at most max_wait), append,
  // checkpoint when due. Returns the number of messages taken (appended, skipped or parked).
  uint64_t poll(std::chrono::milliseconds max_wait = std::chrono::milliseconds(100));
  // Polls until every message the stream held when called is taken. Errors: timeout.
  Status catch_up(std::chrono::milliseconds timeout);
  // Flushes the log, writes the checkpoint, disconnects, closes the log.
  Status close();

  IngestStatus status() const;
  const std::string& parked_path() const noexcept;

  struct Impl;

 private:
  explicit JetStreamIngest(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::connectors
