// The `sluice` tool's conventions (docs/cli.md): commands and suites named when unknown,
// --version, defaults in --help, hints at the subcommand's help, messages without internal
// code names, the exit codes (0 ok, 1 failed on a log, 2 usage), JSON outputs that a JSON
// parser reads whatever bytes the names hold, and `dump`'s filters and --follow.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bus/log_test_util.h"
#include "sluice/bus/log_format.h"
#include "sluice/bus/log_writer.h"
#include "sluice/stats/counters_file.h"
#include "tools/subprocess.h"

namespace sluice {
namespace {

using namespace sluice::testing;
using nlohmann::json;

// Every line of `text` parsed as JSON (a parse error fails the test).
std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(at, nl - at);
    at = nl + 1;
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON: " << e.what() << "\n" << line;
    }
  }
  return out;
}

void expect_usage(const RunResult& r, const std::string& says) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  // Internal status names stay inside: no "not_found: ..." or "invalid_argument: ...".
  for (const char* code : {"not_found", "invalid_argument", "io_error", "corruption:"})
    EXPECT_EQ(r.err.find(code), std::string::npos) << r.err;
}

class CliConventions : public ::testing::Test {
 protected:
  void gen(uint64_t count, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"gen", dir(), "--count", std::to_string(count), "--payload-bytes", "32",
                                     "--segment-size", "65536", "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = sluice_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string dir() const { return tmp_.sub("log"); }
  TempDir tmp_{"cliconv"};
};

// --- names, version, help --------------------------------------------------------------------

TEST_F(CliConventions, UnknownCommandIsNamedAsSuch) {
  RunResult r = sluice_cli({"frobnicate"});
  expect_usage(r, "unknown command 'frobnicate'");
  EXPECT_NE(r.err.find("dump"), std::string::npos) << "lists the commands: " << r.err;
}

TEST_F(CliConventions, UnknownBenchSuiteIsNamedAsSuch) {
  RunResult r = sluice_cli({"bench", "nosuch"});
  expect_usage(r, "unknown bench suite 'nosuch'");
  EXPECT_NE(r.err.find("see sluice bench --help"), std::string::npos) << r.err;
}

TEST_F(CliConventions, VersionNamesLibraryAndLogFormat) {
  RunResult r = sluice_cli({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("sluice 0.", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("log format version " + std::to_string(log_format::kFormatVersion)), std::string::npos)
      << r.out;
}

TEST_F(CliConventions, HelpShowsDefaultsAndExitCodes) {
  RunResult stat = sluice_cli({"stat", "--help"});
  EXPECT_EQ(stat.exit_code, 0);
  EXPECT_NE(stat.out.find("--interval-ms"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("=1000"), std::string::npos) << stat.out;
  RunResult gen = sluice_cli({"gen", "--help"});
  EXPECT_NE(gen.out.find("--durability TEXT=none"), std::string::npos) << gen.out;
  RunResult top = sluice_cli({"--help"});
  EXPECT_NE(top.out.find("Exit codes"), std::string::npos) << top.out;
}

TEST_F(CliConventions, UsageErrorsPointAtTheSubcommandHelp) {
  expect_usage(sluice_cli({"info"}), "see sluice info --help");
  expect_usage(sluice_cli({"dump", dir(), "--limit", "many"}), "see sluice dump --help");
  expect_usage(sluice_cli({"bench", "log", "--scale", "-1"}), "see sluice bench log --help");
}

// --- exit codes --------------------------------------------------------------------------------

TEST_F(CliConventions, NotALogIsUsageWithoutInternalCodeNames) {
  const std::string empty = tmp_.sub("empty");
  std::filesystem::create_directories(empty);
  for (const char* cmd : {"info", "verify", "dump"}) {
    SCOPED_TRACE(cmd);
    expect_usage(sluice_cli({cmd, empty}), empty);
  }
}

TEST_F(CliConventions, NoSuchStreamOrTypeIsUsage) {
  gen(10);
  expect_usage(sluice_cli({"dump", dir(), "--stream", "nosuch"}), "no stream named 'nosuch'");
  expect_usage(sluice_cli({"dump", dir(), "--type", "NoSuchEvent"}), "no event type named 'NoSuchEvent'");
  expect_usage(sluice_cli({"dump", dir(), "--since", "yesterday"}), "is not a time");
}

TEST_F(CliConventions, StatWithoutCountersFileIsUsage) {
  gen(1);
  expect_usage(sluice_cli({"stat", dir(), "--json"}), "no counters file");
}

TEST_F(CliConventions, CorruptLogIsFailureAndVerifyJsonListsTheDamage) {
  gen(100);
  const auto locs = locate_records(dir());
  xor_byte(segment_file(dir(), locs[30].segment), locs[30].offset + 60, 0x08);
  RunResult r = sluice_cli({"verify", dir(), "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  EXPECT_EQ(lines[0]["ok"], false);
  ASSERT_GE(lines[0]["damage"].size(), 1u);
  EXPECT_EQ(lines[0]["damage"][0]["offset"], locs[30].offset);
  EXPECT_EQ(lines[0]["damage"][0]["kind"], "corruption");
}

// --- JSON outputs ----------------------------------------------------------------------------

TEST_F(CliConventions, InfoAndVerifyJson) {
  gen(300, {"--streams", "3"});
  RunResult info = sluice_cli({"info", dir(), "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  auto i = json_lines(info.out);
  ASSERT_EQ(i.size(), 1u);
  EXPECT_EQ(i[0]["events"], 300);
  EXPECT_EQ(i[0]["streams"], 3);
  EXPECT_EQ(i[0]["tail"]["damaged"], false);
  EXPECT_FALSE(i[0]["segments"].empty());
  RunResult verify = sluice_cli({"verify", dir(), "--json"});
  ASSERT_EQ(verify.exit_code, 0) << verify.err;
  auto v = json_lines(verify.out);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0]["ok"], true);
  EXPECT_EQ(v[0]["events"], 300);
}

// Stream names with quotes, backslashes and every control character come back intact.
TEST_F(CliConventions, DumpEscapesEveryControlCharacterInStreamNames) {
  std::vector<std::string> names = {"quote\"d", "back\\slash", "del\x7f", "caf\xc3\xa9"};
  std::string controls;
  for (int c = 1; c < 0x20; ++c) controls += static_cast<char>(c);
  names.push_back(controls);
  {
    LogOptions o;
    o.segment_size = 1 << 20;
    auto w = LogWriter::open(dir(), o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    const std::byte payload[4] = {std::byte{0}, std::byte{0xff}, std::byte{'"'}, std::byte{'\\'}};
    for (const auto& n : names) {
      auto id = (*w)->stream(n);
      ASSERT_TRUE(id.ok()) << id.status().to_string();
      EventData e;
      e.type = 7;
      e.payload = payload;
      ASSERT_TRUE((*w)->append(*id, ExpectedVersion::any(), e).ok());
    }
    ASSERT_TRUE((*w)->close().ok());
  }
  RunResult r = sluice_cli({"dump", dir()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(lines[i]["stream"], names[i]);
    EXPECT_EQ(lines[i]["payload_base64"], "AP8iXA==");
  }
  RunResult h = sluice_cli({"dump", dir(), "--hex", "--limit", "1"});
  auto hl = json_lines(h.out);
  ASSERT_EQ(hl.size(), 1u);
  EXPECT_EQ(hl[0]["payload_hex"], "00ff225c");
}

// Names in the counters file are whatever bytes an engine wrote: quotes, backslashes, control
// characters and bytes that are not UTF-8 still make valid JSON (U+FFFD for the bad bytes).
TEST_F(CliConventions, StatJsonIsValidWhateverTheNamesHold) {
  std::filesystem::create_directories(dir());
  const std::string path = dir() + "/" + counters::kFileName;
  auto f = counters::CountersFile::create(path, {.log_dir = dir(), .segment_size = 1 << 20, .slot_count = 4});
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_TRUE((*f)->allocate(counters::SlotKind::projection, "q\"b\\s").ok());
  ASSERT_TRUE((*f)->allocate(counters::SlotKind::projection, "ctl\x01\n\t").ok());
  ASSERT_TRUE((*f)->allocate(counters::SlotKind::projection, "bad\xff\xfe").ok());
  RunResult r = sluice_cli({"stat", dir(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  std::vector<std::string> got;
  for (const auto& p : lines[0]["projections"]) got.push_back(p["name"]);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"bad\xef\xbf\xbd\xef\xbf\xbd", "ctl\x01\n\t", "q\"b\\s"}));

  // --watch --json: JSON lines, one snapshot each.
  RunResult w = sluice_cli({"stat", dir(), "--json", "--watch", "--count", "3", "--interval-ms", "1"});
  ASSERT_EQ(w.exit_code, 0) << w.err;
  auto snaps = json_lines(w.out);
  ASSERT_EQ(snaps.size(), 3u) << w.out;
  for (const auto& s : snaps) EXPECT_EQ(s["projections"].size(), 3u);
}

// --- dump filters and --follow -----------------------------------------------------------------

TEST_F(CliConventions, DumpFiltersByTypeTimeAndPosition) {
  {
    LogOptions o;
    o.segment_size = 1 << 20;
    auto w = LogWriter::open(dir(), o);
    ASSERT_TRUE(w.ok());
    auto id = (*w)->stream("s");
    ASSERT_TRUE(id.ok());
    const std::byte payload[1] = {std::byte{1}};
    for (uint32_t i = 0; i < 40; ++i) {
      EventData e;
      e.type = 1 + i % 2;
      e.payload = payload;
      ASSERT_TRUE((*w)->append(*id, ExpectedVersion::any(), e).ok());
    }
    ASSERT_TRUE((*w)->close().ok());
  }
  auto all = json_lines(sluice_cli({"dump", dir()}).out);
  ASSERT_EQ(all.size(), 40u);

  auto typed = json_lines(sluice_cli({"dump", dir(), "--type", "2"}).out);
  EXPECT_EQ(typed.size(), 20u);
  for (const auto& l : typed) EXPECT_EQ(l["type"], 2);

  auto to = json_lines(sluice_cli({"dump", dir(), "--from", "5", "--to", "12"}).out);
  ASSERT_EQ(to.size(), 7u);
  EXPECT_EQ(to.front()["position"], 5);
  EXPECT_EQ(to.back()["position"], 11);

  // --since/--until select by the records' own timestamps (ISO or nanoseconds).
  const int64_t since = all[15]["timestamp"];
  const int64_t until = all[30]["timestamp"];
  size_t expected = 0;
  for (const auto& l : all) expected += l["timestamp"] >= since && l["timestamp"] < until;
  auto timed = json_lines(sluice_cli({"dump", dir(), "--since", std::to_string(since), "--until",
                                      std::to_string(until)}).out);
  EXPECT_EQ(timed.size(), expected);
  for (const auto& l : timed) {
    EXPECT_GE(l["timestamp"], since);
    EXPECT_LT(l["timestamp"], until);
  }
  const std::string iso = all[0]["time"];
  EXPECT_EQ(json_lines(sluice_cli({"dump", dir(), "--since", iso}).out).size(), 40u);
  EXPECT_EQ(json_lines(sluice_cli({"dump", dir(), "--until", iso}).out).size(), 0u);

}

// A reader that goes away early (`dump | head`): dump stops quietly with 0.
TEST_F(CliConventions, DumpStopsQuietlyWhenItsReaderGoesAway) {
  gen(3000);  // ~1 MB of JSON: more than a pipe holds
  RunResult pipe = run({"/bin/bash", "-c",
                        std::string(SLUICE_CLI) + " dump '" + dir() + "' | head -c 10 >/dev/null; exit ${PIPESTATUS[0]}"});
  EXPECT_EQ(pipe.exit_code, 0) << pipe.err;
  EXPECT_TRUE(pipe.err.empty()) << pipe.err;
}

// `dump --follow` prints what a writer in another process appends, until SIGINT (exit 0).
TEST_F(CliConventions, DumpFollowPrintsWhatAnotherProcessAppends) {
  gen(10);
  Subprocess follow;
  ASSERT_TRUE(follow.start({SLUICE_CLI, "dump", dir(), "--follow", "--poll-ms", "5", "--stream", "stream-0"}));
  auto lines_seen = [&] { return static_cast<size_t>(std::count(follow.out().begin(), follow.out().end(), '\n')); };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (lines_seen() < 10 && std::chrono::steady_clock::now() < deadline)
    follow.read_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
  ASSERT_EQ(lines_seen(), 10u) << follow.err();
  gen(25);  // `sluice gen`: another process appends to the same log
  while (lines_seen() < 35 && std::chrono::steady_clock::now() < deadline)
    follow.read_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
  follow.kill(SIGINT);
  const int status = follow.finish();
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << follow.err();
  auto lines = json_lines(follow.out());
  ASSERT_EQ(lines.size(), 35u);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["position"], i);
    EXPECT_EQ(lines[i]["stream"], "stream-0");
  }
}

// --- rebuild through an application's catalog -----------------------------------------------

// `sluice rebuild --app BINARY` runs the application's own `rebuild` command
// (sluice::rebuild_command over its ProjectionCatalog): the tool links no projections.
TEST_F(CliConventions, RebuildRunsTheApplicationsCatalog) {
  RunResult ledger = run({BANK_LEDGER, "--dir", dir(), "--events", "2000", "--producers", "2", "--accounts", "50"});
  ASSERT_EQ(ledger.exit_code, 0) << ledger.err;
  RunResult r = sluice_cli({"rebuild", "--app", BANK_LEDGER, dir(), "balances", "--dry-run", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  EXPECT_EQ(lines[0]["projection"], "balances");
  EXPECT_GT(lines[0]["events"].get<uint64_t>(), 0u);
  EXPECT_EQ(lines[0]["checkpoint_replaced"], false);
  EXPECT_EQ(lines[0]["digest"].get<std::string>().size(), 16u);

  RunResult unknown = sluice_cli({"rebuild", "--app", BANK_LEDGER, dir(), "nosuch"});
  expect_usage(unknown, "unknown projection 'nosuch'");
  EXPECT_NE(unknown.err.find("balances"), std::string::npos) << "lists the known ones: " << unknown.err;
  expect_usage(sluice_cli({"rebuild", dir(), "balances"}), "--app");
}

}  // namespace
}  // namespace sluice
