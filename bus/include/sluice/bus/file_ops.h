// FileOps: the thin seam between the log and the operating system. Every system call the log
// makes on its files goes through here, so tests can inject faults (the Nth fdatasync fails,
// the disk fills up at preallocation...). The calls follow POSIX: they return -1 and set
// errno on failure (fallocate too, unlike posix_fallocate).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "sluice/status.h"

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
  virtual int link(const char* from, const char* to);
  virtual int unlink(const char* path);
  virtual int fstat(int fd, struct stat* st);
  virtual int mkdir(const char* path, mode_t mode);
};

// ---- Files created safely ----------------------------------------------------------------

struct AtomicFileOptions {
  mode_t mode = 0640;  // permissions of the file (the umask applies too): owner rw, group r
  // The temporary file: "<path>.tmp" (one writer of `path` at a time; a crash leaves at most
  // one behind, which the next write truncates), or, when true, "<path>.tmp<pid>-<n>" (writers
  // in several threads or processes may race; the last rename wins).
  bool unique_temp = false;
  // true: the new file replaces whatever `path` holds (rename). false: the first file to
  // reach `path` stays (link, then the temporary name is removed); a later write finds
  // `path` taken and returns StatusCode::conflict, leaving it as it is.
  bool replace = true;
};

// Writes `bytes` as the whole content of `path` so that, whatever the point at which the
// process or the machine stops (kill -9, power cut), `path` afterwards holds its old content
// or the new one, whole, never a mix, a prefix or nothing; and once this returns OK, the new
// one. The order is the one that makes that true on a journalled file system:
//   1. create the temporary file beside `path` (O_TRUNC) and write the bytes;
//   2. fsync the temporary file: its bytes are on disk before any name points at them
//      (rename first, and a power cut can leave `path` naming an empty or torn file);
//   3. rename it over `path` (or link it to `path`: options.replace): the one atomic step;
//   4. fsync the directory: the new entry is on disk before the caller acknowledges
//      anything that depends on the file (without it, a power cut can bring back the old
//      entry, or no entry at all for a file that did not exist).
// Every call goes through `ops`, so the power-loss simulator (tests/bus/crash_fs.h) sees
// each step. A failure before step 3 removes the temporary file and leaves `path` as it
// was. Errors name the file and the step. Cold path: allocates.
Status write_file_atomically(FileOps& ops, const std::string& path, std::string_view bytes,
                             const AtomicFileOptions& options = {});

// fsyncs the directory itself, so that an entry created, renamed or removed in it survives a
// power cut.
Status sync_directory(FileOps& ops, const std::string& dir);

// Creates the directory `dir` if it is missing (missing ancestors too, each the same way) and
// fsyncs its parent, so that the directory's own entry survives a power cut before any file
// made in it is acknowledged. An existing directory is accepted as it is (its parent is
// fsynced all the same: a previous run may have stopped before doing so).
Status create_directory_durably(FileOps& ops, const std::string& dir, mode_t mode = 0750);

}  // namespace sluice
