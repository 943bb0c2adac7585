#include "cli/generate_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "proto/convert.h"
#include "tessera/v1/inference.grpc.pb.h"

namespace tessera {

namespace {
namespace v1 = ::tessera::v1;
}  // namespace

absl::Status GenerateCommand(const GenerateCommandOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = OpenChannel(options.connection);
  if (!channel.ok()) return channel.status();
  auto stub = v1::Inference::NewStub(*channel);
  v1::GenerateRequest request;
  if (options.chat) {
    v1::ChatMessage* m = request.mutable_chat()->add_messages();
    m->set_role("user");
    m->set_content(options.prompt);
  } else {
    request.set_text(options.prompt);
  }
  request.set_max_tokens(options.max_tokens);
  GivenSamplingToProto(options.sampling, options.seed, request.mutable_sampling());
  for (const std::string& stop : options.stop) request.add_stop(stop);

  grpc::ClientContext context;
  Authorize(options.connection, &context);
  if (options.timeout_seconds > 0) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::microseconds(
                             static_cast<int64_t>(options.timeout_seconds * 1e6)));
  }
  const auto start = std::chrono::steady_clock::now();
  double first_token_seconds = -1;
  auto reader = stub->Generate(&context, request);
  v1::GenerateResponse response;
  std::string request_id, finish = "?";
  int64_t prompt_tokens = 0, completion_tokens = 0;
  while (reader->Read(&response)) {
    request_id = response.request_id();
    if (first_token_seconds < 0 && response.token_ids_size() > 0) {
      first_token_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    std::fwrite(response.text().data(), 1, response.text().size(), stdout);
    std::fflush(stdout);
    if (response.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      finish = response.finish_reason() == v1::FINISH_REASON_LENGTH ? "length" : "stop";
      prompt_tokens = response.usage().prompt_tokens();
      completion_tokens = response.usage().completion_tokens();
    }
  }
  const grpc::Status status = reader->Finish();
  if (isatty(fileno(stdout))) std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrFormat("coordinator %s: %s", options.connection.coordinator,
                                        status.error_message()));
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double decode_tps = completion_tokens > 1 && total > first_token_seconds
                                ? (completion_tokens - 1) / (total - first_token_seconds)
                                : 0.0;
  std::fprintf(stderr,
               "[tessera] request %s: prompt tokens: %lld, generated tokens: %lld, first token: "
               "%.0f ms, decode: %.1f tok/s, finish: %s\n",
               request_id.c_str(), static_cast<long long>(prompt_tokens),
               static_cast<long long>(completion_tokens), first_token_seconds * 1e3, decode_tps,
               finish.c_str());
  return absl::OkStatus();
}

}  // namespace tessera
