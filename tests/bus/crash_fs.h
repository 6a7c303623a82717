// CrashFs: a power-loss simulator behind the FileOps seam (in the spirit of SQLite's crash
// VFS and RocksDB's FaultInjectionTestFS).
//
// The code under test runs on the real file system, through a CrashFs. CrashFs records what
// each completed flush made durable:
//  - fsync / fdatasync of a file: its whole content and size;
//  - msync of a mapped range: the bytes of those pages (the range, widened to pages as the
//    kernel does), nothing else; a flush of the wrong range leaves acknowledged bytes
//    unflushed, and the crash images show it;
//  - fsync of the watched directory: its entries (name -> inode) as they are at that moment
//    (an fsync of another directory, e.g. its parent, makes none of them durable).
// Nothing else is durable: not a write, not a rename, not an unlink, not a file's size.
//
// capture() takes a crash point: the durable state plus the current contents of every file
// in the watched directory. build_image() then makes one on-disk image of a power cut at that
// point: each directory entry that changed since the directory was last flushed is either in
// its durable or in its current state (a created file missing, a removed one back, a rename
// undone); each file starts from its durable bytes, and every 4 KiB page that differs from
// them is, by chance, lost (durable bytes), written (current bytes) or torn: each of its
// 512-byte sectors lost, written, or written only up to an 8-byte boundary (a sector caught
// mid-update, or an intermediate version of an append-only page). Pages are decided
// independently, so later pages reach the disk without earlier ones: any order.
//
// Crash points can be captured automatically inside every mutating call (before the real
// call runs): a crash in the middle of a roll, a segment creation, a metadata rename. The
// `acknowledged` probe is read first, so an acknowledgement published after a flush is never
// credited to a capture that does not hold that flush.
//
// Thread safety: all calls may come from any thread (the log writer's maintenance thread
// flushes and creates segments); one mutex guards the state. capture() reads file contents
// while a writer may be storing into its mapping: a record half-stored in a captured page is
// part of the model (a page written back mid-append).
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "sluice/bus/file_ops.h"

namespace sluice::testing {

struct CrashImageStats {
  uint64_t images = 0;
  uint64_t pages_dirty = 0;    // pages that differed from their durable bytes
  uint64_t pages_lost = 0;     // ... and kept their durable bytes
  uint64_t pages_written = 0;  // ... and took their current bytes
  uint64_t pages_torn = 0;     // ... and were torn at sector (or 8-byte) granularity
  uint64_t entries_undone = 0; // directory entries left in their durable state
};

class CrashFs : public FileOps {
 public:
  // Watches `dir` (which must exist; its entries at this point are taken as durable).
  // real_sync: whether flushes also reach the real disk (off: faster, the simulator decides).
  explicit CrashFs(std::string dir, bool real_sync = false);

  // One crash point. Opaque outside build_image(); holds copies of the files.
  struct CrashPoint {
    uint64_t id = 0;
    uint64_t acknowledged = 0;  // the probe's value, read before the state was copied
    std::string where;          // the call it was taken in ("msync", "after-append", ...)
    // Files are identified by an id that CrashFs gives each inode it sees (inode numbers are
    // reused after an unlink; ids are not).
    std::map<std::string, uint64_t> durable_entries;  // name -> file id
    std::map<std::string, uint64_t> current_entries;  // name -> file id
    std::map<uint64_t, std::vector<std::byte>> durable_bytes;  // file id -> durable content
    std::map<uint64_t, std::vector<std::byte>> current_bytes;  // file id -> current content
  };

  // Returns a value that is acknowledged as durable now (e.g. LogWriter::acknowledged_position).
  void set_acknowledged_probe(std::function<uint64_t()> probe);
  // Capture a crash point inside every mutating call, for a call in `every` (1 = all; 0 = off).
  void capture_in_calls(uint64_t every);
  // Takes a crash point now (from any thread).
  void capture(const std::string& where);
  // The crash points captured since the last call.
  std::vector<CrashPoint> take_captures();

  // Writes the image of a crash at `cp` into `out_dir` (emptied first).
  static void build_image(const CrashPoint& cp, std::mt19937_64& rng, const std::string& out_dir,
                          CrashImageStats* stats);
  // Decides a dirty page by hand: 0 lost, 1 written, anything else: by chance as above.
  using PageChooser = std::function<int(const std::string& name, size_t page)>;
  static void build_image(const CrashPoint& cp, std::mt19937_64& rng, const std::string& out_dir,
                          CrashImageStats* stats, const PageChooser& choose);

  // FileOps
  int open(const char* path, int flags, mode_t mode) override;
  int close(int fd) override;
  int fallocate(int fd, off_t offset, off_t length) override;
  int ftruncate(int fd, off_t length) override;
  ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) override;
  void* mmap(size_t length, int prot, int flags, int fd, off_t offset) override;
  int munmap(void* addr, size_t length) override;
  int msync(void* addr, size_t length, int flags) override;
  int fdatasync(int fd) override;
  int fsync(int fd) override;
  int rename(const char* from, const char* to) override;
  int link(const char* from, const char* to) override;
  int unlink(const char* path) override;

  uint64_t flushes() const;  // completed flushes recorded (files, ranges, directories)

 private:
  struct OpenFile {
    uint64_t id = 0;
    bool is_dir = false;
    bool is_watched_dir = false;  // the directory whose entries CrashFs models
  };
  struct Mapping {
    std::byte* addr = nullptr;
    size_t length = 0;
    uint64_t id = 0;
    off_t offset = 0;
    int fd = -1;  // a dup of the mapped file's fd: flushed bytes are read with pread (the
                  // kernel's copy, as writeback does), never from the mapping the writer is
                  // storing into
  };
  void maybe_capture_locked(const char* where);
  void capture_locked(const std::string& where);
  // The file id of an inode; `fresh`: the inode belongs to a file just created (a reused
  // inode number gets a new id, with no durable content).
  uint64_t id_of_locked(uint64_t ino, bool fresh);
  std::map<std::string, uint64_t> list_entries_locked();

  const std::string dir_;
  const bool real_sync_;
  struct stat dir_stat_ {};  // the watched directory's device and inode
  mutable std::mutex mu_;
  std::map<int, OpenFile> fds_;
  std::vector<Mapping> maps_;
  std::map<uint64_t, uint64_t> id_of_ino_;
  std::map<uint64_t, std::vector<std::byte>> durable_bytes_;  // file id -> durable content
  std::map<std::string, uint64_t> durable_entries_;            // name -> file id
  uint64_t next_file_id_ = 1;
  std::function<uint64_t()> probe_;
  uint64_t capture_every_ = 0;
  uint64_t calls_ = 0;
  uint64_t next_id_ = 0;
  uint64_t flushes_ = 0;
  std::vector<CrashPoint> captures_;
};

}  // namespace sluice::testing
