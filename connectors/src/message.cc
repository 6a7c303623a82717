#include "sluice/connectors/message.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <random>

#include "sluice/bus/file_ops.h"

namespace sluice::connectors {
namespace {

bool token_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

template <class T>
bool parse_uint(std::string_view s, T* out) noexcept {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Status sys(const std::string& what, const std::string& path) {
  return Status(StatusCode::io_error, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

std::string format_event_meta(const EventMeta& m) {
  return std::to_string(m.stream_version) + ' ' + std::to_string(m.type) + ' ' +
         std::to_string(m.schema_version) + ' ' + std::to_string(m.codec) + ' ' +
         std::to_string(m.timestamp_ns) + ' ' + (m.batch_continues ? '1' : '0');
}

bool parse_event_meta(std::string_view text, EventMeta* out) noexcept {
  std::string_view f[6];
  size_t n = 0;
  while (n < 6) {
    const size_t sp = text.find(' ');
    f[n++] = text.substr(0, sp);
    if (sp == std::string_view::npos) {
      text = {};
      break;
    }
    text.remove_prefix(sp + 1);
  }
  if (n != 6 || !text.empty()) return false;
  EventMeta m;
  uint32_t codec = 0, more = 0;
  if (!parse_uint(f[0], &m.stream_version) || m.stream_version == 0) return false;
  if (!parse_uint(f[1], &m.type) || !parse_uint(f[2], &m.schema_version)) return false;
  if (!parse_uint(f[3], &codec) || codec > 255) return false;
  if (f[4].empty()) return false;
  {
    auto [p, ec] = std::from_chars(f[4].data(), f[4].data() + f[4].size(), m.timestamp_ns);
    if (ec != std::errc() || p != f[4].data() + f[4].size()) return false;
  }
  if (!parse_uint(f[5], &more) || more > 1) return false;
  m.codec = static_cast<uint8_t>(codec);
  m.batch_continues = more == 1;
  *out = m;
  return true;
}

Status validate_source_id(std::string_view id) {
  if (id.empty() || id.size() > 64)
    return Status(StatusCode::invalid_argument, "source id '" + std::string(id) + "' must be 1..64 bytes");
  for (char c : id)
    if (!token_char(c))
      return Status(StatusCode::invalid_argument,
                    "source id '" + std::string(id) + "' may hold only letters, digits, '_' and '-'");
  return Status::OK();
}

void assign_message_id(std::string* out, std::string_view source, uint64_t position) {
  out->assign(source);
  out->push_back(':');
  char buf[24];
  out->append(buf, std::to_chars(buf, buf + sizeof buf, position).ptr);
}

std::string message_id(std::string_view source, uint64_t position) {
  std::string s;
  s.reserve(source.size() + 21);
  assign_message_id(&s, source, position);
  return s;
}

uint64_t fnv1a_64(std::string_view bytes) noexcept {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

bool parse_message_id(std::string_view id, std::string_view* source, uint64_t* position) noexcept {
  const size_t colon = id.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 64) return false;
  const std::string_view src = id.substr(0, colon);
  for (char c : src)
    if (!token_char(c)) return false;
  uint64_t pos = 0;
  if (!parse_uint(id.substr(colon + 1), &pos)) return false;
  *source = src;
  *position = pos;
  return true;
}

Id128 idempotency_key_for(std::string_view source, uint64_t position) noexcept {
  return Id128{fnv1a_64(source), position};
}

std::string format_id128(Id128 id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    s[15 - i] = kHex[(id.hi >> (4 * i)) & 15];
    s[31 - i] = kHex[(id.lo >> (4 * i)) & 15];
  }
  return s;
}

bool parse_id128(std::string_view text, Id128* out) noexcept {
  if (text.size() != 32) return false;
  Id128 id;
  for (size_t i = 0; i < 32; ++i) {
    const char c = text[i];
    uint64_t v;
    if (c >= '0' && c <= '9') v = static_cast<uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f') v = static_cast<uint64_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v = static_cast<uint64_t>(c - 'A' + 10);
    else return false;
    uint64_t& w = i < 16 ? id.hi : id.lo;
    w = (w << 4) | v;
  }
  *out = id;
  return true;
}

std::string subject_token(std::string_view stream) {
  std::string s(stream);
  for (char& c : s)
    if (!token_char(c)) c = '_';
  if (s.empty()) s = "_";
  return s;
}

std::string default_subject(std::string_view prefix, std::string_view stream, uint32_t type) {
  std::string s;
  s.reserve(prefix.size() + stream.size() + 12);
  s.append(prefix);
  s.push_back('.');
  s.append(subject_token(stream));
  s.push_back('.');
  char buf[12];
  s.append(buf, std::to_chars(buf, buf + sizeof buf, type).ptr);
  return s;
}

Status validate_subject_prefix(std::string_view prefix) {
  auto bad = [&](const char* why) {
    return Status(StatusCode::invalid_argument, "subject prefix '" + std::string(prefix) + "': " + why);
  };
  if (prefix.empty()) return bad("empty");
  size_t token_len = 0;
  for (char c : prefix) {
    if (c == '.') {
      if (token_len == 0) return bad("empty token");
      token_len = 0;
    } else if (!token_char(c)) {
      return bad("tokens may hold only letters, digits, '_' and '-'");
    } else {
      ++token_len;
    }
  }
  if (token_len == 0) return bad("empty token");
  return Status::OK();
}

Status validate_stream_name(std::string_view name) {
  if (name.empty() || name.size() > 255)
    return Status(StatusCode::invalid_argument, "JetStream stream name '" + std::string(name) + "' must be 1..255 bytes");
  for (char c : name)
    if (c == '.' || c == '*' || c == '>' || c == '/' || c == '\\' || c == ' ' || c == '\t' || c == '\n' ||
        c == '\r')
      return Status(StatusCode::invalid_argument,
                    "JetStream stream name '" + std::string(name) + "' may not hold '.', '*', '>', '/', '\\' or white space");
  return Status::OK();
}

Result<std::string> load_or_create_source_id(const std::string& log_dir) {
  const std::string dir = log_dir + "/connectors";
  const std::string path = dir + "/source.id";
  if (int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    char buf[80];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    if (n < 0) return sys("read", path);
    std::string id(buf, static_cast<size_t>(n));
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    if (Status st = validate_source_id(id); !st.ok())
      return Status(StatusCode::corruption, path + ": " + st.message());
    return id;
  } else if (errno != ENOENT) {
    return sys("open", path);
  }
  if (Status st = create_directory_durably(FileOps::system(), dir); !st.ok()) return st;
  std::random_device rd;
  const uint64_t v = (uint64_t{rd()} << 32) ^ rd();
  const std::string id = format_id128(Id128{0, v}).substr(16);
  // replace = false (link, not rename): if two processes race, the first id wins and both
  // read it; the file and its directory entry are durable before the id is used.
  AtomicFileOptions o;
  o.unique_temp = true;
  o.replace = false;
  if (Status st = write_file_atomically(FileOps::system(), path, id + "\n", o);
      !st.ok() && st.code() != StatusCode::conflict)
    return st;
  return load_or_create_source_id(log_dir);
}

Result<std::vector<std::string>> parse_nats_urls(std::string_view list) {
  std::vector<std::string> out;
  if (list.empty()) return Status(StatusCode::invalid_argument, "no NATS URL given");
  while (true) {
    const size_t comma = list.find(',');
    std::string_view url = list.substr(0, comma);
    auto bad = [&](const std::string& why) {
      return Status(StatusCode::invalid_argument, "bad NATS URL '" + std::string(url) + "': " + why);
    };
    std::string_view rest = url;
    std::string scheme = "nats";
    if (const size_t p = rest.find("://"); p != std::string_view::npos) {
      scheme = std::string(rest.substr(0, p));
      if (scheme != "nats" && scheme != "tls") return bad("scheme must be nats:// or tls://");
      rest.remove_prefix(p + 3);
    }
    if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.empty()) return bad("no host");
    std::string_view host, port;
    if (rest.front() == '[') {
      const size_t close = rest.find(']');
      if (close == std::string_view::npos) return bad("unclosed '[' in IPv6 host");
      host = rest.substr(0, close + 1);
      std::string_view after = rest.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':') return bad("expected ':' after the IPv6 host");
        port = after.substr(1);
        if (port.empty()) return bad("empty port");
      }
    } else {
      const size_t colon = rest.find(':');
      host = rest.substr(0, colon);
      if (colon != std::string_view::npos) {
        port = rest.substr(colon + 1);
        if (port.empty()) return bad("empty port");
      }
      for (char c : host)
        if (!(token_char(c) || c == '.')) return bad("host holds '" + std::string(1, c) + "'");
    }
    if (host.empty() || host == "[]") return bad("no host");
    uint32_t port_num = 4222;
    if (!port.empty() && (!parse_uint(port, &port_num) || port_num == 0 || port_num > 65535))
      return bad("port must be a number in 1..65535");
    out.push_back(scheme + "://" + std::string(host) + ":" + std::to_string(port_num));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace sluice::connectors
