// Helpers for fuzz targets whose reader takes a file, not bytes: a scratch directory per
// process (on tmpfs when there is one) and writing the input into a file there.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace sluice::fuzz {

inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const std::filesystem::path base =
        std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path();
    const std::filesystem::path d = base / ("sluice_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir;
}

inline void write_bytes(const std::string& path, const uint8_t* data, size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

// With SLUICE_FUZZ_SEED_DIR set, writes `bytes` there as seed `name` (once per process).
inline void write_seed(const char* name, const std::string& bytes) {
  const char* dir = std::getenv("SLUICE_FUZZ_SEED_DIR");
  if (dir == nullptr || *dir == '\0') return;
  std::filesystem::create_directories(dir);
  write_bytes(std::string(dir) + "/" + name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace sluice::fuzz
