// Running the `sluice` binary from a test: fork/exec with stdout and stderr on pipes.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

namespace sluice::testing {

// A child process whose stdout and stderr the parent reads.
class Subprocess {
 public:
  // Starts argv[0] (a path) with the arguments; returns false if it could not be started.
  bool start(const std::vector<std::string>& argv) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return false;
    if (::pipe2(err, O_CLOEXEC) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      return false;
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      // Child: only async-signal-safe calls until exec.
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    return pid_ > 0;
  }

  // Reads whatever the child writes until `deadline`, or until both pipes close.
  void read_until(std::chrono::steady_clock::time_point deadline) {
    while (out_fd_ >= 0 || err_fd_ >= 0) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
      const int n = ::poll(fds, 2, static_cast<int>(left.count()));
      if (n < 0 && errno != EINTR) return;
      if (n <= 0) continue;
      drain(fds[0], &out_fd_, &out_);
      drain(fds[1], &err_fd_, &err_);
    }
  }
  // Reads until the child closes both pipes (it exited or was killed), then reaps it.
  // Returns the wait status.
  int finish() {
    read_until(std::chrono::steady_clock::now() + std::chrono::minutes(5));
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }
  void kill(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  ~Subprocess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      finish();
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  static void drain(const pollfd& p, int* fd, std::string* into) {
    if (*fd < 0 || (p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) return;
    char buf[4096];
    const ssize_t n = ::read(*fd, buf, sizeof buf);
    if (n > 0) {
      into->append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      ::close(*fd);
      *fd = -1;
    }
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
};

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal
  std::string out;
  std::string err;
};

// Runs a command to completion.
inline RunResult run(const std::vector<std::string>& argv) {
  Subprocess p;
  RunResult r;
  if (!p.start(argv)) return r;
  const int status = p.finish();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = p.out();
  r.err = p.err();
  return r;
}

#ifdef SLUICE_CLI
// Runs the `sluice` binary under test (SLUICE_CLI: its path, set by tests/tools/CMakeLists.txt).
inline RunResult sluice_cli(std::vector<std::string> args) {
  args.insert(args.begin(), SLUICE_CLI);
  return run(args);
}
#endif

}  // namespace sluice::testing
