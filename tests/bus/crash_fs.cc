#include "bus/crash_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

namespace sluice::testing {

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kSector = 512;

std::vector<std::byte> read_path(const std::string& path);

// The whole content of a file, read without going through any FileOps. The fd may be
// write-only (a file created O_WRONLY): then it is read through /proc/self/fd.
std::vector<std::byte> read_all(int fd) {
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_ACCMODE) == O_WRONLY) return read_path("/proc/self/fd/" + std::to_string(fd));
  std::vector<std::byte> out;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

std::vector<std::byte> read_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::vector<std::byte> out = read_all(fd);
  ::close(fd);
  return out;
}

}  // namespace

CrashFs::CrashFs(std::string dir, bool real_sync) : dir_(std::move(dir)), real_sync_(real_sync) {
  std::lock_guard lock(mu_);
  ::stat(dir_.c_str(), &dir_stat_);
  // What is there before the simulation starts is durable.
  durable_entries_ = list_entries_locked();
}

void CrashFs::set_acknowledged_probe(std::function<uint64_t()> probe) {
  std::lock_guard lock(mu_);
  probe_ = std::move(probe);
}

void CrashFs::capture_in_calls(uint64_t every) {
  std::lock_guard lock(mu_);
  capture_every_ = every;
}

void CrashFs::capture(const std::string& where) {
  std::lock_guard lock(mu_);
  capture_locked(where);
}

std::vector<CrashFs::CrashPoint> CrashFs::take_captures() {
  std::lock_guard lock(mu_);
  std::vector<CrashPoint> out;
  out.swap(captures_);
  return out;
}

uint64_t CrashFs::flushes() const {
  std::lock_guard lock(mu_);
  return flushes_;
}

uint64_t CrashFs::id_of_locked(uint64_t ino, bool fresh) {
  auto it = id_of_ino_.find(ino);
  if (it != id_of_ino_.end() && !fresh) return it->second;
  const uint64_t id = next_file_id_++;
  id_of_ino_[ino] = id;
  return id;
}

std::map<std::string, uint64_t> CrashFs::list_entries_locked() {
  std::map<std::string, uint64_t> out;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    const std::string path = dir_ + "/" + name;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const bool known = id_of_ino_.count(st.st_ino) != 0;
    const uint64_t id = id_of_locked(st.st_ino, false);
    // A file that appeared without CrashFs seeing it created was there before: durable.
    if (!known) durable_bytes_[id] = read_path(path);
    out[name] = id;
  }
  ::closedir(d);
  return out;
}

void CrashFs::maybe_capture_locked(const char* where) {
  if (capture_every_ == 0) return;
  if (++calls_ % capture_every_ != 0) return;
  capture_locked(where);
}

void CrashFs::capture_locked(const std::string& where) {
  CrashPoint cp;
  cp.id = next_id_++;
  // First: an acknowledgement is published after the flush that made it durable returned,
  // and that flush recorded its bytes under mu_ (held now).
  cp.acknowledged = probe_ ? probe_() : 0;
  cp.where = where;
  cp.current_entries = list_entries_locked();
  cp.durable_entries = durable_entries_;
  for (const auto& [name, id] : cp.current_entries)
    cp.current_bytes[id] = read_path(dir_ + "/" + name);
  std::set<uint64_t> ids;
  for (const auto& [name, id] : cp.current_entries) ids.insert(id);
  for (const auto& [name, id] : cp.durable_entries) ids.insert(id);
  for (uint64_t id : ids) {
    auto it = durable_bytes_.find(id);
    cp.durable_bytes[id] = it == durable_bytes_.end() ? std::vector<std::byte>() : it->second;
  }
  captures_.push_back(std::move(cp));
}

// ---- FileOps ----

int CrashFs::open(const char* path, int flags, mode_t mode) {
  std::lock_guard lock(mu_);
  if (flags & O_CREAT) maybe_capture_locked("open");
  struct stat before {};
  const bool existed = ::stat(path, &before) == 0;
  const int fd = FileOps::open(path, flags, mode);
  if (fd < 0) return fd;
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    OpenFile f;
    f.is_dir = S_ISDIR(st.st_mode);
    f.is_watched_dir = f.is_dir && st.st_dev == dir_stat_.st_dev && st.st_ino == dir_stat_.st_ino;
    if (!f.is_dir) {
      const bool fresh = !existed;
      const bool known = id_of_ino_.count(st.st_ino) != 0;
      f.id = id_of_locked(st.st_ino, fresh);
      if (fresh) durable_bytes_[f.id] = {};           // nothing of a new file is durable
      else if (!known) durable_bytes_[f.id] = read_all(fd);  // there before: durable
    }
    fds_[fd] = f;
  }
  return fd;
}

int CrashFs::close(int fd) {
  std::lock_guard lock(mu_);
  fds_.erase(fd);
  return FileOps::close(fd);
}

int CrashFs::fallocate(int fd, off_t offset, off_t length) {
  std::lock_guard lock(mu_);
  maybe_capture_locked("fallocate");
  return FileOps::fallocate(fd, offset, length);
}

int CrashFs::ftruncate(int fd, off_t length) {
  std::lock_guard lock(mu_);
  maybe_capture_locked("ftruncate");
  return FileOps::ftruncate(fd, length);
}

ssize_t CrashFs::pwrite(int fd, const void* buf, size_t n, off_t offset) {
  std::lock_guard lock(mu_);
  maybe_capture_locked("pwrite");
  return FileOps::pwrite(fd, buf, n, offset);
}

void* CrashFs::mmap(size_t length, int prot, int flags, int fd, off_t offset) {
  std::lock_guard lock(mu_);
  void* p = FileOps::mmap(length, prot, flags, fd, offset);
  if (p != MAP_FAILED) {
    auto it = fds_.find(fd);
    if (it != fds_.end())
      maps_.push_back(Mapping{static_cast<std::byte*>(p), length, it->second.id, offset, ::dup(fd)});
  }
  return p;
}

int CrashFs::munmap(void* addr, size_t length) {
  std::lock_guard lock(mu_);
  maps_.erase(std::remove_if(maps_.begin(), maps_.end(),
                             [&](const Mapping& m) {
                               if (m.addr != addr) return false;
                               if (m.fd >= 0) ::close(m.fd);
                               return true;
                             }),
              maps_.end());
  return FileOps::munmap(addr, length);
}

int CrashFs::msync(void* addr, size_t length, int flags) {
  std::lock_guard lock(mu_);
  maybe_capture_locked("msync");
  if (real_sync_ && FileOps::msync(addr, length, flags) != 0) return -1;
  auto* a = static_cast<std::byte*>(addr);
  for (const Mapping& m : maps_) {
    if (a < m.addr || a >= m.addr + m.length) continue;
    // The kernel flushes whole pages: [addr, addr + length) widened to page boundaries.
    const size_t rel = static_cast<size_t>(a - m.addr);
    const size_t begin = rel & ~(kPage - 1);
    const size_t end = std::min(m.length, (rel + length + kPage - 1) & ~(kPage - 1));
    std::vector<std::byte>& d = durable_bytes_[m.id];
    const size_t file_off = static_cast<size_t>(m.offset) + begin;
    if (d.size() < file_off + (end - begin)) d.resize(file_off + (end - begin));
    for (size_t done = 0; done < end - begin;) {
      const ssize_t n = ::pread(m.fd, d.data() + file_off + done, end - begin - done,
                                static_cast<off_t>(file_off + done));
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ++flushes_;
    return 0;
  }
  errno = EINVAL;  // not a mapping made through this FileOps
  return -1;
}

int CrashFs::fdatasync(int fd) {
  std::lock_guard lock(mu_);
  maybe_capture_locked("fdatasync");
  if (real_sync_ && FileOps::fdatasync(fd) != 0) return -1;
  auto it = fds_.find(fd);
  if (it == fds_.end() || it->second.is_dir) return 0;
  durable_bytes_[it->second.id] = read_all(fd);
  ++flushes_;
  return 0;
}

int CrashFs::fsync(int fd) {
  std::lock_guard lock(mu_);
  maybe_capture_locked("fsync");
  if (real_sync_ && FileOps::fsync(fd) != 0) return -1;
  auto it = fds_.find(fd);
  if (it == fds_.end()) return 0;
  if (it->second.is_watched_dir) {
    durable_entries_ = list_entries_locked();
  } else if (it->second.is_dir) {
    // another directory: none of the watched entries become durable
  } else {
    durable_bytes_[it->second.id] = read_all(fd);
  }
  ++flushes_;
  return 0;
}

int CrashFs::rename(const char* from, const char* to) {
  std::lock_guard lock(mu_);
  maybe_capture_locked("rename");
  return FileOps::rename(from, to);
}

int CrashFs::link(const char* from, const char* to) {
  std::lock_guard lock(mu_);
  maybe_capture_locked("link");
  return FileOps::link(from, to);
}

int CrashFs::unlink(const char* path) {
  std::lock_guard lock(mu_);
  maybe_capture_locked("unlink");
  return FileOps::unlink(path);
}

// ---- images ----

void CrashFs::build_image(const CrashPoint& cp, std::mt19937_64& rng, const std::string& out_dir,
                          CrashImageStats* stats) {
  build_image(cp, rng, out_dir, stats, PageChooser());
}

void CrashFs::build_image(const CrashPoint& cp, std::mt19937_64& rng, const std::string& out_dir,
                          CrashImageStats* stats, const PageChooser& choose) {
  namespace fs = std::filesystem;
  fs::remove_all(out_dir);
  fs::create_directories(out_dir);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  // How likely a dirty page is to have reached the disk, and to be torn, in this image.
  const double p_written = unit(rng);
  const double p_torn = 0.2 * unit(rng);
  std::set<std::string> names;
  for (const auto& [n, id] : cp.durable_entries) names.insert(n);
  for (const auto& [n, id] : cp.current_entries) names.insert(n);
  CrashImageStats st;
  for (const std::string& name : names) {
    auto d = cp.durable_entries.find(name);
    auto c = cp.current_entries.find(name);
    const uint64_t did = d == cp.durable_entries.end() ? 0 : d->second;
    const uint64_t cid = c == cp.current_entries.end() ? 0 : c->second;
    uint64_t id = cid;
    if (did != cid && (rng() & 1) == 0) {
      id = did;
      ++st.entries_undone;
    }
    if (id == 0) continue;  // the entry does not exist in this image
    static const std::vector<std::byte> kNone;
    auto db = cp.durable_bytes.find(id);
    auto cb = cp.current_bytes.find(id);
    const std::vector<std::byte>& dur = db == cp.durable_bytes.end() ? kNone : db->second;
    const std::vector<std::byte>& cur = cb == cp.current_bytes.end() ? dur : cb->second;
    size_t size = dur.size();
    if (cur.size() != dur.size() && (rng() & 1) == 0) size = cur.size();
    std::vector<std::byte> img(size);
    if (std::min(size, dur.size()) > 0) std::memcpy(img.data(), dur.data(), std::min(size, dur.size()));
    auto byte_at = [](const std::vector<std::byte>& v, size_t i) {
      return i < v.size() ? v[i] : std::byte{0};
    };
    for (size_t page = 0; page < size; page += kPage) {
      const size_t end = std::min(size, page + kPage);
      bool dirty = false;
      if (end <= cur.size() && end <= dur.size())
        dirty = std::memcmp(cur.data() + page, dur.data() + page, end - page) != 0;
      else
        for (size_t i = page; i < end && !dirty; ++i) dirty = byte_at(cur, i) != byte_at(dur, i);
      if (!dirty) continue;
      ++st.pages_dirty;
      const int chosen = choose ? choose(name, page / kPage) : -1;
      const double r = unit(rng);
      if (chosen == 0) {
        ++st.pages_lost;
      } else if (chosen == 1) {
        ++st.pages_written;
        for (size_t i = page; i < end; ++i) img[i] = byte_at(cur, i);
      } else if (r < p_torn) {
        ++st.pages_torn;
        for (size_t s = page; s < end; s += kSector) {
          const size_t se = std::min(end, s + kSector);
          const uint64_t how = rng() % 3;  // 0 lost, 1 written, 2 written up to a boundary
          size_t upto = how == 0 ? s : how == 1 ? se : s + 8 * (rng() % (kSector / 8 + 1));
          upto = std::min(upto, se);
          for (size_t i = s; i < upto; ++i) img[i] = byte_at(cur, i);
        }
      } else if (unit(rng) < p_written) {
        ++st.pages_written;
        for (size_t i = page; i < end; ++i) img[i] = byte_at(cur, i);
      } else {
        ++st.pages_lost;
      }
    }
    const std::string path = out_dir + "/" + name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      size_t done = 0;
      while (done < img.size()) {
        const ssize_t n = ::write(fd, img.data() + done, img.size() - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      ::close(fd);
    }
  }
  ++st.images;
  if (stats != nullptr) {
    stats->images += st.images;
    stats->pages_dirty += st.pages_dirty;
    stats->pages_lost += st.pages_lost;
    stats->pages_written += st.pages_written;
    stats->pages_torn += st.pages_torn;
    stats->entries_undone += st.entries_undone;
  }
}

}  // namespace sluice::testing
