#include "sluice/bus/idle_strategy.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <thread>

namespace sluice {
namespace {

timespec to_timespec(std::chrono::nanoseconds d) noexcept {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(d.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(d.count() % 1'000'000'000);
  return ts;
}

}  // namespace

void WakeSignal::park(uint32_t epoch, std::chrono::nanoseconds timeout) noexcept {
  timespec ts = to_timespec(timeout);
  // FUTEX_WAIT returns at once if epoch_ != epoch (a wake happened since prepare_park()).
  // Errors (EAGAIN, ETIMEDOUT, EINTR) all mean "go and look again".
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&epoch_), FUTEX_WAIT_PRIVATE, epoch, &ts,
            nullptr, 0);
  // Relaxed: only a count.
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
}

void WakeSignal::wake_all() noexcept {
  // Release: a woken consumer that acquires the epoch (prepare_park) also sees the publish
  // that preceded this notify.
  epoch_.fetch_add(1, std::memory_order_release);
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&epoch_), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
            nullptr, 0);
}

std::string_view to_string(IdleKind k) noexcept {
  switch (k) {
    case IdleKind::busy_spin: return "busy_spin";
    case IdleKind::yield: return "yield";
    case IdleKind::backoff_park: return "backoff_park";
  }
  return "?";
}

bool parse_idle_kind(std::string_view s, IdleKind* out) noexcept {
  for (IdleKind k : {IdleKind::busy_spin, IdleKind::yield, IdleKind::backoff_park}) {
    if (s == to_string(k)) {
      *out = k;
      return true;
    }
  }
  return false;
}

void IdleStrategy::idle() noexcept {
  switch (o_.kind) {
    case IdleKind::busy_spin:
      cpu_relax();
      return;
    case IdleKind::yield:
      std::this_thread::yield();
      return;
    case IdleKind::backoff_park:
      if (step_ < o_.spins) {
        ++step_;
        cpu_relax();
      } else if (step_ < uint64_t{o_.spins} + o_.yields) {
        ++step_;
        std::this_thread::yield();
      } else {
        park();
      }
      return;
  }
}

void IdleStrategy::park() noexcept {
  ++parks_;
  if (signal_ != nullptr) {
    const uint32_t e = signal_->prepare_park();
    if (has_work_ != nullptr && has_work_(ctx_)) {
      signal_->cancel_park();
      reset();
      return;
    }
    signal_->park(e, park_);
  } else {
    timespec ts = to_timespec(park_);
    ::nanosleep(&ts, nullptr);
  }
  park_ = park_ * 2 > o_.max_park ? o_.max_park : park_ * 2;
}

}  // namespace sluice
