#include "sluice/stats/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace sluice {
namespace {

// Label values: backslash, double quote and newline escaped (text format 0.0.4).
std::string label_value(std::string_view v) {
  std::string o;
  for (char c : v) {
    if (c == '\\') o += "\\\\";
    else if (c == '"') o += "\\\"";
    else if (c == '\n') o += "\\n";
    else o += c;
  }
  return o;
}

std::string number(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

class Exposition {
 public:
  // # HELP and # TYPE once per family, before its samples.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(std::string_view name, const std::string& labels, double v) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    out_ += number(v);
    out_ += '\n';
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

constexpr double kNs = 1e-9;

// A histogram family's samples for one series (`l`: its labels): cumulative _bucket{le=...}
// from the coarse buckets, then +Inf, _sum and _count.
void histogram_samples(Exposition& x, const std::string& name, const std::string& l,
                       const counters::CoarseHistogram& h) {
  for (uint32_t i = 0; i < counters::kCoarseBuckets; ++i) {
    char le[32];  // 2^(10+2i) ns in seconds, exact to 6 digits: 1.024e-06, 4.096e-06, ...
    std::snprintf(le, sizeof le, "%.6g", static_cast<double>(counters::coarse_bound_ns(i)) * kNs);
    x.sample(name + "_bucket", l + ",le=\"" + le + "\"", static_cast<double>(h.below[i]));
  }
  x.sample(name + "_bucket", l + ",le=\"+Inf\"", static_cast<double>(h.count));
  x.sample(name + "_sum", l, static_cast<double>(h.sum_ns) * kNs);
  x.sample(name + "_count", l, static_cast<double>(h.count));
}

}  // namespace

std::string prometheus_text(const counters::EngineStat& s, int64_t now_ns) {
  using counters::ProjectionStat;
  Exposition x;
  const double age = s.heartbeat_age_s(now_ns);
  x.family("sluice_engine_up", "gauge", "1 while the engine's heartbeat in the stats file is under 3 s old");
  x.sample("sluice_engine_up", "", s.up(now_ns) ? 1 : 0);
  x.family("sluice_engine_heartbeat_age_seconds", "gauge", "Age of the engine's last heartbeat (-1: none yet)");
  x.sample("sluice_engine_heartbeat_age_seconds", "", age);
  x.family("sluice_head_position", "gauge", "Log head: every position below it is committed");
  x.sample("sluice_head_position", "", static_cast<double>(s.head_position));

  auto each = [&](std::string_view name, std::string_view type, std::string_view help, auto value) {
    x.family(name, type, help);
    for (const ProjectionStat& p : s.projections)
      x.sample(name, "projection=\"" + label_value(p.name) + "\"", static_cast<double>(value(p)));
  };
  each("sluice_projection_applied_position", "gauge", "Every position below it is applied",
       [](const ProjectionStat& p) { return p.applied_position; });
  each("sluice_projection_checkpoint_position", "gauge", "Position of the last checkpoint written",
       [](const ProjectionStat& p) { return p.checkpoint_position; });
  each("sluice_projection_events_behind", "gauge", "Events between the applied position and the head (estimate)",
       [](const ProjectionStat& p) { return p.events_behind; });
  each("sluice_projection_bytes_behind", "gauge", "Log bytes between the applied position and the head (estimate)",
       [](const ProjectionStat& p) { return p.bytes_behind; });
  each("sluice_projection_time_behind_seconds", "gauge",
       "Append time of the head minus that of the last applied event (estimate)",
       [](const ProjectionStat& p) { return static_cast<double>(p.time_behind_ns) * kNs; });

  x.family("sluice_projection_latency_seconds", "summary", "Append to applied latency");
  for (const ProjectionStat& p : s.projections) {
    const std::string l = "projection=\"" + label_value(p.name) + "\"";
    const std::pair<const char*, uint64_t> qs[] = {
        {"0.5", p.latency.p50}, {"0.9", p.latency.p90}, {"0.99", p.latency.p99}, {"0.999", p.latency.p999}};
    for (const auto& [q, v] : qs)
      x.sample("sluice_projection_latency_seconds", l + ",quantile=\"" + q + "\"", static_cast<double>(v) * kNs);
    x.sample("sluice_projection_latency_seconds_sum", l,
             p.latency.mean * static_cast<double>(p.latency.count) * kNs);
    x.sample("sluice_projection_latency_seconds_count", l, static_cast<double>(p.latency.count));
  }
  // The same latency as a histogram: histogram_quantile(0.99, rate(..._bucket[5m])) gives a
  // recent p99, which the lifetime summary above cannot.
  x.family("sluice_projection_applied_latency_seconds", "histogram",
           "Append to applied latency (coarse buckets, powers of 4 from ~1 us)");
  for (const ProjectionStat& p : s.projections)
    histogram_samples(x, "sluice_projection_applied_latency_seconds", "projection=\"" + label_value(p.name) + "\"",
                      p.latency_buckets);
  each("sluice_projection_latency_max_seconds", "gauge", "Largest append to applied latency seen",
       [](const ProjectionStat& p) { return static_cast<double>(p.latency.max) * kNs; });

  each("sluice_projection_events_applied_total", "counter", "Events handled (applied, skipped or parked)",
       [](const ProjectionStat& p) { return p.events_applied; });
  each("sluice_projection_retries_total", "counter", "Handler retries",
       [](const ProjectionStat& p) { return p.retries; });
  each("sluice_projection_handler_errors_total", "counter", "Handler failures (throw, retry, reject)",
       [](const ProjectionStat& p) { return p.handler_errors; });
  each("sluice_projection_alerts_raised_total", "counter", "Lag alerts raised",
       [](const ProjectionStat& p) { return p.alerts_raised; });
  each("sluice_projection_dead_letters", "gauge", "Events parked in the dead-letter list",
       [](const ProjectionStat& p) { return p.dead_letters; });
  each("sluice_projection_parked_keys", "gauge", "Keys whose events are parked",
       [](const ProjectionStat& p) { return p.parked_keys; });
  each("sluice_projection_alert_active", "gauge", "1 while a lag alert is raised",
       [](const ProjectionStat& p) { return p.alert_active ? 1 : 0; });

  auto each_relay = [&](std::string_view name, std::string_view type, std::string_view help, auto value) {
    if (s.relays.empty()) return;
    x.family(name, type, help);
    for (const counters::RelayStat& r : s.relays)
      x.sample(name, "relay=\"" + label_value(r.name) + "\"", static_cast<double>(value(r)));
  };
  using counters::RelayStat;
  each_relay("sluice_relay_connected", "gauge", "1 while the relay is connected to its broker",
             [](const RelayStat& r) { return r.connected ? 1 : 0; });
  each_relay("sluice_relay_acknowledged_position", "gauge", "Every event below it is acknowledged by the broker",
             [](const RelayStat& r) { return r.acknowledged_position; });
  each_relay("sluice_relay_lag_events", "gauge", "Events between the acknowledged position and the log's end",
             [](const RelayStat& r) { return r.lag_events; });
  each_relay("sluice_relay_lag_bytes", "gauge", "Log bytes between the acknowledged position and the log's end",
             [](const RelayStat& r) { return r.lag_bytes; });
  each_relay("sluice_relay_lag_seconds", "gauge", "Age of the oldest event not yet acknowledged",
             [](const RelayStat& r) { return static_cast<double>(r.lag_ns) * kNs; });
  each_relay("sluice_relay_in_flight", "gauge", "Published, not yet acknowledged",
             [](const RelayStat& r) { return r.in_flight; });
  each_relay("sluice_relay_published_total", "counter", "Messages sent (resends included)",
             [](const RelayStat& r) { return r.published; });
  each_relay("sluice_relay_duplicates_total", "counter", "Acknowledgements flagged duplicate (counted as success)",
             [](const RelayStat& r) { return r.duplicates; });
  each_relay("sluice_relay_failures_total", "counter", "Refused or timed-out publishes",
             [](const RelayStat& r) { return r.failures; });
  each_relay("sluice_relay_reconnects_total", "counter", "Connections made after the first",
             [](const RelayStat& r) { return r.reconnects; });
  if (!s.relays.empty()) {
    x.family("sluice_relay_latency_seconds", "summary", "Append to acknowledged-by-the-broker latency");
    for (const RelayStat& r : s.relays) {
      const std::string l = "relay=\"" + label_value(r.name) + "\"";
      const std::pair<const char*, uint64_t> qs[] = {
          {"0.5", r.latency.p50}, {"0.9", r.latency.p90}, {"0.99", r.latency.p99}, {"0.999", r.latency.p999}};
      for (const auto& [q, v] : qs)
        x.sample("sluice_relay_latency_seconds", l + ",quantile=\"" + q + "\"", static_cast<double>(v) * kNs);
      x.sample("sluice_relay_latency_seconds_sum", l, r.latency.mean * static_cast<double>(r.latency.count) * kNs);
      x.sample("sluice_relay_latency_seconds_count", l, static_cast<double>(r.latency.count));
    }
    x.family("sluice_relay_acked_latency_seconds", "histogram",
             "Append to acknowledged-by-the-broker latency (coarse buckets, powers of 4 from ~1 us)");
    for (const RelayStat& r : s.relays)
      histogram_samples(x, "sluice_relay_acked_latency_seconds", "relay=\"" + label_value(r.name) + "\"",
                        r.latency_buckets);
  }

  x.family("sluice_projection_state", "gauge", "1 for the projection's current state");
  constexpr counters::SlotState kStates[] = {counters::SlotState::running, counters::SlotState::stopped,
                                             counters::SlotState::failed, counters::SlotState::rebuilding,
                                             counters::SlotState::catching_up};
  for (const ProjectionStat& p : s.projections)
    for (counters::SlotState st : kStates)
      x.sample("sluice_projection_state",
               "projection=\"" + label_value(p.name) + "\",state=\"" + std::string(counters::to_string(st)) + "\"",
               p.state == st ? 1 : 0);

  // The engine's ring consumers (one per worker) and its ingress.
  auto consumer = [&](std::string_view name, std::string_view help, uint64_t counters::ConsumerStat::*field) {
    if (s.consumers.empty()) return;
    x.family(name, "counter", help);
    for (const counters::ConsumerStat& c : s.consumers)
      x.sample(name, "consumer=\"" + label_value(c.name) + "\"", static_cast<double>(c.*field));
  };
  consumer("sluice_consumer_events_total", "Records the worker's ring consumer handed to its projections",
           &counters::ConsumerStat::events);
  consumer("sluice_consumer_overruns_total", "Times the ring lapped the consumer (it then read from the log)",
           &counters::ConsumerStat::overruns);
  consumer("sluice_consumer_caught_up_total", "Records read from the log instead of the ring",
           &counters::ConsumerStat::caught_up);
  consumer("sluice_consumer_rejoins_total", "Times the consumer went back to the ring", &counters::ConsumerStat::rejoins);
  // Aggregate repositories (label repository="<aggregate type>").
  auto repo = [&](std::string_view name, std::string_view help, uint64_t counters::RepositoryStat::*field) {
    if (s.repositories.empty()) return;
    x.family(name, "counter", help);
    for (const counters::RepositoryStat& r : s.repositories)
      x.sample(name, "repository=\"" + label_value(r.name) + "\"", static_cast<double>(r.*field));
  };
  repo("sluice_repository_commands_total", "Commands executed", &counters::RepositoryStat::commands);
  repo("sluice_repository_rejected_total", "Commands the handler rejected", &counters::RepositoryStat::rejected);
  repo("sluice_repository_duplicates_total", "Commands answered from the idempotency index",
       &counters::RepositoryStat::duplicates);
  repo("sluice_repository_conflicts_total", "Appends that met a version conflict", &counters::RepositoryStat::conflicts);
  repo("sluice_repository_snapshots_ignored_total",
       "Snapshots ignored (corrupt, old format, other fingerprint or log): full replay instead",
       &counters::RepositoryStat::snapshots_ignored);
  // Saga agents (label agent="<name>").
  auto saga = [&](std::string_view name, std::string_view type, std::string_view help, auto field) {
    if (s.sagas.empty()) return;
    x.family(name, type, help);
    for (const counters::SagaStat& g : s.sagas)
      x.sample(name, "agent=\"" + label_value(g.name) + "\"", static_cast<double>(g.*field));
  };
  saga("sluice_sagas_running", "gauge", "Sagas started and not finished", &counters::SagaStat::running);
  saga("sluice_sagas_completed", "gauge", "Sagas whose every step succeeded", &counters::SagaStat::completed);
  saga("sluice_sagas_compensated", "gauge", "Sagas that turned back and undid every completed step",
       &counters::SagaStat::compensated);
  saga("sluice_sagas_compensation_failed", "gauge", "Sagas whose compensation failed past its retries",
       &counters::SagaStat::compensation_failed);
  saga("sluice_sagas_parked", "gauge", "Sagas that could not be resumed", &counters::SagaStat::parked);
  if (!s.sagas.empty()) {
    x.family("sluice_sagas_oldest_running_age_seconds", "gauge", "Age of the oldest running saga (0: none)");
    for (const counters::SagaStat& g : s.sagas)
      x.sample("sluice_sagas_oldest_running_age_seconds", "agent=\"" + label_value(g.name) + "\"",
               g.oldest_running_started_ns ? static_cast<double>(now_ns - g.oldest_running_started_ns) * kNs : 0);
  }
  if (s.ingress.present) {
    x.family("sluice_ingress_requests_total", "counter", "Submissions the writer thread handled");
    x.sample("sluice_ingress_requests_total", "", static_cast<double>(s.ingress.requests));
    x.family("sluice_ingress_back_pressured_total", "counter", "Submissions refused as back-pressure");
    x.sample("sluice_ingress_back_pressured_total", "", static_cast<double>(s.ingress.back_pressured));
    x.family("sluice_ingress_queued", "gauge", "Submissions waiting in the queue (estimate)");
    x.sample("sluice_ingress_queued", "", static_cast<double>(s.ingress.queued));
  }
  return x.take();
}

namespace {

// The lag page's routes: / (the page) and /stats.json. False for any other path.
bool route_lag_page(std::string_view path, const MetricsServer::Render& json, std::string* body, const char** type) {
  if (path == "/" || path == "/index.html") {
    *body = std::string(lag_page_html());
    *type = "text/html; charset=utf-8";
    return true;
  }
  if (path == "/stats.json") {
    *body = json();
    *type = "application/json";
    return true;
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(uint16_t port, Render render) {
  return start(port, std::move(render), Render());
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(uint16_t port, Render render, Render json) {
  auto error = [&](const char* what) {
    return Status(StatusCode::io_error, "metrics endpoint 127.0.0.1:" + std::to_string(port) + ": " + what + ": " +
                                            std::strerror(errno));
  };
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error("socket");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only, never INADDR_ANY
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
    Status st = error("bind/listen");
    ::close(fd);
    return st;
  }
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    Status st = error("getsockname");
    ::close(fd);
    return st;
  }
  std::unique_ptr<MetricsServer> s(new MetricsServer(fd, ntohs(a.sin_port), std::move(render), std::move(json)));
  MetricsServer* raw = s.get();
  s->thread_ = std::thread([raw] { raw->serve(); });
  return s;
}

MetricsServer::MetricsServer(int fd, uint16_t port, Render render, Render json)
    : fd_(fd), port_(port), render_(std::move(render)), json_(std::move(json)) {}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop() noexcept {
  stop_.store(true, std::memory_order_release);  // pairs with serve()'s acquire
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void MetricsServer::serve() noexcept {
  while (!stop_.load(std::memory_order_acquire)) {  // pairs with stop()'s release
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;  // timeout (check stop_) or EINTR
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    answer(c);
    ::close(c);
  }
}

void MetricsServer::answer(int c) noexcept {
  timeval tv{2, 0};  // a client that sends nothing does not hold the server for longer
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  try {
    std::string req;
    char buf[1024];
    while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos && req.size() < 8192) {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    const std::string_view line = std::string_view(req).substr(0, req.find_first_of("\r\n"));
    int code = 200;
    std::string body;
    const char* type = "text/plain; version=0.0.4; charset=utf-8";
    if (line.substr(0, 4) != "GET ") {
      code = 405;
      body = "only GET is served\n";
      type = "text/plain; charset=utf-8";
    } else {
      std::string_view path = line.substr(4);
      path = path.substr(0, path.find(' '));
      path = path.substr(0, path.find('?'));
      if (json_ && route_lag_page(path, json_, &body, &type)) {
        // the lag page or its JSON
      } else if (path == "/metrics" || path == "/") {
        body = render_();
      } else {
        code = 404;
        body = "not found: try /metrics\n";
        type = "text/plain; charset=utf-8";
      }
    }
    const char* reason = code == 200 ? "OK" : code == 404 ? "Not Found" : "Method Not Allowed";
    std::string head = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + type +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    std::string out = head + body;
    for (size_t sent = 0; sent < out.size();) {
      const ssize_t n = ::send(c, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
  } catch (...) {  // out of memory or a throwing render(): drop this scrape, keep serving
  }
}

}  // namespace sluice
