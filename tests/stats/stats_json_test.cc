// The lag page's data (stats_json(), GET /stats.json) parsed with nlohmann/json, and the
// endpoint's routes: / (the page), /stats.json, /metrics.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "sluice/stats/counters_file.h"
#include "sluice/stats/metrics_server.h"

namespace sluice {
namespace {

std::string fresh_path(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("sluice-json-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return (p / counters::kFileName).string();
}

// A file with a head at 100 and two projections: "balances" at 60 with latencies 1..1000 us,
// "rich_accounts" caught up with no latency recorded.
std::unique_ptr<counters::CountersFile> sample_file(const std::string& name) {
  auto f = counters::CountersFile::create(fresh_path(name), {.log_dir = "/x/log", .slot_count = 4}).value();
  counters::put(f->header().head_position, uint64_t{100});
  counters::put(f->header().heartbeat_ns, uint64_t{1'000'000'000});
  counters::Slot* b = f->allocate(counters::SlotKind::projection, "balances").value();
  counters::put(b->counters.applied_position, uint64_t{60});
  counters::put(b->counters.events_applied, uint64_t{60});
  for (uint64_t v = 1; v <= 1000; ++v) counters::record(b->histogram, v * 1000);
  counters::Slot* r = f->allocate(counters::SlotKind::projection, "rich_accounts").value();
  counters::put(r->counters.applied_position, uint64_t{100});
  return f;
}

TEST(StatsJson, HoldsEveryProjectionWithItsLagLatencyAndHistogram) {
  auto f = sample_file("fields");
  const nlohmann::json j = nlohmann::json::parse(stats_json(*f, 1'500'000'000));
  EXPECT_EQ(j.at("log_dir"), "/x/log");
  EXPECT_EQ(j.at("head_position"), 100u);
  EXPECT_EQ(j.at("up"), true);
  EXPECT_NEAR(j.at("heartbeat_age_s").get<double>(), 0.5, 1e-9);
  EXPECT_EQ(j.at("now_ns"), 1'500'000'000);
  ASSERT_EQ(j.at("projections").size(), 2u);
  const nlohmann::json& b = j.at("projections").at(0);
  EXPECT_EQ(b.at("name"), "balances");
  EXPECT_EQ(b.at("state"), "running");
  EXPECT_EQ(b.at("applied_position"), 60u);
  EXPECT_EQ(b.at("events_behind"), 40u);
  EXPECT_EQ(b.at("events_applied"), 60u);
  const nlohmann::json& l = b.at("latency");
  EXPECT_EQ(l.at("count"), 1000u);
  EXPECT_NEAR(l.at("p50_s").get<double>(), 500e-6, 5e-6);
  EXPECT_NEAR(l.at("p999_s").get<double>(), 999e-6, 10e-6);
  EXPECT_NEAR(l.at("max_s").get<double>(), 1000e-6, 1e-12);
  // The histogram: non-zero buckets, ascending, each [lower, upper) holding its values, and
  // their counts add up to the count.
  const nlohmann::json& h = b.at("histogram");
  EXPECT_EQ(h.at("count"), 1000u);
  EXPECT_EQ(h.at("sum_ns"), 500'500'000u);
  uint64_t total = 0, last_lower = 0;
  for (const nlohmann::json& bucket : h.at("buckets")) {
    ASSERT_EQ(bucket.size(), 3u);
    const uint64_t lo = bucket.at(0), hi = bucket.at(1), n = bucket.at(2);
    EXPECT_LT(lo, hi);
    EXPECT_GE(lo, last_lower);
    EXPECT_GT(n, 0u);
    last_lower = hi;
    total += n;
  }
  EXPECT_EQ(total, 1000u);
  EXPECT_EQ(h.at("buckets").at(0).at(0), counters::bucket_lower(counters::bucket_index(1000)));
  const nlohmann::json& r = j.at("projections").at(1);
  EXPECT_EQ(r.at("name"), "rich_accounts");
  EXPECT_EQ(r.at("events_behind"), 0u);
  EXPECT_EQ(r.at("histogram").at("buckets").size(), 0u);
  EXPECT_TRUE(j.at("relays").is_array());
}

TEST(StatsJson, AnOldHeartbeatIsDown) {
  auto f = sample_file("down");
  const nlohmann::json j = nlohmann::json::parse(stats_json(*f, 10'000'000'000));
  EXPECT_EQ(j.at("up"), false);
  EXPECT_NEAR(j.at("heartbeat_age_s").get<double>(), 9.0, 1e-9);
}

// The monitor may stamp its beat between the reader's clock reading and its reading of the
// file (CI once saw sluice_engine_up 0 from a running engine): a beat newer than `now` is
// current, age 0, in the JSON and in the Prometheus text alike.
TEST(StatsJson, AHeartbeatNewerThanTheReadersClockIsUp) {
  auto f = sample_file("newer");
  const nlohmann::json j = nlohmann::json::parse(stats_json(*f, 999'999'000));
  EXPECT_EQ(j.at("up"), true);
  EXPECT_EQ(j.at("heartbeat_age_s").get<double>(), 0.0);
  const std::string text = prometheus_text(counters::read_stats(*f), 999'999'000);
  EXPECT_NE(text.find("\nsluice_engine_up 1\n"), std::string::npos) << text.substr(0, 400);
  EXPECT_NE(text.find("\nsluice_engine_heartbeat_age_seconds 0\n"), std::string::npos) << text.substr(0, 400);
}

// A beat further in the future than the allowed skew (the clock stepped back since a dead
// engine wrote it) is not taken for a live engine.
TEST(StatsJson, AHeartbeatFarInTheFutureIsDown) {
  auto f = sample_file("future");
  const int64_t now = 1'000'000'000 - counters::EngineStat::kHeartbeatSkewNs - 1;
  const nlohmann::json j = nlohmann::json::parse(stats_json(*f, now));
  EXPECT_EQ(j.at("up"), false);
  EXPECT_LT(j.at("heartbeat_age_s").get<double>(), 0.0);
  const std::string text = prometheus_text(counters::read_stats(*f), now);
  EXPECT_NE(text.find("\nsluice_engine_up 0\n"), std::string::npos) << text.substr(0, 400);
}

std::string http_get(uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};  // a server that never answers fails the test, not hangs it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string resp;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return resp;
}

std::string body_of(const std::string& resp) {
  const size_t at = resp.find("\r\n\r\n");
  return at == std::string::npos ? "" : resp.substr(at + 4);
}

TEST(LagPageEndpoint, ServesThePageItsJsonAndTheMetrics) {
  auto f = sample_file("endpoint");
  counters::CountersFile* raw = f.get();
  auto s = MetricsServer::start(
      0, [] { return std::string("sluice_engine_up 1\n"); }, [raw] { return stats_json(*raw, 1'500'000'000); });
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  const uint16_t port = s.value()->port();

  const std::string page = http_get(port, "/");
  ASSERT_EQ(page.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << page.substr(0, 200);
  EXPECT_NE(page.find("Content-Type: text/html; charset=utf-8"), std::string::npos);
  const std::string html = body_of(page);
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(html.find("stats.json"), std::string::npos);
  // Self-contained: nothing loaded from elsewhere.
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);

  const std::string js = http_get(port, "/stats.json");
  ASSERT_EQ(js.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << js.substr(0, 200);
  EXPECT_NE(js.find("Content-Type: application/json"), std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(body_of(js));
  EXPECT_EQ(j.at("projections").at(0).at("name"), "balances");

  const std::string metrics = http_get(port, "/metrics");
  ASSERT_EQ(metrics.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(body_of(metrics), "sluice_engine_up 1\n");
  EXPECT_EQ(http_get(port, "/nothing").rfind("HTTP/1.1 404", 0), 0u);
}

TEST(LagPageEndpoint, WithoutAJsonRendererTheRootStillServesTheMetrics) {
  auto s = MetricsServer::start(0, [] { return std::string("sluice_engine_up 1\n"); });
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(body_of(http_get(s.value()->port(), "/")), "sluice_engine_up 1\n");
  EXPECT_EQ(http_get(s.value()->port(), "/stats.json").rfind("HTTP/1.1 404", 0), 0u);
}

}  // namespace
}  // namespace sluice
