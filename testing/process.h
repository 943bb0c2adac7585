// A child process for integration tests: started with fork/exec, its stderr
// collected by a thread so tests can wait for a log line, killed (SIGTERM,
// then SIGKILL) when the object goes away. Real processes, real sockets: this
// is what makes the cluster tests integration tests.
#ifndef TESSERA_TESTING_PROCESS_H_
#define TESSERA_TESTING_PROCESS_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tessera::testing {

class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> argv) : argv_(std::move(argv)) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDERR_FILENO);
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> args;
      for (std::string& a : argv_) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
    reader_ = std::thread([this] {
      char buf[4096];
      for (;;) {
        const ssize_t n = read(fd_, buf, sizeof(buf));
        if (n <= 0) break;
        absl::MutexLock lock(&mu_);
        output_.append(buf, n);
      }
    });
  }
  ~ChildProcess() {
    Stop();
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) close(fd_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Ends the process; returns its exit status as waitpid reports it.
  int Stop() {
    if (pid_ <= 0) return status_;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        pid_ = 0;
        return status_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
    pid_ = 0;
    return status_;
  }

  // Waits for the process to exit by itself; -1 on timeout.
  int WaitExit(absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (pid_ > 0 && absl::Now() < end) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        pid_ = 0;
        return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return pid_ > 0 ? -1 : (WIFEXITED(status_) ? WEXITSTATUS(status_) : 128);
  }

  // Waits until the output contains `text`; returns the output after it.
  bool WaitFor(const std::string& text, absl::Duration timeout, std::string* after = nullptr) {
    absl::MutexLock lock(&mu_);
    auto found = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return output_.find(text) != std::string::npos;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&found), timeout)) return false;
    if (after != nullptr) *after = output_.substr(output_.find(text) + text.size());
    return true;
  }

  // Waits until the output contains `text` at least `n` times.
  bool WaitForCount(const std::string& text, int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto found = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      int count = 0;
      for (size_t at = output_.find(text); at != std::string::npos;
           at = output_.find(text, at + text.size())) {
        ++count;
      }
      return count >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&found), timeout);
  }

  // Sends `sig` (SIGKILL, SIGSTOP, SIGCONT, ...); false once it has ended.
  bool Signal(int sig) { return pid_ > 0 && kill(pid_, sig) == 0; }

  // The process id, for reading /proc/<pid>; <= 0 once it has ended.
  pid_t pid() const { return pid_; }

  std::string output() const {
    absl::MutexLock lock(&mu_);
    return output_;
  }

 private:
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  int status_ = 0;
  int fd_ = -1;
  std::thread reader_;
  mutable absl::Mutex mu_;
  std::string output_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTING_PROCESS_H_
