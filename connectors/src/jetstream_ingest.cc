#include "sluice/connectors/jetstream_ingest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "internal/nats_connection.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "sluice/connectors/message.h"
#include "sluice/projections/checkpoint.h"

namespace sluice::connectors {

using internal::NatsConnection;
using internal::nats_error;
using Clock = std::chrono::steady_clock;

namespace {
std::string header(natsMsg* m, const char* key) {
  const char* v = nullptr;
  return natsMsgHeader_Get(m, key, &v) == NATS_OK && v != nullptr ? std::string(v) : std::string();
}
std::string hex(const char* data, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[static_cast<unsigned char>(data[i]) >> 4];
    s[2 * i + 1] = kHex[static_cast<unsigned char>(data[i]) & 15];
  }
  return s;
}
constexpr size_t kParkedPayloadLimit = 64 * 1024;  // bytes of payload kept in a parked line
}  // namespace

struct JetStreamIngest::Impl {
  struct Pending {  // one message of an atomic batch not yet complete
    uint64_t seq;
    uint64_t position;
    EventMeta meta;
    std::string stream;
    Id128 correlation, causation;
    std::string payload;
  };

  std::string log_dir;
  JetStreamIngestOptions opts;
  std::string checkpoint_name;
  std::string consumer_name;
  std::string parked_file;
  std::unique_ptr<LogWriter> writer;
  std::unique_ptr<NatsConnection> conn;
  natsSubscription* sub = nullptr;
  Clock::time_point next_attempt{};
  std::chrono::milliseconds backoff{0};
  Clock::time_point next_checkpoint{};
  Id128 last_key;                // idempotency key of the local log's last event at open
  bool position_known = false;   // next_source_position derived for the followed source
  uint64_t fetched_next = 1;     // next sequence to fetch
  uint64_t checkpointed_seq = 0;
  std::deque<Pending> batch;     // an atomic batch being collected
  int parked_fd = -1;
  bool parked_dirty = false;

  mutable std::mutex mu;  // guards st (read by status() from any thread)
  IngestStatus st;

  void set_error(const std::string& e) {
    std::lock_guard lk(mu);
    st.last_error = e;
  }
  uint64_t checkpoint_seq() const { return batch.empty() ? fetched_next : batch.front().seq; }

  Status connect();
  void drop_connection(const std::string& why);
  Status park(natsMsg* m, uint64_t seq, const std::string& reason);
  Status park_line(uint64_t seq, const std::string& subject, nlohmann::json headers, const char* data, size_t n,
                   const std::string& reason);
  Status take(natsMsg* m, uint64_t seq);
  Status append_batch();
  Status write_checkpoint_now();
};

Status JetStreamIngest::Impl::connect() {
  auto c = NatsConnection::connect(opts.servers, "sluice-ingest-" + opts.name, opts.connect_timeout, nullptr);
  auto retry_later = [&](Status s) {
    set_error(s.message());
    backoff = std::min(opts.backoff_max, std::max(opts.backoff_initial, backoff * 2));
    next_attempt = Clock::now() + backoff;
    return s;
  };
  if (!c.ok()) return retry_later(c.status());
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = opts.api_timeout.count();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = nullptr;
  natsStatus s = js_GetStreamInfo(&si, (*c)->js(), opts.stream.c_str(), &jo, &jerr);
  if (s != NATS_OK) {
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
      return retry_later(Status(StatusCode::not_found, "JetStream stream " + opts.stream + " does not exist on " +
                                                           internal::join_servers(opts.servers)));
    return retry_later(Status(StatusCode::io_error, nats_error("stream info of " + opts.stream, s, jerr)));
  }
  const uint64_t last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  // A fresh consumer from our own checkpoint each time: the server's consumer state is not
  // trusted across our restarts (the checkpoint and the log are).
  js_DeleteConsumer((*c)->js(), opts.stream.c_str(), consumer_name.c_str(), &jo, &jerr);
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = consumer_name.c_str();
  cc.DeliverPolicy = js_DeliverByStartSequence;
  cc.OptStartSeq = fetched_next;
  cc.AckPolicy = js_AckNone;
  jsConsumerInfo* ci = nullptr;
  s = js_AddConsumer(&ci, (*c)->js(), opts.stream.c_str(), &cc, &jo, &jerr);
  if (s != NATS_OK)
    return retry_later(Status(StatusCode::io_error, nats_error("create consumer " + consumer_name, s, jerr)));
  jsConsumerInfo_Destroy(ci);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = opts.stream.c_str();
  so.Consumer = consumer_name.c_str();
  natsSubscription* new_sub = nullptr;
  s = js_PullSubscribe(&new_sub, (*c)->js(), nullptr, consumer_name.c_str(), &jo, &so, &jerr);
  if (s != NATS_OK)
    return retry_later(Status(StatusCode::io_error, nats_error("pull subscribe to " + opts.stream, s, jerr)));
  conn = std::move(*c);
  sub = new_sub;
  std::lock_guard lk(mu);
  if (st.connected || st.reconnects > 0 || st.appended > 0) ++st.reconnects;
  st.connected = true;
  st.stream_last_sequence = last;
  st.last_error.clear();
  return Status::OK();
}

void JetStreamIngest::Impl::drop_connection(const std::string& why) {
  if (sub != nullptr) {
    natsSubscription_Destroy(sub);
    sub = nullptr;
  }
  conn.reset();
  backoff = std::min(opts.backoff_max, std::max(opts.backoff_initial, backoff * 2));
  next_attempt = Clock::now() + backoff;
  // Messages of an incomplete batch are fetched again after reconnecting.
  if (!batch.empty()) {
    fetched_next = batch.front().seq;
    batch.clear();
  }
  std::lock_guard lk(mu);
  st.connected = false;
  if (!why.empty()) st.last_error = why;
}

Status JetStreamIngest::Impl::park_line(uint64_t seq, const std::string& subject, nlohmann::json headers,
                                        const char* data, size_t n, const std::string& reason) {
  if (parked_fd < 0) {
    ::mkdir((log_dir + "/connectors").c_str(), 0755);
    parked_fd = ::open(parked_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (parked_fd < 0) return Status(StatusCode::io_error, "open " + parked_file + ": " + std::strerror(errno));
  }
  nlohmann::json j;
  j["sequence"] = seq;
  j["subject"] = subject;
  j["reason"] = reason;
  j["headers"] = std::move(headers);
  j["payload_size"] = n;
  j["payload_hex"] = hex(data, std::min(n, kParkedPayloadLimit));
  if (n > kParkedPayloadLimit) j["payload_truncated"] = true;
  const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (::write(parked_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    return Status(StatusCode::io_error, "write " + parked_file + ": " + std::strerror(errno));
  parked_dirty = true;
  std::lock_guard lk(mu);
  ++st.parked;
  st.last_parked_reason = reason;
  return Status::OK();
}

Status JetStreamIngest::Impl::park(natsMsg* m, uint64_t seq, const std::string& reason) {
  nlohmann::json h = nlohmann::json::object();
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(m, &keys, &count) == NATS_OK) {
    for (int i = 0; i < count; ++i) h[keys[i]] = header(m, keys[i]);
    std::free(keys);
  }
  return park_line(seq, natsMsg_GetSubject(m) ? natsMsg_GetSubject(m) : "", std::move(h), natsMsg_GetData(m),
                   static_cast<size_t>(natsMsg_GetDataLength(m)), reason);
}

Status JetStreamIngest::Impl::append_batch() {
  if (batch.empty()) return Status::OK();
  auto sid = writer->stream(batch.front().stream);
  if (!sid.ok()) return sid.status();
  std::vector<EventData> events;
  events.reserve(batch.size());
  const std::string& source = st.source_id;  // set before any message is batched
  for (const Pending& p : batch) {
    EventData e;
    e.type = p.meta.type;
    e.schema_version = p.meta.schema_version;
    e.codec = static_cast<uint8_t>(decode_codec(p.meta.codec));  // an old log's raw byte (1) is written as raw
    e.payload = std::as_bytes(std::span(p.payload.data(), p.payload.size()));
    e.idempotency_key = idempotency_key_for(source, p.position);
    e.correlation_id = p.correlation;
    e.causation_id = p.causation;
    events.push_back(e);
  }
  const uint64_t first_version = batch.front().meta.stream_version;
  AppendResult r = writer->append(*sid, ExpectedVersion::exact(first_version - 1), events);
  if (r.code == AppendCode::conflict) {
    const uint64_t have = writer->stream_version(*sid);
    const std::string reason = "gap: local stream " + batch.front().stream + " holds " + std::to_string(have) +
                               " events, the message carries version " + std::to_string(first_version);
    for (const Pending& p : batch) {
      nlohmann::json h = {{kHeaderMsgId, message_id(source, p.position)},
                          {kHeaderStream, p.stream},
                          {kHeaderEvent, format_event_meta(p.meta)}};
      if (Status s = park_line(p.seq, "", std::move(h), p.payload.data(), p.payload.size(), reason); !s.ok()) return s;
    }
    batch.clear();
    return Status::OK();
  }
  if (!r.ok()) return writer->last_error();
  {
    std::lock_guard lk(mu);
    st.appended += batch.size();
    st.next_source_position = batch.back().position + 1;
  }
  batch.clear();
  return Status::OK();
}

Status JetStreamIngest::Impl::take(natsMsg* m, uint64_t seq) {
  const std::string id = header(m, kHeaderMsgId);
  std::string_view src;
  uint64_t pos = 0;
  if (!parse_message_id(id, &src, &pos)) return park(m, seq, id.empty() ? "malformed: no Nats-Msg-Id" : "malformed: Nats-Msg-Id '" + id + "' is not <source>:<position>");
  const std::string stream = header(m, kHeaderStream);
  if (stream.empty() || stream.size() > 1024) return park(m, seq, "malformed: Sluice-Stream missing or over 1024 bytes");
  EventMeta meta;
  if (!parse_event_meta(header(m, kHeaderEvent), &meta)) return park(m, seq, "malformed: Sluice-Event missing or unreadable");
  Id128 corr, caus;
  if (std::string c = header(m, kHeaderCorrelationId); !c.empty() && !parse_id128(c, &corr))
    return park(m, seq, "malformed: Sluice-Correlation-Id");
  if (std::string c = header(m, kHeaderCausationId); !c.empty() && !parse_id128(c, &caus))
    return park(m, seq, "malformed: Sluice-Causation-Id");
  {
    std::unique_lock lk(mu);
    if (st.source_id.empty()) {
      st.source_id = std::string(src);
    } else if (st.source_id != src) {
      lk.unlock();
      return park(m, seq, "foreign: source '" + std::string(src) + "', this log follows '" + st.source_id + "'");
    }
    if (!position_known) {
      position_known = true;
      const Id128 k = idempotency_key_for(st.source_id, 0);
      st.next_source_position = last_key.hi == k.hi && !last_key.empty() ? last_key.lo + 1 : 0;
    }
    const uint64_t batched_next = batch.empty() ? st.next_source_position : batch.back().position + 1;
    if (pos < batched_next) {
      ++st.duplicates;
      return Status::OK();
    }
  }
  const int len = natsMsg_GetDataLength(m);
  if (static_cast<uint64_t>(len) > opts.max_payload)
    return park(m, seq, "oversized: payload of " + std::to_string(len) + " bytes, the limit is " + std::to_string(opts.max_payload));
  if (!batch.empty() && (batch.back().stream != stream || batch.back().position + 1 != pos)) {
    if (Status s = append_batch(); !s.ok()) return s;  // a batch cut short: append what came
  }
  batch.push_back(Pending{seq, pos, meta, stream, corr, caus, std::string(natsMsg_GetData(m), static_cast<size_t>(len))});
  if (!meta.batch_continues) return append_batch();
  return Status::OK();
}

Status JetStreamIngest::Impl::write_checkpoint_now() {
  const uint64_t seq = checkpoint_seq();
  if (seq == checkpointed_seq) return Status::OK();
  // Never ahead of the log: flush it (and the parked file) first.
  if (Status s = writer->flush(); !s.ok()) return s;
  if (parked_dirty && parked_fd >= 0) {
    ::fsync(parked_fd);
    parked_dirty = false;
  }
  CheckpointData d;
  d.position = seq;
  {
    std::lock_guard lk(mu);
    d.payload = st.source_id;
    d.events_applied = st.appended;
  }
  if (Status s = write_checkpoint(log_dir, checkpoint_name, d); !s.ok()) return s;
  checkpointed_seq = seq;
  return Status::OK();
}

// ---- public ---------------------------------------------------------------------------------

JetStreamIngest::JetStreamIngest(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

JetStreamIngest::~JetStreamIngest() {
  if (impl_ && impl_->writer) close().ignore();
}

Result<std::unique_ptr<JetStreamIngest>> JetStreamIngest::open(const std::string& log_dir,
                                                               const JetStreamIngestOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->log_dir = log_dir;
  impl->opts = options;
  if (options.servers.empty()) return Status(StatusCode::invalid_argument, "ingest: no NATS server given");
  if (Status s = validate_stream_name(options.stream); !s.ok()) return s;
  if (options.fetch_batch == 0) return Status(StatusCode::invalid_argument, "ingest: fetch_batch must be > 0");
  impl->checkpoint_name = "ingest." + options.name;
  if (Status s = validate_projection_name(impl->checkpoint_name); !s.ok())
    return Status(StatusCode::invalid_argument, "ingest name '" + options.name + "': " + s.message());
  impl->consumer_name = "sluice-ingest-" + options.name;
  impl->parked_file = log_dir + "/connectors/" + impl->checkpoint_name + ".parked";
  auto w = LogWriter::open(log_dir, options.log);
  if (!w.ok()) return w.status();
  impl->writer = std::move(*w);
  if (impl->writer->next_position() > 0) {
    auto reader = LogReader::open(log_dir);
    if (!reader.ok()) return reader.status();
    RecordView v;
    if ((*reader)->read((*reader)->end_position() - 1, &v)) impl->last_key = v.idempotency_key();
  }
  auto ck = read_checkpoint(log_dir, impl->checkpoint_name);
  if (!ck.ok()) return ck.status();
  if (ck->has_value()) {
    impl->fetched_next = std::max<uint64_t>(1, (*ck)->position);
    impl->checkpointed_seq = impl->fetched_next;
    impl->st.source_id = (*ck)->payload;
  }
  if (!options.source_id.empty()) {
    if (Status s = validate_source_id(options.source_id); !s.ok()) return s;
    if (!impl->st.source_id.empty() && impl->st.source_id != options.source_id)
      return Status(StatusCode::invalid_argument, "ingest " + options.name + " follows source " + impl->st.source_id +
                                                      ", not " + options.source_id + " (checkpoint in " + log_dir + ")");
    impl->st.source_id = options.source_id;
  }
  impl->st.next_sequence = impl->fetched_next;
  return std::unique_ptr<JetStreamIngest>(new JetStreamIngest(std::move(impl)));
}

Status JetStreamIngest::connect() {
  if (impl_->conn) return Status::OK();
  return impl_->connect();
}

uint64_t JetStreamIngest::poll(std::chrono::milliseconds max_wait) {
  Impl& d = *impl_;
  if (!d.conn) {
    const auto now = Clock::now();
    if (now < d.next_attempt) {
      std::this_thread::sleep_for(std::min<Clock::duration>(max_wait, d.next_attempt - now));
      return 0;
    }
    if (!d.connect().ok()) return 0;
  }
  natsMsgList list{};
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = natsSubscription_Fetch(&list, d.sub, static_cast<int>(d.opts.fetch_batch),
                                        std::max<int64_t>(1, max_wait.count()), &jerr);
  uint64_t taken = 0;
  if (s == NATS_OK) {
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, m) != NATS_OK) continue;
      const uint64_t seq = meta->Sequence.Stream;
      const uint64_t pending = meta->NumPending;
      jsMsgMetaData_Destroy(meta);
      if (seq < d.fetched_next) continue;  // already taken
      if (Status st = d.take(m, seq); !st.ok()) {
        natsMsgList_Destroy(&list);
        d.drop_connection("ingest " + d.opts.name + ": " + st.message());
        return taken;
      }
      d.fetched_next = seq + 1;
      ++taken;
      std::lock_guard lk(d.mu);
      d.st.stream_last_sequence = std::max(d.st.stream_last_sequence, seq + pending);
    }
    natsMsgList_Destroy(&list);
  } else if (s != NATS_TIMEOUT) {
    d.drop_connection(nats_error("fetch from " + d.opts.stream, s, jerr));
    return 0;
  }
  if (taken > 0) d.backoff = std::chrono::milliseconds(0);
  if (Clock::now() >= d.next_checkpoint) {
    if (Status st = d.write_checkpoint_now(); !st.ok()) d.set_error("checkpoint: " + st.message());
    d.next_checkpoint = Clock::now() + d.opts.checkpoint_interval;
  }
  std::lock_guard lk(d.mu);
  d.st.next_sequence = d.fetched_next;
  return taken;
}

Status JetStreamIngest::catch_up(std::chrono::milliseconds timeout) {
  Impl& d = *impl_;
  const auto deadline = Clock::now() + timeout;
  uint64_t target = 0;
  while (target == 0) {
    if (!d.conn && !d.connect().ok() && Clock::now() >= deadline)
      return Status(StatusCode::timeout, "ingest " + d.opts.name + ": " + status().last_error);
    if (d.conn) {
      jsOptions jo;
      jsOptions_Init(&jo);
      jo.Wait = d.opts.api_timeout.count();
      jsStreamInfo* si = nullptr;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      if (js_GetStreamInfo(&si, d.conn->js(), d.opts.stream.c_str(), &jo, &jerr) == NATS_OK) {
        target = si->State.LastSeq + 1;
        jsStreamInfo_Destroy(si);
        break;
      }
      d.drop_connection("stream info of " + d.opts.stream);
    }
    if (Clock::now() >= deadline) return Status(StatusCode::timeout, "ingest " + d.opts.name + ": cannot reach the stream");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  while (d.fetched_next < target || !d.batch.empty()) {
    if (Clock::now() >= deadline)
      return Status(StatusCode::timeout, "ingest " + d.opts.name + ": took up to sequence " +
                                             std::to_string(d.fetched_next - 1) + " of " + std::to_string(target - 1) +
                                             " in time (last error: " + status().last_error + ")");
    poll(std::chrono::milliseconds(100));
  }
  return d.write_checkpoint_now();
}

Status JetStreamIngest::close() {
  Impl& d = *impl_;
  if (!d.writer) return Status::OK();
  Status st = d.write_checkpoint_now();
  if (d.sub != nullptr) {
    natsSubscription_Destroy(d.sub);
    d.sub = nullptr;
  }
  d.conn.reset();
  if (d.parked_fd >= 0) {
    ::fsync(d.parked_fd);
    ::close(d.parked_fd);
    d.parked_fd = -1;
  }
  Status c = d.writer->close();
  d.writer.reset();
  return st.ok() ? c : st;
}

IngestStatus JetStreamIngest::status() const {
  std::lock_guard lk(impl_->mu);
  return impl_->st;
}

const std::string& JetStreamIngest::parked_path() const noexcept { return impl_->parked_file; }

}  // namespace sluice::connectors
