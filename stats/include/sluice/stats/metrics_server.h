// The counters file in the Prometheus text exposition format, and a minimal HTTP server that
// serves it on loopback (opt-in: EngineOptions::metrics_port, `sluice stat DIR --prometheus
// PORT`).
//
//   GET http://127.0.0.1:PORT/metrics     ──►  render()  ──►  text/plain; version=0.0.4
//   GET http://127.0.0.1:PORT/            ──►  the live lag page (lag_page_html(), text/html)
//   GET http://127.0.0.1:PORT/stats.json  ──►  json()    ──►  application/json (stats_json())
//
// Series (one sample per projection, label projection="<name>"; positions are log
// positions, times are seconds):
//   sluice_engine_up, sluice_engine_heartbeat_age_seconds, sluice_head_position
//   sluice_projection_applied_position, _checkpoint_position
//   sluice_projection_events_behind, _bytes_behind, _time_behind_seconds   (lag estimates)
//   sluice_projection_latency_seconds{quantile="0.5|0.9|0.99|0.999"}, _sum, _count (summary of
//     append→applied latency), sluice_projection_latency_max_seconds
//   sluice_projection_events_applied_total, _retries_total, _handler_errors_total,
//     _alerts_raised_total
//   sluice_projection_dead_letters, _parked_keys, _alert_active
//   sluice_projection_state{state="running|stopped|failed|rebuilding|catching_up"} 1 for the
//     current state, 0 for the others
//   sluice_consumer_events_total, _overruns_total, _caught_up_total, _rejoins_total
//     (label consumer="worker-N (projections)": each worker's ring consumer)
//   sluice_ingress_requests_total, _back_pressured_total, sluice_ingress_queued (ingress mode)
//
// Design
//   One thread accepts connections one at a time (a scrape every few seconds needs no more),
//   reads the request head (at most 8 KiB, 2 s), answers and closes. Only 127.0.0.1 is ever
//   bound: the endpoint has no authentication. render() runs on the server thread; it reads
//   the memory-mapped counters, so it never touches the engine's hot path.
//
// Thread safety
//   start() and stop() from one controlling thread; render() is called on the server thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "sluice/stats/counters_file.h"
#include "sluice/status.h"

namespace sluice {

// One reading of the counters as Prometheus text. `now_ns` (CLOCK_REALTIME) dates the
// heartbeat: the engine counts as up while its heartbeat is under 3 s old.
std::string prometheus_text(const counters::EngineStat& stat, int64_t now_ns);

// One reading of the stats file as JSON, the document the lag page polls (docs/projections.md,
// "The live lag page"): now_ns, pid, log_dir, up, heartbeat_age_s, head_position;
// projections[]: name, state, applied_position, events_behind, bytes_behind, time_behind_s,
// events_applied, checkpoint_position, dead_letters, parked_keys, alert_active,
// latency{count, min_s, max_s, mean_s, p50_s, p90_s, p99_s, p999_s} (since the engine
// started), histogram{count, sum_ns, buckets: [[lower_ns, upper_ns, count], ...]} (the
// non-zero append→applied buckets, counts since start: two readings give the latencies in
// between); relays[]: name, state, lag_events, lag_s, latency.
std::string stats_json(const counters::CountersFile& f, int64_t now_ns);

// The lag page: one self-contained HTML document (inline CSS and JavaScript, nothing fetched
// but /stats.json), stats/src/lag_page.cc.
std::string_view lag_page_html() noexcept;

class MetricsServer {
 public:
  using Render = std::function<std::string()>;

  // Listens on 127.0.0.1:port (0: an ephemeral port; port() tells which) and serves
  // render()'s text at /metrics (and /). Error names the port and errno text.
  static Result<std::unique_ptr<MetricsServer>> start(uint16_t port, Render render);
  // The same, and also the lag page at / and json()'s document at /stats.json (/ then no
  // longer serves the Prometheus text; /metrics does).
  static Result<std::unique_ptr<MetricsServer>> start(uint16_t port, Render render, Render json);
  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  uint16_t port() const noexcept { return port_; }
  // Stops accepting, joins the thread (within ~100 ms plus a request in progress) and closes
  // the listening socket (connections are refused from then on).
  void stop() noexcept;

 private:
  MetricsServer(int fd, uint16_t port, Render render, Render json);
  void serve() noexcept;
  void answer(int client) noexcept;

  int fd_;  // closed by stop()
  const uint16_t port_;
  const Render render_;
  const Render json_;  // empty: no lag page
  // stop_: release by stop(); the server thread acquires it between polls.
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace sluice
