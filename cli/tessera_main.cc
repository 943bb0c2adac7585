// The `tessera` command-line tool. Flags live here and nowhere else; each
// subcommand gets a typed options struct.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/plan_command.h"
#if TESSERA_WITH_GRPC
#include "cli/bench_command.h"
#include "cli/generate_command.h"
#include "cli/status_command.h"
#endif
#include "cli/run_command.h"
#include "common/dashed_flags.h"
#include "common/safetensors/model_source.h"
#include "common/sampling_params.h"

ABSL_FLAG(std::string, model, "",
          "A GGUF model file, or a Hugging Face checkpoint directory (config.json, "
          "*.safetensors, tokenizer.json).");
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
ABSL_FLAG(std::string, workers, "",
          "plan: memory each worker may use, comma-separated, e.g. 24GiB,16GiB.");
ABSL_FLAG(std::string, bandwidths, "",
          "plan: each worker's memory read bandwidth per second, e.g. 2TB,1TB; empty = unknown.");
ABSL_FLAG(int64_t, context, 4096, "plan: tokens per sequence (prompt + generation).");
ABSL_FLAG(std::string, concurrency, "",
          "plan: concurrent sequences the KV pool should hold (default 1); bench: concurrent "
          "streams per level, comma-separated (default 1,4,16).");
ABSL_FLAG(int64_t, max_batch_tokens, 512, "plan: tokens in the largest step (activation scratch).");
ABSL_FLAG(std::string, kv_dtype, "f32",
          "run, plan: KV cache element type, f32 or f16 (half the memory, values rounded).");
ABSL_FLAG(std::string, device, "cpu",
          "run: where the model runs: cpu, cuda, cuda:N, or cuda:N,M,... (tensor parallelism "
          "over those GPUs, one rank each, over NCCL).");
ABSL_FLAG(int32_t, tp, 1,
          "run: tensor-parallel ranks: threads of this process on the CPU, GPUs N..N+tp-1 with "
          "--device cuda:N; each holds a shard.");

ABSL_FLAG(std::string, coordinator, "127.0.0.1:50051",
          "generate, bench, status: host:port of the coordinator.");
ABSL_FLAG(std::string, tls_ca, "",
          "generate, bench, status: connect over TLS, trusting this PEM CA certificate; empty: "
          "plaintext.");
ABSL_FLAG(std::string, tls_cert, "",
          "generate, bench, status: a client certificate (PEM) to present.");
ABSL_FLAG(std::string, tls_key, "", "generate, bench, status: the key of --tls-cert (PEM).");
ABSL_FLAG(std::string, api_key, "",
          "generate, bench, status: the API key to send (default: $TESSERA_API_KEY, which keeps "
          "it out of the process list); status needs an admin key.");
ABSL_FLAG(bool, json, false, "status: print the status as JSON (for scripts).");
ABSL_FLAG(bool, watch, false, "status: redraw it every --interval seconds until interrupted.");
ABSL_FLAG(double, interval, 2, "status --watch: seconds between refreshes.");
ABSL_FLAG(std::vector<std::string>, stop, {}, "generate: stop strings, comma-separated.");
ABSL_FLAG(double, timeout, 0, "generate: request deadline in seconds; 0 = none.");
ABSL_FLAG(int32_t, requests, 0, "bench: requests per level; 0 = 2 x the level, at least 8.");
ABSL_FLAG(int32_t, shared_prefixes, 0,
          "bench: N > 0 sends prompts made of one of N long system prompts and a question of "
          "their own, and reports the prefix-cache hit rate.");

namespace {

#if TESSERA_WITH_GRPC
// How `generate` and `bench` reach the coordinator.
tessera::ClientConnection ConnectionFromFlags() {
  tessera::ClientConnection c;
  c.coordinator = absl::GetFlag(FLAGS_coordinator);
  c.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  c.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  c.tls_key = absl::GetFlag(FLAGS_tls_key);
  c.api_key = absl::GetFlag(FLAGS_api_key);
  if (c.api_key.empty()) {
    if (const char* env = std::getenv("TESSERA_API_KEY"); env != nullptr) c.api_key = env;
  }
  return c;
}
#endif

// The sampling flags shared by `run` and `generate`.
tessera::SamplingParams SamplingFromFlags() {
  tessera::SamplingParams p;
  p.temperature = absl::GetFlag(FLAGS_temperature);
  p.top_k = absl::GetFlag(FLAGS_top_k);
  p.top_p = absl::GetFlag(FLAGS_top_p);
  p.min_p = absl::GetFlag(FLAGS_min_p);
  p.repetition_penalty = absl::GetFlag(FLAGS_repeat_penalty);
  p.seed = absl::GetFlag(FLAGS_seed);
  return p;
}

// Names of the flags on the command line (after NormaliseDashedFlags), for
// telling a flag given at its default value from one not given at all.
std::vector<std::string>& GivenFlagNames() {
  static std::vector<std::string>* names = new std::vector<std::string>();
  return *names;
}

void RecordGivenFlags(const std::vector<char*>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "--") break;
    if (a.empty() || a[0] != '-') continue;
    a = a.substr(a.rfind("--", 0) == 0 ? 2 : 1);
    GivenFlagNames().push_back(a.substr(0, a.find('=')));
  }
}

// The sampling flags actually given on the command line.
tessera::SamplingDefaults GivenSamplingFlags() {
  auto given = [](const char* name) {
    const std::vector<std::string>& names = GivenFlagNames();
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  tessera::SamplingDefaults g;
  if (given("temperature")) g.temperature = absl::GetFlag(FLAGS_temperature);
  if (given("top_k")) g.top_k = absl::GetFlag(FLAGS_top_k);
  if (given("top_p")) g.top_p = absl::GetFlag(FLAGS_top_p);
  if (given("min_p")) g.min_p = absl::GetFlag(FLAGS_min_p);
  if (given("repeat_penalty")) g.repetition_penalty = absl::GetFlag(FLAGS_repeat_penalty);
  return g;
}

constexpr char kUsage[] = R"(tessera: distributed LLM inference.

Usage:
  tessera run --model PATH --prompt TEXT [--chat] [--max-tokens N]
              [--temperature T] [--top-k K] [--top-p P] [--min-p P]
              [--repeat-penalty R] [--seed S] [--threads N] [--max-context N]
              [--kv-dtype f32|f16] [--device cpu|cuda[:N[,M...]]] [--tp N]
      Generate from a local model in this process: a GGUF file or a Hugging
      Face directory (config.json + *.safetensors + tokenizer.json; Llama,
      Mistral, Qwen2 and GLM-4 architectures). Sampling flags not given take
      the directory's generation_config.json values where it has them, else
      the defaults below. stdout carries only
      the generated text; one statistics line (prompt tokens, prefill and
      decode tok/s) goes to stderr. --temperature 0 is greedy decoding.
      --kv-dtype f16 stores the KV cache as IEEE half (as llama.cpp does by
      default); the default f32 keeps it exact. --device cuda runs the model on
      a GPU (F32/F16/BF16/Q8_0/Q4_K weights; a build with CUDA and a device,
      else it says which is missing); --tp N splits it over N CPU ranks, or
      with --device cuda:N over GPUs N..N+T-1 joined by NCCL (--device
      cuda:0,1 lists them instead).

  tessera plan --model PATH --workers 24GiB,16GiB,... [--context N]
               [--concurrency M] [--max-batch-tokens N] [--kv-dtype f32|f16]
               [--bandwidths 2TB,1TB,...]
      Split the model over the workers (in pipeline order) from its GGUF or
      safetensors headers alone, without loading weights, and print the
      per-stage memory table and the context x concurrency that fits. Exits 1, saying which
      quantization would fit, when the model does not fit. Defaults: context
      4096, concurrency 1, max batch tokens 512, kv dtype f32.

  tessera generate --coordinator HOST:PORT --prompt TEXT [--chat]
                   [--max-tokens N] [the sampling flags of run] [--stop S]
                   [--timeout SECONDS]
      Stream a completion from a running cluster (tessera-coordinator).
      stdout carries only the generated text; the request id and statistics
      go to stderr. Same prompt, flags and seed as `tessera run` give the same
      tokens.

  tessera bench --coordinator HOST:PORT [--concurrency 1,4,16,64]
                [--requests N] [--prompt TEXT] [--max-tokens N] [--shared-prefixes N]
                [sampling flags]
      Load-test a running cluster: at each concurrency level keep that many
      streams busy until N requests (default 2 x level, at least 8) finished,
      each generating --max-tokens tokens (end-of-generation ignored, seeds
      varied). Prints aggregate output tok/s, time to first
      token and time per output token (p50, p99) per level. --shared-prefixes
      N prefixes each prompt with one of N long system prompts and adds the
      prefix-cache hit rate.

  tessera status --coordinator HOST:PORT [--json] [--watch [--interval S]]
      What a running cluster is doing: each replica's state, running and
      waiting requests and KV blocks; stage by stage its worker (address,
      device, layers, state, heartbeat age, time in the current step, step
      time p50/p99 over the last 256 steps); idle workers; totals. --json
      prints the same as JSON; --watch redraws it. Needs an admin key when
      the coordinator has --api-keys.

  generate, bench and status reach a TLS coordinator with --tls-ca PEM (and,
  if it asks for one, --tls-cert PEM --tls-key PEM), and send --api-key KEY
  (or $TESSERA_API_KEY) when it requires API keys.

Flags accept both --max-tokens and --max_tokens spellings.)";

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<std::string> storage;
  std::vector<char*> args = tessera::NormaliseDashedFlags(argc, argv, &storage);
  RecordGivenFlags(args);
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
    if (o.model_path.empty()) {
      std::fprintf(stderr, "tessera run: --model is required\n");
      return 2;
    }
    // Flags given > the model's generation_config.json > the flags' defaults.
    absl::StatusOr<tessera::SamplingDefaults> model = tessera::ModelSamplingDefaults(o.model_path);
    if (!model.ok()) {
      std::fprintf(stderr, "tessera run: %s\n", model.status().ToString().c_str());
      return 1;
    }
    o.sampling = GivenSamplingFlags().Apply(model->Apply(SamplingFromFlags()));
    const std::string kv_dtype = absl::GetFlag(FLAGS_kv_dtype);
    if (kv_dtype != "f32" && kv_dtype != "f16") {
      std::fprintf(stderr, "tessera run: --kv-dtype must be f32 or f16, not '%s'\n",
                   kv_dtype.c_str());
      return 2;
    }
    o.kv_f16 = kv_dtype == "f16";
    absl::StatusOr<tessera::Device> device = tessera::ParseDevice(absl::GetFlag(FLAGS_device));
    if (!device.ok()) {
      std::fprintf(stderr, "tessera run: %s\n", device.status().ToString().c_str());
      return 2;
    }
    o.device = *device;
    o.tp = absl::GetFlag(FLAGS_tp);
    absl::Status s = tessera::RunCommand(o);
    if (!s.ok()) {
      std::fprintf(stderr, "tessera run: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
  }
  if (command == "plan") {
    tessera::PlanCommandOptions o;
    o.model_path = absl::GetFlag(FLAGS_model);
    if (o.model_path.empty()) {
      std::fprintf(stderr, "tessera plan: --model is required\n");
      return 2;
    }
    absl::StatusOr<std::vector<tessera::WorkerCapacity>> workers =
        tessera::ParseWorkerList(absl::GetFlag(FLAGS_workers), absl::GetFlag(FLAGS_bandwidths));
    if (!workers.ok()) {
      std::fprintf(stderr, "tessera plan: %s\n", std::string(workers.status().message()).c_str());
      return 2;
    }
    o.workers = *std::move(workers);
    o.plan.max_context = absl::GetFlag(FLAGS_context);
    const std::string concurrency = absl::GetFlag(FLAGS_concurrency);
    o.plan.max_seqs = 1;
    if (!concurrency.empty() && !absl::SimpleAtoi(concurrency, &o.plan.max_seqs)) {
      std::fprintf(stderr, "tessera plan: --concurrency must be an integer, not '%s'\n",
                   concurrency.c_str());
      return 2;
    }
    o.plan.max_batch_tokens = absl::GetFlag(FLAGS_max_batch_tokens);
    const std::string kv_dtype = absl::GetFlag(FLAGS_kv_dtype);
    if (kv_dtype == "f32") {
      o.plan.kv_dtype_bytes = 4;
    } else if (kv_dtype == "f16") {
      o.plan.kv_dtype_bytes = 2;
    } else {
      std::fprintf(stderr, "tessera plan: --kv-dtype must be f32 or f16, not '%s'\n",
                   kv_dtype.c_str());
      return 2;
    }
    absl::Status s = tessera::PlanCommand(o);
    if (!s.ok()) {
      std::fprintf(stderr, "tessera plan: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
  }
  if (command == "generate") {
#if TESSERA_WITH_GRPC
    tessera::GenerateCommandOptions o;
    o.connection = ConnectionFromFlags();
    o.prompt = absl::GetFlag(FLAGS_prompt);
    o.chat = absl::GetFlag(FLAGS_chat);
    o.max_tokens = absl::GetFlag(FLAGS_max_tokens);
    o.sampling = GivenSamplingFlags();
    o.seed = absl::GetFlag(FLAGS_seed);
    o.stop = absl::GetFlag(FLAGS_stop);
    o.timeout_seconds = absl::GetFlag(FLAGS_timeout);
    if (o.prompt.empty()) {
      std::fprintf(stderr, "tessera generate: --prompt is required\n");
      return 2;
    }
    absl::Status s = tessera::GenerateCommand(o);
    if (!s.ok()) {
      std::fprintf(stderr, "tessera generate: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
#else
    std::fprintf(stderr, "tessera generate: this build has no gRPC (-DTESSERA_WITH_GRPC=OFF)\n");
    return 2;
#endif
  }
  if (command == "bench") {
#if TESSERA_WITH_GRPC
    tessera::BenchCommandOptions o;
    o.connection = ConnectionFromFlags();
    o.concurrency.clear();
    std::string levels = absl::GetFlag(FLAGS_concurrency);
    if (levels.empty()) levels = "1,4,16";
    for (const std::string& c : std::vector<std::string>(absl::StrSplit(levels, ','))) {
      int level = 0;
      if (!absl::SimpleAtoi(c, &level) || level < 1) {
        std::fprintf(stderr, "tessera bench: --concurrency entry '%s' is not a positive integer\n",
                     c.c_str());
        return 2;
      }
      o.concurrency.push_back(level);
    }
    o.requests = absl::GetFlag(FLAGS_requests);
    o.prompt = absl::GetFlag(FLAGS_prompt);
    if (o.prompt.empty()) o.prompt = "Write a short story about a lighthouse keeper.";
    o.max_tokens = absl::GetFlag(FLAGS_max_tokens);
    o.shared_prefixes = absl::GetFlag(FLAGS_shared_prefixes);
    o.sampling = SamplingFromFlags();
    absl::Status s = tessera::BenchCommand(o);
    if (!s.ok()) {
      std::fprintf(stderr, "tessera bench: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
#else
    std::fprintf(stderr, "tessera bench: this build has no gRPC (-DTESSERA_WITH_GRPC=OFF)\n");
    return 2;
#endif
  }
  if (command == "status") {
#if TESSERA_WITH_GRPC
    tessera::StatusCommandOptions o;
    o.connection = ConnectionFromFlags();
    o.json = absl::GetFlag(FLAGS_json);
    o.watch = absl::GetFlag(FLAGS_watch);
    o.interval_seconds = absl::GetFlag(FLAGS_interval);
    if (!(o.interval_seconds > 0)) {
      std::fprintf(stderr, "tessera status: --interval must be positive\n");
      return 2;
    }
    absl::Status s = tessera::StatusCommand(o);
    if (!s.ok()) {
      std::fprintf(stderr, "tessera status: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
#else
    std::fprintf(stderr, "tessera status: this build has no gRPC (-DTESSERA_WITH_GRPC=OFF)\n");
    return 2;
#endif
  }
  std::fprintf(stderr, "tessera: unknown command '%s'\n\n%s\n", command.c_str(), kUsage);
  return 2;
}
