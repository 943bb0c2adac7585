// A small network for integration tests that need real links: a "hub"
// network namespace holding a bridge, one veth from the test's own namespace
// into it (where the coordinator and the test client live), and one network
// namespace per worker, each with its own address and a veth into the hub.
// Every worker link is rate limited with a `tbf` qdisc in both directions, so
// activations cross a real, throttled link rather than loopback.
//
//   test ns: tsrNNNNNh 10.213.S.1 ──┐
//                                   ├── bridge (hub ns)
//   worker i ns: eth0 10.213.S.(i+2)┘   tbf on eth0 and on its hub port
//
// Needs root (CAP_NET_ADMIN) and iproute2; Create() says why it cannot when
// either is missing. Everything is removed when the object goes away:
// deleting a namespace deletes its veths, and with them their peers.
#ifndef TESSERA_TESTING_NETNS_H_
#define TESSERA_TESTING_NETNS_H_

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace tessera::testing {

// Runs a shell command; returns its combined output, or an error naming the
// command, its exit status and its output.
inline absl::StatusOr<std::string> Shell(const std::string& command) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return absl::InternalError(absl::StrCat("popen failed for: ", command));
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  if (status != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "`%s` exited with %d: %s", command, WIFEXITED(status) ? WEXITSTATUS(status) : -1, out));
  }
  return out;
}

struct NetnsOptions {
  int workers = 2;
  // tbf rate for each worker link, each direction, in tc's syntax.
  std::string rate = "200mbit";
};

class NetnsTopology {
 public:
  // Builds the network, or says why it cannot (not root, no iproute2, no
  // network-namespace support, address range in use).
  static absl::StatusOr<std::unique_ptr<NetnsTopology>> Create(const NetnsOptions& o) {
    if (geteuid() != 0) return absl::FailedPreconditionError("not running as root");
    std::string ip;
    for (const char* c : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
      if (access(c, X_OK) == 0) {
        ip = c;
        break;
      }
    }
    // NOT_FOUND, not a reason to skip: scripts/setup.sh installs iproute2.
    if (ip.empty()) return absl::NotFoundError("iproute2's `ip` is not installed");
    if (!Shell("tc -V").ok()) return absl::NotFoundError("`tc` is not installed");

    std::unique_ptr<NetnsTopology> t(new NetnsTopology());
    t->ip_ = ip;
    const int id = static_cast<int>(getpid() % 100000);
    const int subnet = 20 + id % 200;
    t->prefix_ = absl::StrFormat("10.213.%d.", subnet);
    absl::StatusOr<std::string> addrs = Shell(ip + " -4 addr show");
    if (!addrs.ok()) return addrs.status();
    if (addrs->find(t->prefix_) != std::string::npos) {
      return absl::FailedPreconditionError(
          absl::StrCat("address range ", t->prefix_, "0/24 is already in use here"));
    }
    t->hub_ = absl::StrFormat("tessera-%d-hub", id);
    t->host_if_ = absl::StrFormat("tsr%dh", id);
    for (int i = 0; i < o.workers; ++i) t->workers_.push_back(absl::StrFormat("tessera-%d-w%d", id, i));

    const std::string& hub = t->hub_;
    std::vector<std::string> steps = {
        absl::StrCat(ip, " netns add ", hub),
        absl::StrCat(ip, " -n ", hub, " link add br0 type bridge"),
        absl::StrCat(ip, " -n ", hub, " link set br0 up"),
        absl::StrCat(ip, " link add ", t->host_if_, " type veth peer name hostport netns ", hub),
        absl::StrCat(ip, " -n ", hub, " link set hostport master br0 up"),
        absl::StrCat(ip, " addr add ", t->prefix_, "1/24 dev ", t->host_if_),
        absl::StrCat(ip, " link set ", t->host_if_, " up"),
    };
    for (int i = 0; i < o.workers; ++i) {
      const std::string& ns = t->workers_[i];
      const std::string port = absl::StrCat("w", i);
      const std::string tbf =
          absl::StrCat(" root tbf rate ", o.rate, " burst 64kb latency 100ms");
      steps.push_back(absl::StrCat(ip, " netns add ", ns));
      steps.push_back(absl::StrCat(ip, " -n ", ns, " link add eth0 type veth peer name ", port,
                                   " netns ", hub));
      steps.push_back(absl::StrCat(ip, " -n ", hub, " link set ", port, " master br0 up"));
      steps.push_back(absl::StrCat(ip, " -n ", ns, " addr add ", t->worker_address(i), "/24 dev eth0"));
      steps.push_back(absl::StrCat(ip, " -n ", ns, " link set eth0 up"));
      steps.push_back(absl::StrCat(ip, " -n ", ns, " link set lo up"));
      steps.push_back(absl::StrCat("tc -n ", ns, " qdisc add dev eth0", tbf));
      steps.push_back(absl::StrCat("tc -n ", hub, " qdisc add dev ", port, tbf));
    }
    for (const std::string& step : steps) {
      absl::StatusOr<std::string> r = Shell(step);
      if (!r.ok()) return r.status();  // the destructor removes what was made
    }
    return t;
  }

  ~NetnsTopology() {
    for (const std::string& ns : workers_) Shell(absl::StrCat(ip_, " netns del ", ns)).IgnoreError();
    if (!hub_.empty()) Shell(absl::StrCat(ip_, " netns del ", hub_)).IgnoreError();
    // Normally gone with its peer; make sure.
    if (!host_if_.empty()) {
      Shell(absl::StrCat(ip_, " link del ", host_if_, " 2>/dev/null")).IgnoreError();
    }
  }
  NetnsTopology(const NetnsTopology&) = delete;
  NetnsTopology& operator=(const NetnsTopology&) = delete;

  // Where the coordinator (in the test's own namespace) listens.
  std::string host_address() const { return prefix_ + "1"; }
  std::string worker_address(int i) const { return absl::StrCat(prefix_, i + 2); }
  // argv words that run a command inside worker i's namespace.
  std::vector<std::string> worker_prefix(int i) const {
    return {ip_, "netns", "exec", workers_[i]};
  }
  // Bytes the tbf qdisc on worker i's own end has sent (its egress).
  absl::StatusOr<uint64_t> worker_egress_bytes(int i) const {
    return SentBytes(absl::StrCat("tc -n ", workers_[i], " -s qdisc show dev eth0"));
  }
  // Bytes the tbf qdisc on the hub's port towards worker i has sent.
  absl::StatusOr<uint64_t> worker_ingress_bytes(int i) const {
    return SentBytes(absl::StrCat("tc -n ", hub_, " -s qdisc show dev w", i));
  }

 private:
  NetnsTopology() = default;

  static absl::StatusOr<uint64_t> SentBytes(const std::string& command) {
    absl::StatusOr<std::string> out = Shell(command);
    if (!out.ok()) return out.status();
    if (out->find("tbf") == std::string::npos) {
      return absl::FailedPreconditionError(absl::StrCat("no tbf qdisc in: ", *out));
    }
    const size_t at = out->find("Sent ");
    if (at == std::string::npos) return absl::InternalError(absl::StrCat("no 'Sent' in: ", *out));
    return std::stoull(out->substr(at + 5));
  }

  std::string ip_;
  std::string prefix_;
  std::string hub_;
  std::string host_if_;
  std::vector<std::string> workers_;
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTING_NETNS_H_
