#include "internal/nats_connection.h"

namespace sluice::connectors::internal {

std::string nats_error(const std::string& what, natsStatus s, jsErrCode jerr) {
  std::string m = what + ": " + natsStatus_GetText(s);
  const char* detail = nats_GetLastError(nullptr);
  if (detail != nullptr && *detail != '\0' && std::string(detail).find(natsStatus_GetText(s)) == std::string::npos)
    m += std::string(" (") + detail + ")";
  if (jerr != 0) m += " [JetStream error " + std::to_string(static_cast<int>(jerr)) + "]";
  return m;
}

std::string join_servers(const std::vector<std::string>& servers) {
  std::string s;
  for (const auto& u : servers) {
    if (!s.empty()) s += ',';
    s += u;
  }
  return s;
}

Result<std::unique_ptr<NatsConnection>> NatsConnection::connect(const std::vector<std::string>& servers,
                                                                 const std::string& name,
                                                                 std::chrono::milliseconds timeout,
                                                                 jsOptions* js_options) {
  if (servers.empty()) return Status(StatusCode::invalid_argument, "no NATS server given");
  std::vector<const char*> urls;
  for (const auto& u : servers) urls.push_back(u.c_str());
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  // natsOptions_SetServers, not SetURL: SetURL takes one URL (a comma list would hang).
  if (s == NATS_OK) s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts, name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, timeout.count());
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, false);
  if (s == NATS_OK) s = natsOptions_SetNoRandomize(opts, false);
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    return Status(StatusCode::invalid_argument, nats_error("NATS options", s));
  }
  natsConnection* nc = nullptr;
  s = natsConnection_Connect(&nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    const StatusCode code = s == NATS_TIMEOUT ? StatusCode::timeout : StatusCode::io_error;
    return Status(code, nats_error("cannot connect to NATS at " + join_servers(servers), s));
  }
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, nc, js_options);
  if (s != NATS_OK) {
    natsConnection_Destroy(nc);
    return Status(StatusCode::io_error, nats_error("JetStream context on " + join_servers(servers), s));
  }
  return std::unique_ptr<NatsConnection>(new NatsConnection(nc, js));
}

void NatsConnection::drop_pending_publishes() noexcept {
  if (!async_used_) return;
  natsMsgList pending{};
  if (js_PublishAsyncGetPendingList(&pending, js_) == NATS_OK) natsMsgList_Destroy(&pending);
}

NatsConnection::~NatsConnection() {
  drop_pending_publishes();
  jsCtx_Destroy(js_);
  natsConnection_Destroy(nc_);
}

}  // namespace sluice::connectors::internal
