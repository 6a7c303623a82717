#include "internal/segment_scanner.h"

#include <algorithm>
#include <cstring>

namespace sluice::log_internal {

const char* to_string(ScanStop s) noexcept {
  switch (s) {
    case ScanStop::end: return "end";
    case ScanStop::sealed: return "sealed";
    case ScanStop::invalid: return "invalid record";
    case ScanStop::inconsistent: return "inconsistent record";
    case ScanStop::incomplete: return "incomplete batch";
  }
  return "?";
}

AfterScan find_valid_after(const std::byte* base, uint64_t size, uint64_t segment_index,
                           uint64_t from) noexcept {
  AfterScan a;
  from = log_format::align_up(from);
  for (uint64_t off = from; off + 8 <= size;) {
    // Skip zero space 64 bytes at a time: a preallocated segment is mostly zeros.
    if ((off & 63) == 0 && off + 64 <= size) {
      uint64_t w[8];
      std::memcpy(w, base + off, 64);
      if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) == 0) {
        off += 64;
        continue;
      }
    }
    uint64_t word;
    std::memcpy(&word, base + off, 8);
    if (word != 0) {
      a.dirty_end = off + 8;
      uint32_t len = 0;
      if (!a.found_valid && off > from &&
          decode_record(base + off, size - off, segment_index, &len) == Decode::ok) {
        a.found_valid = true;
        a.valid_offset = off;
      }
    }
    off += 8;
  }
  // A file cut short mid-word leaves a partial last word: its bytes are dirty too.
  for (uint64_t off = std::max(from, size & ~uint64_t{7}); off < size; ++off) {
    if (base[off] != std::byte{0}) {
      a.dirty_end = size;
      break;
    }
  }
  return a;
}

}  // namespace sluice::log_internal
