// SIGTERM and SIGINT as a request to drain, and SIGHUP as a request to
// reload (API keys, the audit log), for the two server binaries.
//
// BlockShutdownSignals() is called first thing in main, before any thread
// starts, so every thread inherits the blocked mask and the signals stay
// pending until WaitForShutdownSignal() takes one with sigwait. The first
// one starts a graceful drain; the binary then calls
// ExitOnNextShutdownSignal(), so a second one ends the process at once.
//
// SIGHUP is blocked with them; OnReloadSignal starts the thread that takes
// it (a binary that never calls it ignores SIGHUP instead of dying of it).
//
// Thread-safety: WaitForShutdownSignal may be called from any thread; the
// signals go to whichever thread waits.
#ifndef TESSERA_COMMON_SHUTDOWN_SIGNAL_H_
#define TESSERA_COMMON_SHUTDOWN_SIGNAL_H_

#include <functional>

namespace tessera {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and the threads
// it starts).
void BlockShutdownSignals();

// Starts a detached thread that calls `reload` on every SIGHUP.
void OnReloadSignal(std::function<void()> reload);

// Waits for SIGTERM or SIGINT; returns its number.
int WaitForShutdownSignal();

// Starts a detached thread that, on the next SIGTERM or SIGINT, logs and
// ends the process with status 1 without draining.
void ExitOnNextShutdownSignal();

}  // namespace tessera

#endif  // TESSERA_COMMON_SHUTDOWN_SIGNAL_H_
