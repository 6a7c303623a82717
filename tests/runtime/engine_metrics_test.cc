// The engine's opt-in Prometheus endpoint (loopback, ephemeral port): GET /metrics parses as
// the text exposition format and holds the expected series; and the engine with event types
// bound to each codec (Engine::bind) gives the same read models with unchanged handlers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "bank_model.h"
#include "sluice/stats/metrics_server.h"
#include "sluice/runtime/engine.h"
#include "runtime/engine_test_util.h"

namespace sluice {
namespace {

using serialization::CodecId;

std::string fresh_dir(const std::string& name) { return testing::fresh_engine_dir("metrics", name); }

// One HTTP/1.1 GET over loopback; returns the whole response ("" on a socket error).
std::string http_get(uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};  // a server that accepts and never answers fails the test, not hangs it
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

bool metric_name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// One sample line, `name{label="value",...} number`: its series (name with labels) and value.
bool parse_sample(const std::string& line, std::string* series, double* value) {
  size_t i = 0;
  while (i < line.size() && metric_name_char(line[i], i == 0)) ++i;
  if (i == 0) return false;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const size_t name_start = i;
      while (i < line.size() && metric_name_char(line[i], i == name_start) && line[i] != ':') ++i;
      if (i == name_start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return false;
      for (i += 2; i < line.size() && line[i] != '"'; ++i)
        if (line[i] == '\\') ++i;  // an escaped character
      if (i >= line.size()) return false;
      ++i;  // closing quote
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return false;
  *series = line.substr(0, i);
  const std::string v = line.substr(i + 1);
  if (v == "NaN" || v == "+Inf" || v == "-Inf") return true;
  char* end = nullptr;
  *value = std::strtod(v.c_str(), &end);
  return !v.empty() && end == v.c_str() + v.size();
}

// Parses a text exposition: every line is a comment (# HELP / # TYPE) or a sample.
// Returns series (name with labels) -> value; records malformed lines in *bad.
std::map<std::string, double> parse_exposition(const std::string& text, std::vector<std::string>* bad) {
  std::map<std::string, double> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    std::string series;
    double v = 0;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    if (parse_sample(line, &series, &v)) out[series] = v;
    else bad->push_back(line);
  }
  return out;
}

TEST(EngineMetricsConcurrency, PrometheusEndpointServesTheCountersOnLoopback) {
  const std::string dir = fresh_dir("prom");
  EngineOptions o;
  o.log.segment_size = 4 << 20;
  o.metrics_port = 0;  // ephemeral
  auto e = Engine::open(dir, o);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto dep = e.value()->bind<bank::Deposited>(CodecId::flatbuffers);
  auto wd = e.value()->bind<bank::Withdrawn>(CodecId::flatbuffers);
  ASSERT_TRUE(dep.ok() && wd.ok());
  auto balances = e.value()->add_projection<bank::Balances>("balances").value();
  ASSERT_TRUE(e.value()->add_projection<bank::DailyTotals>("daily_totals").ok());
  ASSERT_TRUE(e.value()->start().ok());
  const uint16_t port = e.value()->metrics_port();
  ASSERT_NE(port, 0);

  serialization::EncodeBuffer buf;
  const StreamId s = e.value()->stream(bank::stream_name(7)).value();
  for (int i = 0; i < 100; ++i) {
    auto ev = dep->encode(bank::Deposited{7, 10, 1}, buf);
    ASSERT_TRUE(ev.ok() && e.value()->append(s, ExpectedVersion::any(), *ev).ok());
  }
  auto overdraft = wd->encode(bank::Withdrawn{7, 1'000'000, 1}, buf);
  ASSERT_TRUE(overdraft.ok());
  auto last = e.value()->append(s, ExpectedVersion::any(), *overdraft);
  ASSERT_TRUE(last.ok());
  for (auto* r : e.value()->runners()) ASSERT_TRUE(r->wait_for(last.position, std::chrono::seconds(30)).ok());
  EXPECT_EQ(balances.get()->balance(7).value_or(0), 1000);

  const std::string resp = http_get(port, "/metrics");
  ASSERT_EQ(resp.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << resp.substr(0, 200);
  EXPECT_NE(resp.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  const std::string body = resp.substr(resp.find("\r\n\r\n") + 4);
  std::vector<std::string> bad;
  auto series = parse_exposition(body, &bad);
  // The value of a series that must be there: a missing one fails (std::map::operator[]
  // would read it as 0 and pass every check against 0).
  auto value = [&](const std::string& key) {
    auto it = series.find(key);
    if (it == series.end()) {
      ADD_FAILURE() << "series missing: " << key;
      return -1.0;
    }
    return it->second;
  };
  EXPECT_TRUE(bad.empty()) << "malformed: " << (bad.empty() ? "" : bad[0]);
  // The head and, per projection, position, lag, latency quantiles, dead letters, state.
  EXPECT_EQ(value("sluice_head_position"), 101);
  EXPECT_EQ(value("sluice_engine_up"), 1);
  const std::string b = "{projection=\"balances\"}";
  EXPECT_EQ(value("sluice_projection_applied_position" + b), 101);
  EXPECT_EQ(series.count("sluice_projection_events_behind" + b), 1u);
  EXPECT_EQ(series.count("sluice_projection_bytes_behind" + b), 1u);
  EXPECT_EQ(series.count("sluice_projection_time_behind_seconds" + b), 1u);
  for (const char* q : {"0.5", "0.9", "0.99", "0.999"})
    EXPECT_EQ(series.count("sluice_projection_latency_seconds{projection=\"balances\",quantile=\"" + std::string(q) + "\"}"), 1u) << q;
  EXPECT_EQ(value("sluice_projection_latency_seconds_count" + b), 101);
  EXPECT_EQ(series.count("sluice_projection_latency_max_seconds" + b), 1u);
  // The same latency as a histogram (histogram_quantile over rate()): +Inf holds every event.
  EXPECT_EQ(value("sluice_projection_applied_latency_seconds_count" + b), 101);
  EXPECT_EQ(value("sluice_projection_applied_latency_seconds_bucket{projection=\"balances\",le=\"+Inf\"}"), 101);
  EXPECT_EQ(series.count("sluice_projection_applied_latency_seconds_bucket{projection=\"balances\",le=\"1.024e-06\"}"), 1u);
  EXPECT_EQ(value("sluice_projection_dead_letters" + b), 1);  // the overdraft
  EXPECT_EQ(value("sluice_projection_dead_letters{projection=\"daily_totals\"}"), 0);
  EXPECT_EQ(value("sluice_projection_state{projection=\"balances\",state=\"running\"}"), 1);
  EXPECT_EQ(value("sluice_projection_state{projection=\"balances\",state=\"failed\"}"), 0);
  // The worker's ring consumer (the monitor copies its counters every interval).
  const std::string c = "{consumer=\"worker-0 (balances, daily_totals)\"}";
  for (const char* f : {"events", "overruns", "caught_up", "rejoins"})
    EXPECT_EQ(series.count(std::string("sluice_consumer_") + f + "_total" + c), 1u) << f;
  EXPECT_EQ(series.count("sluice_ingress_requests_total"), 0u) << "caller mode has no ingress";

  EXPECT_EQ(http_get(port, "/other").rfind("HTTP/1.1 404", 0), 0u);
  ASSERT_TRUE(e.value()->stop().ok());
  EXPECT_EQ(http_get(port, "/metrics"), "");  // closed with the engine
  e.value().reset();
  std::filesystem::remove_all(dir);
}

TEST(EngineMetrics, ServerBindsLoopbackOnly) {
  auto s = MetricsServer::start(0, [] { return std::string("x 1\n"); });
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  // The listening socket's address, from /proc: 0100007F is 127.0.0.1.
  char hex[8];
  std::snprintf(hex, sizeof hex, "%04X", s.value()->port());
  std::string tcp;
  if (FILE* f = std::fopen("/proc/self/net/tcp", "r")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) tcp.append(buf, n);
    std::fclose(f);
  }
  EXPECT_NE(tcp.find("0100007F:" + std::string(hex) + " 00000000:0000 0A"), std::string::npos) << tcp;
  EXPECT_EQ(tcp.find("00000000:" + std::string(hex) + " 00000000:0000 0A"), std::string::npos);
}

// The same projection code whatever codec the events are bound to (configuration only).
TEST(EngineMetrics, SameReadModelsWithEveryCodec) {
  std::map<CodecId, std::map<std::string, uint64_t>> digests;
  for (CodecId c : {CodecId::raw, CodecId::flatbuffers, CodecId::json}) {
    const std::string dir = fresh_dir(std::string("codec-") + std::string(to_string(c)));
    EngineOptions o;
    o.log.segment_size = 4 << 20;
    auto e = Engine::open(dir, o);
    ASSERT_TRUE(e.ok());
    auto dep = e.value()->bind<bank::Deposited>(c);
    auto wd = e.value()->bind<bank::Withdrawn>(c);
    ASSERT_TRUE(dep.ok() && wd.ok()) << dep.status().to_string();
    for (std::string_view n : bank::kProjectionNames)
      ASSERT_TRUE(e.value()->add_projection<Projection>(std::string(n), {}, bank::factory_for(n)).ok());
    ASSERT_TRUE(e.value()->start().ok());
    serialization::EncodeBuffer buf;
    std::vector<StreamId> ids;
    for (uint64_t a = 0; a < 5; ++a) ids.push_back(e.value()->stream(bank::stream_name(a)).value());
    for (uint64_t i = 0; i < 500; ++i) {
      auto ev = i % 5 == 4 ? wd->encode(bank::Withdrawn{i % 5, 7, 3}, buf)
                           : dep->encode(bank::Deposited{i % 5, static_cast<int64_t>(i), static_cast<int64_t>(i / 50)}, buf);
      ASSERT_TRUE(ev.ok());
      ASSERT_TRUE(e.value()->append(ids[i % 5], ExpectedVersion::any(), *ev).ok());
    }
    ASSERT_TRUE(e.value()->stop().ok());
    for (auto* r : e.value()->runners()) digests[c][r->name()] = r->digest();
    e.value().reset();
    std::filesystem::remove_all(dir);
  }
  EXPECT_EQ(digests[CodecId::raw].size(), 3u);
  EXPECT_EQ(digests[CodecId::raw], digests[CodecId::flatbuffers]);
  EXPECT_EQ(digests[CodecId::raw], digests[CodecId::json]);
}

}  // namespace
}  // namespace sluice
