// What the scheduler did to this process's threads during a measurement: for each thread,
// the time it ran, the time it waited runnable for a CPU (someone else had it), and how often
// it was preempted. Read from /proc/self/task/TID/{schedstat,status,comm}; a suite snapshots
// before and after its timed window and reports the differences beside its latency figures,
// so that a tail can be told apart: our own background threads, or another process/kernel
// thread on a hot thread's CPU.
#pragma once

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace sluice::bench {

struct ThreadSched {
  long tid = 0;
  std::string name;            // comm: "sl:worker-0 (..." for Sluice's threads
  uint64_t run_ns = 0;         // on a CPU
  uint64_t wait_ns = 0;        // runnable, waiting for a CPU
  uint64_t preemptions = 0;    // nonvoluntary context switches
};

inline ThreadSched read_thread_sched(long tid) {
  ThreadSched t;
  t.tid = tid;
  char path[96];
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/schedstat", tid);
  if (FILE* f = std::fopen(path, "r")) {
    unsigned long long run = 0, wait = 0;
    if (std::fscanf(f, "%llu %llu", &run, &wait) == 2) {
      t.run_ns = run;
      t.wait_ns = wait;
    }
    std::fclose(f);
  }
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
  if (FILE* f = std::fopen(path, "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      unsigned long long n = 0;
      if (std::sscanf(line, "nonvoluntary_ctxt_switches: %llu", &n) == 1) t.preemptions = n;
    }
    std::fclose(f);
  }
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
  if (FILE* f = std::fopen(path, "r")) {
    char line[64] = {};
    if (std::fgets(line, sizeof line, f)) {
      line[std::strcspn(line, "\n")] = '\0';
      t.name = line;
    }
    std::fclose(f);
  }
  return t;
}

inline long current_tid() { return static_cast<long>(::syscall(SYS_gettid)); }

// Every thread of this process, now.
inline std::vector<ThreadSched> read_process_sched() {
  std::vector<ThreadSched> out;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') out.push_back(read_thread_sched(std::strtol(e->d_name, nullptr, 10)));
    ::closedir(d);
  }
  return out;
}

// after - before, per thread (threads that did not exist before count from zero).
inline std::vector<ThreadSched> sched_delta(const std::vector<ThreadSched>& before,
                                            const std::vector<ThreadSched>& after) {
  std::vector<ThreadSched> out;
  for (const ThreadSched& a : after) {
    ThreadSched d = a;
    for (const ThreadSched& b : before)
      if (b.tid == a.tid) {
        d.run_ns -= b.run_ns;
        d.wait_ns -= b.wait_ns;
        d.preemptions -= b.preemptions;
      }
    out.push_back(d);
  }
  return out;
}

}  // namespace sluice::bench
