// libFuzzer target: the OpenAI request parser (completions and chat bodies),
// then what admission does with a parsed request (prompt through SmolLM2's
// real tokenizer and chat template, ToRequestSpec) and the shared request
// validation. Whatever the bytes, ParseOpenAiRequest must return a
// value or a status: no exception, crash, leak or undefined behaviour
// (built with AddressSanitizer and UBSan), and every refusal must be a
// client error with a message.
//
// Input: the first byte picks the endpoint (even: completions, odd: chat);
// the rest is the request body. Seeds in openai_request_seeds/ are valid
// requests of both kinds; openai_request.dict holds JSON syntax and the field
// names the parser knows.
//
// Environment: TESSERA_MODEL names the GGUF whose tokenizer is used (the
// test command sets it); without it the fuzzer exits at once with an error.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/gguf/gguf_file.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/admission_request.h"
#include "coordinator/http/openai_request.h"
#include "coordinator/request_spec.h"

namespace {

std::unique_ptr<tessera::GgufFile> g_file;
std::unique_ptr<tessera::Tokenizer> g_tokenizer;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  const char* path = std::getenv("TESSERA_MODEL");
  if (path == nullptr || *path == '\0') {
    std::fprintf(stderr, "openai_request_fuzzer: set TESSERA_MODEL to a GGUF model\n");
    std::exit(2);
  }
  auto file = tessera::GgufFile::Open(path);
  if (!file.ok()) {
    std::fprintf(stderr, "openai_request_fuzzer: %s\n", file.status().ToString().c_str());
    std::exit(2);
  }
  g_file = *std::move(file);
  auto tokenizer = tessera::Tokenizer::FromGguf(*g_file);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "openai_request_fuzzer: %s\n", tokenizer.status().ToString().c_str());
    std::exit(2);
  }
  g_tokenizer = *std::move(tokenizer);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool chat = (data[0] & 1) != 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  tessera::OpenAiParseOptions options;
  options.default_max_tokens = 16;
  options.model_ids = {"SmolLM2-135M-Instruct.Q4_1", "smol"};
  std::string param;
  absl::StatusOr<tessera::OpenAiRequest> r =
      tessera::ParseOpenAiRequest(body, chat, options, &param);
  if (!r.ok()) {
    const absl::StatusCode code = r.status().code();
    // A bad body is the client's error: 400, 404 (model) or a template
    // precondition; never an internal one, and always explained.
    if ((code != absl::StatusCode::kInvalidArgument && code != absl::StatusCode::kNotFound &&
         code != absl::StatusCode::kFailedPrecondition) ||
        r.status().message().empty()) {
      std::fprintf(stderr, "unexpected refusal: %s\n", r.status().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  // What admission does next: the prompt through the tokenizer and chat
  // template, then the scheduler's checks. Refusals stay client errors.
  absl::StatusOr<tessera::RequestSpec> spec =
      tessera::ToRequestSpec(*g_tokenizer, r->admission, tessera::SamplingDefaults(), "fuzz");
  if (!spec.ok()) {
    const absl::StatusCode code = spec.status().code();
    if ((code != absl::StatusCode::kInvalidArgument &&
         code != absl::StatusCode::kFailedPrecondition) ||
        spec.status().message().empty()) {
      std::fprintf(stderr, "unexpected prompt refusal: %s\n", spec.status().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  const absl::Status valid = tessera::ValidateRequestSpec(
      *spec, tessera::RequestLimits{static_cast<int32_t>(g_tokenizer->vocab_size()), 2048});
  if (!valid.ok() && (valid.code() != absl::StatusCode::kInvalidArgument ||
                      tessera::FieldOf(valid).empty())) {
    std::fprintf(stderr, "validation without a field: %s\n", valid.ToString().c_str());
    std::abort();
  }
  return 0;
}
