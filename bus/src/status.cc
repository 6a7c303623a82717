#include "sluice/status.h"

namespace sluice {

std::string_view to_string(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::ok: return "ok";
    case StatusCode::conflict: return "conflict";
    case StatusCode::too_large: return "too_large";
    case StatusCode::closed: return "closed";
    case StatusCode::io_error: return "io_error";
    case StatusCode::corruption: return "corruption";
    case StatusCode::invalid_argument: return "invalid_argument";
    case StatusCode::not_found: return "not_found";
    case StatusCode::busy: return "busy";
    case StatusCode::timeout: return "timeout";
  }
  return "unknown";
}

Status::Status(StatusCode code, std::string message)
    : rep_(code == StatusCode::ok ? nullptr : std::make_unique<Rep>(Rep{code, std::move(message)})) {}

const std::string& Status::message() const noexcept {
  static const std::string empty;
  return rep_ ? rep_->message : empty;
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  std::string s(sluice::to_string(rep_->code));
  s += ": ";
  s += rep_->message;
  return s;
}

}  // namespace sluice
