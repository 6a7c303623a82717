#include "sluice/projections/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "sluice/bus/clock.h"
#include "sluice/bus/crc32c.h"
#include "sluice/bus/file_ops.h"

namespace sluice {
namespace {

constexpr uint64_t kMagic = 0x3154504B43554C53ull;  // "SLUCKPT1"
constexpr uint32_t kVersion = 1;
constexpr uint32_t kHeaderSize = 72;

struct Header {
  uint64_t magic;
  uint32_t version;
  uint32_t header_size;
  uint64_t position;
  uint64_t applied_address;
  uint64_t events_applied;
  uint64_t digest;
  int64_t written_ns;
  uint64_t payload_size;
  uint32_t payload_crc;
  uint32_t header_crc;
};
static_assert(sizeof(Header) == kHeaderSize);
static_assert(offsetof(Header, position) == 16 && offsetof(Header, payload_crc) == 64);

Status sys(const std::string& what, const std::string& path) {
  return Status(StatusCode::io_error, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

std::string checkpoint_dir(const std::string& log_dir) { return log_dir + "/checkpoints"; }

std::string checkpoint_path(const std::string& log_dir, std::string_view projection) {
  return checkpoint_dir(log_dir) + "/" + std::string(projection) + ".ckpt";
}

Status validate_projection_name(std::string_view name) {
  if (name.empty() || name.size() > 63)
    return Status(StatusCode::invalid_argument, "projection name '" + std::string(name) + "' must be 1..63 bytes");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok)
      return Status(StatusCode::invalid_argument,
                    "projection name '" + std::string(name) + "' may hold only letters, digits, '_', '-', '.'");
  }
  return Status::OK();
}

Status write_checkpoint(const std::string& log_dir, std::string_view projection, const CheckpointData& d,
                        const CheckpointFileOptions& options) {
  FileOps& ops = options.file_ops != nullptr ? *options.file_ops : FileOps::system();
  const std::string dir = checkpoint_dir(log_dir);
  if (Status st = create_directory_durably(ops, dir, options.dir_mode); !st.ok()) return st;
  Header h{};
  h.magic = kMagic;
  h.version = kVersion;
  h.header_size = kHeaderSize;
  h.position = d.position;
  h.applied_address = d.applied_address;
  h.events_applied = d.events_applied;
  h.digest = d.digest;
  h.written_ns = d.written_ns;
  if (h.written_ns == 0) {
    h.written_ns = realtime_ns();
  }
  h.payload_size = d.payload.size();
  h.payload_crc = crc32c::mask(crc32c::value(d.payload.data(), d.payload.size()));
  h.header_crc = crc32c::mask(crc32c::value(&h, offsetof(Header, header_crc)));
  std::string bytes(reinterpret_cast<const char*>(&h), sizeof h);
  bytes += d.payload;
  AtomicFileOptions o;
  o.mode = options.file_mode;
  return write_file_atomically(ops, checkpoint_path(log_dir, projection), bytes, o);
}

Result<std::optional<CheckpointData>> read_checkpoint(const std::string& log_dir, std::string_view projection) {
  const std::string path = checkpoint_path(log_dir, projection);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<CheckpointData>();
    return sys("open", path);
  }
  std::string bytes;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = sys("read", path);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto bad = [&](const std::string& why) {
    return Status(StatusCode::corruption, "checkpoint " + path + " of projection '" + std::string(projection) + "': " + why);
  };
  if (bytes.size() < kHeaderSize) return bad("shorter than its header (" + std::to_string(bytes.size()) + " bytes)");
  Header h;
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.magic != kMagic) return bad("bad magic");
  if (h.version != kVersion) return bad("version " + std::to_string(h.version) + ", expected 1");
  if (crc32c::unmask(h.header_crc) != crc32c::value(&h, offsetof(Header, header_crc))) return bad("header CRC mismatch");
  if (h.payload_size != bytes.size() - kHeaderSize)
    return bad("payload is " + std::to_string(bytes.size() - kHeaderSize) + " bytes, header says " +
               std::to_string(h.payload_size));
  if (crc32c::unmask(h.payload_crc) != crc32c::value(bytes.data() + kHeaderSize, h.payload_size))
    return bad("payload CRC mismatch");
  CheckpointData d;
  d.position = h.position;
  d.applied_address = h.applied_address;
  d.events_applied = h.events_applied;
  d.digest = h.digest;
  d.written_ns = h.written_ns;
  d.payload = bytes.substr(kHeaderSize);
  return std::optional<CheckpointData>(std::move(d));
}

}  // namespace sluice
