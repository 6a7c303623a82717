// KafkaRelay: the log as outbox, to Apache Kafka (librdkafka). The same contract as the
// JetStream relay — every event once, in order per stream — with Kafka's tools:
//
//   LogReader ─► KafkaRelay ─► idempotent producer (acks=all, enable.idempotence) ─► topic
//                  key = stream name; partition = FNV-1a(stream) % partitions (explicit, so
//                  the relay knows where each stream's events are)
//
// Design
//   Each event is one record: key = the stream's name, value = the payload, headers
//   Sluice-Msg-Id ("<source>:<position>"), Sluice-Stream, Sluice-Event (message.h). At most
//   max_in_flight records are unacknowledged; delivery reports arrive on the relay's own
//   thread (rd_kafka_poll). The checkpoint ("relay.<name>" in <log>/checkpoints) is the
//   position below which every record is acknowledged.
//
//   The idempotent producer keeps each partition's order and drops its own retried
//   duplicates within one producer session. A fatal producer error (fenced, out of
//   sequence, ...) ends the session: the relay destroys the producer, makes a new one, reads
//   the last record of every partition and resumes after it, per partition — an event
//   whose position is at or below its partition's last Sluice-Msg-Id is already there and
//   is not sent again. So each key holds each of its events once, in order, across producer
//   recreation (tested against librdkafka's mock cluster).
//
//   Transactional mode (optional): a stable transactional.id per relay ("sluice-<source>-
//   <name>"); events are sent in transactions of transaction_events, and the checkpoint
//   moves only when a transaction commits. A new producer with the same id fences the old
//   one and aborts its open transaction. read_committed consumers then never see an event
//   twice. Caveat: librdkafka's mock cluster does not hide aborted records from
//   read_committed consumers, so that last property is not testable there (docs/connectors.md).
//
// Thread safety: one thread drives a relay (open, poll, wait_acknowledged, close); status()
// from that thread or under external synchronisation.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "sluice/status.h"

namespace sluice::connectors {

struct KafkaRelayOptions {
  std::string brokers;                    // bootstrap.servers; required
  std::string topic;                      // required; must exist (or the broker auto-creates it)
  std::string name = "kafka";             // checkpoint "relay.<name>"
  std::string source_id;                  // "": the log's own (load_or_create_source_id)
  uint32_t max_in_flight = 10'000;        // unacknowledged records
  bool transactional = false;
  uint32_t transaction_events = 1'000;    // events per transaction (transactional mode)
  std::map<std::string, std::string> config;  // extra librdkafka properties
  std::chrono::milliseconds delivery_timeout{30'000};  // message.timeout.ms
  std::chrono::milliseconds api_timeout{10'000};       // metadata, tail reads, transactions
  std::chrono::milliseconds checkpoint_interval{200};
};

struct KafkaRelayStatus {
  uint64_t acknowledged_position = 0;
  uint64_t published_position = 0;
  uint64_t head_position = 0;
  uint64_t in_flight = 0;
  uint64_t published = 0;
  uint64_t acknowledged = 0;
  uint64_t skipped_already_in_topic = 0;  // found in the partition's tail after a recreation
  uint64_t producers_created = 0;
  uint64_t transactions_committed = 0;
  std::string last_error;
};

class KafkaRelay {
 public:
  // Opens the log and the checkpoint and creates the producer (librdkafka connects lazily).
  static Result<std::unique_ptr<KafkaRelay>> open(const std::string& log_dir, const KafkaRelayOptions& options);
  ~KafkaRelay();
  KafkaRelay(const KafkaRelay&) = delete;
  KafkaRelay& operator=(const KafkaRelay&) = delete;

  // One round: produce up to the bound, serve delivery reports, commit a transaction when
  // due, recreate the producer after a fatal error, checkpoint when due.
  uint64_t poll(std::chrono::milliseconds max_wait = std::chrono::milliseconds(10));
  // Polls until every event below `position` is acknowledged (committed, in transactional
  // mode). Errors: timeout; io_error when the producer cannot be made.
  Status wait_acknowledged(uint64_t position, std::chrono::milliseconds timeout);
  Status close();
  KafkaRelayStatus status() const;
  const std::string& source_id() const noexcept;
  // For tests: raises a fatal error in the current producer, as a broker would (librdkafka's
  // rd_kafka_test_fatal_error); the next poll() recreates the producer and resumes.
  Status inject_fatal_error_for_testing();

  struct Impl;

 private:
  explicit KafkaRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::connectors
