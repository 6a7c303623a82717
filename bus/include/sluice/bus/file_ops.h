// FileOps: the thin seam between the log and the operating system. Every system call the log
// makes on its files goes through here, so tests can inject faults (the Nth fdatasync fails,
// the disk fills up at preallocation...). The calls follow POSIX: they return -1 and set
// errno on failure (fallocate too, unlike posix_fallocate).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>

namespace sluice {

class FileOps {
 public:
  virtual ~FileOps() = default;

  // The process-wide instance that makes the real system calls.
  static FileOps& system() noexcept;

  virtual int open(const char* path, int flags, mode_t mode);
  virtual int close(int fd);
  virtual int fallocate(int fd, off_t offset, off_t length);  // posix_fallocate semantics
  virtual int ftruncate(int fd, off_t length);
  virtual ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset);
  virtual void* mmap(size_t length, int prot, int flags, int fd, off_t offset);  // MAP_FAILED
  virtual int munmap(void* addr, size_t length);
  virtual int msync(void* addr, size_t length, int flags);
  virtual int fdatasync(int fd);
  virtual int fsync(int fd);
  virtual int rename(const char* from, const char* to);
  virtual int unlink(const char* path);
  virtual int fstat(int fd, struct stat* st);
  virtual int mkdir(const char* path, mode_t mode);
};

}  // namespace sluice
