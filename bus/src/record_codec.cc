#include "internal/record_codec.h"

#include <cinttypes>
#include <cstdio>

#include "internal/record_encoder_fused.h"

namespace sluice::log_internal {

namespace {
#if defined(__x86_64__)
const bool kFusedAvailable = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul");
#else
constexpr bool kFusedAvailable = false;
#endif
// Relaxed: a test switch, read when a writer opens; nothing is published through it.
std::atomic<bool> fused_disabled_for_testing{false};
}  // namespace

bool fused_encoder_available() noexcept {
  return kFusedAvailable && !fused_disabled_for_testing.load(std::memory_order_relaxed);
}

void set_fused_encoder_enabled_for_testing(bool enabled) noexcept {
  fused_disabled_for_testing.store(!enabled, std::memory_order_relaxed);
}

uint32_t encode_record(std::byte* dst, uint64_t segment_index, const RecordFields& f,
                       const EventData& e) noexcept {
#if defined(__x86_64__)
  if (kFusedAvailable) return fused::encode_record_fused(dst, segment_index, f, e);
#endif
  return encode_record_portable(dst, segment_index, f, e);
}

const char* to_string(Decode d) noexcept {
  switch (d) {
    case Decode::ok: return "ok";
    case Decode::zero: return "zero length";
    case Decode::bad_length: return "bad length";
    case Decode::bad_header: return "bad header";
    case Decode::bad_crc: return "checksum mismatch";
  }
  return "?";
}

Decode decode_record(const std::byte* p, size_t available, uint64_t segment_index,
                     uint32_t* length) noexcept {
  if (available < 8) return available == 0 ? Decode::zero : Decode::bad_length;
  const uint32_t len = load_length(p);
  if (len == 0) return Decode::zero;
  if (len < lf::kRecordHeaderSize || len > available) return Decode::bad_length;
  const auto* h = reinterpret_cast<const lf::RecordHeader*>(p);
  if ((h->flags & ~lf::kKnownFlags) != 0 || h->header_length != lf::header_length_for(h->flags) ||
      h->header_length > len || h->type == lf::kTypeZero || h->reserved0 != 0 ||
      h->reserved1 != 0) {
    // Checked before the CRC only to give a better reason; both mean the record is bad.
    if (record_crc(segment_index, p, len) != h->crc) return Decode::bad_crc;
    return Decode::bad_header;
  }
  if (record_crc(segment_index, p, len) != h->crc) return Decode::bad_crc;
  *length = len;
  return Decode::ok;
}

std::string describe_bad_record(const std::byte* p, size_t available, Decode d) {
  char buf[160];
  uint32_t len = available >= 4 ? load_length(p) : 0;
  std::snprintf(buf, sizeof buf, "%s (length field %" PRIu32 ", %zu bytes available)",
                to_string(d), len, available);
  return buf;
}

}  // namespace sluice::log_internal
