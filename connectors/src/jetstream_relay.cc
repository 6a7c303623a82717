#include "sluice/connectors/jetstream_relay.h"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "internal/nats_connection.h"
#include "sluice/bus/clock.h"
#include "sluice/bus/log_reader.h"
#include "sluice/connectors/message.h"
#include "sluice/projections/checkpoint.h"
#include "sluice/stats/counters_file.h"

namespace sluice::connectors {

using internal::NatsConnection;
using internal::nats_error;
using Clock = std::chrono::steady_clock;

namespace {

void ack_handler(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure);

// Acknowledgement handlers find their relay through this registry, by the id of the
// connection (epoch) they were published on: a relay unregisters an epoch before it drops
// that connection, so a late handler of a dropped connection, or of a closed relay, finds
// nothing and touches nothing. Lock order: g_registry_mu, then the relay's mu.
std::mutex g_registry_mu;
std::unordered_map<uint64_t, JetStreamRelay::Impl*> g_registry;
std::atomic<uint64_t> g_next_epoch{1};  // relaxed: only uniqueness matters

}  // namespace

struct JetStreamRelay::Impl {
  enum : uint8_t { kPending = 0, kAcked = 1 };
  struct Entry {
    int64_t timestamp_ns = 0;  // the event's append time
    uint64_t address = 0;      // log address of the record (segment * size + offset)
    uint8_t state = kPending;
  };

  std::string log_dir;
  JetStreamRelayOptions opts;
  std::string source;
  std::string checkpoint_name;
  std::unique_ptr<LogReader> reader;
  std::unique_ptr<NatsConnection> conn;
  uint64_t epoch = 0;              // relay thread: id of conn's registration
  bool first_of_epoch = true;      // relay thread
  uint64_t expected_last_seq = 0;  // relay thread: the stream's last sequence at resync
  Clock::time_point next_attempt{};
  std::chrono::milliseconds backoff{0};
  Clock::time_point next_checkpoint{};
  uint64_t checkpointed = 0;       // relay thread: position of the last checkpoint written
  uint64_t segment_size = 0;
  uint32_t idle_us = 0;
  std::vector<std::string> stream_names;     // by stream id - 1 (cache)
  std::vector<std::string> subject_prefixes;  // by stream id - 1: "<prefix>.<token>."
  std::string subject_buf, id_buf, prev_id_buf;  // relay thread: reused per message

  // Shared with the acknowledgement handler, guarded by mu.
  mutable std::mutex mu;
  std::condition_variable cv;
  uint64_t current_epoch = 0;
  bool epoch_failed = false;
  std::vector<Entry> ring;  // positions [acked, next) at index position % ring.size()
  uint64_t acked = 0;
  uint64_t next = 0;
  bool waiting = false;         // the relay thread waits on cv ...
  uint64_t wake_in_flight = 0;  // ... until next - acked <= this
  RelayStatus st;
  counters::HistogramWords* hist = nullptr;  // the slot's, or own_hist
  std::unique_ptr<counters::HistogramWords> own_hist;
  std::atomic<uint64_t> acked_pub{0};  // release: mirror of acked for lock-free readers
  std::atomic<bool> failed{false};     // release: set once, after st.last_error is written

  void on_ack(uint64_t ep, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae) {
    const char* id = nullptr;
    std::string_view src;
    uint64_t pos = 0;
    const bool have_id = natsMsgHeader_Get(msg, kHeaderMsgId, &id) == NATS_OK &&
                         parse_message_id(id, &src, &pos);
    std::lock_guard lk(mu);
    if (ep != current_epoch) return;
    if (pa != nullptr && pae == nullptr) {
      ++st.acknowledged;
      if (pa->Duplicate) ++st.duplicates;
      if (!have_id || pos < acked || pos >= next) return;
      ring[pos % ring.size()].state = kAcked;
      bool moved = false;
      const int64_t now = realtime_ns();
      while (acked < next && ring[acked % ring.size()].state == kAcked) {
        const int64_t ts = ring[acked % ring.size()].timestamp_ns;
        counters::record(*hist, now > ts ? static_cast<uint64_t>(now - ts) : 0);
        ++acked;
        moved = true;
      }
      if (moved) {
        // Release: pairs with the acquire in acknowledged_position().
        acked_pub.store(acked, std::memory_order_release);
        if (!st.last_error.empty()) st.last_error.clear();
        if (waiting && next - acked <= wake_in_flight) cv.notify_one();
      }
      return;
    }
    ++st.failures;
    if (!epoch_failed) {
      epoch_failed = true;
      std::string what = "publish of " + std::string(id ? id : "?") + " to stream " + opts.stream;
      st.last_error = pae != nullptr ? nats_error(what, pae->Err, pae->ErrCode) +
                                           (pae->ErrText ? std::string(": ") + pae->ErrText : "")
                                     : what + ": no acknowledgement";
    }
    cv.notify_all();
  }

  void fail(const std::string& why) {
    {
      std::lock_guard lk(mu);
      st.last_error = why;
      st.failed = true;
    }
    // Release: pairs with the acquire in failed(); last_error is written above.
    failed.store(true, std::memory_order_release);
  }

  const std::string& stream_name(StreamId id) {
    if (stream_names.size() < id) stream_names.resize(id);
    std::string& n = stream_names[id - 1];
    if (n.empty()) n = std::string(reader->stream_name(id));
    return n;
  }

  Status ensure_stream(NatsConnection& c);
  Status resync(NatsConnection& c, uint64_t* resume, uint64_t* last_seq);
  Status connect();
  void drop_connection(const std::string& why);
  bool publish_one(const RecordView& v);
  uint64_t poll(std::chrono::milliseconds max_wait);
  Status write_checkpoint_now();
  void update_gauges();
};

namespace {
void ack_handler(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  const uint64_t ep = reinterpret_cast<uintptr_t>(closure);
  {
    std::lock_guard lk(g_registry_mu);
    if (auto it = g_registry.find(ep); it != g_registry.end()) it->second->on_ack(ep, msg, pa, pae);
  }
  natsMsg_Destroy(msg);
}
}  // namespace

Status JetStreamRelay::Impl::ensure_stream(NatsConnection& c) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = opts.api_timeout.count();
  const std::string wanted = opts.subject_prefix + ".>";
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, c.js(), opts.stream.c_str(), &jo, &jerr);
  if (s == NATS_OK) {
    bool covers = false;
    std::string have;
    for (int i = 0; i < si->Config->SubjectsLen; ++i) {
      const std::string subj = si->Config->Subjects[i];
      if (subj == wanted || subj == ">") covers = true;
      have += (have.empty() ? "" : ", ") + subj;
    }
    jsStreamInfo_Destroy(si);
    if (!covers)
      return Status(StatusCode::invalid_argument, "JetStream stream " + opts.stream + " has subjects [" + have +
                                                      "], which do not cover the relay's " + wanted);
    return Status::OK();
  }
  if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
    return Status(s == NATS_TIMEOUT ? StatusCode::timeout : StatusCode::io_error,
                  nats_error("stream info of " + opts.stream, s, jerr));
  if (!opts.create_stream)
    return Status(StatusCode::not_found, "JetStream stream " + opts.stream + " does not exist (and create_stream is off)");
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {wanted.c_str()};
  cfg.Name = opts.stream.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = opts.replicas;
  cfg.Duplicates = std::chrono::duration_cast<std::chrono::nanoseconds>(opts.duplicate_window).count();
  s = js_AddStream(&si, c.js(), &cfg, &jo, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    return Status::OK();
  }
  if (jerr == JSStreamSubjectOverlapErr)
    return Status(StatusCode::invalid_argument, "cannot create JetStream stream " + opts.stream + ": its subject " +
                                                    wanted + " overlaps with another stream's");
  if (jerr == JSStreamNameExistErr) return Status(StatusCode::busy, "stream " + opts.stream + " created concurrently; retry");
  return Status(s == NATS_TIMEOUT ? StatusCode::timeout : StatusCode::io_error,
                nats_error("create JetStream stream " + opts.stream, s, jerr));
}

Status JetStreamRelay::Impl::resync(NatsConnection& c, uint64_t* resume, uint64_t* last_seq) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = opts.api_timeout.count();
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, c.js(), opts.stream.c_str(), &jo, &jerr);
  if (s != NATS_OK)
    return Status(s == NATS_TIMEOUT ? StatusCode::timeout : StatusCode::io_error,
                  nats_error("stream info of " + opts.stream, s, jerr));
  *last_seq = si->State.LastSeq;
  const uint64_t msgs = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  uint64_t from = acked;  // no publish in flight here: acked is ours alone
  if (*last_seq > 0 && msgs > 0) {
    natsMsg* m = nullptr;
    s = js_GetMsg(&m, c.js(), opts.stream.c_str(), *last_seq, &jo, &jerr);
    if (s != NATS_OK && s != NATS_NOT_FOUND && jerr != JSNoMessageFoundErr)
      return Status(s == NATS_TIMEOUT ? StatusCode::timeout : StatusCode::io_error,
                    nats_error("last message of " + opts.stream, s, jerr));
    if (s == NATS_OK) {
      const char* id = nullptr;
      std::string_view src;
      uint64_t pos = 0;
      if (natsMsgHeader_Get(m, kHeaderMsgId, &id) == NATS_OK && parse_message_id(id, &src, &pos) &&
          src == source) {
        if (pos >= reader->end_position()) {
          if (auto r = reader->refresh(); !r.ok()) {
            natsMsg_Destroy(m);
            return r.status();
          }
        }
        if (pos >= reader->end_position()) {
          natsMsg_Destroy(m);
          return Status(StatusCode::invalid_argument,
                        "JetStream stream " + opts.stream + " holds event " + std::to_string(pos) + " of source " +
                            source + " but the log in " + log_dir + " ends at " +
                            std::to_string(reader->end_position()) + ": not this log");
        }
        // Every event of this source up to `pos` is in the stream (order invariant), and
        // nothing after it: resume right after it. Below the checkpoint when the server lost
        // acknowledged messages (a crash before its own flush): they are sent again.
        if (pos + 1 != from) {
          std::lock_guard lk(mu);
          ++st.resumed_from_stream;
        }
        from = pos + 1;
      }
      natsMsg_Destroy(m);
    }
  }
  *resume = from;
  return Status::OK();
}

Status JetStreamRelay::Impl::connect() {
  const uint64_t ep = g_next_epoch.fetch_add(1, std::memory_order_relaxed);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = opts.api_timeout.count();
  jo.PublishAsync.MaxPending = opts.max_in_flight + 16;  // the relay bounds it itself
  jo.PublishAsync.AckHandler = ack_handler;
  jo.PublishAsync.AckHandlerClosure = reinterpret_cast<void*>(static_cast<uintptr_t>(ep));
  auto c = NatsConnection::connect(opts.servers, "sluice-relay-" + opts.name, opts.connect_timeout, &jo);
  Status result;
  uint64_t resume = 0, last_seq = 0;
  if (!c.ok()) result = c.status();
  if (result.ok()) result = ensure_stream(**c);
  if (result.ok()) result = resync(**c, &resume, &last_seq);
  if (!result.ok()) {
    if (result.code() == StatusCode::invalid_argument || result.code() == StatusCode::not_found) {
      fail(result.message());
    } else {
      std::lock_guard lk(mu);
      st.last_error = result.message();
    }
    backoff = std::min(opts.backoff_max, std::max(opts.backoff_initial, backoff * 2));
    next_attempt = Clock::now() + backoff;
    return result;
  }
  {
    std::lock_guard lk(g_registry_mu);
    g_registry[ep] = this;
  }
  {
    std::lock_guard lk(mu);
    if (st.connected || epoch != 0) ++st.reconnects;
    current_epoch = ep;
    epoch_failed = false;
    acked = resume;
    next = acked;
    // Release: pairs with the acquire in acknowledged_position().
    acked_pub.store(acked, std::memory_order_release);
    st.connected = true;
    st.last_error.clear();
  }
  epoch = ep;
  conn = std::move(*c);
  first_of_epoch = true;
  expected_last_seq = last_seq;
  return Status::OK();
}

void JetStreamRelay::Impl::drop_connection(const std::string& why) {
  {
    std::lock_guard lk(g_registry_mu);
    g_registry.erase(epoch);
  }
  conn.reset();
  std::lock_guard lk(mu);
  current_epoch = 0;
  st.connected = false;
  if (!why.empty()) st.last_error = why;
  next = acked;  // resend everything not acknowledged, after the resync
  backoff = std::min(opts.backoff_max, std::max(opts.backoff_initial, backoff * 2));
  next_attempt = Clock::now() + backoff;
}

namespace {
// The Sluice-Event text (message.h), NUL-terminated in `buf` (>= 96 bytes).
void put_event_meta(char* buf, const EventMeta& m) {
  char* p = buf;
  char* const end = buf + 95;
  auto num = [&](auto v) {
    p = std::to_chars(p, end, v).ptr;
    *p++ = ' ';
  };
  num(m.stream_version);
  num(m.type);
  num(m.schema_version);
  num(static_cast<unsigned>(m.codec));
  num(m.timestamp_ns);
  *p++ = m.batch_continues ? '1' : '0';
  *p = '\0';
}
}  // namespace

bool JetStreamRelay::Impl::publish_one(const RecordView& v) {
  const uint64_t pos = v.position();
  if (opts.subject) {
    subject_buf = opts.subject(stream_name(v.stream_id()), v.event_type());
  } else {
    const StreamId id = v.stream_id();
    if (subject_prefixes.size() < id) subject_prefixes.resize(id);
    std::string& prefix = subject_prefixes[id - 1];
    if (prefix.empty()) prefix = opts.subject_prefix + "." + subject_token(stream_name(id)) + ".";
    subject_buf.assign(prefix);
    char buf[12];
    subject_buf.append(buf, std::to_chars(buf, buf + sizeof buf, v.event_type()).ptr);
  }
  const auto payload = v.payload();
  natsMsg* m = nullptr;
  natsStatus s = natsMsg_Create(&m, subject_buf.c_str(), nullptr, reinterpret_cast<const char*>(payload.data()),
                                static_cast<int>(payload.size()));
  assign_message_id(&id_buf, source, pos);
  if (s == NATS_OK) s = natsMsgHeader_Set(m, kHeaderMsgId, id_buf.c_str());
  if (s == NATS_OK) {
    if (first_of_epoch) {
      if (expected_last_seq > 0)
        s = natsMsgHeader_Set(m, "Nats-Expected-Last-Sequence", std::to_string(expected_last_seq).c_str());
    } else {
      assign_message_id(&prev_id_buf, source, pos - 1);
      s = natsMsgHeader_Set(m, "Nats-Expected-Last-Msg-Id", prev_id_buf.c_str());
    }
  }
  if (s == NATS_OK) s = natsMsgHeader_Set(m, kHeaderStream, stream_name(v.stream_id()).c_str());
  char meta_text[96];
  put_event_meta(meta_text, EventMeta{v.stream_version(), v.event_type(), v.schema_version(), v.codec(),
                                      v.timestamp_ns(), (v.header->flags & log_format::kFlagBatchContinues) != 0});
  if (s == NATS_OK) s = natsMsgHeader_Set(m, kHeaderEvent, meta_text);
  if (s == NATS_OK && !v.idempotency_key().empty())
    s = natsMsgHeader_Set(m, kHeaderIdempotencyKey, format_id128(v.idempotency_key()).c_str());
  if (s == NATS_OK && !v.correlation_id().empty())
    s = natsMsgHeader_Set(m, kHeaderCorrelationId, format_id128(v.correlation_id()).c_str());
  if (s == NATS_OK && !v.causation_id().empty())
    s = natsMsgHeader_Set(m, kHeaderCausationId, format_id128(v.causation_id()).c_str());
  if (s != NATS_OK) {
    natsMsg_Destroy(m);
    drop_connection(nats_error("build message " + id_buf, s));
    return false;
  }
  {
    std::lock_guard lk(mu);
    Entry& e = ring[pos % ring.size()];
    e.timestamp_ns = v.timestamp_ns();
    e.address = v.segment_index * segment_size + v.offset;
    e.state = kPending;
    next = pos + 1;
    ++st.published;
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = opts.ack_timeout.count();
  s = conn->publish_async(&m, &po);
  natsMsg_Destroy(m);  // no-op when the library took it
  first_of_epoch = false;
  if (s != NATS_OK) {
    drop_connection(nats_error("publish " + id_buf + " to " + opts.stream, s));
    return false;
  }
  return true;
}

Status JetStreamRelay::Impl::write_checkpoint_now() {
  uint64_t pos, acks;
  {
    std::lock_guard lk(mu);
    pos = acked;
    acks = st.acknowledged;
  }
  if (pos == checkpointed) return Status::OK();
  CheckpointData d;
  d.position = pos;
  d.events_applied = acks;
  if (Status s = write_checkpoint(log_dir, checkpoint_name, d); !s.ok()) return s;
  checkpointed = pos;
  std::lock_guard lk(mu);
  ++st.checkpoints;
  return Status::OK();
}

void JetStreamRelay::Impl::update_gauges() {
  const uint64_t head = reader->end_position();
  std::lock_guard lk(mu);
  st.head_position = head;
  st.acknowledged_position = acked;
  st.published_position = next;
  st.in_flight = next - acked;
  st.lag_events = head > acked ? head - acked : 0;
  if (acked < next) {
    const Entry& e = ring[acked % ring.size()];
    st.lag_ns = std::max<int64_t>(0, realtime_ns() - e.timestamp_ns);
  } else if (acked < head) {
    RecordView v;
    st.lag_ns = reader->read(acked, &v) ? std::max<int64_t>(0, realtime_ns() - v.timestamp_ns()) : 0;
  } else {
    st.lag_ns = 0;
  }
  st.lag_bytes = 0;
  if (acked < head) {
    RecordView a, h;
    if (reader->read(acked, &a) && reader->read(head - 1, &h)) {
      const uint64_t from = a.segment_index * segment_size + a.offset;
      const uint64_t to = h.segment_index * segment_size + h.offset + h.length();
      st.lag_bytes = to > from ? to - from : 0;
    }
  }
  if (counters::Slot* s = opts.stats_slot) {
    using counters::put;
    counters::RelayCounters& c = s->relay;
    put(c.acknowledged_position, st.acknowledged_position);
    put(c.published_position, st.published_position);
    put(c.head_position, st.head_position);
    put(c.in_flight, st.in_flight);
    put(c.lag_events, st.lag_events);
    put(c.lag_bytes, st.lag_bytes);
    put(c.lag_ns, st.lag_ns);
    put(c.published, st.published);
    put(c.acknowledged, st.acknowledged);
    put(c.duplicates, st.duplicates);
    put(c.failures, st.failures);
    put(c.reconnects, st.reconnects);
    put(c.checkpoint_position, checkpointed);
    put(c.connected, uint64_t{st.connected});
  }
}

uint64_t JetStreamRelay::Impl::poll(std::chrono::milliseconds max_wait) {
  if (failed.load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(std::min(max_wait, std::chrono::milliseconds(10)));
    return 0;
  }
  const auto now = Clock::now();
  if (!conn) {
    if (now < next_attempt) {
      std::this_thread::sleep_for(std::min<Clock::duration>(max_wait, next_attempt - now));
      return 0;
    }
    if (!connect().ok()) return 0;
  }
  bool failed_epoch;
  uint64_t acked_before, next_pos;
  {
    std::lock_guard lk(mu);
    failed_epoch = epoch_failed;
    acked_before = acked;
    next_pos = next;
  }
  if (failed_epoch || conn->closed()) {
    drop_connection(failed_epoch ? "" : "connection to " + internal::join_servers(opts.servers) + " closed");
    return 0;
  }
  // Publish what the log holds, up to the in-flight bound.
  uint64_t published = 0;
  bool refreshed = false;
  const uint64_t cap = ring.size();
  while (next_pos - acked_before < cap) {
    RecordView v;
    if (!reader->read(next_pos, &v)) {
      if (refreshed) break;
      refreshed = true;
      if (opts.committed_hint && opts.committed_hint() <= reader->end_position()) break;
      if (auto r = reader->refresh(); !r.ok()) {
        fail("relay " + opts.name + ": reading " + log_dir + ": " + r.status().message());
        return published;
      }
      continue;
    }
    if (!publish_one(v)) return published;
    ++published;
    ++next_pos;
    if (next_pos - acked_before >= cap) {
      std::lock_guard lk(mu);
      acked_before = acked;
    }
  }
  // Wait: with the window full, until it is half empty (one wake-up per half window, not
  // one per acknowledgement); with nothing new in the log, briefly (idle backoff up to
  // 1 ms), for an acknowledgement or new events, whichever comes first.
  uint64_t acked_now;
  {
    std::unique_lock lk(mu);
    const bool full = next - acked >= cap;
    if (full || published == 0) {
      if (full) {
        idle_us = 0;
        wake_in_flight = cap / 2;
      } else {
        idle_us = std::min<uint32_t>(idle_us == 0 ? 50 : idle_us * 2, 1000);
        wake_in_flight = next > acked ? next - acked - 1 : 0;
      }
      const auto wait = full ? max_wait
                             : std::min<std::chrono::microseconds>(std::chrono::microseconds(idle_us), max_wait);
      if (next > acked) {
        waiting = true;
        cv.wait_for(lk, wait, [&] { return next - acked <= wake_in_flight || epoch_failed; });
        waiting = false;
      } else {
        lk.unlock();
        std::this_thread::sleep_for(wait);
        lk.lock();
      }
    } else {
      idle_us = 0;
    }
    acked_now = acked;
  }
  if (acked_now != acked_before) backoff = std::chrono::milliseconds(0);
  if (Clock::now() >= next_checkpoint) {
    if (Status s = write_checkpoint_now(); !s.ok()) {
      std::lock_guard lk(mu);
      st.last_error = "checkpoint: " + s.message();
    }
    next_checkpoint = Clock::now() + opts.checkpoint_interval;
  }
  update_gauges();
  return published + (acked_now - acked_before);
}

// ---- public ---------------------------------------------------------------------------------

JetStreamRelay::JetStreamRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

JetStreamRelay::~JetStreamRelay() {
  if (impl_ && impl_->conn) close(std::chrono::milliseconds(0)).ignore();
  if (impl_) {
    std::lock_guard lk(g_registry_mu);
    g_registry.erase(impl_->epoch);
  }
}

Result<std::unique_ptr<JetStreamRelay>> JetStreamRelay::open(const std::string& log_dir,
                                                             const JetStreamRelayOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->log_dir = log_dir;
  impl->opts = options;
  const auto& o = impl->opts;
  if (o.servers.empty()) return Status(StatusCode::invalid_argument, "relay: no NATS server given");
  if (o.max_in_flight == 0 || o.max_in_flight > 65536)
    return Status(StatusCode::invalid_argument, "relay: max_in_flight must be 1..65536");
  if (o.replicas < 1 || o.replicas > 5) return Status(StatusCode::invalid_argument, "relay: replicas must be 1..5");
  if (Status s = validate_stream_name(o.stream); !s.ok()) return s;
  if (Status s = validate_subject_prefix(o.subject_prefix); !s.ok()) return s;
  impl->checkpoint_name = "relay." + o.name;
  if (Status s = validate_projection_name(impl->checkpoint_name); !s.ok())
    return Status(StatusCode::invalid_argument, "relay name '" + o.name + "': " + s.message());
  auto reader = LogReader::open(log_dir);
  if (!reader.ok()) return reader.status();
  impl->reader = std::move(*reader);
  impl->segment_size = impl->reader->info().segments.empty() ? 0 : impl->reader->info().segments[0].segment_size;
  if (o.source_id.empty()) {
    auto id = load_or_create_source_id(log_dir);
    if (!id.ok()) return id.status();
    impl->source = std::move(*id);
  } else {
    if (Status s = validate_source_id(o.source_id); !s.ok()) return s;
    impl->source = o.source_id;
  }
  auto ck = read_checkpoint(log_dir, impl->checkpoint_name);
  if (!ck.ok()) return ck.status();
  if (ck->has_value()) impl->acked = (*ck)->position;
  impl->acked = std::max(impl->acked, impl->reader->begin_position());
  impl->next = impl->acked;
  impl->checkpointed = impl->acked;
  impl->acked_pub.store(impl->acked, std::memory_order_relaxed);  // not yet shared
  impl->ring.resize(o.max_in_flight);
  impl->next_checkpoint = Clock::now() + o.checkpoint_interval;
  if (o.stats_slot != nullptr) {
    impl->hist = &o.stats_slot->histogram;
  } else {
    impl->own_hist = std::make_unique<counters::HistogramWords>();
    impl->own_hist->min = UINT64_MAX;
    impl->hist = impl->own_hist.get();
  }
  impl->update_gauges();
  return std::unique_ptr<JetStreamRelay>(new JetStreamRelay(std::move(impl)));
}

Status JetStreamRelay::connect() {
  if (impl_->conn) return Status::OK();
  if (failed()) return Status(StatusCode::closed, status().last_error);
  return impl_->connect();
}

uint64_t JetStreamRelay::poll(std::chrono::milliseconds max_wait) { return impl_->poll(max_wait); }

void JetStreamRelay::run(const std::atomic<bool>& stop) {
  // Acquire: pairs with the caller's release store of `stop`.
  while (!stop.load(std::memory_order_acquire) && !failed()) impl_->poll(std::chrono::milliseconds(10));
}

Status JetStreamRelay::wait_acknowledged(uint64_t position, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (acknowledged_position() < position) {
    if (failed()) return Status(StatusCode::closed, status().last_error);
    if (Clock::now() >= deadline)
      return Status(StatusCode::timeout, "relay " + impl_->opts.name + ": position " + std::to_string(position) +
                                             " not acknowledged in time (acknowledged up to " +
                                             std::to_string(acknowledged_position()) + "; last error: " +
                                             status().last_error + ")");
    impl_->poll(std::chrono::milliseconds(10));
  }
  return impl_->write_checkpoint_now();
}

Status JetStreamRelay::close(std::chrono::milliseconds drain) {
  const auto deadline = Clock::now() + drain;
  while (impl_->conn && Clock::now() < deadline) {
    {
      std::lock_guard lk(impl_->mu);
      if (impl_->next == impl_->acked || impl_->epoch_failed) break;
    }
    impl_->poll(std::chrono::milliseconds(10));
  }
  if (impl_->conn) impl_->drop_connection("");
  Status st = impl_->write_checkpoint_now();
  impl_->update_gauges();
  if (impl_->opts.stats_slot != nullptr)
    counters::CountersFile::set_state(*impl_->opts.stats_slot, failed() ? counters::SlotState::failed
                                                                         : counters::SlotState::stopped);
  return st;
}

uint64_t JetStreamRelay::acknowledged_position() const noexcept {
  // Acquire: pairs with the release stores of acked_pub (handler and relay thread).
  return impl_->acked_pub.load(std::memory_order_acquire);
}

RelayStatus JetStreamRelay::status() const {
  std::lock_guard lk(impl_->mu);
  RelayStatus s = impl_->st;
  s.latency = counters::summarize(*impl_->hist);
  return s;
}

const std::string& JetStreamRelay::source_id() const noexcept { return impl_->source; }

bool JetStreamRelay::failed() const noexcept {
  // Acquire: pairs with the release in Impl::fail().
  return impl_->failed.load(std::memory_order_acquire);
}

}  // namespace sluice::connectors
