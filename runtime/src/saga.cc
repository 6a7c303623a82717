// The saga's events and the state they fold to; binding; loading every saga of a log.
// See saga.h.
#include <charconv>

#include "sluice/bus/log_writer.h"
#include "sluice/runtime/engine.h"
#include "sluice/runtime/saga.h"

namespace sluice {

std::string_view to_string(SagaEventKind k) noexcept {
  switch (k) {
    case SagaEventKind::started: return "started";
    case SagaEventKind::step_attempted: return "step_attempted";
    case SagaEventKind::step_succeeded: return "step_succeeded";
    case SagaEventKind::step_failed: return "step_failed";
    case SagaEventKind::timer_set: return "timer_set";
    case SagaEventKind::timer_fired: return "timer_fired";
    case SagaEventKind::compensating: return "compensating";
    case SagaEventKind::compensation_attempted: return "compensation_attempted";
    case SagaEventKind::compensation_succeeded: return "compensation_succeeded";
    case SagaEventKind::compensation_attempt_failed: return "compensation_attempt_failed";
    case SagaEventKind::completed: return "completed";
    case SagaEventKind::compensated: return "compensated";
    case SagaEventKind::compensation_failed: return "compensation_failed";
    case SagaEventKind::parked: return "parked";
  }
  return "unknown";
}

std::string_view to_string(SagaStatus s) noexcept {
  switch (s) {
    case SagaStatus::running: return "running";
    case SagaStatus::completed: return "completed";
    case SagaStatus::compensated: return "compensated";
    case SagaStatus::compensation_failed: return "compensation_failed";
    case SagaStatus::parked: return "parked";
  }
  return "unknown";
}

Status bind_saga_events(serialization::SchemaRegistry& registry, LogWriter* writer) {
  auto b = registry.bind<SagaEvent>(serialization::CodecId::json, writer);
  return b.ok() ? Status() : b.status();
}

Status bind_saga_events(Engine& engine) {
  auto b = engine.bind<SagaEvent>(serialization::CodecId::json);
  return b.ok() ? Status() : b.status();
}

StepResult step_result_of(const CommandResult& r) {
  switch (r.code) {
    case CommandCode::ok:
    case CommandCode::duplicate: return StepResult::ok();
    case CommandCode::rejected:
    case CommandCode::unknown_command:
    case CommandCode::handler_failed:
    case CommandCode::key_collision:
    case CommandCode::key_out_of_window:
    case CommandCode::invalid_argument: return StepResult::fail(std::string(to_string(r.code)) + ": " + r.message);
    default: return StepResult::retry(std::string(to_string(r.code)) + ": " + r.message);
  }
}

Status SagaState::apply(const SagaEvent& e, int64_t timestamp_ns) {
  const auto kind = static_cast<SagaEventKind>(e.kind);
  auto bad = [&](const char* why) {
    return Status(StatusCode::corruption, "saga " + type + "-" + id + " version " + std::to_string(version + 1) +
                                              ": " + std::string(to_string(kind)) + " " + why);
  };
  if (version == 0 && kind != SagaEventKind::started) return bad("before started");
  if (version != 0 && kind == SagaEventKind::started) return bad("twice");
  if (finished() && kind != SagaEventKind::parked) return bad("after the saga finished");
  switch (kind) {
    case SagaEventKind::started:
      type = e.saga_type;
      id = e.saga_id;
      data = e.data;
      started_ns = e.due_ns;
      break;
    case SagaEventKind::step_attempted:
      if (compensating || in_flight || e.step != completed_steps) return bad("out of order");
      step = e.step;
      attempt = e.attempt;
      in_flight = true;
      attempt_due_ns = e.due_ns;
      timer_pending = false;
      break;
    case SagaEventKind::step_succeeded:
      if (compensating || !in_flight || e.step != step) return bad("without its attempt");
      in_flight = false;
      ++completed_steps;
      step = completed_steps;
      attempt = 0;
      current_timed_out = false;
      break;
    case SagaEventKind::step_failed:
    case SagaEventKind::compensation_attempt_failed:
      if (!in_flight || e.step != step) return bad("without its attempt");
      in_flight = false;
      reason = e.reason;
      if (e.timed_out && kind == SagaEventKind::step_failed) current_timed_out = true;
      break;
    case SagaEventKind::timer_set:
      if (in_flight) return bad("while an attempt runs");
      timer_pending = true;
      timer_due_ns = e.due_ns;
      break;
    case SagaEventKind::timer_fired:
      timer_pending = false;
      break;
    case SagaEventKind::compensating: {
      if (compensating || in_flight) return bad("out of order");
      compensating = true;
      reason = e.reason;
      to_compensate.clear();
      std::string_view list = e.data;
      while (!list.empty()) {
        const size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        uint32_t s = 0;
        if (std::from_chars(item.data(), item.data() + item.size(), s).ec != std::errc()) return bad("with a bad step list");
        to_compensate.push_back(s);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      }
      timer_pending = false;
      attempt = 0;
      if (!to_compensate.empty()) step = to_compensate.front();
      break;
    }
    case SagaEventKind::compensation_attempted:
      if (!compensating || in_flight || to_compensate.empty() || e.step != to_compensate.front())
        return bad("out of order");
      step = e.step;
      attempt = e.attempt;
      in_flight = true;
      attempt_due_ns = e.due_ns;
      timer_pending = false;
      break;
    case SagaEventKind::compensation_succeeded:
      if (!compensating || !in_flight || e.step != step) return bad("without its attempt");
      in_flight = false;
      to_compensate.erase(to_compensate.begin());
      attempt = 0;
      if (!to_compensate.empty()) step = to_compensate.front();
      break;
    case SagaEventKind::completed:
      if (compensating || in_flight) return bad("out of order");
      status = SagaStatus::completed;
      break;
    case SagaEventKind::compensated:
      if (!compensating || in_flight || !to_compensate.empty()) return bad("with compensations left");
      status = SagaStatus::compensated;
      break;
    case SagaEventKind::compensation_failed:
      if (!compensating) return bad("while not compensating");
      in_flight = false;
      status = SagaStatus::compensation_failed;
      reason = e.reason;
      break;
    case SagaEventKind::parked:
      in_flight = false;
      status = SagaStatus::parked;
      reason = e.reason;
      break;
    default: return bad("unknown kind");
  }
  ++version;
  last_event_ns = timestamp_ns;
  if (finished()) {
    timer_pending = false;
    in_flight = false;
  }
  return Status();
}

Result<std::vector<SagaState>> load_sagas(const LogReader& reader, const serialization::SchemaRegistry& registry) {
  auto binding = registry.binding<SagaEvent>();
  if (!binding.valid())
    return Status(StatusCode::invalid_argument, "sagas of " + reader.dir() + ": SagaEvent is not bound (bind_saga_events)");
  std::vector<SagaState> out;
  RecordView v;
  SagaEvent e;
  for (StreamId id = 1; id <= reader.stream_count(); ++id) {
    const std::string_view name = reader.stream_name(id);
    if (name.substr(0, 5) != "saga-") continue;
    auto positions = reader.stream_positions(id);
    if (positions.empty()) continue;
    SagaState s;
    Status st;
    for (uint64_t pos : positions) {
      if (!reader.read(pos, &v)) {
        st = Status(StatusCode::not_found, "position " + std::to_string(pos) + " not readable");
        break;
      }
      if (v.event_type() != binding.type_id()) {
        st = Status(StatusCode::corruption, "position " + std::to_string(pos) + ": not a saga event");
        break;
      }
      e = SagaEvent{};
      if (st = binding.decode(v, &e); !st.ok()) break;
      if (st = s.apply(e, v.timestamp_ns()); !st.ok()) break;
      if (e.kind == static_cast<uint8_t>(SagaEventKind::step_attempted)) s.attempt_position = pos;
    }
    s.stream = id;
    if (!st.ok()) {
      if (s.version == 0) s.id = std::string(name.substr(5));  // not even its start folds
      s.status = SagaStatus::parked;
      s.in_flight = false;
      s.timer_pending = false;
      s.reason = "stream " + std::string(name) + ": " + st.to_string();
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace sluice
