#include "coordinator/pipeline_client.h"

#include <utility>

#include "absl/strings/str_format.h"

namespace tessera {

namespace v1 = ::tessera::v1;

PipelineClient::PipelineClient(std::string stage0_address) : address_(std::move(stage0_address)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
  stub_ = v1::Stage::NewStub(channel_);
  stream_ = stub_->Steps(&context_);
  reader_ = std::thread([this] { ReadLoop(); });
}

PipelineClient::~PipelineClient() {
  {
    absl::MutexLock lock(&write_mu_);
    stream_->WritesDone();
  }
  context_.TryCancel();
  reader_.join();
}

uint64_t PipelineClient::bytes_sent() const {
  absl::MutexLock lock(&mu_);
  return bytes_sent_;
}

v1::PipelineStats PipelineClient::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void PipelineClient::ReadLoop() {
  v1::StepResult result;
  while (stream_->Read(&result)) {
    absl::MutexLock lock(&mu_);
    results_[result.step_id()] = std::move(result);
    result = v1::StepResult();
  }
  const grpc::Status status = stream_->Finish();
  absl::MutexLock lock(&mu_);
  broken_ = true;
  broken_message_ = absl::StrFormat("pipeline stream to stage 0 at %s ended: %s", address_,
                                    status.ok() ? "closed" : status.error_message());
}

absl::StatusOr<v1::StepResult> PipelineClient::RunStep(v1::StepRequest request,
                                                       absl::Duration timeout) {
  uint64_t id = 0;
  {
    absl::MutexLock lock(&mu_);
    if (broken_) return absl::UnavailableError(broken_message_);
    id = next_step_id_++;
    bytes_sent_ += request.ByteSizeLong();
  }
  request.set_step_id(id);
  uint64_t tokens = 0;
  for (const v1::SequenceWork& s : request.seqs()) tokens += s.num_tokens();
  const absl::Time sent = absl::Now();
  {
    absl::MutexLock lock(&write_mu_);
    if (!stream_->Write(request)) {
      return absl::UnavailableError(
          absl::StrFormat("cannot send step %d to stage 0 at %s", id, address_));
    }
  }
  absl::MutexLock lock(&mu_);
  auto arrived = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return broken_ || results_.contains(id);
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&arrived), timeout)) {
    return absl::DeadlineExceededError(absl::StrFormat(
        "step %d got no answer from the pipeline (stage 0 at %s) within %s", id, address_,
        absl::FormatDuration(timeout)));
  }
  auto it = results_.find(id);
  if (it == results_.end()) return absl::UnavailableError(broken_message_);
  v1::StepResult result = std::move(it->second);
  results_.erase(it);
  if (result.code() == 0) {
    stats_.set_steps(stats_.steps() + 1);
    stats_.set_tokens(stats_.tokens() + tokens);
    stats_.set_round_trip_micros(stats_.round_trip_micros() +
                                 absl::ToInt64Microseconds(absl::Now() - sent));
    for (const v1::StageTrace& t : result.traces()) {
      if (t.stage_index() < 0 || t.stage_index() >= 1024) continue;  // not a stage we planned
      while (stats_.stages_size() <= t.stage_index()) {
        stats_.add_stages()->set_stage_index(stats_.stages_size() - 1);
      }
      v1::StageTiming* s = stats_.mutable_stages(t.stage_index());
      s->set_compute_micros(s->compute_micros() + t.compute_micros());
      s->set_bytes_in(s->bytes_in() + t.bytes_in());
    }
  }
  if (result.code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(result.code()),
                        absl::StrFormat("step %d: %s", id, result.message()));
  }
  return result;
}

void PipelineClient::Release(const std::vector<int64_t>& seq_ids) {
  if (seq_ids.empty()) return;
  v1::StepRequest request;  // step id 0: no answer is awaited
  for (int64_t id : seq_ids) request.add_release_seq_ids(id);
  absl::MutexLock lock(&write_mu_);
  stream_->Write(request);
}

}  // namespace tessera
