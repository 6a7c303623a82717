// Status and Result: how errors cross the Sluice library boundary.
//
// A Status is a code plus a message that names the file, offset, stream or type involved.
// Like leveldb's Status, an OK status holds a null pointer, so success costs one pointer
// test and no allocation; only an error allocates its message (errors are the cold path).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sluice {

enum class StatusCode : uint8_t {
  ok = 0,
  conflict,          // expected-version mismatch
  too_large,         // event or batch larger than a segment can hold
  closed,            // the writer is closed or has failed earlier
  io_error,          // a system call failed (errno text in the message)
  corruption,        // bad bytes in the log (segment and offset in the message)
  invalid_argument,  // bad input from the caller
  not_found,         // no such log, stream, position
  busy,              // another writer holds the log
  timeout,
};

std::string_view to_string(StatusCode code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;
  Status(StatusCode code, std::string message);
  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status OK() noexcept { return Status(); }

  bool ok() const noexcept { return rep_ == nullptr; }
  explicit operator bool() const noexcept { return ok(); }
  StatusCode code() const noexcept { return rep_ ? rep_->code : StatusCode::ok; }
  const std::string& message() const noexcept;
  // "io_error: fdatasync /x/00000000000000000001.seg: Input/output error"
  std::string to_string() const;

  // Marks a status as deliberately ignored.
  void ignore() const noexcept {}

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::unique_ptr<Rep> rep_;
};

// Result<T>: a value or an error Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                     // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}              // NOLINT
  Result(StatusCode code, std::string message) : v_(Status(code, std::move(message))) {}

  bool ok() const noexcept { return std::holds_alternative<T>(v_); }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sluice
