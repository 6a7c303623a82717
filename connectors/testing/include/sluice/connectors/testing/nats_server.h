// Test support: real nats-server processes on loopback (a JetStream node, or a 3-node
// JetStream cluster), started and stopped by the test, and a reader for a stream's messages.
#pragma once

#include <nats/nats.h>
#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::connectors::testing {

// Path of nats-server: $NATS_SERVER when set, else the usual install paths ("" when not
// installed: tests skip, saying so).
std::string nats_server_binary();
#define SLUICE_REQUIRE_NATS_SERVER()                                                              \
  do {                                                                                            \
    if (::sluice::connectors::testing::nats_server_binary().empty())                             \
      GTEST_SKIP() << "nats-server is not installed (apt-get install nats-server; "              \
                      "scripts/install-deps.sh installs it): skipping a test that needs a real " \
                      "JetStream server";                                                         \
  } while (0)

int free_loopback_port();
// Child processes: spawn (argv[0] is the program), kill, wait.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log_file = "");
void kill_and_wait(pid_t pid, int sig);
bool port_accepts(int port);

// One nats-server with JetStream on 127.0.0.1.
class NatsServer {
 public:
  NatsServer(std::string store_dir, int port = 0);
  ~NatsServer() { stop(SIGKILL); }
  // Cluster membership: name, cluster port, routes to the others (before start()).
  void set_cluster(std::string name, int cluster_port, std::vector<int> route_ports);
  bool start();            // spawns; true once the client port accepts connections
  void stop(int sig = SIGTERM);  // SIGTERM: orderly; SIGKILL: crash
  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string store_dir_;
  int port_;
  pid_t pid_ = -1;
  std::string name_;
  int cluster_port_ = 0;
  std::vector<int> routes_;
};

// Three nodes routed to each other (cluster "sluice"), JetStream on each.
class NatsCluster {
 public:
  explicit NatsCluster(const std::string& base_dir);
  bool start();
  NatsServer& node(int i) { return *nodes_[static_cast<size_t>(i)]; }
  std::string urls() const;  // "nats://127.0.0.1:a,nats://...:b,..."
  std::vector<std::string> url_list() const;

 private:
  std::vector<std::unique_ptr<NatsServer>> nodes_;
};

struct StreamMessage {
  uint64_t seq = 0;
  std::string subject;
  std::string msg_id;
  std::string stream;   // Sluice-Stream
  std::string event;    // Sluice-Event
  std::string payload;
};
// Every message of `stream` in sequence order (read with js_GetMsg; fine for thousands).
// Empty and `error` set when the server cannot be asked.
std::vector<StreamMessage> read_stream(const std::string& urls, const std::string& stream, std::string* error);
// Creates a stream directly (for conflict tests); returns "" or the error.
std::string add_stream(const std::string& url, const std::string& name, const std::string& subject);
// Publishes one raw message synchronously (for ingest tests); returns "" or the error.
std::string publish(const std::string& url, natsMsg* msg);

}  // namespace sluice::connectors::testing

namespace sluice::connectors::testing {
// Messages in the stream (stream info; 0 when it cannot be asked).
uint64_t stream_message_count(const std::string& urls, const std::string& stream);
// Server name of the stream's leader ("" when it cannot be asked).
std::string stream_leader(const std::string& urls, const std::string& stream);
}  // namespace sluice::connectors::testing
