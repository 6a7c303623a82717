#include "sluice/bus/file_ops.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

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
int FileOps::unlink(const char* path) { return ::unlink(path); }
int FileOps::fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
int FileOps::mkdir(const char* path, mode_t mode) { return ::mkdir(path, mode); }

}  // namespace sluice
