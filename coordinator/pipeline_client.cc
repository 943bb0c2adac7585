#include "coordinator/pipeline_client.h"

#include <utility>

#include "absl/strings/str_format.h"

namespace tessera {

namespace {
namespace v1 = ::tessera::v1;
}  // namespace

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
  Break("the pipeline was closed");
}

uint64_t PipelineClient::bytes_sent() const {
  absl::MutexLock lock(&mu_);
  return bytes_sent_;
}

v1::PipelineStats PipelineClient::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void PipelineClient::Record(const v1::StepResult& result, const Pending& p) {
  stats_.set_steps(stats_.steps() + 1);
  stats_.set_tokens(stats_.tokens() + p.tokens);
  stats_.set_round_trip_micros(stats_.round_trip_micros() +
                               absl::ToInt64Microseconds(absl::Now() - p.sent));
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

void PipelineClient::ReadLoop() {
  v1::StepResult result;
  while (stream_->Read(&result)) {
    StepCallback done;
    {
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(result.step_id());
      if (it == pending_.end()) continue;  // a step we did not send, or already failed
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
    result = v1::StepResult();
  }
  const grpc::Status status = stream_->Finish();
  Break(absl::StrFormat("pipeline stream to stage 0 at %s ended: %s", address_,
                        status.ok() ? "closed" : status.error_message()));
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

uint64_t PipelineClient::SendStep(v1::StepRequest request, StepCallback done) {
  uint64_t id = 0;
  std::string broken;
  {
    absl::MutexLock lock(&mu_);
    if (broken_) {
      broken = broken_message_;
    } else {
      id = next_step_id_++;
      bytes_sent_ += request.ByteSizeLong();
      Pending p;
      p.done = std::move(done);
      p.sent = absl::Now();
      for (const v1::SequenceWork& s : request.seqs()) p.tokens += s.num_tokens();
      pending_[id] = std::move(p);
    }
  }
  if (id == 0) {
    done(absl::UnavailableError(broken));
    return 0;
  }
  request.set_step_id(id);
  bool written;
  {
    absl::MutexLock lock(&write_mu_);
    written = stream_->Write(request);
  }
  if (!written) Break(absl::StrFormat("cannot send step %d to stage 0 at %s", id, address_));
  return id;
}

void PipelineClient::Release(const std::vector<int64_t>& seq_ids) {
  if (seq_ids.empty()) return;
  v1::StepRequest request;  // step id 0: no answer is awaited
  for (int64_t id : seq_ids) request.add_release_seq_ids(id);
  absl::MutexLock lock(&write_mu_);
  stream_->Write(request);
}

}  // namespace tessera
