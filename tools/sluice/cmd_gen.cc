// sluice gen DIR --count N --payload-bytes B --streams S --durability none|group|sync [--quiet]
// A load generator: appends N events round-robin over S streams, printing each acknowledged
// position on stdout as soon as it is acknowledged (or, with --quiet, one JSON summary).
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "gen_payload.h"
#include "sluice/bus/log_writer.h"

namespace sluice::tools {
namespace {

struct GenArgs {
  std::string dir;
  uint64_t count = 1000;
  uint32_t payload_bytes = 64;
  uint32_t streams = 1;
  std::string durability = "none";
  uint64_t segment_size = 64ull << 20;
  uint32_t batch = 1;
  bool quiet = false;
};

int run_gen(const GenArgs& a) {
  LogOptions o;
  if (!parse_durability(a.durability, &o.durability)) {
    error_line("gen", "--durability must be none, group or sync, not '" + a.durability + "'");
    return kExitUsage;
  }
  o.segment_size = a.segment_size;
  auto opened = LogWriter::open(a.dir, o);
  if (!opened.ok()) {
    error_line("gen", describe(opened.status()));
    return opened.status().code() == StatusCode::invalid_argument ? kExitUsage : kExitFailed;
  }
  LogWriter& w = **opened;
  std::vector<StreamId> ids;
  for (uint32_t s = 0; s < a.streams; ++s) {
    auto id = w.stream("stream-" + std::to_string(s));
    if (!id.ok()) {
      error_line("gen", describe(id.status()));
      return kExitFailed;
    }
    ids.push_back(*id);
  }
  std::vector<std::byte> payloads(static_cast<size_t>(a.payload_bytes) * a.batch);
  std::vector<EventData> batch(a.batch);
  uint64_t printed = w.acknowledged_position();  // next position to print
  auto print_acked = [&](uint64_t upto) {
    for (; printed < upto; ++printed) std::printf("%" PRIu64 "\n", printed);
    std::fflush(stdout);
  };
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t done = 0;
  size_t next_stream = 0;
  while (done < a.count) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(a.batch, a.count - done));
    const uint64_t pos = w.next_position();
    for (uint32_t i = 0; i < n; ++i) {
      std::byte* p = payloads.data() + static_cast<size_t>(i) * a.payload_bytes;
      gen_payload(pos + i, p, a.payload_bytes);
      batch[i].type = 1;
      batch[i].payload = std::span<const std::byte>(p, a.payload_bytes);
    }
    AppendResult r = w.append(ids[next_stream], ExpectedVersion::any(),
                              std::span<const EventData>(batch.data(), n));
    if (!r.ok()) {
      if (!a.quiet) print_acked(w.acknowledged_position());
      error_line("gen", "append failed: " + (w.last_error().message().empty() ? std::string(to_string(r.code))
                                                                          : w.last_error().message()));
      return kExitFailed;
    }
    next_stream = (next_stream + 1) % ids.size();
    done += n;
    if (!a.quiet) {
      const uint64_t acked = w.acknowledged_position();
      if (acked > printed) print_acked(acked);
    }
  }
  if (Status st = w.flush(); !st.ok()) {
    if (!a.quiet) print_acked(w.acknowledged_position());
    error_line("gen", describe(st));
    return kExitFailed;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.quiet) {
    std::printf("{\"events\": %" PRIu64 ", \"events_per_s\": %.0f, \"seconds\": %.6f, "
                "\"durability\": \"%s\", \"next_position\": %" PRIu64 "}\n",
                done, secs > 0 ? static_cast<double>(done) / secs : 0.0, secs, a.durability.c_str(),
                w.next_position());
  } else {
    print_acked(w.acknowledged_position());
  }
  if (Status st = w.close(); !st.ok()) {
    error_line("gen", describe(st));
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

void add_gen(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<GenArgs>();
  CLI::App* c = app.add_subcommand("gen", "append generated events to a log (created if missing)");
  c->add_option("dir", a->dir, "log directory")->required();
  c->add_option("--count", a->count, "events to append")->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  c->add_option("--payload-bytes", a->payload_bytes, "payload size")->check(CLI::Range(0u, 16u << 20));
  c->add_option("--streams", a->streams, "streams, round-robin")->check(CLI::Range(1u, 1u << 20));
  c->add_option("--durability", a->durability, "none | group | sync");
  c->add_option("--segment-size", a->segment_size, "bytes per segment file");
  c->add_option("--batch", a->batch, "events per atomic append")->check(CLI::Range(1u, 1u << 16));
  c->add_flag("--quiet", a->quiet, "print only a JSON summary line");
  c->callback([a, exit_code] { *exit_code = run_gen(*a); });
}

}  // namespace sluice::tools
