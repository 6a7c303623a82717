// The built-in schema-driven codecs (Codec::to_document), one per format.
#pragma once

#include "sluice/serialization/document.h"
#include "sluice/serialization/schema.h"

namespace sluice::serialization::internal {

class RawDocumentCodec final : public Codec {
 public:
  CodecId id() const noexcept override { return CodecId::raw; }
  std::string_view name() const noexcept override { return "raw"; }
  Result<nlohmann::json> to_document(const Schema& schema,
                                     std::span<const std::byte> payload) const override;
};

class JsonDocumentCodec final : public Codec {
 public:
  CodecId id() const noexcept override { return CodecId::json; }
  std::string_view name() const noexcept override { return "json"; }
  Result<nlohmann::json> to_document(const Schema& schema,
                                     std::span<const std::byte> payload) const override;
};

class FlatBuffersDocumentCodec final : public Codec {
 public:
  CodecId id() const noexcept override { return CodecId::flatbuffers; }
  std::string_view name() const noexcept override { return "flatbuffers"; }
  Result<nlohmann::json> to_document(const Schema& schema,
                                     std::span<const std::byte> payload) const override;
};

// Nesting limit of schema-driven decoding (FlatBuffers tables, structs).
inline constexpr int kMaxDepth = 64;

}  // namespace sluice::serialization::internal
