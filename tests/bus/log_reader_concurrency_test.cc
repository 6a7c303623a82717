// A reader in another thread follows a live writer. Allowed outcomes for the reader, at any
// moment: it sees a prefix of the log that ends at a batch boundary; each event exactly once,
// in position order, with its bytes. Never: an error, a gap, a duplicate, part of a batch.
// CI runs this suite again under TSan (LABELS concurrency).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bus/log_test_util.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"

namespace sluice {
namespace {

using namespace sluice::testing;

constexpr uint32_t kStreams = 3;

// Payload of an event: where it sits in its batch, then filler derived from its position.
struct Tag {
  uint64_t position;
  uint32_t batch_size;
  uint32_t index;  // in its batch
};

std::string tagged_payload(uint64_t position, uint32_t batch_size, uint32_t index, size_t size) {
  std::string s(std::max(size, sizeof(Tag)), '\0');
  const Tag t{position, batch_size, index};
  std::memcpy(s.data(), &t, sizeof t);
  for (size_t i = sizeof t; i < s.size(); ++i) s[i] = static_cast<char>((position * 31 + i) & 0xff);
  return s;
}

// Appends `total` events in batches of 1..8 over kStreams streams, with payloads of 16..400
// bytes so that the 64 KiB segments roll often. Returns the number of rolls.
uint64_t write_batches(LogWriter& w, const std::vector<StreamId>& streams, uint64_t total, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> payloads;
  std::vector<EventData> batch;
  size_t next_stream = 0;
  while (w.next_position() < total) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(1 + rng() % 8, total - w.next_position()));
    payloads.clear();
    batch.clear();
    for (uint32_t i = 0; i < n; ++i)
      payloads.push_back(tagged_payload(w.next_position() + i, n, i, 16 + rng() % 384));
    for (const std::string& p : payloads) batch.push_back(event(p));
    AppendResult r = w.append(streams[next_stream], ExpectedVersion::any(), batch);
    EXPECT_TRUE(r.ok()) << w.last_error().to_string();
    if (!r.ok()) break;
    next_stream = (next_stream + 1) % streams.size();
  }
  return w.stats().segment_rolls;
}

// What a reader has consumed so far; checks each event as it comes.
class Follower {
 public:
  // Consumes every event the reader has indexed. Returns false on the first violation.
  bool consume(const LogReader& r) {
    RecordView v;
    auto c = r.cursor(next_);
    bool any = false;
    while (c.next(&v)) {
      any = true;
      if (v.position() != next_) return fail("position " + std::to_string(v.position()) + ", expected " + std::to_string(next_));
      const auto p = v.payload();
      Tag t{};
      if (p.size() < sizeof t) return fail("short payload at " + std::to_string(next_));
      std::memcpy(&t, p.data(), sizeof t);
      if (as_chars(p) != tagged_payload(t.position, t.batch_size, t.index, p.size()) || t.position != next_)
        return fail("wrong bytes at position " + std::to_string(next_));
      if (v.stream_id() < 1 || v.stream_id() > kStreams) return fail("bad stream id");
      if (v.stream_version() != ++versions_[v.stream_id() - 1]) return fail("stream version out of order");
      last_ = t;
      ++next_;
    }
    // The reader never stops inside a batch.
    if (any && last_.index + 1 != last_.batch_size)
      return fail("visible end " + std::to_string(next_) + " is inside a batch (event " +
                  std::to_string(last_.index + 1) + " of " + std::to_string(last_.batch_size) + ")");
    return true;
  }
  uint64_t next() const { return next_; }
  const std::string& error() const { return error_; }

 private:
  bool fail(std::string why) {
    error_ = std::move(why);
    return false;
  }
  uint64_t next_ = 0;
  uint64_t versions_[kStreams] = {};
  Tag last_{0, 1, 0};
  std::string error_;
};

class LogTailing : public ::testing::Test {
 protected:
  static constexpr uint64_t kTotal = 20000;
  void SetUp() override {
    auto w = LogWriter::open(tmp_.sub("log"), small_log_options());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    writer_ = std::move(w.value());
    for (uint32_t i = 0; i < kStreams; ++i) {
      auto s = writer_->stream("stream-" + std::to_string(i));
      ASSERT_TRUE(s.ok());
      streams_.push_back(*s);
    }
  }
  TempDir tmp_{"tailing"};
  std::unique_ptr<LogWriter> writer_;
  std::vector<StreamId> streams_;
};

TEST_F(LogTailing, ReaderSeesEveryEventOnceInOrderAndNeverAPartialBatch) {
  std::atomic<bool> writer_done{false};
  std::string reader_error;
  uint64_t reader_end = 0;
  std::thread reader([&] {
    auto r = LogReader::open(tmp_.sub("log"));
    if (!r.ok()) {
      reader_error = "open: " + r.status().to_string();
      return;
    }
    Follower f;
    for (;;) {
      // Acquire: pairs with the release below; after it, one more refresh sees everything.
      const bool done = writer_done.load(std::memory_order_acquire);
      auto n = (*r)->refresh();
      if (!n.ok()) {
        reader_error = "refresh at " + std::to_string(f.next()) + ": " + n.status().to_string();
        return;
      }
      if (!f.consume(**r)) {
        reader_error = f.error();
        return;
      }
      if (done) break;
      if (*n == 0) std::this_thread::yield();
    }
    reader_end = f.next();
  });
  const uint64_t rolls = write_batches(*writer_, streams_, kTotal, 42);
  writer_done.store(true, std::memory_order_release);
  reader.join();
  EXPECT_EQ(reader_error, "");
  EXPECT_EQ(reader_end, kTotal);
  EXPECT_GT(rolls, 10u) << "the test must cross segment rolls";
}

// Opening a reader (the same scan as `sluice verify`) while the writer appends must always
// succeed and find a consistent prefix.
TEST_F(LogTailing, OpeningWhileTheWriterAppendsFindsAConsistentPrefix) {
  std::atomic<bool> writer_done{false};
  std::string reader_error;
  uint64_t opens = 0;
  std::thread reader([&] {
    while (!writer_done.load(std::memory_order_acquire)) {
      auto r = LogReader::open(tmp_.sub("log"));
      if (!r.ok()) {
        reader_error = "open #" + std::to_string(opens) + ": " + r.status().to_string();
        return;
      }
      Follower f;
      if (!f.consume(**r)) {
        reader_error = "open #" + std::to_string(opens) + ": " + f.error();
        return;
      }
      ++opens;
    }
  });
  write_batches(*writer_, streams_, kTotal, 7);
  writer_done.store(true, std::memory_order_release);
  reader.join();
  EXPECT_EQ(reader_error, "");
  EXPECT_GT(opens, 0u);
}

// The in-process view of progress agrees with what a reader finds.
TEST_F(LogTailing, CommittedPositionNeverRunsAheadOfWhatAReaderCanRead) {
  std::atomic<bool> writer_done{false};
  std::string reader_error;
  std::thread reader([&] {
    auto r = LogReader::open(tmp_.sub("log"));
    if (!r.ok()) {
      reader_error = r.status().to_string();
      return;
    }
    while (!writer_done.load(std::memory_order_acquire)) {
      // Acquire: whatever committed_position() says is committed must be readable after refresh.
      const uint64_t committed = writer_->committed_position();
      auto n = (*r)->refresh();
      if (!n.ok()) {
        reader_error = n.status().to_string();
        return;
      }
      if ((*r)->end_position() < committed) {
        reader_error = "committed " + std::to_string(committed) + " but readable only up to " +
                       std::to_string((*r)->end_position());
        return;
      }
    }
  });
  write_batches(*writer_, streams_, kTotal / 2, 9);
  writer_done.store(true, std::memory_order_release);
  reader.join();
  EXPECT_EQ(reader_error, "");
}

}  // namespace
}  // namespace sluice
