#include "sluice/bus/file_ops.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sluice {

FileOps& FileOps::system() noexcept {
  static FileOps ops;
  return ops;
}

int FileOps::open(const char* path, int flags, mode_t mode) {
  return ::open(path, flags | O_CLOEXEC, mode);
}
int FileOps::close(int fd) { return ::close(fd); }
int FileOps::fallocate(int fd, off_t offset, off_t length) {
  int rc = ::posix_fallocate(fd, offset, length);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  return 0;
}
int FileOps::ftruncate(int fd, off_t length) { return ::ftruncate(fd, length); }
ssize_t FileOps::pwrite(int fd, const void* buf, size_t n, off_t offset) {
  return ::pwrite(fd, buf, n, offset);
}
void* FileOps::mmap(size_t length, int prot, int flags, int fd, off_t offset) {
  return ::mmap(nullptr, length, prot, flags, fd, offset);
}
int FileOps::munmap(void* addr, size_t length) { return ::munmap(addr, length); }
int FileOps::msync(void* addr, size_t length, int flags) { return ::msync(addr, length, flags); }
int FileOps::fdatasync(int fd) { return ::fdatasync(fd); }
int FileOps::fsync(int fd) { return ::fsync(fd); }
int FileOps::rename(const char* from, const char* to) { return ::rename(from, to); }
int FileOps::link(const char* from, const char* to) { return ::link(from, to); }
int FileOps::unlink(const char* path) { return ::unlink(path); }
int FileOps::fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
int FileOps::mkdir(const char* path, mode_t mode) { return ::mkdir(path, mode); }

// ---- Files created safely ----------------------------------------------------------------

namespace {

Status io_error(const std::string& what, int err) {
  return Status(StatusCode::io_error, what + ": " + std::strerror(err));
}

std::string parent_of(const std::string& path) {
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;
  const size_t slash = path.rfind('/', end - 1);
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Status sync_directory(FileOps& ops, const std::string& dir) {
  const int fd = ops.open(dir.c_str(), O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return io_error("open directory " + dir, errno);
  const int rc = ops.fsync(fd);
  const int err = errno;
  ops.close(fd);
  if (rc != 0) return io_error("fsync directory " + dir, err);
  return Status();
}

Status write_file_atomically(FileOps& ops, const std::string& path, std::string_view bytes,
                             const AtomicFileOptions& options) {
  // Relaxed: only makes temporary names unique within the process (the pid does across).
  static std::atomic<uint64_t> tmp_counter{0};
  const std::string tmp =
      options.unique_temp ? path + ".tmp" + std::to_string(::getpid()) + "-" +
                                std::to_string(tmp_counter.fetch_add(1, std::memory_order_relaxed))
                          : path + ".tmp";
  // 1. the temporary file, written whole
  const int fd = ops.open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, options.mode);
  if (fd < 0) return io_error("create " + tmp, errno);
  Status st;
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ops.pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      st = io_error("write " + tmp, n == 0 ? EIO : errno);
      break;
    }
    done += static_cast<size_t>(n);
  }
  // 2. its bytes durable before a name points at them
  if (st.ok() && ops.fsync(fd) != 0) st = io_error("fsync " + tmp, errno);
  ops.close(fd);
  if (!st.ok()) {
    ops.unlink(tmp.c_str());
    return st;
  }
  // 3. the one atomic step
  if (options.replace) {
    if (ops.rename(tmp.c_str(), path.c_str()) != 0) {
      st = io_error("rename " + tmp + " to " + path, errno);
      ops.unlink(tmp.c_str());
      return st;
    }
  } else {
    const int rc = ops.link(tmp.c_str(), path.c_str());
    const int err = errno;
    ops.unlink(tmp.c_str());
    if (rc != 0 && err == EEXIST) {
      // Someone else's file won; make sure its entry is durable before the caller reads it.
      if (Status d = sync_directory(ops, parent_of(path)); !d.ok()) return d;
      return Status(StatusCode::conflict, path + " exists already (kept)");
    }
    if (rc != 0) return io_error("link " + tmp + " to " + path, err);
  }
  // 4. the new entry durable before anything that depends on it is acknowledged
  return sync_directory(ops, parent_of(path));
}

Status create_directory_durably(FileOps& ops, const std::string& dir, mode_t mode) {
  if (ops.mkdir(dir.c_str(), mode) != 0) {
    const int err = errno;
    if (err == ENOENT && parent_of(dir) != dir) {
      // A missing ancestor: made (durably) first.
      if (Status st = create_directory_durably(ops, parent_of(dir), mode); !st.ok()) return st;
      if (ops.mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return io_error("create directory " + dir, errno);
    } else if (err != EEXIST) {
      return io_error("create directory " + dir, err);
    }
  }
  return sync_directory(ops, parent_of(dir));
}

}  // namespace sluice
