// The `sluice` command line: exit codes (0 ok, 1 failed / corruption, 2 usage) and one-line
// error messages a script can rely on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "bus/log_test_util.h"
#include "tools/subprocess.h"

namespace sluice {
namespace {

using namespace sluice::testing;

// stderr holds exactly one line, starting with "sluice".
void expect_one_error_line(const RunResult& r) {
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
  EXPECT_EQ(r.err.rfind("sluice", 0), 0u) << "stderr: " << r.err;
  EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << "stderr: " << r.err;
}

void expect_usage_error(const RunResult& r) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  expect_one_error_line(r);
}

class SluiceCli : public ::testing::Test {
 protected:
  // A log written by `sluice gen`: `count` events of 32 bytes in 64 KiB segments.
  void gen(uint64_t count, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"gen", dir(), "--count", std::to_string(count), "--payload-bytes", "32",
                                     "--segment-size", "65536", "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = sluice_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string dir() const { return tmp_.sub("log"); }
  TempDir tmp_{"cli"};
};

// --- usage errors -----------------------------------------------------------------------------

TEST_F(SluiceCli, NoSubcommandIsUsageError) { expect_usage_error(sluice_cli({})); }

TEST_F(SluiceCli, UnknownSubcommandIsUsageError) { expect_usage_error(sluice_cli({"frobnicate"})); }

TEST_F(SluiceCli, VerifyWithoutDirectoryIsUsageError) { expect_usage_error(sluice_cli({"verify"})); }

TEST_F(SluiceCli, GenWithBadDurabilityIsUsageError) {
  RunResult r = sluice_cli({"gen", dir(), "--durability", "sometimes"});
  expect_usage_error(r);
  EXPECT_NE(r.err.find("--durability"), std::string::npos) << r.err;
}

TEST_F(SluiceCli, GenWithZeroCountIsUsageError) { expect_usage_error(sluice_cli({"gen", dir(), "--count", "0"})); }

TEST_F(SluiceCli, GenWithNonNumericCountIsUsageError) {
  expect_usage_error(sluice_cli({"gen", dir(), "--count", "lots"}));
}

TEST_F(SluiceCli, GenWithBadSegmentSizeIsUsageError) {
  RunResult r = sluice_cli({"gen", dir(), "--count", "1", "--segment-size", "1000"});
  expect_usage_error(r);
  EXPECT_NE(r.err.find("segment size"), std::string::npos) << r.err;
}

TEST_F(SluiceCli, MissingDirectoryIsUsageErrorNamingIt) {
  for (const char* cmd : {"verify", "info", "dump"}) {
    SCOPED_TRACE(cmd);
    RunResult r = sluice_cli({cmd, tmp_.sub("nowhere")});
    expect_usage_error(r);
    EXPECT_NE(r.err.find(tmp_.sub("nowhere")), std::string::npos) << r.err;
  }
}

TEST_F(SluiceCli, FileInsteadOfDirectoryIsUsageError) {
  write_file(tmp_.sub("plain"), {'x'});
  for (const char* cmd : {"verify", "info", "dump"}) {
    SCOPED_TRACE(cmd);
    expect_usage_error(sluice_cli({cmd, tmp_.sub("plain")}));
  }
}

// A directory that is not a log is a usage error (2) for every command: 1 stays for failures
// of a real log (corruption, I/O).
TEST_F(SluiceCli, DirectoryThatIsNotALogIsAnErrorNamingIt) {
  const std::string empty = tmp_.sub("empty");
  std::filesystem::create_directories(empty);
  RunResult v = sluice_cli({"verify", empty});
  EXPECT_EQ(v.exit_code, 2) << v.err;
  expect_one_error_line(v);
  EXPECT_NE(v.err.find("not a Sluice log"), std::string::npos) << v.err;
  for (const char* cmd : {"info", "dump"}) {
    SCOPED_TRACE(cmd);
    RunResult r = sluice_cli({cmd, empty});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    expect_one_error_line(r);
    EXPECT_NE(r.err.find(empty), std::string::npos) << r.err;
  }
}

// --- gen ------------------------------------------------------------------------------------------

TEST_F(SluiceCli, GenPrintsEveryAcknowledgedPositionInOrder) {
  RunResult r = sluice_cli({"gen", dir(), "--count", "25", "--batch", "4", "--durability", "sync"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string expect;
  for (int p = 0; p < 25; ++p) expect += std::to_string(p) + "\n";
  EXPECT_EQ(r.out, expect);
}

TEST_F(SluiceCli, GenAppendsToAnExistingLog) {
  gen(10);
  RunResult r = sluice_cli({"gen", dir(), "--count", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "10\n11\n12\n");
}

TEST_F(SluiceCli, GenQuietPrintsOneJsonSummaryLine) {
  RunResult r = sluice_cli({"gen", dir(), "--count", "100", "--durability", "group", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find("\"events\": 100"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"events_per_s\""), std::string::npos) << r.out;
}

// --- verify, info, dump ---------------------------------------------------------------------------

TEST_F(SluiceCli, VerifyConsistentLogExitsZero) {
  gen(3000);  // several segments
  RunResult r = sluice_cli({"verify", dir()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("ok: 3000 events", 0), 0u) << r.out;
  EXPECT_EQ(r.err, "");
}

TEST_F(SluiceCli, VerifyTornTailIsConsistentAndReported) {
  gen(100);
  const auto locs = locate_records(dir());
  ASSERT_EQ(locs.size(), 100u);
  const uint32_t zero = 0;  // the last record's length: its bytes become a torn tail
  patch_file(segment_file(dir(), locs.back().segment), locs.back().offset, &zero, sizeof zero);
  rewind_watermark(dir());  // as a crash leaves it: the last record was never made durable
  RunResult r = sluice_cli({"verify", dir()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ok: 99 events"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("torn tail"), std::string::npos) << r.out;
}

TEST_F(SluiceCli, VerifyTheSameDamageToAClosedLogIsCorruption) {
  gen(100);
  const auto locs = locate_records(dir());
  ASSERT_EQ(locs.size(), 100u);
  const uint32_t zero = 0;  // gen closed the log: its watermark covers the last record
  patch_file(segment_file(dir(), locs.back().segment), locs.back().offset, &zero, sizeof zero);
  RunResult r = sluice_cli({"verify", dir()});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("offset " + std::to_string(locs.back().offset) + ":"), std::string::npos) << r.err;
}

TEST_F(SluiceCli, VerifyCorruptionExitsOneNamingSegmentAndOffset) {
  gen(100);
  const auto locs = locate_records(dir());
  ASSERT_EQ(locs.size(), 100u);
  const RecordLocation victim = locs[50];
  const char flip = 0x08;
  patch_file(segment_file(dir(), victim.segment), victim.offset + 60, &flip, 1);
  RunResult r = sluice_cli({"verify", dir()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  expect_one_error_line(r);
  EXPECT_NE(r.err.find(segment_file(dir(), victim.segment)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("offset " + std::to_string(victim.offset)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("corruption"), std::string::npos) << r.err;
}

TEST_F(SluiceCli, VerifyMissingSegmentExitsOneNamingIt) {
  gen(3000);
  ASSERT_TRUE(std::filesystem::remove(segment_file(dir(), 1)));
  RunResult r = sluice_cli({"verify", dir()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  expect_one_error_line(r);
  EXPECT_NE(r.err.find(segment_file(dir(), 1)), std::string::npos) << r.err;
}

TEST_F(SluiceCli, InfoDescribesTheLog) {
  gen(3000, {"--durability", "group", "--streams", "3"});
  RunResult r = sluice_cli({"info", dir()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[0, 3000)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("streams          3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("durability group"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tail             clean"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sealed"), std::string::npos) << r.out;
}

TEST_F(SluiceCli, DumpPrintsOneJsonLinePerEventWithFilters) {
  gen(30, {"--streams", "3"});
  RunResult all = sluice_cli({"dump", dir()});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(std::count(all.out.begin(), all.out.end(), '\n'), 30);
  EXPECT_EQ(all.out.rfind("{\"position\":0,\"stream\":\"stream-0\"", 0), 0u) << all.out.substr(0, 200);
  for (const char* key : {"\"version\":", "\"type\":", "\"timestamp\":", "\"payload_base64\":"})
    EXPECT_NE(all.out.find(key), std::string::npos) << key;

  RunResult some = sluice_cli({"dump", dir(), "--from", "10", "--limit", "5"});
  ASSERT_EQ(some.exit_code, 0) << some.err;
  EXPECT_EQ(std::count(some.out.begin(), some.out.end(), '\n'), 5);
  EXPECT_EQ(some.out.rfind("{\"position\":10,", 0), 0u) << some.out.substr(0, 100);

  RunResult stream = sluice_cli({"dump", dir(), "--stream", "stream-1"});
  ASSERT_EQ(stream.exit_code, 0) << stream.err;
  EXPECT_EQ(std::count(stream.out.begin(), stream.out.end(), '\n'), 10);
  EXPECT_EQ(stream.out.find("\"stream\":\"stream-0\""), std::string::npos);

  RunResult missing = sluice_cli({"dump", dir(), "--stream", "nope"});
  EXPECT_EQ(missing.exit_code, 2);  // no such stream: the tool cannot use the argument
  expect_one_error_line(missing);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST_F(SluiceCli, VerifyListsEveryDamagedRegionAndSalvageMovesTheRestAside) {
  gen(100);
  const auto locs = locate_records(dir());
  ASSERT_EQ(locs.size(), 100u);
  xor_byte(segment_file(dir(), locs[20].segment), locs[20].offset + 60, 0x08);
  xor_byte(segment_file(dir(), locs[70].segment), locs[70].offset + 60, 0x08);
  RunResult v = sluice_cli({"verify", dir()});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.out.find("offset " + std::to_string(locs[20].offset)), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("offset " + std::to_string(locs[70].offset)), std::string::npos) << v.out;
  RunResult s = sluice_cli({"salvage", dir()});
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find("positions [0, 20)"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("quarantine: "), std::string::npos) << s.out;
  RunResult after = sluice_cli({"verify", dir()});
  EXPECT_EQ(after.exit_code, 0) << after.err;
  EXPECT_NE(after.out.find("ok: 20 events"), std::string::npos) << after.out;
}

TEST_F(SluiceCli, VerifyRepairSalvagesACorruptLog) {
  gen(100);
  const auto locs = locate_records(dir());
  xor_byte(segment_file(dir(), locs[50].segment), locs[50].offset + 60, 0x08);
  RunResult r = sluice_cli({"verify", "--repair", dir()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("positions [0, 50)"), std::string::npos) << r.out;
  EXPECT_EQ(sluice_cli({"verify", dir()}).exit_code, 0);
}

}  // namespace
}  // namespace sluice

// --- sluice bench plot (bench/common/plots.h) -----------------------------------------------------

namespace sluice {
namespace {

TEST_F(SluiceCli, BenchPlotOfAMissingDirectoryFails) {
  RunResult r = sluice_cli({"bench", "plot", tmp_.sub("no-such-data"), tmp_.sub("plots")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  expect_one_error_line(r);
  EXPECT_NE(r.err.find("no-such-data"), std::string::npos) << r.err;
}

TEST_F(SluiceCli, BenchPlotDrawsADataDirectory) {
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) GTEST_SKIP() << "gnuplot is not installed";
  const std::string data = tmp_.sub("data");
  ASSERT_EQ(std::system(("mkdir -p '" + data + "'").c_str()), 0);
  {
    std::ofstream f(data + "/x-rate.dat");
    f << "# x: rate\n# n events_per_s\n1 100\n2 180\n";
  }
  RunResult r = sluice_cli({"bench", "plot", data, tmp_.sub("plots")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* ext : {".png", ".svg"}) {
    std::ifstream img(tmp_.sub("plots") + "/x-rate" + ext, std::ios::binary | std::ios::ate);
    EXPECT_TRUE(img.good() && img.tellg() > 1000) << ext;
  }
}

}  // namespace
}  // namespace sluice
