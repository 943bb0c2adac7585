// The `tessera` command-line tool. Flags live here and nowhere else; each
// subcommand gets a typed options struct.
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "cli/run_command.h"

ABSL_FLAG(std::string, model, "", "Path of a GGUF model file.");
ABSL_FLAG(std::string, prompt, "", "Prompt text. Special-token text such as <|im_start|> is honoured.");
ABSL_FLAG(bool, chat, false,
          "Wrap --prompt as one user message in the model's own chat template.");
ABSL_FLAG(int32_t, max_tokens, 128, "Most tokens to generate (stops early at end-of-generation).");
ABSL_FLAG(float, temperature, 0.8f, "Sampling temperature; 0 = greedy.");
ABSL_FLAG(int32_t, top_k, 40, "Keep the k most likely tokens; 0 = off.");
ABSL_FLAG(float, top_p, 0.95f, "Nucleus sampling threshold in (0, 1]; 1 = off.");
ABSL_FLAG(float, min_p, 0.05f, "Drop tokens below min_p x the top probability; 0 = off.");
ABSL_FLAG(float, repeat_penalty, 1.0f, "Repetition penalty over the last 64 tokens; 1 = off.");
ABSL_FLAG(uint64_t, seed, 0, "Sampling seed; the same seed gives the same tokens.");
ABSL_FLAG(int32_t, threads, 0, "Kernel threads; 0 = all hardware threads.");
ABSL_FLAG(int64_t, max_context, 0,
          "Longest prompt + generation the KV cache holds; 0 = the model's (capped at 4096).");

namespace {

constexpr char kUsage[] = R"(tessera: distributed LLM inference.

Usage:
  tessera run --model PATH --prompt TEXT [--chat] [--max-tokens N]
              [--temperature T] [--top-k K] [--top-p P] [--min-p P]
              [--repeat-penalty R] [--seed S] [--threads N] [--max-context N]
      Generate from a local GGUF model in this process. stdout carries only
      the generated text; one statistics line (prompt tokens, prefill and
      decode tok/s) goes to stderr. --temperature 0 is greedy decoding.

Flags accept both --max-tokens and --max_tokens spellings.)";

// absl flags are spelled with underscores; accept the dashed spelling too.
std::vector<char*> NormaliseDashes(int argc, char** argv, std::vector<std::string>* storage) {
  storage->reserve(argc);
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) == 0) {
      const size_t eq = a.find('=');
      for (size_t j = 2; j < std::min(eq, a.size()); ++j) {
        if (a[j] == '-') a[j] = '_';
      }
    }
    storage->push_back(std::move(a));
  }
  std::vector<char*> out;
  for (std::string& s : *storage) out.push_back(s.data());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<std::string> storage;
  std::vector<char*> args = NormaliseDashes(argc, argv, &storage);
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (positional.size() < 2) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  const std::string command = positional[1];
  if (command == "run") {
    tessera::RunOptions o;
    o.model_path = absl::GetFlag(FLAGS_model);
    o.prompt = absl::GetFlag(FLAGS_prompt);
    o.chat = absl::GetFlag(FLAGS_chat);
    o.max_tokens = absl::GetFlag(FLAGS_max_tokens);
    o.threads = absl::GetFlag(FLAGS_threads);
    if (o.threads == 0) o.threads = std::max(1u, std::thread::hardware_concurrency());
    o.max_context = absl::GetFlag(FLAGS_max_context);
    o.sampling.temperature = absl::GetFlag(FLAGS_temperature);
    o.sampling.top_k = absl::GetFlag(FLAGS_top_k);
    o.sampling.top_p = absl::GetFlag(FLAGS_top_p);
    o.sampling.min_p = absl::GetFlag(FLAGS_min_p);
    o.sampling.repetition_penalty = absl::GetFlag(FLAGS_repeat_penalty);
    o.sampling.seed = absl::GetFlag(FLAGS_seed);
    if (o.model_path.empty()) {
      std::fprintf(stderr, "tessera run: --model is required\n");
      return 2;
    }
    absl::Status s = tessera::RunCommand(o);
    if (!s.ok()) {
      std::fprintf(stderr, "tessera run: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
  }
  std::fprintf(stderr, "tessera: unknown command '%s'\n\n%s\n", command.c_str(), kUsage);
  return 2;
}
