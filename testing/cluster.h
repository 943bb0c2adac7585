// Starts a real cluster for integration tests: a tessera-coordinator and N
// tessera-worker processes on ephemeral loopback ports, and waits until the
// coordinator reports the pipeline ready.
#ifndef TESSERA_TESTING_CLUSTER_H_
#define TESSERA_TESTING_CLUSTER_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/sampling_params.h"
#include "grpcpp/grpcpp.h"
#include "proto/convert.h"
#include "proto/node_security.h"
#include "tessera/v1/inference.grpc.pb.h"
#include "tessera/v1/stage.grpc.pb.h"
#include "testing/process.h"

namespace tessera::testing {

// The join secret test clusters run with (a plaintext cluster needs one).
inline constexpr char kTestJoinSecret[] = "tessera-test-join-secret";

// Adds the proof of kTestJoinSecret a stage checks for `purpose` ("steps",
// "results", "status") on stage `stage` of replica epoch `epoch`: tests that
// play a pipeline peer send it.
inline void AddTestStageProof(grpc::ClientContext* ctx, const std::string& purpose,
                              uint64_t epoch, int stage) {
  ctx->AddMetadata(kStageProofKey, StageProofFor(kTestJoinSecret, purpose, epoch, stage));
}

inline bool IsLoopbackHost(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "[::1]" || host == "localhost";
}

struct ClusterOptions {
  std::string model;
  // Workers per replica (--min-workers), and replicas (--replicas): the
  // cluster starts workers * replicas workers, replica r's in positions
  // [r * workers, (r + 1) * workers) of the join order.
  int workers = 2;
  int replicas = 1;
  std::vector<std::string> coordinator_flags;
  // Extra flags per worker (index = worker), e.g. --memory-limit.
  std::vector<std::vector<std::string>> worker_flags;
  bool wait_ready = true;
  // Address the coordinator listens on (port chosen by the kernel).
  std::string coordinator_host = "127.0.0.1";
  // Per worker: argv words to run it under (e.g. `ip netns exec NAME`) and the
  // host it listens on; absent = directly, on 127.0.0.1.
  std::vector<std::vector<std::string>> worker_prefix;
  std::vector<std::string> worker_host;
  // Kernel threads per worker.
  int worker_threads = 1;
  // The binaries to run (benchmarks point these at another build to compare).
  std::string coordinator_binary = TESSERA_COORDINATOR_BINARY;
  std::string worker_binary = TESSERA_WORKER_BINARY;
  // Given to every process as --join-secret; empty: none (TLS tests pass
  // their own flags).
  std::string join_secret = kTestJoinSecret;
  // How the test's own clients reach the coordinator (TLS clusters).
  std::shared_ptr<grpc::ChannelCredentials> client_credentials =
      grpc::InsecureChannelCredentials();
};

class Cluster {
 public:
  explicit Cluster(const ClusterOptions& o) : options_(o) {
    std::vector<std::string> args = {o.coordinator_binary, "--model", o.model,
                                     "--listen", o.coordinator_host + ":0",
                                     absl::StrCat("--min-workers=", o.workers)};
    if (o.replicas != 1) args.push_back(absl::StrCat("--replicas=", o.replicas));
    if (!o.join_secret.empty()) args.push_back("--join-secret=" + o.join_secret);
    if (!IsLoopbackHost(o.coordinator_host)) args.push_back("--insecure");
    args.insert(args.end(), o.coordinator_flags.begin(), o.coordinator_flags.end());
    coordinator_args_ = args;
    coordinator_ = std::make_unique<ChildProcess>(args);
    std::string after;
    if (!coordinator_->WaitFor("listening on " + o.coordinator_host + ":", absl::Seconds(20),
                               &after)) {
      return;
    }
    int port = 0;
    if (!absl::SimpleAtoi(after.substr(0, after.find(';')), &port)) return;
    address_ = absl::StrCat(o.coordinator_host, ":", port);
    for (int i = 0; i < o.workers * o.replicas; ++i) {
      workers_.push_back(StartWorker(i));
      // Join order decides stage order; keep it deterministic.
      workers_.back()->WaitFor("joined", absl::Seconds(30));
    }
    if (o.wait_ready) {
      ready_ = coordinator_->WaitForCount("pipeline ready", o.replicas, absl::Seconds(60));
    }
  }

  // Starts a new coordinator process on the same address (after the old
  // one exited); the workers rejoin it by themselves.
  void RestartCoordinator() {
    coordinator_.reset();
    std::vector<std::string> args = coordinator_args_;
    for (std::string& a : args) {
      if (a == options_.coordinator_host + ":0") a = address_;
    }
    coordinator_ = std::make_unique<ChildProcess>(args);
  }

  // Starts worker `i` again (after it was killed): a new process, a new
  // port, joining the running coordinator.
  void RestartWorker(int i) {
    workers_[i].reset();
    workers_[i] = StartWorker(i);
  }

  bool ready() const { return ready_; }
  const std::string& address() const { return address_; }
  ChildProcess& coordinator() { return *coordinator_; }
  ChildProcess& worker(int i) { return *workers_[i]; }
  int num_workers() const { return static_cast<int>(workers_.size()); }

  std::unique_ptr<tessera::v1::Inference::Stub> InferenceStub() const {
    return tessera::v1::Inference::NewStub(
        grpc::CreateChannel(address_, options_.client_credentials));
  }

  // The Stage address of stage `i`, from GetModelInfo.
  std::string StageAddress(int i) const {
    grpc::ClientContext ctx;
    tessera::v1::ModelInfo info;
    InferenceStub()->GetModelInfo(&ctx, tessera::v1::GetModelInfoRequest(), &info);
    return i < info.stages_size() ? info.stages(i).worker_address() : "";
  }

 private:
  std::unique_ptr<ChildProcess> StartWorker(int i) const {
    const ClusterOptions& o = options_;
    std::vector<std::string> w;
    if (i < static_cast<int>(o.worker_prefix.size())) w = o.worker_prefix[i];
    const std::string host =
        i < static_cast<int>(o.worker_host.size()) ? o.worker_host[i] : "127.0.0.1";
    const std::vector<std::string> flags = {
        o.worker_binary, "--coordinator", address_, "--model", o.model, "--listen",
        host + ":0",     "--threads",     absl::StrCat(o.worker_threads)};
    w.insert(w.end(), flags.begin(), flags.end());
    if (!o.join_secret.empty()) w.push_back("--join-secret=" + o.join_secret);
    if (!IsLoopbackHost(host)) w.push_back("--insecure");
    if (i < static_cast<int>(o.worker_flags.size())) {
      w.insert(w.end(), o.worker_flags[i].begin(), o.worker_flags[i].end());
    }
    return std::make_unique<ChildProcess>(w);
  }

  const ClusterOptions options_;
  std::vector<std::string> coordinator_args_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
  std::string address_;
  bool ready_ = false;
};

struct Generation {
  grpc::Status status;
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::string text;
  std::string request_id;
  tessera::v1::FinishReason finish = tessera::v1::FINISH_REASON_UNSPECIFIED;
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// A worker's Stage.GetWorkerStatus (empty on error).
inline tessera::v1::WorkerStatus WorkerStatusOf(const std::string& address) {
  auto stub = tessera::v1::Stage::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  AddTestStageProof(&ctx, "status", 0, 0);
  tessera::v1::WorkerStatus st;
  stub->GetWorkerStatus(&ctx, tessera::v1::WorkerStatusRequest(), &st);
  return st;
}

// A text-prompt request with the engine's sampling parameters, as `tessera
// generate` would send it.
inline tessera::v1::GenerateRequest TextRequest(const std::string& prompt, int32_t max_tokens,
                                                const SamplingParams& p) {
  tessera::v1::GenerateRequest r;
  r.set_text(prompt);
  r.set_max_tokens(max_tokens);
  SamplingToProto(p, r.mutable_sampling());
  return r;
}

// Runs one Generate to its end. `tokens_seen`, when given, counts the token
// ids as they arrive (for tests that act mid-stream).
inline Generation Generate(tessera::v1::Inference::Stub* stub,
                           const tessera::v1::GenerateRequest& request,
                           absl::Duration deadline = absl::Seconds(120),
                           std::atomic<int64_t>* tokens_seen = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  Generation g;
  auto reader = stub->Generate(&ctx, request);
  tessera::v1::GenerateResponse r;
  while (reader->Read(&r)) {
    g.request_id = r.request_id();
    g.ids.insert(g.ids.end(), r.token_ids().begin(), r.token_ids().end());
    if (tokens_seen != nullptr) *tokens_seen += r.token_ids_size();
    g.logprobs.insert(g.logprobs.end(), r.logprobs().begin(), r.logprobs().end());
    g.text += r.text();
    if (r.finish_reason() != tessera::v1::FINISH_REASON_UNSPECIFIED) {
      g.finish = r.finish_reason();
      g.prompt_tokens = r.usage().prompt_tokens();
      g.completion_tokens = r.usage().completion_tokens();
    }
  }
  g.status = reader->Finish();
  return g;
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTING_CLUSTER_H_
