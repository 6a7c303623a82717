// SnapshotWriter / SnapshotReader: the byte format a read model saves into its checkpoint.
// Little-endian fixed-width fields appended to a buffer; the reader fails (returns false)
// instead of reading past the end. The checkpoint file wraps the bytes with a CRC.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace sluice {

class SnapshotWriter {
 public:
  explicit SnapshotWriter(std::string* out) noexcept : out_(out) {}
  void u64(uint64_t v) { bytes(&v, sizeof v); }
  void i64(int64_t v) { bytes(&v, sizeof v); }
  void str(std::string_view s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  template <class T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes(&v, sizeof v);
  }
  void bytes(const void* p, size_t n) { out_->append(static_cast<const char*>(p), n); }

 private:
  std::string* out_;
};

class SnapshotReader {
 public:
  explicit SnapshotReader(std::span<const std::byte> in) noexcept : in_(in) {}
  [[nodiscard]] bool u64(uint64_t* v) noexcept { return bytes(v, sizeof *v); }
  [[nodiscard]] bool i64(int64_t* v) noexcept { return bytes(v, sizeof *v); }
  [[nodiscard]] bool str(std::string* s) {
    uint64_t n;
    if (!u64(&n) || n > remaining()) return false;
    s->assign(reinterpret_cast<const char*>(in_.data() + at_), n);
    at_ += n;
    return true;
  }
  template <class T>
  [[nodiscard]] bool pod(T* v) noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    return bytes(v, sizeof *v);
  }
  [[nodiscard]] bool bytes(void* p, size_t n) noexcept {
    if (n > remaining()) return false;
    std::memcpy(p, in_.data() + at_, n);
    at_ += n;
    return true;
  }
  size_t remaining() const noexcept { return in_.size() - at_; }

 private:
  std::span<const std::byte> in_;
  size_t at_ = 0;
};

}  // namespace sluice
