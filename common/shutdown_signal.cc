#include "common/shutdown_signal.h"

#include <signal.h>
#include <unistd.h>

#include <thread>
#include <utility>

#include "common/log.h"

namespace tessera {
namespace {

sigset_t ShutdownSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSet();
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void OnReloadSignal(std::function<void()> reload) {
  std::thread([reload = std::move(reload)] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) == 0) reload();
    }
  }).detach();
}

int WaitForShutdownSignal() {
  const sigset_t set = ShutdownSet();
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

void ExitOnNextShutdownSignal() {
  std::thread([] {
    const int sig = WaitForShutdownSignal();
    Logger("main").Warning("second %s: exiting without draining", strsignal(sig));
    _exit(1);
  }).detach();
}

}  // namespace tessera
