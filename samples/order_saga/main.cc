// The order saga: create the order, charge the card, reserve inventory, ship; on a failure
// the completed steps are undone in reverse order (release, refund, cancel). The payment,
// inventory and shipping services are in-process fakes that honour idempotency keys (their
// effects are lines of a file, one per key) and can be told to fail, hang or be slow.
//
//   order_saga [DIR]   runs four scenarios, each in DIR/<scenario> (default: a temp dir):
//     success            every step succeeds: completed
//     payment-fails      the card is declined: the order is cancelled (compensated)
//     inventory-timeout  the inventory service hangs past the step's timeout: the
//                        reservation (unknown), the charge and the order are undone
//     crash-restart      the process is killed (SIGKILL) while shipping is slow; a new
//                        process resumes the saga from the log and finishes it: the card is
//                        charged once
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "sluice/runtime/aggregate.h"
#include "sluice/runtime/engine.h"
#include "sluice/runtime/repository.h"
#include "sluice/runtime/saga.h"

namespace shop {

struct OrderCreated {
  uint64_t order = 0;
  int64_t amount = 0;
};
struct OrderCancelled {
  uint64_t order = 0;
};
struct CreateOrder {
  uint64_t order;
  int64_t amount;
};
struct CancelOrder {
  uint64_t order;
};

}  // namespace shop

template <>
struct sluice::serialization::EventTraits<shop::OrderCreated> {
  using T = shop::OrderCreated;
  static constexpr std::string_view name = "shop.OrderCreated";
  static constexpr uint16_t version = 1;
  static constexpr auto fields = std::make_tuple(field("order", &T::order), field("amount", &T::amount));
};
template <>
struct sluice::serialization::EventTraits<shop::OrderCancelled> {
  using T = shop::OrderCancelled;
  static constexpr std::string_view name = "shop.OrderCancelled";
  static constexpr uint16_t version = 1;
  static constexpr auto fields = std::make_tuple(field("order", &T::order));
};

namespace shop {

using sluice::Decision;
using sluice::Emitter;
using sluice::SagaContext;
using sluice::StepResult;

struct Order {
  bool created = false, cancelled = false;
  int64_t amount = 0;
  void apply(const OrderCreated& e) { created = true, amount = e.amount; }
  void apply(const OrderCancelled&) { cancelled = true; }
  Decision decide(const CreateOrder& c, Emitter& out) const {
    if (!created) out.emit(OrderCreated{c.order, c.amount});
    return Decision::accept();
  }
  Decision decide(const CancelOrder& c, Emitter& out) const {
    if (created && !cancelled) out.emit(OrderCancelled{c.order});
    return Decision::accept();
  }
};

sluice::AggregateType<Order> order_type() {
  sluice::AggregateType<Order> t("shop.Order", 1);
  t.apply<OrderCreated>().apply<OrderCancelled>().handle<CreateOrder>().handle<CancelOrder>();
  return t;
}

// A downstream service: each effect is a line "<op> <order> <key>" of its ledger file,
// written once per idempotency key.
class Service {
 public:
  enum class Mode { ok, fail, hang, slow };
  Service(std::string name, const std::string& path) : name_(std::move(name)) {
    std::ifstream in(path);
    std::string op, order, key;
    while (in >> op >> order >> key) keys_.insert(key);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  ~Service() { ::close(fd_); }
  void set(Mode m, std::chrono::milliseconds delay = std::chrono::milliseconds(0)) {
    mode_ = m;
    delay_ = delay;
  }
  StepResult call(const SagaContext& c, const char* op, bool compensation = false) {
    const Mode m = compensation ? Mode::ok : mode_;
    if (m == Mode::fail) return StepResult::fail(name_ + ": " + op + " declined");
    if (m == Mode::slow) std::this_thread::sleep_for(delay_);
    if (m == Mode::hang) {
      // Hangs until past the caller's deadline, then gives up without an effect (a service
      // that honours SagaContext::deadline_ns).
      while (c.deadline_ns == 0 || now_ns() < c.deadline_ns + 50'000'000)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return StepResult::retry(name_ + ": gave up");
    }
    const std::string key = std::to_string(c.key.hi) + ":" + std::to_string(c.key.lo);
    std::lock_guard lock(mu_);
    if (keys_.insert(key).second) {
      const std::string line = std::string(op) + " " + std::string(c.data) + " " + key + "\n";
      if (::write(fd_, line.data(), line.size()) < 0) return StepResult::retry(name_ + ": ledger write failed");
    }
    return StepResult::ok();
  }
  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

 private:
  std::string name_;
  std::mutex mu_;
  std::set<std::string> keys_;
  int fd_ = -1;
  Mode mode_ = Mode::ok;
  std::chrono::milliseconds delay_{0};
};

struct Services {
  explicit Services(const std::string& dir)
      : payment("payment", dir + "/payment.ledger"),
        inventory("inventory", dir + "/inventory.ledger"),
        shipping("shipping", dir + "/shipping.ledger") {}
  Service payment, inventory, shipping;
};

sluice::SagaType order_saga(Services& s, sluice::Repository<Order>& orders) {
  auto order_of = [](const SagaContext& c) { return std::stoull(std::string(c.data)); };
  auto stream = [&orders, order_of](const SagaContext& c) {
    return orders.stream("order-" + std::to_string(order_of(c))).value();
  };
  sluice::SagaStepOptions o;
  o.timeout = std::chrono::milliseconds(300);
  o.retry.max_attempts = 2;
  sluice::SagaType t("order");
  t.step(
       "create_order",
       [&orders, stream, order_of](const SagaContext& c) {
         return sluice::step_result_of(
             orders.execute(stream(c), CreateOrder{order_of(c), 4200}, sluice::CommandOptions::keyed(c.key)));
       },
       [&orders, stream, order_of](const SagaContext& c) {
         return sluice::step_result_of(
             orders.execute(stream(c), CancelOrder{order_of(c)}, sluice::CommandOptions::keyed(c.key)));
       },
       o)
      .step(
          "charge_card", [&s](const SagaContext& c) { return s.payment.call(c, "charge"); },
          [&s](const SagaContext& c) { return s.payment.call(c, "refund", true); }, o)
      .step(
          "reserve_inventory", [&s](const SagaContext& c) { return s.inventory.call(c, "reserve"); },
          [&s](const SagaContext& c) { return s.inventory.call(c, "release", true); }, o);
  sluice::SagaStepOptions ship = o;
  ship.timeout = std::chrono::milliseconds(5000);
  t.step("ship", [&s](const SagaContext& c) { return s.shipping.call(c, "ship"); }, {}, ship);
  return t;
}

// One process's run on `dir`: resumes what the log holds, starts `order` (0: none), waits.
int run(const std::string& dir, uint64_t order, void (*configure)(Services&)) {
  sluice::EngineOptions eo;
  eo.writer = sluice::WriterMode::ingress;
  eo.log.segment_size = 8 << 20;
  auto engine = sluice::Engine::open(dir, eo);
  if (!engine.ok()) return std::fprintf(stderr, "%s\n", engine.status().to_string().c_str()), 1;
  auto& e = *engine.value();
  if (!e.bind<OrderCreated>(sluice::serialization::CodecId::json).ok() ||
      !e.bind<OrderCancelled>(sluice::serialization::CodecId::json).ok() || !sluice::bind_saga_events(e).ok() ||
      !e.start().ok())
    return 1;
  Services services(dir);
  if (configure) configure(services);
  auto orders = sluice::Repository<Order>::open(e, order_type()).value();
  auto agent = sluice::SagaAgent::open(e, {order_saga(services, *orders)}).value();
  if (!agent->start().ok()) return 1;
  if (order != 0) (void)agent->start_saga("order", std::to_string(order), std::to_string(order));
  agent->wait_idle(std::chrono::seconds(60));
  agent->stop();
  agent.reset();
  orders.reset();
  return e.stop().ok() ? 0 : 1;
}

void report(const std::string& dir) {
  auto reader = sluice::LogReader::open(dir).value();
  sluice::serialization::SchemaRegistry reg;
  (void)reg.load(*reader);
  (void)sluice::bind_saga_events(reg, nullptr);
  auto sagas = sluice::load_sagas(*reader, reg);
  if (!sagas.ok()) return (void)std::printf("  %s\n", sagas.status().to_string().c_str());
  for (const auto& s : sagas.value())
    std::printf("  saga %s-%s: %s%s%s\n", s.type.c_str(), s.id.c_str(), std::string(sluice::to_string(s.status)).c_str(),
                s.reason.empty() ? "" : " — ", s.reason.c_str());
  for (const char* svc : {"payment", "inventory", "shipping"}) {
    std::ifstream in(dir + "/" + svc + ".ledger");
    std::string op, order, key, effects;
    while (in >> op >> order >> key) effects += (effects.empty() ? "" : ", ") + op + " " + order;
    std::printf("  %-9s %s\n", svc, effects.empty() ? "(nothing)" : effects.c_str());
  }
}

}  // namespace shop

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path root = argc > 1 ? fs::path(argv[1]) : fs::temp_directory_path() / ("order_saga-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  struct Scenario {
    const char* name;
    void (*configure)(shop::Services&);
  };
  const Scenario scenarios[] = {
      {"success", nullptr},
      {"payment-fails", [](shop::Services& s) { s.payment.set(shop::Service::Mode::fail); }},
      {"inventory-timeout", [](shop::Services& s) { s.inventory.set(shop::Service::Mode::hang); }},
  };
  uint64_t order = 1;
  for (const Scenario& sc : scenarios) {
    const std::string dir = (root / sc.name).string();
    std::printf("%s\n", sc.name);
    if (shop::run(dir, order++, sc.configure) != 0) return 1;
    shop::report(dir);
  }
  // crash-restart: a child process starts the saga with a slow shipping service and is
  // killed mid-way; this process then resumes it from the log.
  const std::string dir = (root / "crash-restart").string();
  std::printf("crash-restart\n");
  const pid_t pid = ::fork();
  if (pid == 0)
    ::_exit(shop::run(dir, order, [](shop::Services& s) { s.shipping.set(shop::Service::Mode::slow, std::chrono::milliseconds(3000)); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::printf("  killed the process (SIGKILL) while shipping; before the restart:\n");
  shop::report(dir);
  if (shop::run(dir, 0, nullptr) != 0) return 1;
  std::printf("  after the restart:\n");
  shop::report(dir);
  std::printf("logs under %s (try: sluice sagas %s/crash-restart --all)\n", root.c_str(), root.c_str());
  return 0;
}
