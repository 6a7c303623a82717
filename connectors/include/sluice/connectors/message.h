// How a log event travels as a NATS message: its id, its subject and its headers — the
// contract between the relay (which writes them) and the ingest (which reads them back).
//
//   subject          <prefix>.<stream token>.<event type>       e.g. sluice.account-7.1
//   Nats-Msg-Id      <source id>:<position>                     e.g. 9f3c0a17d2b44e61:1042
//   Sluice-Stream    the stream's name, exactly as in the log
//   Sluice-Event     "<stream version> <type> <schema version> <codec> <timestamp ns> <more>"
//                    (decimal; <more> is 1 when the next event belongs to the same atomic
//                    batch, else 0)
//   Sluice-Idempotency-Key / Sluice-Correlation-Id / Sluice-Causation-Id
//                    32 hex digits (hi then lo), present when the record has that id
//   payload          the event's payload bytes, as in the log (any codec)
//
// The source id names the log the event came from: 1..64 bytes of [A-Za-z0-9_-]. By default
// it is made once per log (16 random hex digits) and kept in <log dir>/connectors/source.id.
// The stream token is the stream name with every byte outside [A-Za-z0-9_-] replaced by '_'
// (a subject token may not hold '.', '*', '>' or white space); the Sluice-Stream header keeps
// the exact name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/bus/log_types.h"
#include "sluice/status.h"

namespace sluice::connectors {

inline constexpr const char* kHeaderMsgId = "Nats-Msg-Id";
inline constexpr const char* kHeaderStream = "Sluice-Stream";
inline constexpr const char* kHeaderEvent = "Sluice-Event";
inline constexpr const char* kHeaderIdempotencyKey = "Sluice-Idempotency-Key";
inline constexpr const char* kHeaderCorrelationId = "Sluice-Correlation-Id";
inline constexpr const char* kHeaderCausationId = "Sluice-Causation-Id";

// The record fields a message carries besides its stream, ids and payload.
struct EventMeta {
  uint64_t stream_version = 0;
  uint32_t type = 0;
  uint16_t schema_version = 0;
  uint8_t codec = 0;
  int64_t timestamp_ns = 0;
  bool batch_continues = false;
  friend bool operator==(const EventMeta&, const EventMeta&) = default;
};
std::string format_event_meta(const EventMeta& m);
bool parse_event_meta(std::string_view text, EventMeta* out) noexcept;

Status validate_source_id(std::string_view id);
// "<source>:<position>"
std::string message_id(std::string_view source, uint64_t position);
// The same into `out`, replacing its contents (no allocation once `out` has grown).
void assign_message_id(std::string* out, std::string_view source, uint64_t position);
// FNV-1a, 64 bits: the idempotency key's hi word, the Kafka relay's partition choice.
uint64_t fnv1a_64(std::string_view bytes) noexcept;
// False unless `id` is "<valid source id>:<decimal position>".
bool parse_message_id(std::string_view id, std::string_view* source, uint64_t* position) noexcept;
// The idempotency key a follower stores for the event <source>:<position>: hi = FNV-1a 64 of
// the source id, lo = position. Distinct positions of one source never collide.
Id128 idempotency_key_for(std::string_view source, uint64_t position) noexcept;

std::string format_id128(Id128 id);                       // 32 hex digits
bool parse_id128(std::string_view text, Id128* out) noexcept;

// The stream's subject token (see the file comment).
std::string subject_token(std::string_view stream);
// "<prefix>.<stream token>.<type>"
std::string default_subject(std::string_view prefix, std::string_view stream, uint32_t type);
// A subject prefix: one or more dot-separated tokens of [A-Za-z0-9_-].
Status validate_subject_prefix(std::string_view prefix);
// A JetStream stream name: 1..255 bytes, none of ". * > / \" nor white space.
Status validate_stream_name(std::string_view name);

// The source id of the log in `log_dir`: read from <log dir>/connectors/source.id, or made
// (random, 16 hex digits) and written there atomically the first time.
Result<std::string> load_or_create_source_id(const std::string& log_dir);

// Parses "URL[,URL...]" where each URL is nats://host:port, tls://host:port or host:port
// (port 1..65535; host a name, IPv4 or [IPv6]). The error names the bad URL and says why.
Result<std::vector<std::string>> parse_nats_urls(std::string_view list);

}  // namespace sluice::connectors
