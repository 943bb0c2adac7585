#include "coordinator/pipeline_client.h"

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "proto/convert.h"

namespace tessera {

namespace {
namespace v1 = ::tessera::v1;
}  // namespace

namespace {

constexpr absl::Duration kResultsOpenTimeout = absl::Seconds(10);

uint64_t NewSession() {
  std::random_device rd;
  uint64_t s = 0;
  while (s == 0) s = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return s;
}

std::shared_ptr<grpc::Channel> Channel(const NodeSecurity& security, const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(address, security.ChannelCredentials(), args);
}

void AddProof(const NodeSecurity& security, std::string_view purpose, uint64_t epoch, int stage,
              grpc::ClientContext* context) {
  if (std::string proof = security.StageProof(purpose, epoch, stage); !proof.empty()) {
    context->AddMetadata(kStageProofKey, proof);
  }
}

}  // namespace

PipelineClient::PipelineClient(const NodeSecurity* security, std::string stage0_address,
                               std::string last_stage_address, uint64_t epoch, int stages,
                               ServingMetrics* metrics, int replica)
    : address_(std::move(stage0_address)),
      last_address_(std::move(last_stage_address)),
      session_(NewSession()),
      epoch_(epoch),
      stages_(stages),
      metrics_(metrics),
      replica_(replica) {
  AddProof(*security, "steps", epoch_, 0, &context_);
  stream_ = v1::Stage::NewStub(Channel(*security, address_))->Steps(&context_);
  v1::ResultsRequest open;
  open.set_session(session_);
  AddProof(*security, "results", epoch_, stages_ - 1, &results_context_);
  results_ =
      v1::Stage::NewStub(Channel(*security, last_address_))->Results(&results_context_, open);
  steps_reader_ = std::thread([this] { ReadSteps(); });
  results_reader_ = std::thread([this] { ReadResults(); });
}

PipelineClient::~PipelineClient() {
  {
    absl::MutexLock lock(&write_mu_);
    stream_->WritesDone();
  }
  context_.TryCancel();
  results_context_.TryCancel();
  steps_reader_.join();
  results_reader_.join();
  Break("the pipeline was closed");
}

PipelineTiming PipelineClient::timing() const {
  absl::MutexLock lock(&mu_);
  return timing_;
}

void PipelineClient::Record(const v1::StepResult& result, const Pending& p) {
  ++timing_.steps;
  timing_.tokens += p.tokens;
  const absl::Duration round_trip = absl::Now() - p.sent;
  timing_.round_trip_micros += absl::ToInt64Microseconds(round_trip);
  if (metrics_ != nullptr) {
    metrics_->StepAnswered(replica_, round_trip, static_cast<int64_t>(result.ByteSizeLong()));
  }
  for (const v1::StageTrace& t : result.traces()) {
    if (t.stage_index() < 0 || t.stage_index() >= 1024) continue;  // not a stage we planned
    if (metrics_ != nullptr && (stages_ == 0 || t.stage_index() < stages_)) {
      metrics_->StageStep(replica_, t.stage_index(), t.compute_micros(), t.bytes_in());
    }
    while (static_cast<int>(timing_.stages.size()) <= t.stage_index()) {
      timing_.stages.push_back({static_cast<int32_t>(timing_.stages.size()), 0, 0});
    }
    PipelineTiming::Stage& s = timing_.stages[t.stage_index()];
    s.compute_micros += t.compute_micros();
    s.bytes_in += t.bytes_in();
  }
  // Did any stage of this step compute while another stage computed an
  // earlier step? Only recent steps can have overlapped it.
  bool overlapped = false;
  for (const v1::StageTrace& t : result.traces()) {
    const int64_t begin = t.start_unix_micros();
    const int64_t end = begin + t.compute_micros();
    for (const Busy& b : recent_) {
      if (b.step_id != result.step_id() && b.stage_index != t.stage_index() && b.begin < end &&
          begin < b.end) {
        overlapped = true;
      }
    }
  }
  if (overlapped) ++timing_.overlapped_steps;
  for (const v1::StageTrace& t : result.traces()) {
    recent_.push_back({result.step_id(), t.stage_index(), t.start_unix_micros(),
                       t.start_unix_micros() + t.compute_micros()});
  }
  while (recent_.size() > 64) recent_.pop_front();
}

namespace {

// The plan as the stage API carries it.
v1::StepRequest ToWire(const StepPlan& plan) {
  v1::StepRequest request;
  for (const PlannedSequence& p : plan.seqs) {
    v1::SequenceWork* w = request.add_seqs();
    w->set_seq_id(p.seq_id);
    w->set_request_id(p.request_id);
    w->set_start_pos(p.start_pos);
    w->set_num_tokens(static_cast<int32_t>(p.tokens.size()));
    w->mutable_token_ids()->Add(p.tokens.begin(), p.tokens.end());
    w->mutable_block_table()->Add(p.block_table.begin(), p.block_table.end());
    w->set_prefix_cached(p.prefix_cached);
    w->set_sample(p.sample);
    if (!p.sample) continue;
    SamplingToProto(p.sampling, w->mutable_sampling());
    w->set_rng_counter(p.rng_counter);
    w->set_want_logprob(p.want_logprob);
    w->set_top_logprobs(p.top_logprobs);
    w->mutable_recent_tokens()->Add(p.recent_tokens.begin(), p.recent_tokens.end());
  }
  return request;
}

StepOutcome FromWire(const v1::StepResult& result) {
  StepOutcome outcome;
  for (const v1::SampledToken& t : result.tokens()) {
    SampleOutcome& o = outcome.samples.emplace_back();
    o.seq_id = t.seq_id();
    if (t.code() != 0) {
      o.status = absl::Status(static_cast<absl::StatusCode>(t.code()), t.message());
      continue;
    }
    o.token_id = t.token_id();
    o.logprob = t.logprob();
    // Lists of unequal length are passed on as the shorter; the scheduler
    // checks the count against what was asked for.
    const int n = std::min(t.top_token_ids_size(), t.top_logprobs_size());
    for (int i = 0; i < n; ++i) o.top.emplace_back(t.top_token_ids(i), t.top_logprobs(i));
    if (t.top_token_ids_size() != t.top_logprobs_size()) {
      o.top.emplace_back(-1, 0.0f);  // makes the count wrong: refused as a broken worker
    }
  }
  return outcome;
}

}  // namespace

void PipelineClient::Send(StepPlan plan, Done done) {
  SendStep(ToWire(plan), [done = std::move(done)](absl::StatusOr<v1::StepResult> r) {
    if (!r.ok()) {
      done(r.status());
      return;
    }
    done(FromWire(*r));
  });
}

void PipelineClient::Complete(v1::StepResult result) {
  StepCallback done;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(result.step_id());
    if (it == pending_.end()) return;  // a step we did not send, or already failed
    if (result.code() == 0) Record(result, it->second);
    done = std::move(it->second.done);
    pending_.erase(it);
  }
  if (result.code() != 0) {
    done(absl::Status(static_cast<absl::StatusCode>(result.code()),
                      absl::StrFormat("step %d: %s", result.step_id(), result.message())));
  } else {
    done(std::move(result));
  }
}

namespace {

// Reads `stream` to its end: a message with step_id 0 goes to `control`
// (the link's own news), every other to `complete`. Returns how it ended.
template <typename Stream>
std::string ReadToEnd(Stream& stream, const std::function<void(const v1::StepResult&)>& control,
                      const std::function<void(v1::StepResult)>& complete) {
  v1::StepResult result;
  while (stream.Read(&result)) {
    if (result.step_id() == 0) {
      control(result);
    } else {
      complete(std::move(result));
    }
    result = v1::StepResult();
  }
  const grpc::Status status = stream.Finish();
  return status.ok() ? "closed" : status.error_message();
}

}  // namespace

void PipelineClient::ReadSteps() {
  const std::string how = ReadToEnd(
      *stream_,
      [this](const v1::StepResult& r) {
        // A stage below lost its link: every step in flight is lost with it.
        if (r.code() != 0) Break(r.message());
      },
      [this](v1::StepResult r) { Complete(std::move(r)); });
  Break(absl::StrFormat("pipeline stream to stage 0 at %s ended: %s", address_, how));
}

void PipelineClient::ReadResults() {
  const std::string how = ReadToEnd(
      *results_,
      [this](const v1::StepResult&) {
        absl::MutexLock lock(&mu_);
        results_open_ = true;
      },
      [this](v1::StepResult r) { Complete(std::move(r)); });
  Break(absl::StrFormat("results stream from the last stage%s at %s ended: %s",
                        stages_ > 0 ? absl::StrFormat(" (stage %d)", stages_ - 1) : "",
                        last_address_, how));
}

void PipelineClient::Break(const std::string& why) {
  absl::flat_hash_map<uint64_t, Pending> failed;
  std::string message;
  {
    absl::MutexLock lock(&mu_);
    if (!broken_) {
      broken_ = true;
      broken_message_ = why;
    }
    message = broken_message_;
    failed.swap(pending_);
  }
  for (auto& [id, p] : failed) {
    p.done(absl::UnavailableError(absl::StrFormat("step %d: %s", id, message)));
  }
}

void PipelineClient::SendStep(v1::StepRequest request, StepCallback done) {
  uint64_t id = 0;
  std::string broken;
  {
    absl::MutexLock lock(&mu_);
    // The first steps wait for the last stage to open our Results stream:
    // a result it cannot route would come back as an error.
    auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return results_open_ || broken_;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&settled), kResultsOpenTimeout)) {
      broken_ = true;
      broken_message_ = absl::StrFormat("the last stage at %s did not open a results stream "
                                        "within %s",
                                        last_address_, absl::FormatDuration(kResultsOpenTimeout));
    }
    if (broken_) {
      broken = broken_message_;
    } else {
      id = next_step_id_++;
      Pending p;
      p.done = std::move(done);
      p.sent = absl::Now();
      for (const v1::SequenceWork& s : request.seqs()) p.tokens += s.num_tokens();
      pending_[id] = std::move(p);
    }
  }
  if (id == 0) {
    done(absl::UnavailableError(broken));
    return;
  }
  request.set_step_id(id);
  request.set_results_session(session_);
  request.set_epoch(epoch_);
  bool written;
  {
    absl::MutexLock lock(&write_mu_);
    written = stream_->Write(request);
  }
  if (!written) Break(absl::StrFormat("cannot send step %d to stage 0 at %s", id, address_));
}

void PipelineClient::Release(const std::vector<int64_t>& seq_ids) {
  if (seq_ids.empty()) return;
  v1::StepRequest request;  // step id 0: no answer is awaited
  for (int64_t id : seq_ids) request.add_release_seq_ids(id);
  request.set_epoch(epoch_);
  absl::MutexLock lock(&write_mu_);
  stream_->Write(request);
}

}  // namespace tessera
