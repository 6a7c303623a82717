// Codec ids as the serialization layer uses them: the one CodecId of the log format
// (sluice/bus/codec_id.h: 0 raw, 2 flatbuffers, 3 json; the old raw byte 1 reads as raw).
//
// Every event record carries a codec id (log_format::RecordHeader::codec). An event type is
// bound to one codec by configuration (SchemaRegistry::bind<T>(codec)); readers decode each
// record with the codec the record names, so a log may mix codecs and the handler code that
// receives the decoded `const T&` does not change when the configuration does.
//
// Two ways to decode:
//   - typed (EventBinding<T>, binding.h): into the application's struct, on the hot path, no
//     heap allocation for fixed-size fields; raw payloads are also readable in place
//     (RawCodec::view), FlatBuffers ones with FlatBuffersCodec::access (flatbuffers_codec.h);
//   - schema-driven (Codec::to_document, document.h): into a nlohmann::json document from the
//     schema stored in the log alone, with no application code. `sluice dump` and upcasters
//     use it (cold path).
//
// This header and binding.h, event_traits.h, field_types.h and schema_registry.h include no
// FlatBuffers and no nlohmann/json header: a projection or a reader pays for those only when
// it includes flatbuffers_codec.h or document.h (or schema.h).
#pragma once

#include "sluice/bus/codec_id.h"

namespace sluice::serialization {

using sluice::CodecId;
using sluice::decode_codec;
using sluice::kMaxCodecId;
using sluice::known_codec;
using sluice::parse_codec;
using sluice::to_string;

}  // namespace sluice::serialization
