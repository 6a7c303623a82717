// stats_json(): one reading of the stats file as the JSON document the lag page polls
// (GET /stats.json). Built with nlohmann/json; cold path (a request per second at most).
#include <nlohmann/json.hpp>

#include <cstring>
#include <map>
#include <string>

#include "sluice/stats/metrics_server.h"

namespace sluice {
namespace {

constexpr double kNs = 1e-9;

nlohmann::json latency_json(const counters::HistogramSummary& l) {
  return {{"count", l.count},          {"min_s", static_cast<double>(l.min) * kNs},
          {"max_s", static_cast<double>(l.max) * kNs}, {"mean_s", l.mean * kNs},
          {"p50_s", static_cast<double>(l.p50) * kNs}, {"p90_s", static_cast<double>(l.p90) * kNs},
          {"p99_s", static_cast<double>(l.p99) * kNs}, {"p999_s", static_cast<double>(l.p999) * kNs}};
}

// The histogram's non-zero buckets as [lower_ns, upper_ns, count] (counts since the engine
// started): a reader takes the difference of two readings to get the latencies of the
// events applied in between.
nlohmann::json buckets_json(const counters::HistogramWords& h) {
  nlohmann::json b = nlohmann::json::array();
  for (uint32_t i = 0; i < counters::kBuckets; ++i) {
    const uint64_t n = counters::get(h.buckets[i]);
    if (n != 0) b.push_back({counters::bucket_lower(i), counters::bucket_upper(i), n});
  }
  return {{"count", counters::get(h.count)}, {"sum_ns", counters::get(h.sum)}, {"buckets", std::move(b)}};
}

}  // namespace

std::string stats_json(const counters::CountersFile& f, int64_t now_ns) {
  const counters::EngineStat s = counters::read_stats(f);
  // Each projection's histogram words, by slot name.
  std::map<std::string, const counters::HistogramWords*> histograms;
  for (uint32_t i = 0; i < f.slot_count(); ++i) {
    const counters::Slot& slot = f.slot(i);
    // state() acquires the slot's state, which is release-stored after its name.
    if (counters::CountersFile::state(slot) == counters::SlotState::free) continue;
    if (slot.header.kind != static_cast<uint32_t>(counters::SlotKind::projection)) continue;
    histograms[std::string(slot.header.name, strnlen(slot.header.name, sizeof slot.header.name))] = &slot.histogram;
  }
  const double age = s.heartbeat_age_s(now_ns);
  nlohmann::json j = {{"now_ns", now_ns},
                      {"pid", s.pid},
                      {"log_dir", s.log_dir},
                      {"up", s.up(now_ns)},
                      {"heartbeat_age_s", age},
                      {"head_position", s.head_position}};
  nlohmann::json projections = nlohmann::json::array();
  for (const counters::ProjectionStat& p : s.projections) {
    nlohmann::json o = {{"name", p.name},
                        {"state", std::string(counters::to_string(p.state))},
                        {"applied_position", p.applied_position},
                        {"events_behind", p.events_behind},
                        {"bytes_behind", p.bytes_behind},
                        {"time_behind_s", static_cast<double>(p.time_behind_ns) * kNs},
                        {"events_applied", p.events_applied},
                        {"checkpoint_position", p.checkpoint_position},
                        {"dead_letters", p.dead_letters},
                        {"parked_keys", p.parked_keys},
                        {"alert_active", p.alert_active},
                        {"latency", latency_json(p.latency)}};
    auto h = histograms.find(p.name);
    if (h != histograms.end()) o["histogram"] = buckets_json(*h->second);
    projections.push_back(std::move(o));
  }
  j["projections"] = std::move(projections);
  nlohmann::json relays = nlohmann::json::array();
  for (const counters::RelayStat& r : s.relays)
    relays.push_back({{"name", r.name},
                      {"state", std::string(counters::to_string(r.state))},
                      {"lag_events", r.lag_events},
                      {"lag_s", static_cast<double>(r.lag_ns) * kNs},
                      {"latency", latency_json(r.latency)}});
  j["relays"] = std::move(relays);
  return j.dump();
}

}  // namespace sluice
