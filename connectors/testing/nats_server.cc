#include "sluice/connectors/testing/nats_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <cstdlib>
#include <thread>

namespace sluice::connectors::testing {

std::string nats_server_binary() {
  // $NATS_SERVER names the binary (another install; "" or a path that is not executable: none).
  if (const char* env = std::getenv("NATS_SERVER")) return ::access(env, X_OK) == 0 ? env : "";
  for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool port_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& log_file) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log_file.empty() ? "/dev/null" : log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

void kill_and_wait(pid_t pid, int sig) {
  if (pid <= 0) return;
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

NatsServer::NatsServer(std::string store_dir, int port)
    : store_dir_(std::move(store_dir)), port_(port == 0 ? free_loopback_port() : port) {
  std::filesystem::create_directories(store_dir_);
}

void NatsServer::set_cluster(std::string name, int cluster_port, std::vector<int> route_ports) {
  name_ = std::move(name);
  cluster_port_ = cluster_port;
  routes_ = std::move(route_ports);
}

bool NatsServer::start() {
  std::vector<std::string> argv = {nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", std::to_string(port_),
                                   "-sd", store_dir_};
  if (!name_.empty()) {
    argv.insert(argv.end(), {"-n", name_, "--cluster_name", "sluice", "--cluster",
                             "nats://127.0.0.1:" + std::to_string(cluster_port_)});
    std::string routes;
    for (int r : routes_) routes += (routes.empty() ? "" : ",") + std::string("nats://127.0.0.1:") + std::to_string(r);
    argv.insert(argv.end(), {"--routes", routes});
  }
  pid_ = spawn(argv, store_dir_ + "/server.log");
  for (int i = 0; i < 200; ++i) {
    if (port_accepts(port_)) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void NatsServer::stop(int sig) {
  kill_and_wait(pid_, sig);
  pid_ = -1;
}

NatsCluster::NatsCluster(const std::string& base_dir) {
  int cports[3];
  for (int& p : cports) p = free_loopback_port();
  for (int i = 0; i < 3; ++i) {
    auto n = std::make_unique<NatsServer>(base_dir + "/n" + std::to_string(i));
    std::vector<int> routes;
    for (int j = 0; j < 3; ++j)
      if (j != i) routes.push_back(cports[j]);
    n->set_cluster("n" + std::to_string(i), cports[i], routes);
    nodes_.push_back(std::move(n));
  }
}

bool NatsCluster::start() {
  for (auto& n : nodes_)
    if (!n->start()) return false;
  return true;
}

std::vector<std::string> NatsCluster::url_list() const {
  std::vector<std::string> v;
  for (const auto& n : nodes_) v.push_back(n->url());
  return v;
}

std::string NatsCluster::urls() const {
  std::string s;
  for (const auto& u : url_list()) s += (s.empty() ? "" : ",") + u;
  return s;
}

namespace {
struct Conn {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  ~Conn() {
    if (js) jsCtx_Destroy(js);
    if (nc) natsConnection_Destroy(nc);
  }
};
std::string open_conn(const std::string& urls, Conn* c) {
  std::vector<std::string> list;
  size_t start = 0;
  while (start <= urls.size()) {
    size_t comma = urls.find(',', start);
    if (comma == std::string::npos) comma = urls.size();
    list.push_back(urls.substr(start, comma - start));
    start = comma + 1;
  }
  std::vector<const char*> ptrs;
  for (auto& u : list) ptrs.push_back(u.c_str());
  natsOptions* o = nullptr;
  natsOptions_Create(&o);
  natsOptions_SetServers(o, ptrs.data(), static_cast<int>(ptrs.size()));
  natsOptions_SetAllowReconnect(o, false);
  natsStatus s = natsConnection_Connect(&c->nc, o);
  natsOptions_Destroy(o);
  if (s != NATS_OK) return std::string("connect: ") + natsStatus_GetText(s);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 10000;
  s = natsConnection_JetStream(&c->js, c->nc, &jo);
  if (s != NATS_OK) return std::string("jetstream: ") + natsStatus_GetText(s);
  return "";
}
std::string header(natsMsg* m, const char* key) {
  const char* v = nullptr;
  return natsMsgHeader_Get(m, key, &v) == NATS_OK && v ? v : "";
}
}  // namespace

std::vector<StreamMessage> read_stream(const std::string& urls, const std::string& stream, std::string* error) {
  std::vector<StreamMessage> out;
  Conn c;
  if (std::string e = open_conn(urls, &c); !e.empty()) {
    *error = e;
    return out;
  }
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = NATS_ERR;
  for (int attempt = 0; attempt < 20 && s != NATS_OK; ++attempt) {
    s = js_GetStreamInfo(&si, c.js, stream.c_str(), nullptr, &jerr);
    if (s != NATS_OK) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (s != NATS_OK) {
    *error = std::string("stream info: ") + natsStatus_GetText(s) + " " + std::to_string(jerr);
    return out;
  }
  const uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  for (uint64_t seq = first; seq <= last && seq > 0; ++seq) {
    natsMsg* m = nullptr;
    s = NATS_ERR;
    for (int attempt = 0; attempt < 20 && s != NATS_OK; ++attempt) {
      s = js_GetMsg(&m, c.js, stream.c_str(), seq, nullptr, &jerr);
      if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) break;
      if (s != NATS_OK) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (s != NATS_OK) continue;  // deleted: a gap in the sequence, which callers detect
    StreamMessage r;
    r.seq = seq;
    r.subject = natsMsg_GetSubject(m);
    r.msg_id = header(m, "Nats-Msg-Id");
    r.stream = header(m, "Sluice-Stream");
    r.event = header(m, "Sluice-Event");
    r.payload.assign(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
    out.push_back(std::move(r));
    natsMsg_Destroy(m);
  }
  return out;
}

std::string add_stream(const std::string& url, const std::string& name, const std::string& subject) {
  Conn c;
  if (std::string e = open_conn(url, &c); !e.empty()) return e;
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {subject.c_str()};
  cfg.Name = name.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&si, c.js, &cfg, nullptr, &jerr);
  if (s != NATS_OK) return std::string("add stream: ") + natsStatus_GetText(s) + " " + std::to_string(jerr);
  jsStreamInfo_Destroy(si);
  return "";
}

std::string publish(const std::string& url, natsMsg* msg) {
  Conn c;
  if (std::string e = open_conn(url, &c); !e.empty()) return e;
  jsPubAck* pa = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_PublishMsg(&pa, c.js, msg, nullptr, &jerr);
  if (s != NATS_OK) return std::string("publish: ") + natsStatus_GetText(s) + " " + std::to_string(jerr);
  jsPubAck_Destroy(pa);
  return "";
}

}  // namespace sluice::connectors::testing

namespace sluice::connectors::testing {
uint64_t stream_message_count(const std::string& urls, const std::string& stream) {
  Conn c;
  if (!open_conn(urls, &c).empty()) return 0;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_GetStreamInfo(&si, c.js, stream.c_str(), nullptr, &jerr) != NATS_OK) return 0;
  const uint64_t n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

std::string stream_leader(const std::string& urls, const std::string& stream) {
  Conn c;
  if (!open_conn(urls, &c).empty()) return "";
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_GetStreamInfo(&si, c.js, stream.c_str(), nullptr, &jerr) != NATS_OK) return "";
  std::string leader = si->Cluster != nullptr && si->Cluster->Leader != nullptr ? si->Cluster->Leader : "";
  jsStreamInfo_Destroy(si);
  return leader;
}
}  // namespace sluice::connectors::testing
