// The coordinator's scheduler: turns admitted requests into pipeline steps.
//
// Continuous batching: every step carries a decode token for each running
// sequence plus prefill chunks of newly admitted prompts, up to
// max_batch_tokens. Because every kernel is batch-invariant and sampling is
// counter-based, each request's tokens are bitwise what it would get alone in
// `tessera run`, however it is batched or chunked.
//
// KV: a request reserves blocks for prompt + max_tokens when it is admitted
// and frees them (on every stage) the moment it finishes or is cancelled.
// Requests wait in a bounded FIFO while blocks or sequence slots are short.
// (Several micro-batches in flight, preemption and prefix caching arrive with
// the serving issue; this scheduler keeps one step in flight.)
//
// Thread-safety: Submit/SetPipeline/Stats may be called from any thread; one
// internal thread runs the steps.
#ifndef TESSERA_COORDINATOR_SCHEDULER_H_
#define TESSERA_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/model_config.h"
#include "common/sampling_params.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/kv_block_pool.h"
#include "coordinator/pipeline_client.h"
#include "coordinator/request_stream.h"

namespace tessera {

struct SchedulerOptions {
  int64_t max_context = 4096;      // prompt + generated tokens per sequence
  int64_t max_seqs = 8;            // sequences running at once
  int32_t max_batch_tokens = 512;  // tokens per step (prefill chunks + decodes)
  int32_t block_size = 16;
  int64_t max_queue = 256;         // requests waiting for admission
  absl::Duration step_timeout = absl::Seconds(60);
};

struct RequestSpec {
  std::string request_id;
  std::vector<int32_t> prompt;
  int32_t max_tokens = 128;
  SamplingParams sampling;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool logprobs = false;
  bool ignore_eos = false;
};

class Scheduler {
 public:
  // `tokenizer` must outlive the scheduler.
  Scheduler(const Tokenizer* tokenizer, const ModelConfig& config, SchedulerOptions options);
  ~Scheduler();

  // Checks the request (INVALID_ARGUMENT naming the field or both numbers of
  // a context overflow) and queues it. UNAVAILABLE when no pipeline is ready
  // (with the reason), RESOURCE_EXHAUSTED when the queue is full.
  absl::StatusOr<std::shared_ptr<RequestStream>> Submit(RequestSpec spec);

  // Installs a ready pipeline with `kv_blocks` blocks per stage, or removes
  // it (client == nullptr): running requests then fail UNAVAILABLE with
  // `reason`.
  void SetPipeline(std::unique_ptr<PipelineClient> client, int64_t kv_blocks,
                   const std::string& reason);

  int64_t free_blocks() const;
  // Step timing of the current pipeline; empty when there is none.
  tessera::v1::PipelineStats pipeline_stats() const;

 private:
  struct Sequence {
    int64_t seq_id = 0;
    RequestSpec spec;
    std::shared_ptr<RequestStream> stream;
    std::vector<int32_t> blocks;
    std::vector<int32_t> history;  // prompt + generated
    int32_t prefilled = 0;         // prompt tokens whose KV exists
    int32_t generated = 0;
    std::unique_ptr<class IncrementalDetokenizer> detok;
    std::unique_ptr<class StopMatcher> stops;
  };

  void Loop();
  // Moves queued requests into running while slots and blocks allow.
  void Admit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends a running sequence: final event, blocks freed, release queued.
  void Finish(Sequence* s, const absl::Status& status, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies one sampled token; true if the sequence is done.
  bool Accept(Sequence* s, int32_t token, float logprob) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Tokenizer* tokenizer_;
  const ModelConfig config_;
  const SchedulerOptions options_;

  mutable absl::Mutex mu_;
  std::shared_ptr<PipelineClient> pipeline_ ABSL_GUARDED_BY(mu_);
  std::string unavailable_reason_ ABSL_GUARDED_BY(mu_) = "no pipeline is ready yet";
  KvBlockPool blocks_ ABSL_GUARDED_BY(mu_);
  std::deque<std::unique_ptr<Sequence>> queued_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Sequence>> running_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> releases_ ABSL_GUARDED_BY(mu_);
  int64_t next_seq_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_SCHEDULER_H_
