#include "sluice/bus/codec_id.h"

namespace sluice {

std::string_view to_string(CodecId id) noexcept {
  switch (id) {
    case CodecId::raw: return "raw";
    case CodecId::flatbuffers: return "flatbuffers";
    case CodecId::json: return "json";
  }
  return "unknown";
}

bool parse_codec(std::string_view name, CodecId* out) noexcept {
  for (CodecId id : {CodecId::raw, CodecId::flatbuffers, CodecId::json}) {
    if (to_string(id) == name) {
      *out = id;
      return true;
    }
  }
  return false;
}

}  // namespace sluice
