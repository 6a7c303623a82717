// sluice info DIR, sluice verify DIR, sluice dump DIR: read-only inspection of a log (safe
// while a writer appends to it; `dump --follow` tails it). sluice verify --repair DIR and
// sluice salvage DIR: point_in_time recovery (they take the writer's lock).
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "commands.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "sluice/serialization/document.h"
#include "sluice/serialization/schema_registry.h"

namespace sluice::tools {
namespace {

std::string format_time(int64_t ns) {
  if (ns <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  char buf[40];
  std::tm tm{};
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", ::gmtime_r(&t, &tm));
  char out[64];
  std::snprintf(out, sizeof out, "%s.%09" PRId64 "Z", buf, ns % 1'000'000'000);
  return out;
}

// TIME for --since/--until: nanoseconds since the epoch, or UTC ISO 8601
// (2026-11-29T19:00:00Z, fraction optional, as `dump` prints it). False if neither.
bool parse_time(const std::string& s, int64_t* ns) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) {
    *ns = std::strtoll(s.c_str(), nullptr, 10);
    return true;
  }
  std::tm tm{};
  const char* rest = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return false;
  int64_t frac = 0;
  if (*rest == '.') {
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest, ++digits)
      if (digits < 9) frac = frac * 10 + (*rest - '0');
    if (digits == 0) return false;
    for (; digits < 9; ++digits) frac *= 10;
  }
  if (*rest == 'Z') ++rest;
  if (*rest != '\0') return false;
  *ns = static_cast<int64_t>(::timegm(&tm)) * 1'000'000'000 + frac;
  return true;
}

// Opens a reader, turning errors into the exit codes of commands.h.
std::unique_ptr<LogReader> open_reader(const char* cmd, const std::string& dir, int* exit_code,
                                       const ReaderOptions& ro = {}) {
  if (!check_log_dir(cmd, dir, exit_code)) return nullptr;
  auto r = LogReader::open(dir, ro);
  if (!r.ok()) {
    error_line(cmd, describe(r.status()));
    *exit_code = r.status().code() == StatusCode::not_found ? kExitUsage : kExitFailed;
    return nullptr;
  }
  return std::move(r.value());
}

std::string base64(std::span<const std::byte> in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (std::to_integer<uint32_t>(in[i]) << 16) | (std::to_integer<uint32_t>(in[i + 1]) << 8) |
                 std::to_integer<uint32_t>(in[i + 2]);
    out += k[v >> 18];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += k[v & 63];
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t v = std::to_integer<uint32_t>(in[i]) << 16;
    if (rest == 2) v |= std::to_integer<uint32_t>(in[i + 1]) << 8;
    out += k[v >> 18];
    out += k[(v >> 12) & 63];
    out += rest == 2 ? k[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string hex(std::span<const std::byte> in) {
  static const char* k = "0123456789abcdef";
  std::string out;
  out.reserve(in.size() * 2);
  for (std::byte b : in) {
    out += k[std::to_integer<unsigned>(b) >> 4];
    out += k[std::to_integer<unsigned>(b) & 15];
  }
  return out;
}

void put_id(Json& j, const char* key, Id128 id) {
  if (id.empty()) return;
  char b[40];
  std::snprintf(b, sizeof b, "%016" PRIx64 "%016" PRIx64, id.hi, id.lo);
  j[key] = b;
}

Json info_json(const std::string& dir, const LogInfo& i) {
  Json j;
  j["log"] = dir;
  j["begin_position"] = i.begin_position;
  j["end_position"] = i.end_position;
  j["events"] = i.end_position - i.begin_position;
  j["streams"] = i.streams;
  j["used_bytes"] = i.used_bytes;
  j["first_timestamp"] = i.first_timestamp_ns;
  j["first_time"] = format_time(i.first_timestamp_ns);
  j["last_timestamp"] = i.last_timestamp_ns;
  j["last_time"] = format_time(i.last_timestamp_ns);
  j["last_writer_durability"] = i.last_writer_durability.empty() ? "unknown" : i.last_writer_durability;
  Json tail;
  tail["damaged"] = i.tail_damaged;
  if (i.tail_damaged) {
    tail["segment"] = i.tail_segment;
    tail["offset"] = i.tail_offset;
    tail["reason"] = i.tail_reason;
  }
  j["tail"] = tail;
  Json segs = Json::array();
  for (const SegmentInfo& s : i.segments)
    segs.push_back({{"index", s.index},
                    {"base_position", s.base_position},
                    {"end_position", s.end_position},
                    {"used_bytes", s.used_bytes},
                    {"segment_size", s.segment_size},
                    {"state", s.sealed ? "sealed" : "active"}});
  j["segments"] = segs;
  return j;
}

int run_info(const std::string& dir, bool json) {
  int code = kExitOk;
  auto r = open_reader("info", dir, &code);
  if (!r) return code;
  LogInfo i = r->info();
  if (json) {
    print_json(info_json(dir, i));
    return kExitOk;
  }
  std::printf("log              %s\n", dir.c_str());
  std::printf("positions        [%" PRIu64 ", %" PRIu64 ")  %" PRIu64 " events\n", i.begin_position,
              i.end_position, i.end_position - i.begin_position);
  std::printf("streams          %zu\n", i.streams);
  std::printf("segments         %zu  (%" PRIu64 " bytes used)\n", i.segments.size(), i.used_bytes);
  std::printf("first event      %s\n", format_time(i.first_timestamp_ns).c_str());
  std::printf("last event       %s\n", format_time(i.last_timestamp_ns).c_str());
  std::printf("last writer      durability %s\n",
              i.last_writer_durability.empty() ? "unknown" : i.last_writer_durability.c_str());
  if (i.tail_damaged)
    std::printf("tail             damaged in segment %" PRIu64 " at offset %" PRIu64
                " (%s); the next writer open truncates it\n",
                i.tail_segment, i.tail_offset, i.tail_reason.c_str());
  else
    std::printf("tail             clean\n");
  std::printf("\n  %-20s %12s %12s %12s %12s %s\n", "segment", "base", "end", "used", "size", "state");
  for (const SegmentInfo& s : i.segments)
    std::printf("  %020" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %s\n",
                s.index, s.base_position, s.end_position, s.used_bytes, s.segment_size,
                s.sealed ? "sealed" : "active");
  return kExitOk;
}

// Collects each damaged region a reader's reporter is told about.
class CollectingReporter : public Reporter {
 public:
  void on_damage(const LogDamage& d) override {
    regions.push_back({{"path", d.path},
                       {"offset", d.offset},
                       {"end_offset", d.end_offset},
                       {"kind", d.corruption ? "corruption" : "torn tail"},
                       {"reason", d.reason}});
  }
  Json regions = Json::array();
};

// The segment size recorded in sluice.meta (0 if unknown).
uint64_t meta_segment_size(const std::string& dir) {
  std::ifstream meta(dir + "/sluice.meta");
  for (std::string line; std::getline(meta, line);)
    if (line.rfind("segment_size=", 0) == 0) return std::strtoull(line.c_str() + 13, nullptr, 10);
  return 0;
}

// Opens the log with a point_in_time writer: the valid prefix stays, everything after the
// first damage goes to DIR/quarantine/. Fills *out with what was kept and moved.
int salvage(const char* cmd, const std::string& dir, Json* out) {
  LogOptions o;
  o.recovery = RecoveryMode::point_in_time;
  o.prefault = false;
  if (const uint64_t size = meta_segment_size(dir); size != 0) o.segment_size = size;
  auto w = LogWriter::open(dir, o);
  if (!w.ok()) {
    error_line(cmd, "salvage: " + describe(w.status()));
    return kExitFailed;
  }
  const std::string note = (*w)->recovery_note();
  const uint64_t end = (*w)->next_position();
  if (Status st = (*w)->close(); !st.ok()) {
    error_line(cmd, "salvage: " + describe(st));
    return kExitFailed;
  }
  (*out)["end_position"] = end;
  (*out)["note"] = note;
  Json q = Json::array();
  const std::filesystem::path qdir = std::filesystem::path(dir) / "quarantine";
  std::error_code ec;
  if (std::filesystem::is_directory(qdir, ec))
    for (const auto& e : std::filesystem::directory_iterator(qdir, ec))
      q.push_back({{"path", e.path().string()}, {"bytes", static_cast<uint64_t>(e.file_size(ec))}});
  (*out)["quarantine"] = q;
  return kExitOk;
}

void print_salvage(const Json& s) {
  std::printf("salvage: the log holds positions [0, %" PRIu64 ")\n", s["end_position"].get<uint64_t>());
  const std::string note = s["note"].get<std::string>();
  std::printf("%s\n", note.empty() ? "salvage: nothing was damaged; nothing moved" : ("salvage: " + note).c_str());
  for (const auto& q : s["quarantine"])
    std::printf("quarantine: %s (%" PRIu64 " bytes)\n", q["path"].get<std::string>().c_str(),
                q["bytes"].get<uint64_t>());
}

int run_salvage(const std::string& dir, bool json) {
  Json s;
  const int rc = salvage("salvage", dir, &s);
  if (rc != kExitOk) return rc;
  if (json) print_json(s);
  else print_salvage(s);
  return kExitOk;
}

int run_verify(const std::string& dir, bool repair, bool json, bool quiet) {
  int code = kExitOk;
  if (!check_log_dir("verify", dir, &code)) return code;
  ReaderOptions ro;
  ro.check_invariants = true;
  Progress progress("verifying", quiet);
  progress.update(0, 0);
  auto r = LogReader::open(dir, ro);
  progress.finish();
  Json j;
  j["log"] = dir;
  if (!r.ok()) {
    if (r.status().code() == StatusCode::not_found) {
      error_line("verify", describe(r.status()));
      return kExitUsage;
    }
    // List every damaged region, not only the first.
    CollectingReporter rep;
    ReaderOptions all;
    all.reporter = &rep;
    all.every_region = true;
    (void)LogReader::open(dir, all);
    j["ok"] = false;
    j["error"] = describe(r.status());
    j["damage"] = rep.regions;
    if (!json) {
      error_line("verify", describe(r.status()));
      for (const auto& d : rep.regions) {
        std::printf("damage: %s offset %" PRIu64, d["path"].get<std::string>().c_str(), d["offset"].get<uint64_t>());
        if (d["end_offset"].get<uint64_t>() > d["offset"].get<uint64_t>())
          std::printf("..%" PRIu64, d["end_offset"].get<uint64_t>());
        std::printf(" (%s): %s\n", d["kind"].get<std::string>().c_str(), d["reason"].get<std::string>().c_str());
      }
    }
    int rc = kExitFailed;
    if (repair) {
      Json s;
      rc = salvage("verify", dir, &s) == kExitOk ? kExitOk : kExitFailed;
      if (rc == kExitOk) {
        j["salvage"] = s;
        if (!json) print_salvage(s);
      }
    }
    if (json) print_json(j);
    return rc;
  }
  LogInfo i = (*r)->info();
  j["ok"] = true;
  j["events"] = i.end_position - i.begin_position;
  j["segments"] = i.segments.size();
  j["begin_position"] = i.begin_position;
  j["end_position"] = i.end_position;
  j["streams"] = i.streams;
  j["tail_damaged"] = i.tail_damaged;
  if (i.tail_damaged)
    j["tail"] = {{"segment", i.tail_segment}, {"offset", i.tail_offset}, {"reason", i.tail_reason}};
  if (!json) {
    std::printf("ok: %" PRIu64 " events in %zu segments, positions [%" PRIu64 ", %" PRIu64
                "), %zu streams, every record's checksum verified\n",
                i.end_position - i.begin_position, i.segments.size(), i.begin_position, i.end_position, i.streams);
    if (i.tail_damaged)
      std::printf("note: crash-torn tail in segment %" PRIu64 " at offset %" PRIu64
                  " (%s); the next writer open truncates it\n",
                  i.tail_segment, i.tail_offset, i.tail_reason.c_str());
  }
  int rc = kExitOk;
  if (repair && i.tail_damaged) {
    r->reset();
    Json s;
    rc = salvage("verify", dir, &s);
    if (rc == kExitOk) {
      j["salvage"] = s;
      if (!json) print_salvage(s);
    }
  }
  if (json) print_json(j);
  return rc;
}

struct DumpArgs {
  std::string dir;
  uint64_t from = 0;
  uint64_t to = UINT64_MAX;
  std::string stream;
  std::string type;
  std::string since, until;
  uint64_t limit = UINT64_MAX;
  bool follow = false;
  bool hex = false;
  bool quiet = false;
  int poll_ms = 100;
};

// Set by SIGINT/SIGTERM while `dump --follow` waits: it then exits 0.
std::atomic<bool> g_stop{false};  // written by the signal handler, read by the follow loop (relaxed: a flag, no data)
extern "C" void on_stop_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

int run_dump(const DumpArgs& a) {
  int code = kExitOk;
  auto r = open_reader("dump", a.dir, &code);
  if (!r) return code;
  // Payloads are decoded with the schemas stored in the log itself; raw events with no
  // schema (a plain append, encode_raw) and events with no usable schema fall back to base64
  // (or hex).
  serialization::SchemaRegistry schemas;
  if (Status st = schemas.load(*r); !st.ok()) error_line("dump", "warning: " + describe(st));
  std::optional<uint32_t> type;
  if (!a.type.empty()) {
    if (a.type.find_first_not_of("0123456789") == std::string::npos) {
      type = static_cast<uint32_t>(std::strtoul(a.type.c_str(), nullptr, 10));
    } else {
      type = schemas.type_id(a.type);
      if (!type) {
        error_line("dump", "no event type named '" + a.type + "' in the schemas of " + a.dir);
        return kExitUsage;
      }
    }
  }
  int64_t since = 0, until = INT64_MAX;
  if (!a.since.empty() && !parse_time(a.since, &since)) {
    error_line("dump", "--since: '" + a.since + "' is not a time (2026-11-29T19:00:00Z or nanoseconds since the epoch)");
    return kExitUsage;
  }
  if (!a.until.empty() && !parse_time(a.until, &until)) {
    error_line("dump", "--until: '" + a.until + "' is not a time (2026-11-29T19:00:00Z or nanoseconds since the epoch)");
    return kExitUsage;
  }
  std::optional<StreamId> stream;
  if (!a.stream.empty()) {
    stream = r->find_stream(a.stream);
    if (!stream && !a.follow) {
      error_line("dump", "no stream named '" + a.stream + "' in " + a.dir);
      return kExitUsage;
    }
  }
  // A reader of the dump may go away (`| head`): stop quietly, exit 0.
  ::signal(SIGPIPE, SIG_IGN);
  if (a.follow) {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
  }
  uint64_t written = 0;
  bool pipe_closed = false;
  auto emit = [&](const RecordView& v) {
    Json j;
    j["position"] = v.position();
    j["stream"] = std::string(r->stream_name(v.stream_id()));
    j["stream_id"] = v.stream_id();
    j["version"] = v.stream_version();
    j["type"] = v.event_type();
    if (std::string_view name = schemas.type_name(v.event_type()); !name.empty()) j["type_name"] = std::string(name);
    j["schema_version"] = v.schema_version();
    j["codec"] = v.codec();
    j["codec_name"] = std::string(codec_name(v.codec()));
    j["timestamp"] = v.timestamp_ns();
    j["time"] = format_time(v.timestamp_ns());
    put_id(j, "idempotency_key", v.idempotency_key());
    put_id(j, "correlation_id", v.correlation_id());
    put_id(j, "causation_id", v.causation_id());
    const bool opaque = v.codec_id() == CodecId::raw &&
                        schemas.find(v.event_type(), v.schema_version(), CodecId::raw) == nullptr;
    auto doc = opaque ? Result<nlohmann::json>(Status(StatusCode::not_found, ""))
                      : serialization::to_document(schemas, v.event_type(), v.schema_version(), v.codec_id(),
                                                   v.payload());
    if (doc.ok()) {
      j["payload"] = Json(*doc);
    } else {
      if (!doc.status().message().empty()) j["payload_error"] = doc.status().message();
      if (a.hex) j["payload_hex"] = hex(v.payload());
      else j["payload_base64"] = base64(v.payload());
    }
    std::string line = json_text(j);
    line += '\n';
    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) pipe_closed = true;
    ++written;
  };
  // [from, to) of positions, narrowed by the time index.
  uint64_t from = a.from;
  if (since > 0) from = std::max(from, r->position_at_time(since));
  const uint64_t to = a.to;
  auto keep = [&](const RecordView& v) {
    if (type && v.event_type() != *type) return false;
    return v.timestamp_ns() >= since && v.timestamp_ns() < until;
  };
  // Done when the limit, --to or --until is reached.
  auto done_at = [&](uint64_t position, int64_t ts) { return written >= a.limit || position >= to || ts >= until; };
  Progress progress("dumping", a.quiet || a.follow);
  RecordView v;
  uint64_t next = from;        // the next position to look at (whole log)
  size_t stream_index = 0;     // the next index into the stream's positions (--stream)
  bool finished = false;
  while (!finished && !pipe_closed) {
    if (stream) {
      auto positions = r->stream_positions(*stream);
      while (stream_index < positions.size() && !pipe_closed) {
        const uint64_t p = positions[stream_index++];
        if (p < from) continue;
        r->read(p, &v);
        if (done_at(p, v.timestamp_ns())) {
          finished = true;
          break;
        }
        if (keep(v)) emit(v);
        progress.update(p, r->end_position());
      }
    } else {
      auto c = r->cursor(next);
      while (!pipe_closed && c.next(&v)) {
        if (done_at(v.position(), v.timestamp_ns())) {
          finished = true;
          break;
        }
        if (keep(v)) emit(v);
        progress.update(v.position(), r->end_position());
      }
      next = std::max(next, c.position());
    }
    if (finished || !a.follow) break;
    // --follow: wait for the writer's next commit (a poll: a reader never signals a writer).
    if (std::fflush(stdout) != 0) pipe_closed = true;
    while (!pipe_closed && !g_stop.load(std::memory_order_relaxed)) {
      auto n = r->refresh();
      if (!n.ok()) {
        error_line("dump", describe(n.status()));
        return kExitFailed;
      }
      if (!stream && !a.stream.empty()) stream = r->find_stream(a.stream);
      if (*n > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(a.poll_ms));
    }
    if (g_stop.load(std::memory_order_relaxed)) break;
  }
  progress.finish();
  if (std::fflush(stdout) != 0) pipe_closed = true;
  return kExitOk;
}

}  // namespace

void add_info(CLI::App& app, int* exit_code) {
  struct Opts {
    std::string dir;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("info", "segments, positions, streams, size, last writer");
  c->add_option("dir", o->dir, "log directory")->required();
  c->add_flag("--json", o->json, "print one JSON object");
  c->callback([o, exit_code] { *exit_code = run_info(o->dir, o->json); });
}

void add_verify(CLI::App& app, int* exit_code) {
  struct Opts {
    std::string dir;
    bool repair = false, json = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "verify",
      "check every record and invariant; exit 0 consistent (a crash-torn tail included), 1 "
      "corrupt (every damaged region listed)");
  c->add_option("dir", o->dir, "log directory")->required();
  c->add_flag("--repair", o->repair,
              "then salvage: keep the valid prefix, move the rest into DIR/quarantine/ (exit 0 "
              "when repaired)");
  c->add_flag("--json", o->json, "print one JSON object (ok, events, damage, salvage)");
  c->add_flag("--quiet", o->quiet, "no progress line on a terminal");
  c->callback([o, exit_code] { *exit_code = run_verify(o->dir, o->repair, o->json, o->quiet); });
}

void add_salvage(CLI::App& app, int* exit_code) {
  struct Opts {
    std::string dir;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "salvage",
      "open with point_in_time recovery: keep the valid prefix, move everything after the first "
      "damage into DIR/quarantine/ (never deleted), report what moved and why");
  c->add_option("dir", o->dir, "log directory")->required();
  c->add_flag("--json", o->json, "print one JSON object");
  c->callback([o, exit_code] {
    int code = kExitOk;
    *exit_code = check_log_dir("salvage", o->dir, &code) ? run_salvage(o->dir, o->json) : code;
  });
}

void add_dump(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<DumpArgs>();
  CLI::App* c = app.add_subcommand("dump", "events as JSON lines; --follow tails a live log");
  c->add_option("dir", a->dir, "log directory")->required();
  c->add_option("--from", a->from, "first position");
  c->add_option("--to", a->to, "stop before this position")->default_str("end of log");
  c->add_option("--stream", a->stream, "only this stream (by name)");
  c->add_option("--type", a->type, "only this event type (schema name or numeric type id)");
  c->add_option("--since", a->since,
                "only events at or after TIME (2026-11-29T19:00:00Z, or nanoseconds since the epoch)");
  c->add_option("--until", a->until, "stop at the first event at or after TIME");
  c->add_option("--limit", a->limit, "at most this many events")->default_str("no limit");
  c->add_flag("--follow,-f", a->follow,
              "at the end, wait for new events and print them too, until interrupted (Ctrl-C: exit 0)");
  c->add_option("--poll-ms", a->poll_ms, "with --follow: how often to look for new events")
      ->check(CLI::Range(1, 60000));
  c->add_flag("--hex", a->hex, "undecoded payloads as payload_hex instead of payload_base64");
  c->add_flag("--quiet", a->quiet, "no progress line on a terminal");
  c->callback([a, exit_code] { *exit_code = run_dump(*a); });
}

}  // namespace sluice::tools
