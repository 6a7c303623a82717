// MappedSegment: one segment file, memory-mapped. Owns the fd and the mapping.
//
// Thread safety: a MappedSegment is owned by one thread at a time (the writer, the
// maintenance thread while preparing it, or a reader). Other threads and processes see its
// contents only through the release/acquire protocol on record lengths and the header magic.
#pragma once

#include <atomic>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sluice/bus/file_ops.h"
#include "sluice/bus/log_format.h"
#include "sluice/status.h"

namespace sluice::log_internal {

std::string segment_file_name(uint64_t index);
std::string segment_path(const std::string& dir, uint64_t index);
// Segment indices in dir, ascending. Files that are not segments are ignored.
Result<std::vector<uint64_t>> list_segments(const std::string& dir);
// fsync the directory itself, so that a created or renamed entry survives a crash.
using sluice::sync_directory;
// fdatasync a file by path.
Status sync_file(FileOps& ops, const std::string& path);
std::string errno_text(int err);
// Offset of the first non-zero byte at or after `from` in the file at `path`, -1 if none,
// -2 if it cannot be read.
int64_t first_nonzero_byte(const std::string& path, uint64_t from);

// Bytes one preparation step populates, and one unmapping step releases.
// A step is the unit between two checks of the slice budget, so it bounds how far a slice
// can overrun kSliceBudgetNs: measured here, a 128 KiB pwrite of zeros took up to 0.34 ms of
// CPU time and a 1 MiB munmap up to 0.19 ms (page allocation and dirty accounting, page-table
// teardown); 32 KiB and 256 KiB steps take a quarter of that.
inline constexpr uint64_t kPrepareStep = 32 * 1024;
// Bytes of zeros per pwrite, paced or not. The size of a write sets the size of the
// page-cache folios it creates (ext4 on Linux 6.18), and that decided whether preparation
// kept up: in `sluice bench log` (one thread appending 10 M 64-byte events across 17 rolls,
// same sitting) 128 KiB writes made each roll past the prepared segments wait 120-220 ms
// (with or without the pacer's yields), 1 MiB writes 164-255 ms, 32 KiB writes 4-11 ms
// (bench/results/log-2026-11-30-roll.md). In a later sitting, with the disk busier, 32 KiB
// writes waited ~200 ms per roll too: what bounds preparation then is not pinned down.
inline constexpr uint64_t kZeroStep = 32 * 1024;
inline constexpr uint64_t kUnmapStep = 256 * 1024;
// The step for a read-only mapping (the LogPublisher's of a passed segment): each munmap ends
// in a TLB shootdown that interrupts the hot CPUs, and a read-only mapping has no dirty pages
// to account for. `sluice bench e2e` at 1 M events/s, 3 M events, interleaved
// (bench/results/quiet-2026-11-30d/ab-unmap/): the publisher's mappings unmapped by the
// maintenance thread in 256 KiB steps: p99.9 6.0-7.5 ms (3 runs); in 4 MiB steps: 3.0-3.6 ms
// (6 runs); inline on the appending thread as before: 2.5-4.1 ms (6 runs).
// The longest unmap slice was 71-654 us of CPU in 4 MiB steps, 79-819 us before (outliers
// that the writer's own 256 KiB steps show as well). 4 MiB steps for the written segments too
// lowered p99.9 further (1.7-3.0 ms, 3 runs) with unmap slices of 242-631 us: not taken.
inline constexpr uint64_t kUnmapStepReadOnly = 4ull << 20;
// Bytes preallocated per fallocate call: allocating 64 MiB of extents in one call took up to
// 0.34 ms of CPU time; 4 MiB at a time keeps each call to tens of microseconds. The calls
// follow each other from offset 0, so the file only ever grows, never with a hole.
inline constexpr uint64_t kFallocateStep = 4ull << 20;
// Background work runs in slices of about this much wall time (plus at most one step),
// then yields its CPU.
inline constexpr int64_t kSliceBudgetNs = 20'000;

// The kinds of step that background work on a segment takes; the pacer keeps the longest
// slice of each, so that a long slice is traced to its system call.
enum class StepKind : uint8_t { fallocate, fsync, zeros, mmap, populate, touch, unmap, count };
const char* step_kind_name(StepKind k) noexcept;

// Paces background work (segment preparation, unmapping) on the maintenance thread: the work
// calls start(kind) before the first step of each kind and step() after each step; once the
// slice has run kSliceBudgetNs of wall time (or the kind changes) the slice ends: its wall
// and CPU time are recorded and the thread yields the CPU to any thread waiting for it, so
// that the aim "background work holds a CPU for tens of microseconds at a time" is checked
// by a figure. The CPU time is what the slice took from other threads; the wall time also
// counts the slice's I/O waits (fsync of a new segment) and its own preemptions, an upper
// bound.
// While urgent (set_urgent) or not yielding (set_yielding), slices still end and are
// measured but do not yield. Urgent: the writer is blocked waiting for the segment being
// prepared, so there is no hot thread to give the CPU back to, and every yield would only
// lend it to other processes and lengthen the writer's wait.
class SlicePacer {
 public:
  // Any thread (the writer, before and after it waits for a prepared segment).
  void set_urgent(bool on) noexcept { urgent_.store(on, std::memory_order_relaxed); }
  // Whether slices yield at all (default true). The log writer turns it off when it placed
  // the maintenance thread on CPUs apart from every hot thread it knows of: a yield there
  // can only hand the CPU to another process, and under EEVDF (Linux 6.6+) each yield
  // pushes the yielder's virtual deadline back by a whole slice, so a thread that yields
  // every 20 us while other tasks are runnable gets a small fraction of its fair share
  // (measured here, 4 compilers on 2 CPUs: 1.4-5.7 s in the run queue to prepare one 64 MiB
  // segment of 25 ms of CPU time, 55-200 ms without the yields).
  void set_yielding(bool on) noexcept { yielding_.store(on, std::memory_order_relaxed); }
  bool yielding() const noexcept { return yielding_.load(std::memory_order_relaxed); }
  void begin(StepKind kind) noexcept;  // before the first step of a piece of work
  // Before the first step of `kind`: ends the current slice if it was of another kind.
  void start(StepKind kind) noexcept;
  // After each step: ends the slice once its budget is spent (records it, yields) and starts
  // the next one.
  void step() noexcept;
  void end() noexcept;  // after the last step: ends the slice whatever its length
  // The longest slice so far (ns). Any thread.
  uint64_t longest_slice_ns() const noexcept { return longest_.load(std::memory_order_relaxed); }
  // The most CPU time one slice used (ns, CLOCK_THREAD_CPUTIME_ID). Any thread.
  uint64_t longest_slice_cpu_ns() const noexcept { return longest_cpu_.load(std::memory_order_relaxed); }
  // The same, for slices of one kind of step.
  uint64_t longest_slice_cpu_ns(StepKind k) const noexcept {
    return longest_cpu_kind_[static_cast<size_t>(k)].load(std::memory_order_relaxed);
  }
  // Forgets the longest slices so far (all kinds), so that the next reads cover only what
  // follows (a benchmark's timed window). Any thread; a slice ending at that moment may or
  // may not count.
  void reset_longest() noexcept {
    longest_.store(0, std::memory_order_relaxed);
    longest_cpu_.store(0, std::memory_order_relaxed);
    for (auto& k : longest_cpu_kind_) k.store(0, std::memory_order_relaxed);
  }
  // CPU time (ns) of every slice so far: what the background work has cost in all. Any thread.
  uint64_t total_cpu_ns() const noexcept { return total_cpu_.load(std::memory_order_relaxed); }
  // Slices ended, and of them those that yielded (not urgent). Any thread.
  uint64_t slices() const noexcept { return slices_.load(std::memory_order_relaxed); }
  uint64_t yields() const noexcept { return yields_.load(std::memory_order_relaxed); }

 private:
  void finish() noexcept;  // ends the slice: records it, yields unless urgent or not yielding
  // Relaxed: a hint from the writer; a stale value costs one yield more or less.
  std::atomic<bool> urgent_{false};
  std::atomic<bool> yielding_{true};  // relaxed: set once after the thread is placed
  StepKind kind_ = StepKind::count;  // maintenance thread only
  int64_t start_ = 0;                // maintenance thread only
  int64_t cpu_start_ = 0;            // maintenance thread only
  // Relaxed (all): statistics written by the maintenance thread, read for display; the
  // longest ones also zeroed by reset_longest() from any thread (a slice ending at that
  // moment may survive the reset: load then store, not an RMW).
  std::atomic<uint64_t> longest_{0};
  std::atomic<uint64_t> total_cpu_{0};
  std::atomic<uint64_t> longest_cpu_{0};
  std::atomic<uint64_t> longest_cpu_kind_[static_cast<size_t>(StepKind::count)]{};
  std::atomic<uint64_t> slices_{0};
  std::atomic<uint64_t> yields_{0};
};

// How the maintenance thread finishes preparing a fresh segment, after MADV_POPULATE_*:
//   none   nothing more.
//   read   reads one byte of every page through the mapping.
//   write  stores a zero byte into every page through the mapping (under group/sync: read,
//          since a store would dirty every page and the kernel would write them back).
// Why: on some VMs a page populated by the kernel still costs the first user-space access
// several microseconds (the hypervisor fills its own page tables lazily); an access from the
// maintenance thread pays that there instead of in the appender. Measured by `sluice bench
// log` (memcpy_prepared_{none,read,write}_rate_64) on every machine it runs on; see
// docs/write-log.md for the figures and the choice.
enum class PageTouch : uint8_t { none, read, write };
inline constexpr PageTouch kDefaultPageTouch = PageTouch::read;
// The touch pass checks the slice budget every this many pages.
inline constexpr uint64_t kTouchStepPages = 8;

class MappedSegment {
 public:
  MappedSegment() = default;
  MappedSegment(MappedSegment&& o) noexcept { swap(o); }
  MappedSegment& operator=(MappedSegment&& o) noexcept {
    MappedSegment tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~MappedSegment();

  // Read-only mapping of an existing segment, of min(file size, segment size) bytes.
  static Result<MappedSegment> open_read(FileOps& ops, const std::string& path, uint64_t index);
  // Read-write mapping of an existing segment; a file shorter than segment_size (truncated
  // by damage) is extended with zeros first.
  static Result<MappedSegment> open_write(FileOps& ops, const std::string& path, uint64_t index,
                                          uint64_t segment_size);
  // Creates a new segment file: preallocated with posix_fallocate (never sparse), the
  // allocation and size fsynced, then the directory fsynced (so that after a power cut the
  // file is there, at its full size, before anything in it is acknowledged), mapped
  // read-write. `durable` (group, sync): no zeros are written through the page cache.
  // `prefault`: its pages are brought into memory and mapped now, off the hot path. The
  // header stays zero until activate().
  // A file of that name that already exists is reused only if every byte of it is zero (a
  // segment prepared by an earlier open); one holding any other byte is refused with
  // `corruption`, naming the offset: the writer never creates a segment over bytes it did not
  // write.
  // `pace` (optional) paces the preparation's steps (kFallocateStep bytes allocated,
  // kZeroStep bytes of zeros written, kPrepareStep bytes populated, kTouchStepPages pages
  // touched):
  // the maintenance thread yields its CPU every kSliceBudgetNs, so preparing a segment never
  // holds a CPU for more than about one slice at a time.
  // `touch` (with prefault): see PageTouch.
  static Result<MappedSegment> create(FileOps& ops, const std::string& dir, uint64_t index,
                                      uint64_t segment_size, bool prefault, bool durable,
                                      SlicePacer* pace = nullptr, mode_t mode = 0640,
                                      PageTouch touch = kDefaultPageTouch);
  // Unmaps in kUnmapStep pieces (kUnmapStepReadOnly for a read-only mapping) paced by `pace`
  // when it yields (a 64 MiB munmap in one call
  // holds a CPU for milliseconds), in one call when it does not (it runs apart from the hot
  // threads, and each call interrupts their CPUs: see segment.cc), then closes.
  void release_sliced(SlicePacer* pace) noexcept;

  bool valid() const noexcept { return base_ != nullptr; }
  bool read_only() const noexcept { return read_only_; }  // made by open_read()
  std::byte* data() const noexcept { return base_; }
  uint64_t mapped_size() const noexcept { return mapped_; }
  uint64_t index() const noexcept { return index_; }
  int fd() const noexcept { return fd_; }
  const std::string& path() const noexcept { return path_; }
  const log_format::SegmentHeader* header() const noexcept {
    return reinterpret_cast<const log_format::SegmentHeader*>(base_);
  }

  // Acquire: pairs with the release store of the magic in activate().
  bool activated() const noexcept;
  // Writes the header and release-stores the magic last. Not durable until flushed.
  void activate(uint64_t base_position, int64_t created_ns, uint32_t flags = 0) noexcept;
  // Checks magic, version, index, size, flags, reserved fields and header CRC. Only valid
  // once activated().
  Status check_header() const;
  // msync(MS_SYNC) of [begin, end), widened to pages.
  Status sync(uint64_t begin, uint64_t end) const;
  // Remaps after the file was extended to segment size (read-only mappings of a short file).
  void reset() noexcept;

 private:
  void swap(MappedSegment& o) noexcept;
  FileOps* ops_ = nullptr;
  std::byte* base_ = nullptr;
  uint64_t mapped_ = 0;
  uint64_t index_ = 0;
  int fd_ = -1;
  bool read_only_ = false;  // open_read(): no dirty pages, cheaper to tear down
  std::string path_;
};

}  // namespace sluice::log_internal
