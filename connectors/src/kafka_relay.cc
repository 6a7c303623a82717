#include "sluice/connectors/kafka_relay.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "sluice/bus/log_reader.h"
#include "sluice/connectors/message.h"
#include "sluice/projections/checkpoint.h"

namespace sluice::connectors {

using Clock = std::chrono::steady_clock;

namespace {
constexpr const char* kHeaderKafkaId = "Sluice-Msg-Id";
void dr_callback(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
}  // namespace

struct KafkaRelay::Impl {
  enum : uint8_t { kPending = 0, kDone = 1 };
  std::string log_dir;
  KafkaRelayOptions opts;
  std::string source, checkpoint_name, transactional_id;
  std::unique_ptr<LogReader> reader;
  rd_kafka_t* rk = nullptr;
  rd_kafka_topic_t* rkt = nullptr;
  int32_t partitions = 0;
  std::vector<int64_t> partition_last;  // last position of this source per partition; -1 none
  std::vector<uint8_t> ring;            // positions [acked, next) at position % size
  uint64_t acked = 0, next = 0, delivered = 0;  // delivered: contiguous prefix (transactional)
  bool need_recreate = false;
  bool in_txn = false;
  uint64_t txn_events = 0;
  uint64_t checkpointed = 0;
  Clock::time_point next_checkpoint{};
  KafkaRelayStatus st;

  Status fail_status(const std::string& what) const { return Status(StatusCode::io_error, what); }

  void on_delivery(rd_kafka_t* from, const rd_kafka_message_t* m) {
    if (from != rk) return;  // a report of a destroyed producer
    const uint64_t pos = reinterpret_cast<uintptr_t>(m->_private);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      st.last_error = "delivery of " + message_id(source, pos) + " to " + opts.topic + ": " + rd_kafka_err2str(m->err);
      need_recreate = true;  // an undelivered record would leave a gap in its partition
      return;
    }
    ++st.acknowledged;
    const uint64_t base = opts.transactional ? delivered : acked;
    if (pos < base || pos >= next) return;
    ring[pos % ring.size()] = kDone;
    advance();
  }
  void advance() {
    uint64_t& prefix = opts.transactional ? delivered : acked;
    while (prefix < next && ring[prefix % ring.size()] == kDone) ++prefix;
  }

  Status create_producer();
  void destroy_producer();
  Status read_partition_tails();
  Status commit_transaction();
  Status write_checkpoint_now();
  uint64_t poll(std::chrono::milliseconds max_wait);
};

namespace {
void dr_callback(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) {
  static_cast<KafkaRelay::Impl*>(opaque)->on_delivery(rk, m);
}
}  // namespace

Status KafkaRelay::Impl::create_producer() {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& k, const std::string& v) {
    return rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) == RD_KAFKA_CONF_OK;
  };
  // librdkafka's own log stays quiet (level 0): errors reach the caller as values
  // (status().last_error, the Status of open()); config["log_level"] overrides.
  bool ok = set("log_level", "0") && set("bootstrap.servers", opts.brokers) && set("enable.idempotence", "true") && set("acks", "all") &&
            set("linger.ms", "5") && set("message.timeout.ms", std::to_string(opts.delivery_timeout.count()));
  if (ok && opts.transactional) ok = set("transactional.id", transactional_id);
  for (const auto& [k, v] : opts.config)
    if (ok) ok = set(k, v);
  if (!ok) {
    rd_kafka_conf_destroy(conf);
    return Status(StatusCode::invalid_argument, std::string("kafka relay: ") + err);
  }
  rd_kafka_conf_set_dr_msg_cb(conf, dr_callback);
  rd_kafka_conf_set_opaque(conf, this);
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) return Status(StatusCode::invalid_argument, std::string("kafka relay: ") + err);
  ++st.producers_created;
  rkt = rd_kafka_topic_new(rk, opts.topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, static_cast<int>(opts.api_timeout.count()));
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
      md->topics[0].partition_cnt <= 0) {
    const std::string why = e != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(e)
                            : md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "no such topic";
    if (md) rd_kafka_metadata_destroy(md);
    destroy_producer();
    return Status(StatusCode::io_error, "kafka relay: metadata of topic " + opts.topic + " from " + opts.brokers + ": " + why);
  }
  partitions = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  if (opts.transactional) {
    if (rd_kafka_error_t* te = rd_kafka_init_transactions(rk, static_cast<int>(opts.api_timeout.count()))) {
      const std::string why = rd_kafka_error_string(te);
      rd_kafka_error_destroy(te);
      destroy_producer();
      return Status(StatusCode::io_error, "kafka relay: init transactions (" + transactional_id + "): " + why);
    }
  } else if (Status s = read_partition_tails(); !s.ok()) {
    destroy_producer();
    return s;
  }
  next = acked;
  delivered = acked;
  need_recreate = false;
  return Status::OK();
}

void KafkaRelay::Impl::destroy_producer() {
  if (rk == nullptr) return;
  rd_kafka_t* old = rk;
  rk = nullptr;  // reports served from here on are ignored
  rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(old, 0);
  if (rkt) rd_kafka_topic_destroy(rkt);
  rkt = nullptr;
  rd_kafka_destroy(old);  // after the purge: nothing left to wait for
  in_txn = false;
  txn_events = 0;
}

// The last record of every partition: where this source's events stop there.
Status KafkaRelay::Impl::read_partition_tails() {
  partition_last.assign(static_cast<size_t>(partitions), -1);
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
  rd_kafka_conf_set(conf, "bootstrap.servers", opts.brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", ("sluice-relay-tail-" + opts.name).c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
  rd_kafka_conf_set(conf, "isolation.level", "read_uncommitted", err, sizeof err);
  for (const auto& [k, v] : opts.config)
    if (k.rfind("test.", 0) != 0) rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err);
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (c == nullptr) return Status(StatusCode::io_error, std::string("kafka relay: tail reader: ") + err);
  rd_kafka_topic_partition_list_t* assign = rd_kafka_topic_partition_list_new(partitions);
  int wanted = 0;
  for (int32_t p = 0; p < partitions; ++p) {
    int64_t lo = 0, hi = 0;
    const rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(c, opts.topic.c_str(), p, &lo, &hi, static_cast<int>(opts.api_timeout.count()));
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_topic_partition_list_destroy(assign);
      rd_kafka_destroy(c);
      return Status(StatusCode::io_error, "kafka relay: offsets of " + opts.topic + "[" + std::to_string(p) + "]: " +
                                              rd_kafka_err2str(e));
    }
    if (hi > lo) {
      rd_kafka_topic_partition_list_add(assign, opts.topic.c_str(), p)->offset = hi - 1;
      ++wanted;
    }
  }
  Status result;
  if (wanted > 0) {
    rd_kafka_assign(c, assign);
    std::vector<bool> seen(static_cast<size_t>(partitions), false);
    const auto deadline = Clock::now() + opts.api_timeout;
    while (wanted > 0 && Clock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && !seen[static_cast<size_t>(m->partition)]) {
        seen[static_cast<size_t>(m->partition)] = true;
        --wanted;
        rd_kafka_headers_t* hdrs = nullptr;
        const void* v = nullptr;
        size_t n = 0;
        std::string_view src;
        uint64_t pos = 0;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(hdrs, kHeaderKafkaId, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            parse_message_id(std::string_view(static_cast<const char*>(v), n), &src, &pos) && src == source)
          partition_last[static_cast<size_t>(m->partition)] = static_cast<int64_t>(pos);
      }
      rd_kafka_message_destroy(m);
    }
    if (wanted > 0) result = Status(StatusCode::timeout, "kafka relay: reading the last record of each partition of " + opts.topic);
  }
  rd_kafka_topic_partition_list_destroy(assign);
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return result;
}

Status KafkaRelay::Impl::commit_transaction() {
  rd_kafka_error_t* e = rd_kafka_commit_transaction(rk, static_cast<int>(opts.api_timeout.count()));
  if (e == nullptr) {
    in_txn = false;
    txn_events = 0;
    acked = delivered = next;
    ++st.transactions_committed;
    return Status::OK();
  }
  const std::string why = rd_kafka_error_string(e);
  const bool abortable = rd_kafka_error_txn_requires_abort(e);
  rd_kafka_error_destroy(e);
  st.last_error = "commit transaction: " + why;
  if (abortable) {
    if (rd_kafka_error_t* a = rd_kafka_abort_transaction(rk, static_cast<int>(opts.api_timeout.count())))
      rd_kafka_error_destroy(a);
    in_txn = false;
    txn_events = 0;
    next = delivered = acked;  // resend the aborted transaction's events
    return Status::OK();
  }
  need_recreate = true;
  return Status::OK();
}

Status KafkaRelay::Impl::write_checkpoint_now() {
  if (acked == checkpointed) return Status::OK();
  CheckpointData d;
  d.position = acked;
  d.events_applied = st.acknowledged;
  if (Status s = write_checkpoint(log_dir, checkpoint_name, d); !s.ok()) return s;
  checkpointed = acked;
  return Status::OK();
}

uint64_t KafkaRelay::Impl::poll(std::chrono::milliseconds max_wait) {
  char errstr[512];
  if (rk != nullptr && (need_recreate || rd_kafka_fatal_error(rk, errstr, sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR)) {
    if (!need_recreate) st.last_error = std::string("fatal producer error: ") + errstr;
    destroy_producer();
  }
  if (rk == nullptr) {
    if (Status s = create_producer(); !s.ok()) {
      st.last_error = s.message();
      std::this_thread::sleep_for(max_wait);
      return 0;
    }
  }
  uint64_t produced = 0;
  const uint64_t cap = ring.size();
  bool refreshed = false;
  while (next - acked < cap && !need_recreate) {
    if (opts.transactional && txn_events >= opts.transaction_events) break;
    RecordView v;
    if (!reader->read(next, &v)) {
      if (refreshed) break;
      refreshed = true;
      if (auto r = reader->refresh(); !r.ok()) {
        st.last_error = r.status().message();
        break;
      }
      continue;
    }
    const std::string_view stream = reader->stream_name(v.stream_id());
    const auto partition = static_cast<int32_t>(fnv1a_64(stream) % static_cast<uint64_t>(partitions));
    if (!opts.transactional && partition_last[static_cast<size_t>(partition)] >= static_cast<int64_t>(next)) {
      ring[next % cap] = kDone;  // already in its partition (before a recreation)
      ++next;
      ++st.skipped_already_in_topic;
      advance();
      continue;
    }
    if (opts.transactional && !in_txn) {
      if (rd_kafka_error_t* e = rd_kafka_begin_transaction(rk)) {
        st.last_error = std::string("begin transaction: ") + rd_kafka_error_string(e);
        rd_kafka_error_destroy(e);
        need_recreate = true;
        break;
      }
      in_txn = true;
    }
    const std::string id = message_id(source, next);
    const std::string meta = format_event_meta(EventMeta{v.stream_version(), v.event_type(), v.schema_version(), v.codec(),
                                                         v.timestamp_ns(), (v.header->flags & log_format::kFlagBatchContinues) != 0});
    const auto payload = v.payload();
    ring[next % cap] = kPending;
    const rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(stream.data(), stream.size()),
        RD_KAFKA_V_VALUE(const_cast<std::byte*>(payload.data()), payload.size()),
        RD_KAFKA_V_HEADER(kHeaderKafkaId, id.data(), static_cast<ssize_t>(id.size())),
        RD_KAFKA_V_HEADER(kHeaderStream, stream.data(), static_cast<ssize_t>(stream.size())),
        RD_KAFKA_V_HEADER(kHeaderEvent, meta.data(), static_cast<ssize_t>(meta.size())),
        RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(next))), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      st.last_error = std::string("produce: ") + rd_kafka_err2str(e);
      need_recreate = true;
      break;
    }
    ++next;
    ++produced;
    ++st.published;
    ++txn_events;
  }
  const uint64_t before = acked;
  rd_kafka_poll(rk, produced > 0 ? 0 : static_cast<int>(max_wait.count()));
  if (opts.transactional && in_txn && !need_recreate &&
      (txn_events >= opts.transaction_events || next >= reader->end_position())) {
    if (Status s = commit_transaction(); !s.ok()) st.last_error = s.message();
  }
  if (Clock::now() >= next_checkpoint) {
    if (Status s = write_checkpoint_now(); !s.ok()) st.last_error = "checkpoint: " + s.message();
    next_checkpoint = Clock::now() + opts.checkpoint_interval;
  }
  st.acknowledged_position = acked;
  st.published_position = next;
  st.head_position = reader->end_position();
  st.in_flight = next - acked;
  return produced + (acked - before);
}

// ---- public ---------------------------------------------------------------------------------

KafkaRelay::KafkaRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaRelay::~KafkaRelay() {
  if (impl_) close().ignore();
}

Result<std::unique_ptr<KafkaRelay>> KafkaRelay::open(const std::string& log_dir, const KafkaRelayOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->log_dir = log_dir;
  impl->opts = options;
  if (options.brokers.empty()) return Status(StatusCode::invalid_argument, "kafka relay: no brokers given");
  if (options.topic.empty()) return Status(StatusCode::invalid_argument, "kafka relay: no topic given");
  if (options.max_in_flight == 0) return Status(StatusCode::invalid_argument, "kafka relay: max_in_flight must be > 0");
  impl->checkpoint_name = "relay." + options.name;
  if (Status s = validate_projection_name(impl->checkpoint_name); !s.ok())
    return Status(StatusCode::invalid_argument, "relay name '" + options.name + "': " + s.message());
  auto reader = LogReader::open(log_dir);
  if (!reader.ok()) return reader.status();
  impl->reader = std::move(*reader);
  if (options.source_id.empty()) {
    auto id = load_or_create_source_id(log_dir);
    if (!id.ok()) return id.status();
    impl->source = *id;
  } else {
    if (Status s = validate_source_id(options.source_id); !s.ok()) return s;
    impl->source = options.source_id;
  }
  impl->transactional_id = "sluice-" + impl->source + "-" + options.name;
  auto ck = read_checkpoint(log_dir, impl->checkpoint_name);
  if (!ck.ok()) return ck.status();
  if (ck->has_value()) impl->acked = (*ck)->position;
  impl->acked = std::max(impl->acked, impl->reader->begin_position());
  impl->next = impl->delivered = impl->checkpointed = impl->acked;
  impl->ring.assign(options.max_in_flight, 0);
  impl->next_checkpoint = Clock::now() + options.checkpoint_interval;
  if (Status s = impl->create_producer(); !s.ok()) return s;
  return std::unique_ptr<KafkaRelay>(new KafkaRelay(std::move(impl)));
}

uint64_t KafkaRelay::poll(std::chrono::milliseconds max_wait) { return impl_->poll(max_wait); }

Status KafkaRelay::wait_acknowledged(uint64_t position, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (impl_->acked < position) {
    if (Clock::now() >= deadline)
      return Status(StatusCode::timeout, "kafka relay " + impl_->opts.name + ": position " + std::to_string(position) +
                                             " not acknowledged in time (up to " + std::to_string(impl_->acked) +
                                             "; last error: " + impl_->st.last_error + ")");
    impl_->poll(std::chrono::milliseconds(10));
  }
  return impl_->write_checkpoint_now();
}

Status KafkaRelay::close() {
  Impl& d = *impl_;
  if (d.rk != nullptr) {
    if (d.in_txn && !d.need_recreate) d.commit_transaction().ignore();
    rd_kafka_flush(d.rk, 2000);
    d.destroy_producer();
  }
  return d.write_checkpoint_now();
}

KafkaRelayStatus KafkaRelay::status() const { return impl_->st; }
const std::string& KafkaRelay::source_id() const noexcept { return impl_->source; }

Status KafkaRelay::inject_fatal_error_for_testing() {
  if (impl_->rk == nullptr) return Status(StatusCode::closed, "no producer");
  const rd_kafka_resp_err_t e =
      rd_kafka_test_fatal_error(impl_->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "injected by a test");
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return Status(StatusCode::io_error, rd_kafka_err2str(e));
  return Status::OK();
}

}  // namespace sluice::connectors
