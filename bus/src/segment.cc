#include "internal/segment.h"

#include <dirent.h>
#include <sched.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "sluice/bus/clock.h"
#include <cstring>
#include <vector>

#include "sluice/bus/crc32c.h"

namespace sluice::log_internal {

namespace lf = log_format;

std::string errno_text(int err) { return std::strerror(err); }

int64_t first_nonzero_byte(const std::string& path, uint64_t from) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -2;
  std::vector<unsigned char> buf(1 << 20);
  int64_t found = -1;
  for (uint64_t off = from;;) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0) {
      found = -2;
      break;
    }
    if (n == 0) break;
    for (ssize_t i = 0; i < n; ++i)
      if (buf[static_cast<size_t>(i)] != 0) {
        found = static_cast<int64_t>(off) + i;
        break;
      }
    if (found >= 0) break;
    off += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return found;
}

std::string segment_file_name(uint64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020" PRIu64 "%s", index, lf::kSegmentSuffix);
  return buf;
}

std::string segment_path(const std::string& dir, uint64_t index) {
  return dir + "/" + segment_file_name(index);
}

Result<std::vector<uint64_t>> list_segments(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    int err = errno;
    return Status(err == ENOENT ? StatusCode::not_found : StatusCode::io_error,
                  "cannot open log directory " + dir + ": " + errno_text(err));
  }
  std::vector<uint64_t> out;
  while (dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name.size() != 20 + std::strlen(lf::kSegmentSuffix) || !name.ends_with(lf::kSegmentSuffix))
      continue;
    uint64_t v = 0;
    bool digits = true;
    for (size_t i = 0; i < 20; ++i) {
      if (name[i] < '0' || name[i] > '9') {
        digits = false;
        break;
      }
      v = v * 10 + static_cast<uint64_t>(name[i] - '0');
    }
    if (digits) out.push_back(v);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Status sync_file(FileOps& ops, const std::string& path) {
  int fd = ops.open(path.c_str(), O_RDONLY, 0);
  if (fd < 0) return Status(StatusCode::io_error, "open " + path + ": " + errno_text(errno));
  int rc = ops.fdatasync(fd);
  int err = errno;
  ops.close(fd);
  if (rc != 0) return Status(StatusCode::io_error, "fdatasync " + path + ": " + errno_text(err));
  return Status();
}

MappedSegment::~MappedSegment() { reset(); }

void MappedSegment::reset() noexcept {
  if (base_ != nullptr) ops_->munmap(base_, mapped_);
  if (fd_ >= 0) ops_->close(fd_);
  base_ = nullptr;
  fd_ = -1;
  mapped_ = 0;
}

namespace {
int64_t thread_cpu_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

const char* step_kind_name(StepKind k) noexcept {
  switch (k) {
    case StepKind::fallocate: return "fallocate";
    case StepKind::fsync: return "fsync";
    case StepKind::zeros: return "zeros";
    case StepKind::mmap: return "mmap";
    case StepKind::populate: return "populate";
    case StepKind::touch: return "touch";
    case StepKind::unmap: return "unmap";
    case StepKind::count: break;
  }
  return "?";
}

void SlicePacer::begin(StepKind kind) noexcept {
  kind_ = kind;
  start_ = steady_ns();
  cpu_start_ = thread_cpu_ns();
}

void SlicePacer::start(StepKind kind) noexcept {
  // A slice holds steps of one kind only, so that its time is charged to that kind.
  if (kind == kind_) return;
  finish();
  kind_ = kind;
}

void SlicePacer::step() noexcept {
  if (steady_ns() - start_ >= kSliceBudgetNs) finish();
}

void SlicePacer::end() noexcept { finish(); }

void SlicePacer::finish() noexcept {
  const int64_t now = steady_ns();
  const auto took = static_cast<uint64_t>(now - start_);
  if (took > longest_.load(std::memory_order_relaxed)) longest_.store(took, std::memory_order_relaxed);
  const auto cpu = static_cast<uint64_t>(thread_cpu_ns() - cpu_start_);
  total_cpu_.store(total_cpu_.load(std::memory_order_relaxed) + cpu, std::memory_order_relaxed);
  if (cpu > longest_cpu_.load(std::memory_order_relaxed)) longest_cpu_.store(cpu, std::memory_order_relaxed);
  if (kind_ < StepKind::count) {
    auto& k = longest_cpu_kind_[static_cast<size_t>(kind_)];
    if (cpu > k.load(std::memory_order_relaxed)) k.store(cpu, std::memory_order_relaxed);
  }
  slices_.store(slices_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // Relaxed: see urgent_.
  if (yielding_.load(std::memory_order_relaxed) && !urgent_.load(std::memory_order_relaxed)) {
    yields_.store(yields_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    ::sched_yield();  // a hot thread this one preempted gets its CPU back now
  }
  start_ = steady_ns();
  cpu_start_ = thread_cpu_ns();
}

void MappedSegment::release_sliced(SlicePacer* pace) noexcept {
  if (base_ != nullptr && pace != nullptr) {
    pace->begin(StepKind::unmap);
    // Every munmap call ends in a TLB shootdown: an interrupt to each CPU that runs one of
    // this process's threads, the appender's among them. Sharing a CPU with a hot thread
    // (the pacer yields), 256 KiB steps keep each slice short; apart from the hot threads,
    // one call, so that the hot CPUs take a few interrupts instead of 256 (the kernel may
    // still flush more than once within one call). (`sluice bench log`,
    // 4 M appends across 7 prepared rolls, appender pinned, maintenance on the other CPU:
    // 23-28 M events/s with 256 KiB steps, 32-34 with one call, same sitting.)
    // A read-only mapping (the LogPublisher's, LogWriter::retire_mapping) has no dirty pages
    // to account for and goes in larger steps: 16 shootdowns per 64 MiB instead of 256 (see
    // kUnmapStepReadOnly for what the 256 did to the e2e tails).
    const uint64_t step = !pace->yielding() ? mapped_ : read_only_ ? kUnmapStepReadOnly : kUnmapStep;
    // Unmap from the end, so that base_/mapped_ always describe what is still mapped.
    while (mapped_ > step) {
      mapped_ -= step;  // one step of page-table teardown
      ops_->munmap(base_ + mapped_, step);
      pace->step();
    }
    ops_->munmap(base_, mapped_);
    base_ = nullptr;
    mapped_ = 0;
    pace->end();
  }
  reset();
}

void MappedSegment::swap(MappedSegment& o) noexcept {
  std::swap(ops_, o.ops_);
  std::swap(base_, o.base_);
  std::swap(mapped_, o.mapped_);
  std::swap(index_, o.index_);
  std::swap(fd_, o.fd_);
  std::swap(read_only_, o.read_only_);
  std::swap(path_, o.path_);
}

Result<MappedSegment> MappedSegment::open_read(FileOps& ops, const std::string& path,
                                               uint64_t index) {
  MappedSegment s;
  s.ops_ = &ops;
  s.index_ = index;
  s.path_ = path;
  s.fd_ = ops.open(path.c_str(), O_RDONLY, 0);
  if (s.fd_ < 0) return Status(StatusCode::io_error, "open " + path + ": " + errno_text(errno));
  struct stat st {};
  if (ops.fstat(s.fd_, &st) != 0)
    return Status(StatusCode::io_error, "fstat " + path + ": " + errno_text(errno));
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < lf::kSegmentHeaderSize) {
    return Status(StatusCode::corruption,
                  "segment " + path + ": file is " + std::to_string(size) +
                      " bytes, shorter than its header");
  }
  uint64_t declared = 0;
  if (::pread(s.fd_, &declared, sizeof declared, offsetof(lf::SegmentHeader, segment_size)) ==
          static_cast<ssize_t>(sizeof declared) &&
      declared >= lf::kMinSegmentSize && declared <= lf::kMaxSegmentSize && declared < size) {
    size = declared;  // never map bytes past the segment (a longer file is not ours to read)
  }
  void* p = ops.mmap(size, PROT_READ, MAP_SHARED, s.fd_, 0);
  if (p == MAP_FAILED) return Status(StatusCode::io_error, "mmap " + path + ": " + errno_text(errno));
  s.read_only_ = true;
  s.base_ = static_cast<std::byte*>(p);
  s.mapped_ = size;
  return s;
}

Result<MappedSegment> MappedSegment::open_write(FileOps& ops, const std::string& path,
                                                uint64_t index, uint64_t segment_size) {
  MappedSegment s;
  s.ops_ = &ops;
  s.index_ = index;
  s.path_ = path;
  s.fd_ = ops.open(path.c_str(), O_RDWR, 0);
  if (s.fd_ < 0) return Status(StatusCode::io_error, "open " + path + ": " + errno_text(errno));
  struct stat st {};
  if (ops.fstat(s.fd_, &st) != 0)
    return Status(StatusCode::io_error, "fstat " + path + ": " + errno_text(errno));
  if (static_cast<uint64_t>(st.st_size) < segment_size) {
    // A truncated file: extend it with real (allocated) zeros so that appends cannot fault.
    if (ops.fallocate(s.fd_, 0, static_cast<off_t>(segment_size)) != 0)
      return Status(StatusCode::io_error,
                    "fallocate " + path + " to " + std::to_string(segment_size) +
                        " bytes: " + errno_text(errno));
    if (ops.fsync(s.fd_) != 0)
      return Status(StatusCode::io_error, "fsync " + path + ": " + errno_text(errno));
  }
  void* p = ops.mmap(segment_size, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd_, 0);
  if (p == MAP_FAILED) return Status(StatusCode::io_error, "mmap " + path + ": " + errno_text(errno));
  s.base_ = static_cast<std::byte*>(p);
  s.mapped_ = segment_size;
  return s;
}

Result<MappedSegment> MappedSegment::create(FileOps& ops, const std::string& dir, uint64_t index,
                                            uint64_t segment_size, bool prefault,
                                            bool durable, SlicePacer* pace, mode_t mode,
                                            PageTouch touch) {
  MappedSegment s;
  s.ops_ = &ops;
  s.index_ = index;
  s.path_ = segment_path(dir, index);
  // Never O_TRUNC: an existing file is reused only when it holds nothing but zeros.
  bool existed = false;
  s.fd_ = ops.open(s.path_.c_str(), O_RDWR | O_CREAT | O_EXCL, mode);
  if (s.fd_ < 0 && errno == EEXIST) {
    const int64_t junk = first_nonzero_byte(s.path_, 0);
    if (junk != -1)
      return Status(StatusCode::corruption,
                    "segment " + s.path_ + " offset " + std::to_string(junk < 0 ? 0 : junk) +
                        ": refusing to create a segment over a file that holds data");
    existed = true;
    s.fd_ = ops.open(s.path_.c_str(), O_RDWR, 0);
  }
  if (s.fd_ < 0) return Status(StatusCode::io_error, "create " + s.path_ + ": " + errno_text(errno));
  auto fail = [&](const char* what) {
    Status st(StatusCode::io_error,
              std::string(what) + " " + s.path_ + " (" + std::to_string(segment_size) +
                  " bytes): " + errno_text(errno));
    s.reset();
    if (!existed) ops.unlink(s.path_.c_str());  // best effort: no half-made segment behind
    return st;
  };
  // Preallocate from offset 0 up, in kFallocateStep calls when paced (the file only grows,
  // never with a hole), in one call otherwise.
  if (pace) pace->begin(StepKind::fallocate);
  const uint64_t alloc_step = pace ? kFallocateStep : segment_size;
  for (uint64_t off = 0; off < segment_size; off += alloc_step) {
    const uint64_t n = std::min(alloc_step, segment_size - off);
    if (ops.fallocate(s.fd_, static_cast<off_t>(off), static_cast<off_t>(n)) != 0) return fail("fallocate");
    if (pace) pace->step();
  }
  // The allocation and the size durable before the directory entry, and both before any
  // record in the file is acknowledged (under none too: a power cut must not leave a
  // segment shorter than its header says, which recovery would have to take for damage).
  if (pace) pace->start(StepKind::fsync);
  if (ops.fsync(s.fd_) != 0) return fail("fsync");
  if (!durable && prefault) {
    // Write zeros through the page cache: the pages then exist at a fraction of the cost of
    // faulting them in one by one. Measured here for 64 MiB: fallocate +
    // MADV_POPULATE_WRITE 60-90 ms of CPU (one 128 KiB populate took up to 23 ms); fallocate
    // + pwrite zeros + MADV_POPULATE_WRITE 15-18 ms.
    // Not for group/sync: flushes of records into blocks just overwritten with zeros were
    // 4x slower here (p50 of a one-page msync 420 us against 85-120 us), and the zeros
    // would be written to disk for nothing.
    // kZeroStep bytes per call, paced or not (see the header: larger writes make larger
    // page-cache folios, which cost the appender page faults and its rolls long waits).
    static const std::vector<char> zeros(kZeroStep, 0);
    const uint64_t step = zeros.size();
    if (pace) pace->start(StepKind::zeros);
    for (uint64_t off = 0; off < segment_size; off += step) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(step, segment_size - off));
      if (ops.pwrite(s.fd_, zeros.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n))
        return fail("write zeros to");
      if (pace) pace->step();
    }
  }
  if (pace) pace->start(StepKind::mmap);
  void* p = ops.mmap(segment_size, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd_, 0);
  if (p == MAP_FAILED) return fail("mmap");
  s.base_ = static_cast<std::byte*>(p);
  s.mapped_ = segment_size;
  if (prefault) {
    // Map every page now, off the hot path, so appends take no major fault (a first-touched
    // 4 KiB page costs about 3.6 us here). Under group/sync map them read-only: a writable
    // mapping dirties every page, and the kernel would write 64 MiB of zeros; the first
    // append to each page then takes a minor fault instead. Advisory: without it, appends
    // fault.
#if defined(MADV_POPULATE_WRITE) && defined(MADV_POPULATE_READ)
    if (pace) pace->start(StepKind::populate);
    for (uint64_t off = 0; off < segment_size; off += kPrepareStep) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kPrepareStep, segment_size - off));
      ::madvise(s.base_ + off, n, durable ? MADV_POPULATE_READ : MADV_POPULATE_WRITE);
      if (pace) pace->step();
    }
#endif
    // Then one access per page through the mapping (see PageTouch), paced: on a VM that
    // maps guest memory lazily this is where the first access costs microseconds, and it is
    // better paid here than by the appender.
    // The segment is not shared yet (this thread owns it), so plain accesses suffice;
    // volatile keeps the compiler from dropping them.
    if (touch != PageTouch::none) {
      const bool store = touch == PageTouch::write && !durable;
      constexpr uint64_t kPage = 4096;
      volatile std::byte* const p8 = s.base_;
      uint64_t sink = 0;
      if (pace) pace->start(StepKind::touch);
      for (uint64_t off = 0; off < segment_size; off += kPage) {
        if (store) p8[off] = std::byte{0};
        else sink += static_cast<uint64_t>(p8[off]);
        if (pace && (off / kPage) % kTouchStepPages == kTouchStepPages - 1) pace->step();
      }
      asm volatile("" : : "r"(sink));  // the reads are volatile already; the sum is unused
    }
  }
  if (pace) pace->start(StepKind::fsync);
  if (Status st = sync_directory(ops, dir); !st.ok()) {
    s.reset();
    ops.unlink(s.path_.c_str());
    return st;
  }
  if (pace) pace->end();
  return s;
}

bool MappedSegment::activated() const noexcept {
  return __atomic_load_n(&header()->magic, __ATOMIC_ACQUIRE) == lf::kSegmentMagic;
}

void MappedSegment::activate(uint64_t base_position, int64_t created_ns, uint32_t flags) noexcept {
  auto* h = reinterpret_cast<lf::SegmentHeader*>(base_);
  h->format_version = lf::kFormatVersion;
  h->header_size = lf::kSegmentHeaderSize;
  h->segment_index = index_;
  h->base_position = base_position;
  h->segment_size = mapped_;
  h->created_ns = created_ns;
  h->flags = flags;
  h->reserved0 = 0;
  h->reserved1 = 0;
  h->header_crc = crc32c::mask(crc32c::value(base_ + 8, 52));
  // Release: publishes the header fields above to a reader that acquires the magic in
  // activated().
  std::atomic_ref<uint64_t>(h->magic).store(lf::kSegmentMagic, std::memory_order_release);
}

Status MappedSegment::check_header() const {
  const auto* h = header();
  auto bad = [&](const std::string& why) {
    return Status(StatusCode::corruption, "segment " + path_ + " header at offset 0: " + why);
  };
  if (h->magic != lf::kSegmentMagic) return bad("bad magic");
  if (crc32c::mask(crc32c::value(base_ + 8, 52)) != h->header_crc) return bad("checksum mismatch");
  if (h->format_version != lf::kFormatVersion)
    return Status(StatusCode::corruption,
                  "segment " + path_ + ": format version " + std::to_string(h->format_version) +
                      " is not supported (this build reads version " +
                      std::to_string(lf::kFormatVersion) + ")");
  if (h->header_size != lf::kSegmentHeaderSize) return bad("bad header size");
  if (h->segment_index != index_)
    return bad("holds index " + std::to_string(h->segment_index) + ", its name says " +
               std::to_string(index_));
  if (h->segment_size < lf::kMinSegmentSize || h->segment_size > lf::kMaxSegmentSize ||
      h->segment_size % 4096 != 0)
    return bad("bad segment size " + std::to_string(h->segment_size));
  if ((h->flags & ~uint32_t{lf::kKnownSegmentFlags}) != 0)
    return bad("unknown flags " + std::to_string(h->flags));
  if (h->reserved0 != 0 || h->reserved1 != 0) return bad("reserved fields are not zero");
  return Status();
}

Status MappedSegment::sync(uint64_t begin, uint64_t end) const {
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  begin &= ~(page - 1);
  end = std::min(end, mapped_);
  if (end <= begin) return Status();
  if (ops_->msync(base_ + begin, end - begin, MS_SYNC) != 0)
    return Status(StatusCode::io_error, "msync " + path_ + " [" + std::to_string(begin) + ", " +
                                            std::to_string(end) + "): " + errno_text(errno));
  return Status();
}

}  // namespace sluice::log_internal
