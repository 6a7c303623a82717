// sluice info DIR, sluice verify DIR, sluice dump DIR: read-only inspection of a log (safe
// while a writer appends to it). sluice verify --repair DIR and sluice salvage DIR: point_in_time
// recovery (they take the writer's lock).
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ctime>
#include <string>

#include "commands.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "sluice/serialization/schema_registry.h"

namespace sluice::tools {
namespace {

std::string format_time(int64_t ns) {
  if (ns <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", std::gmtime(&t));
  char out[64];
  std::snprintf(out, sizeof out, "%s.%09" PRId64 "Z", buf, ns % 1'000'000'000);
  return out;
}

// Opens a reader, turning errors into the exit codes of commands.h.
std::unique_ptr<LogReader> open_reader(const char* cmd, const std::string& dir, int* exit_code) {
  if (!check_log_dir(cmd, dir, exit_code)) return nullptr;
  auto r = LogReader::open(dir);
  if (!r.ok()) {
    error_line(cmd, r.status().to_string());
    *exit_code = r.status().code() == StatusCode::not_found ? kExitUsage : kExitFailed;
    return nullptr;
  }
  return std::move(r.value());
}

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void base64(std::string& out, std::span<const std::byte> in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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
}

void id_hex(std::string& out, const char* key, Id128 id) {
  if (id.empty()) return;
  char b[64];
  std::snprintf(b, sizeof b, ",\"%s\":\"%016" PRIx64 "%016" PRIx64 "\"", key, id.hi, id.lo);
  out += b;
}

int run_info(const std::string& dir) {
  int code = kExitOk;
  auto r = open_reader("info", dir, &code);
  if (!r) return code;
  LogInfo i = r->info();
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

// Prints each damaged region a reader's reporter is told about.
class PrintingReporter : public Reporter {
 public:
  void on_damage(const LogDamage& d) override {
    ++count;
    std::printf("damage: %s offset %" PRIu64, d.path.c_str(), d.offset);
    if (d.end_offset > d.offset) std::printf("..%" PRIu64, d.end_offset);
    std::printf(" (%s): %s\n", d.corruption ? "corruption" : "torn tail", d.reason.c_str());
  }
  int count = 0;
};

// The segment size recorded in sluice.meta (0 if unknown).
uint64_t meta_segment_size(const std::string& dir) {
  std::ifstream meta(dir + "/sluice.meta");
  for (std::string line; std::getline(meta, line);)
    if (line.rfind("segment_size=", 0) == 0) return std::strtoull(line.c_str() + 13, nullptr, 10);
  return 0;
}

// Opens the log with a point_in_time writer: the valid prefix stays, everything after the
// first damage goes to DIR/quarantine/. Prints what was kept and moved.
int run_salvage(const char* cmd, const std::string& dir) {
  LogOptions o;
  o.recovery = RecoveryMode::point_in_time;
  o.prefault = false;
  if (const uint64_t size = meta_segment_size(dir); size != 0) o.segment_size = size;
  auto w = LogWriter::open(dir, o);
  if (!w.ok()) {
    error_line(cmd, "salvage: " + w.status().to_string());
    return kExitFailed;
  }
  const std::string note = (*w)->recovery_note();
  const uint64_t end = (*w)->next_position();
  if (Status st = (*w)->close(); !st.ok()) {
    error_line(cmd, "salvage: " + st.to_string());
    return kExitFailed;
  }
  std::printf("salvage: the log holds positions [0, %" PRIu64 ")\n", end);
  std::printf("%s\n", note.empty() ? "salvage: nothing was damaged; nothing moved"
                                   : ("salvage: " + note).c_str());
  const std::filesystem::path q = std::filesystem::path(dir) / "quarantine";
  std::error_code ec;
  if (std::filesystem::is_directory(q, ec))
    for (const auto& e : std::filesystem::directory_iterator(q, ec))
      std::printf("quarantine: %s (%" PRIu64 " bytes)\n", e.path().c_str(),
                  static_cast<uint64_t>(e.file_size(ec)));
  return kExitOk;
}

int run_verify(const std::string& dir, bool repair) {
  int code = kExitOk;
  if (!check_log_dir("verify", dir, &code)) return code;
  ReaderOptions ro;
  ro.check_invariants = true;
  auto r = LogReader::open(dir, ro);
  if (!r.ok()) {
    error_line("verify", r.status().to_string());
    if (r.status().code() == StatusCode::not_found) return kExitUsage;
    // List every damaged region, not only the first.
    PrintingReporter rep;
    ReaderOptions all;
    all.reporter = &rep;
    all.every_region = true;
    (void)LogReader::open(dir, all);
    if (repair) return run_salvage("verify", dir) == kExitOk ? kExitOk : kExitFailed;
    return kExitFailed;
  }
  LogInfo i = (*r)->info();
  std::printf("ok: %" PRIu64 " events in %zu segments, positions [%" PRIu64 ", %" PRIu64
              "), %zu streams, every record's checksum verified\n",
              i.end_position - i.begin_position, i.segments.size(), i.begin_position,
              i.end_position, i.streams);
  if (i.tail_damaged)
    std::printf("note: crash-torn tail in segment %" PRIu64 " at offset %" PRIu64
                " (%s); the next writer open truncates it\n",
                i.tail_segment, i.tail_offset, i.tail_reason.c_str());
  if (repair && i.tail_damaged) {
    r->reset();
    return run_salvage("verify", dir);
  }
  return kExitOk;
}

struct DumpArgs {
  std::string dir;
  uint64_t from = 0;
  std::string stream;
  uint64_t limit = UINT64_MAX;
};

int run_dump(const DumpArgs& a) {
  int code = kExitOk;
  auto r = open_reader("dump", a.dir, &code);
  if (!r) return code;
  // Payloads are decoded with the schemas stored in the log itself; codec 0 and events with
  // no usable schema fall back to base64.
  serialization::SchemaRegistry schemas;
  if (Status st = schemas.load(*r); !st.ok()) error_line("dump", "warning: " + st.to_string());
  std::string line;
  uint64_t written = 0;
  auto emit = [&](const RecordView& v) {
    line.clear();
    char b[160];
    std::snprintf(b, sizeof b, "{\"position\":%" PRIu64 ",\"stream\":", v.position());
    line += b;
    json_string(line, r->stream_name(v.stream_id()));
    std::snprintf(b, sizeof b,
                  ",\"stream_id\":%" PRIu64 ",\"version\":%" PRIu64 ",\"type\":%" PRIu32
                  ",\"schema_version\":%u,\"codec\":%u,\"timestamp\":%" PRId64 ",\"time\":\"%s\"",
                  v.stream_id(), v.stream_version(), v.event_type(), v.schema_version(), v.codec(),
                  v.timestamp_ns(), format_time(v.timestamp_ns()).c_str());
    line += b;
    id_hex(line, "idempotency_key", v.idempotency_key());
    id_hex(line, "correlation_id", v.correlation_id());
    id_hex(line, "causation_id", v.causation_id());
    if (std::string_view name = schemas.type_name(v.event_type()); !name.empty()) {
      line += ",\"type_name\":";
      json_string(line, name);
    }
    auto doc = v.codec() == 0 ? Result<nlohmann::json>(Status(StatusCode::not_found, ""))
                              : schemas.to_document(v.event_type(), v.schema_version(),
                                                    static_cast<serialization::CodecId>(v.codec()),
                                                    v.payload());
    if (doc.ok()) {
      line += ",\"payload\":";
      line += serialization::to_json_text(*doc);
    } else {
      if (!doc.status().message().empty()) {
        line += ",\"payload_error\":";
        json_string(line, doc.status().message());
      }
      line += ",\"payload_base64\":\"";
      base64(line, v.payload());
      line += '"';
    }
    line += "}\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    ++written;
  };
  RecordView v;
  if (!a.stream.empty()) {
    auto id = r->find_stream(a.stream);
    if (!id) {
      error_line("dump", "no stream named '" + a.stream + "' in " + a.dir);
      return kExitFailed;
    }
    for (uint64_t p : r->stream_positions(*id)) {
      if (written >= a.limit) break;
      if (p < a.from) continue;
      r->read(p, &v);
      emit(v);
    }
  } else {
    auto c = r->cursor(a.from);
    while (written < a.limit && c.next(&v)) emit(v);
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

void add_info(CLI::App& app, int* exit_code) {
  auto dir = std::make_shared<std::string>();
  CLI::App* c = app.add_subcommand("info", "segments, positions, streams, size, last writer");
  c->add_option("dir", *dir, "log directory")->required();
  c->callback([dir, exit_code] { *exit_code = run_info(*dir); });
}

void add_verify(CLI::App& app, int* exit_code) {
  auto dir = std::make_shared<std::string>();
  auto repair = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand(
      "verify",
      "check every record and invariant; exit 0 consistent (a crash-torn tail included), 1 "
      "corrupt (every damaged region listed)");
  c->add_option("dir", *dir, "log directory")->required();
  c->add_flag("--repair", *repair,
              "then salvage: keep the valid prefix, move the rest into DIR/quarantine/ (exit 0 "
              "when repaired)");
  c->callback([dir, repair, exit_code] { *exit_code = run_verify(*dir, *repair); });
}

void add_salvage(CLI::App& app, int* exit_code) {
  auto dir = std::make_shared<std::string>();
  CLI::App* c = app.add_subcommand(
      "salvage",
      "open with point_in_time recovery: keep the valid prefix, move everything after the first "
      "damage into DIR/quarantine/ (never deleted), report what moved and why");
  c->add_option("dir", *dir, "log directory")->required();
  c->callback([dir, exit_code] {
    int code = kExitOk;
    *exit_code = check_log_dir("salvage", *dir, &code) ? run_salvage("salvage", *dir) : code;
  });
}

void add_dump(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<DumpArgs>();
  CLI::App* c = app.add_subcommand("dump", "events as JSON lines");
  c->add_option("dir", a->dir, "log directory")->required();
  c->add_option("--from", a->from, "first position");
  c->add_option("--stream", a->stream, "only this stream (by name)");
  c->add_option("--limit", a->limit, "at most this many events");
  c->callback([a, exit_code] { *exit_code = run_dump(*a); });
}

}  // namespace sluice::tools
