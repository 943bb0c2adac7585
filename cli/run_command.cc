#include "cli/run_command.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "common/tokenizer/incremental_detokenizer.h"
#include "common/tokenizer/tokenizer.h"
#include "engine/local_engine.h"

namespace tessera {

absl::Status RunCommand(const RunOptions& options) {
  LocalEngineOptions eo;
  eo.model_path = options.model_path;
  eo.threads = options.threads;
  eo.max_context = options.max_context;
  eo.kv_dtype = options.kv_f16 ? kernels::DType::kF16 : kernels::DType::kF32;
  eo.device = options.device;
  eo.tp = options.tp;
  ASSIGN_OR_RETURN(std::unique_ptr<LocalEngine> engine, LocalEngine::Open(eo));
  const Tokenizer& tok = engine->tokenizer();

  std::vector<int32_t> prompt;
  if (options.chat) {
    // The prompt is the user's message: its text stays text, as in the
    // coordinator's chat API; only the template's markers are tokens.
    const ChatMessage user{"user", options.prompt};
    ASSIGN_OR_RETURN(prompt, tok.EncodeChat({user}, /*add_generation_prompt=*/true));
  } else {
    // Special-token text in a raw prompt (e.g. a hand-written template) is
    // honoured.
    prompt = tok.Encode(options.prompt, /*add_special=*/true, /*parse_special=*/true);
  }
  GenerateOptions go;
  go.max_tokens = options.max_tokens;
  go.sampling = options.sampling;

  IncrementalDetokenizer detok(tok);
  ASSIGN_OR_RETURN(GenerateStats stats,
                   engine->Generate(prompt, go, [&](int32_t id, float /*logprob*/) {
                     const std::string piece = detok.Push(id);
                     std::fwrite(piece.data(), 1, piece.size(), stdout);
                     std::fflush(stdout);
                     return true;
                   }));
  const std::string rest = detok.Flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  // A terminal gets a final newline; a pipe gets the generated text alone.
  if (isatty(fileno(stdout))) std::fputc('\n', stdout);
  std::fflush(stdout);

  const double prefill_tps =
      stats.prefill_seconds > 0 ? stats.prompt_tokens / stats.prefill_seconds : 0.0;
  // The first token comes out of the prefill step; decode steps are the rest.
  const int64_t decode_steps = std::max<int64_t>(stats.generated_tokens - 1, 0);
  const double decode_tps =
      stats.decode_seconds > 0 ? decode_steps / stats.decode_seconds : 0.0;
  std::fprintf(stderr,
               "[tessera] prompt tokens: %lld, generated tokens: %lld, prefill: %.1f tok/s, "
               "decode: %.1f tok/s, finish: %s, threads: %d\n",
               static_cast<long long>(stats.prompt_tokens),
               static_cast<long long>(stats.generated_tokens), prefill_tps, decode_tps,
               stats.finish_reason.c_str(), options.threads);
  return absl::OkStatus();
}

}  // namespace tessera
