// A NATS connection and its JetStream context, owned together (internal to connectors).
//
// Connections are made with nats.c's own reconnect turned off: the relay and the ingest
// decide when to reconnect (with backoff) and resynchronise with the server each time, so
// nothing nats.c buffered during an outage is sent behind their back.
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sluice/status.h"

namespace sluice::connectors::internal {

// "<what>: <nats status text> (<last error detail>) [JetStream error <code>]"
std::string nats_error(const std::string& what, natsStatus s, jsErrCode jerr = static_cast<jsErrCode>(0));

class NatsConnection {
 public:
  // One attempt at each server in `servers`. Errors: io_error naming the servers
  // ("no server available" when none answers), timeout.
  static Result<std::unique_ptr<NatsConnection>> connect(const std::vector<std::string>& servers,
                                                         const std::string& name,
                                                         std::chrono::milliseconds timeout,
                                                         jsOptions* js_options);
  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  natsConnection* nc() const noexcept { return nc_; }
  jsCtx* js() const noexcept { return js_; }
  bool closed() const noexcept { return natsConnection_IsClosed(nc_); }
  // Takes back every asynchronous publish still waiting for its acknowledgement (no handler
  // will be called for them) and destroys those messages.
  void drop_pending_publishes() noexcept;
  // js_PublishMsgAsync, noting that the context has asynchronous publishes (nats.c 3.4's
  // js_PublishAsyncGetPendingList crashes on a context that never had one).
  natsStatus publish_async(natsMsg** msg, jsPubOptions* opts) noexcept {
    async_used_ = true;
    return js_PublishMsgAsync(js_, msg, opts);
  }

 private:
  NatsConnection(natsConnection* nc, jsCtx* js) : nc_(nc), js_(js) {}
  natsConnection* nc_;
  jsCtx* js_;
  bool async_used_ = false;
};

// The servers as one string for messages: "nats://a:1,nats://b:2".
std::string join_servers(const std::vector<std::string>& servers);

}  // namespace sluice::connectors::internal
