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

// Bytes a preparation step touches between two pace() calls: 128 KiB of zeros written or
// pages populated would be ~20-30 us of kernel time at the rate estimated for a whole segment
// (64 MiB in ~14 ms); the wall time actually measured per slice is larger (SlicePacer,
// bench/results/e2e-2026-11-29.md: 0.36-5 ms, preemption and I/O waits included).
inline constexpr uint64_t kPrepareSlice = 128 * 1024;

// Called between two slices of background work (segment preparation, unmapping) on the
// maintenance thread: yields the CPU to any thread waiting for it, and measures each slice's
// wall time and CPU time, so that the aim "background work holds a CPU for tens of
// microseconds at a time" is checked by a figure. The CPU time is what the slice took from
// other threads; the wall time also counts the slice's I/O waits (fsync of a new segment)
// and its own preemptions, an upper bound.
class SlicePacer {
 public:
  void begin() noexcept;    // before the first slice of a piece of work
  void between() noexcept;  // after each slice
  // True once the current slice has run `budget_ns` (for work whose cost per step is not
  // known in advance: touching pages costs ~0.1 us each on one VM and several us on another).
  bool due(int64_t budget_ns) const noexcept;
  // The longest slice so far (ns). Any thread.
  uint64_t longest_slice_ns() const noexcept { return longest_.load(std::memory_order_relaxed); }
  // The most CPU time one slice used (ns, CLOCK_THREAD_CPUTIME_ID). Any thread.
  uint64_t longest_slice_cpu_ns() const noexcept { return longest_cpu_.load(std::memory_order_relaxed); }

 private:
  int64_t start_ = 0;      // maintenance thread only
  int64_t cpu_start_ = 0;  // maintenance thread only
  // Relaxed (both): statistics written by the maintenance thread, read for display.
  std::atomic<uint64_t> longest_{0};
  std::atomic<uint64_t> longest_cpu_{0};
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
// The touch pass runs in slices of at most this much wall time (checked every 8 pages).
inline constexpr int64_t kTouchSliceNs = 20'000;

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
  // `pace` (optional) is called between slices of the preparation (kPrepareSlice bytes of
  // zeros written or pages populated each): the maintenance thread yields its CPU there, so
  // preparing a segment never holds a CPU for more than one slice at a time.
  // `touch` (with prefault): see PageTouch; sliced by kTouchSliceNs.
  static Result<MappedSegment> create(FileOps& ops, const std::string& dir, uint64_t index,
                                      uint64_t segment_size, bool prefault, bool durable,
                                      SlicePacer* pace = nullptr, mode_t mode = 0640,
                                      PageTouch touch = kDefaultPageTouch);
  // Unmaps in kPrepareSlice pieces with `pace` between them, then closes (a 64 MiB munmap in
  // one call holds a CPU for milliseconds).
  void release_sliced(SlicePacer* pace) noexcept;

  bool valid() const noexcept { return base_ != nullptr; }
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
  std::string path_;
};

}  // namespace sluice::log_internal
