// Integration tests of the distributed pipeline: a real coordinator and real
// workers (separate processes, gRPC over loopback) must produce bitwise the
// tokens of the single-process engine that `tessera run` drives, with each
// worker holding only its layer range and activations crossing every link.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/local_engine.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "testing/cluster.h"
#include "testing/netns.h"
#include "tests/engine/test_paths.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using ::tessera::testing::Cluster;
using ::tessera::testing::ClusterOptions;
using ::tessera::testing::DefaultModelPath;
using ::tessera::testing::Generate;
using ::tessera::testing::Generation;
using ::testing::HasSubstr;

struct Case {
  std::string name;
  std::string prompt;
  int32_t max_tokens;
  SamplingParams sampling;
};

std::vector<Case> Cases() {
  SamplingParams greedy;
  greedy.temperature = 0;
  SamplingParams sampled;  // tessera run's defaults
  sampled.seed = 42;
  SamplingParams penalised;
  penalised.seed = 7;
  penalised.temperature = 1.0f;
  penalised.repetition_penalty = 1.3f;
  return {
      {"greedy", "<|im_start|>user\nName three rivers in Europe.<|im_end|>\n<|im_start|>assistant\n",
       40, greedy},
      {"sampled", "The history of the printing press", 40, sampled},
      {"penalised", "List the colours of the rainbow:", 32, penalised},
  };
}

using TokensByCase = std::map<std::string, std::vector<int32_t>>;

// What `tessera run [--kv-dtype f16]` produces: the single-process engine on
// the same file.
TokensByCase RunReference(kernels::DType kv_dtype) {
    TokensByCase result;
    TokensByCase* out = &result;
    LocalEngineOptions o;
    o.model_path = DefaultModelPath();
    o.threads = 1;
    o.max_context = 1024;
    o.kv_dtype = kv_dtype;
    auto engine = LocalEngine::Open(o);
    if (!engine.ok()) return result;
    for (const Case& c : Cases()) {
      GenerateOptions g;
      g.max_tokens = c.max_tokens;
      g.sampling = c.sampling;
      std::vector<int32_t> ids;
      const std::vector<int32_t> prompt = (*engine)->tokenizer().Encode(c.prompt, true, true);
      auto stats = (*engine)->Generate(prompt, g, [&](int32_t id, float) {
        ids.push_back(id);
        return true;
      });
      if (stats.ok()) (*out)[c.name] = ids;
    }
    return result;
}

const TokensByCase& Reference() {
  static const TokensByCase* ref = new TokensByCase(RunReference(kernels::DType::kF32));
  return *ref;
}

v1::GenerateRequest RequestFor(const Case& c) {
  return tessera::testing::TextRequest(c.prompt, c.max_tokens, c.sampling);
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::string& address) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::health::v1::HealthCheckResponse r;
  grpc::Status s = stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &r);
  return s.ok() ? r.status() : grpc::health::v1::HealthCheckResponse::UNKNOWN;
}

v1::WorkerStatus StatusOf(const std::string& address) {
  return tessera::testing::WorkerStatusOf(address);
}

class PipelineTest : public ::testing::TestWithParam<int> {};

TEST_P(PipelineTest, ReproducesTesseraRunBitwise) {
  const int stages = GetParam();
  ASSERT_EQ(Reference().size(), Cases().size()) << "the reference engine failed to run";
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = stages;
  o.coordinator_flags = {"--max-context=1024", "--max-seqs=4"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  EXPECT_EQ(Health(cluster.address()), grpc::health::v1::HealthCheckResponse::SERVING);

  auto stub = cluster.InferenceStub();
  for (const Case& c : Cases()) {
    Generation g = Generate(stub.get(), RequestFor(c));
    ASSERT_TRUE(g.status.ok()) << c.name << ": " << g.status.error_message();
    EXPECT_EQ(g.ids, Reference().at(c.name)) << c.name << " with " << stages << " stage(s)";
    EXPECT_FALSE(g.request_id.empty());
    EXPECT_EQ(g.completion_tokens, static_cast<int64_t>(g.ids.size()));
  }

  // Every worker holds only its range, and bytes crossed every link.
  grpc::ClientContext ctx;
  v1::ModelInfo info;
  ASSERT_TRUE(stub->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
  ASSERT_EQ(info.stages_size(), stages);
  std::ifstream f(DefaultModelPath(), std::ios::binary | std::ios::ate);
  const uint64_t file_bytes = static_cast<uint64_t>(f.tellg());
  int next_layer = 0;
  uint64_t weights = 0;
  for (int i = 0; i < stages; ++i) {
    const v1::WorkerStatus st = StatusOf(info.stages(i).worker_address());
    EXPECT_EQ(Health(info.stages(i).worker_address()),
              grpc::health::v1::HealthCheckResponse::SERVING);
    EXPECT_EQ(st.layer_begin(), next_layer);
    next_layer = st.layer_end();
    weights += st.weight_bytes();
    EXPECT_GT(st.bytes_received(), 0u) << "stage " << i << " received nothing";
    EXPECT_EQ(st.device(), "cpu") << "stage " << i;
    // S + 1 messages per step: results go from the last stage straight to
    // the coordinator; no stage relays any.
    EXPECT_EQ(st.results_relayed(), 0u) << "stage " << i;
    if (i + 1 == stages) {
      EXPECT_EQ(st.results_direct(), info.stats().steps()) << "every step answered directly";
    } else {
      EXPECT_EQ(st.results_direct(), 0u) << "stage " << i;
    }
    if (i + 1 < stages) {
      EXPECT_GT(st.bytes_sent(), 0u) << "stage " << i << " sent nothing";
    }
    // What the process mapped in: its range plus metadata pages and the
    // kernel's fault-around, well short of the whole file when split.
    EXPECT_LE(st.resident_file_bytes(), st.weight_bytes() + (12u << 20)) << "stage " << i;
    EXPECT_GE(st.resident_file_bytes(), st.weight_bytes() / 2) << "stage " << i;
    // Of the file bytes this stage does not need, at least half were never
    // mapped in (the rest is fault-around and page-cache readahead).
    if (stages > 1) {
      const double not_needed = file_bytes - static_cast<double>(st.weight_bytes());
      EXPECT_GT(not_needed, 10 << 20) << "stage " << i;
      EXPECT_LT(st.resident_file_bytes(), file_bytes - not_needed / 2) << "stage " << i;
    }
    std::printf("stage %d: layers [%d, %d), weights %.1f MiB, resident %.1f MiB of %.1f MiB, "
                "received %.1f KiB, sent %.1f KiB\n",
                i, st.layer_begin(), st.layer_end(), st.weight_bytes() / 1048576.0,
                st.resident_file_bytes() / 1048576.0, file_bytes / 1048576.0,
                st.bytes_received() / 1024.0, st.bytes_sent() / 1024.0);
  }
  EXPECT_EQ(next_layer, 30);
  // The tied embedding is held by both the first and the last stage.
  EXPECT_GE(weights, 90u << 20);
}

INSTANTIATE_TEST_SUITE_P(Stages, PipelineTest, ::testing::Values(1, 2, 3));

// One generated token as a client sees it with top_logprobs set.
struct TopLogprobsToken {
  int32_t id = 0;
  float logprob = 0;
  std::vector<v1::TokenLogprob> top;
};

// Reads a Generate stream, checking that every message carries one logprob
// and one top-N list per token id (the coordinator coalesces events into a
// message; alignment must survive that).
std::vector<TopLogprobsToken> GenerateWithTopLogprobs(v1::Inference::Stub* stub,
                                                      const v1::GenerateRequest& request,
                                                      grpc::Status* status) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
  auto reader = stub->Generate(&ctx, request);
  std::vector<TopLogprobsToken> out;
  v1::GenerateResponse r;
  while (reader->Read(&r)) {
    EXPECT_EQ(r.logprobs_size(), r.token_ids_size());
    EXPECT_EQ(r.top_logprobs_size(), r.token_ids_size());
    for (int i = 0; i < r.token_ids_size(); ++i) {
      TopLogprobsToken t;
      t.id = r.token_ids(i);
      if (i < r.logprobs_size()) t.logprob = r.logprobs(i);
      if (i < r.top_logprobs_size()) {
        t.top.assign(r.top_logprobs(i).candidates().begin(), r.top_logprobs(i).candidates().end());
      }
      out.push_back(std::move(t));
    }
  }
  *status = reader->Finish();
  return out;
}

// A row's log-softmax in float64 and its n best (id, logprob) by logit
// descending, id ascending.
std::vector<double> LogSoftmax64(const float* row, int64_t vocab) {
  double max = -INFINITY, sum = 0;
  for (int64_t i = 0; i < vocab; ++i) max = std::max<double>(max, row[i]);
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(row[i]) - max);
  std::vector<double> lp(vocab);
  for (int64_t i = 0; i < vocab; ++i) lp[i] = double(row[i]) - max - std::log(sum);
  return lp;
}

std::vector<int32_t> BestIds(const float* row, int64_t vocab, int n) {
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
    return row[a] > row[b] || (row[a] == row[b] && a < b);
  });
  ids.resize(n);
  return ids;
}

// top_logprobs over two stages: for every generated token, the 5 entries are
// the single-process engine's 5 most likely tokens at that prefix (its
// logits from PromptLogits, the log-softmax in float64), in order, within
// 1e-4; the greedy token is the first entry; a sampled token found in the
// list has exactly its `logprobs` value; each entry carries its text.
TEST(PipelineTopLogprobsTest, TwoStagesReportTheEnginesTopFiveAtEveryPosition) {
  constexpr int kTop = 5;
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 2;
  o.coordinator_flags = {"--max-context=1024", "--max-seqs=4"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();

  SamplingParams greedy;
  greedy.temperature = 0;
  SamplingParams hot;  // a penalty and a high temperature: samples outside the top 5 too
  hot.seed = 17;
  hot.temperature = 1.1f;
  hot.top_k = 0;
  hot.top_p = 1.0f;
  hot.min_p = 0.0f;
  hot.repetition_penalty = 1.3f;
  const std::vector<std::pair<std::string, SamplingParams>> requests = {
      {"The three primary colours are", greedy},
      {"Once upon a time, in a village by the sea,", hot},
  };
  std::vector<std::vector<TopLogprobsToken>> got(requests.size());
  std::vector<grpc::Status> statuses(requests.size());
  std::vector<std::thread> clients;  // at once, so that they share steps
  for (size_t i = 0; i < requests.size(); ++i) {
    clients.emplace_back([&, i] {
      v1::GenerateRequest r =
          tessera::testing::TextRequest(requests[i].first, 20, requests[i].second);
      r.set_ignore_eos(true);
      r.set_top_logprobs(kTop);  // implies logprobs
      got[i] = GenerateWithTopLogprobs(cluster.InferenceStub().get(), r, &statuses[i]);
    });
  }
  for (std::thread& t : clients) t.join();

  LocalEngineOptions lo;
  lo.model_path = DefaultModelPath();
  lo.max_context = 1024;
  auto engine = LocalEngine::Open(lo);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const int64_t vocab = (*engine)->config().vocab_size;
  int sampled_in_list = 0, sampled_outside = 0;
  for (size_t r = 0; r < requests.size(); ++r) {
    ASSERT_TRUE(statuses[r].ok()) << statuses[r].error_message();
    const std::vector<TopLogprobsToken>& toks = got[r];
    ASSERT_EQ(toks.size(), 20u) << "request " << r;
    std::vector<int32_t> ids = (*engine)->tokenizer().Encode(requests[r].first, true, true);
    const size_t prompt_len = ids.size();
    for (size_t k = 0; k + 1 < toks.size(); ++k) ids.push_back(toks[k].id);
    auto logits = (*engine)->PromptLogits(ids, 64);
    ASSERT_TRUE(logits.ok()) << logits.status();
    for (size_t k = 0; k < toks.size(); ++k) {
      const TopLogprobsToken& t = toks[k];
      const float* row = logits->data() + (prompt_len - 1 + k) * vocab;
      const std::vector<double> lp = LogSoftmax64(row, vocab);
      const std::vector<int32_t> best = BestIds(row, vocab, kTop);
      const std::string where = absl::StrCat("request ", r, " token ", k);
      ASSERT_EQ(t.top.size(), static_cast<size_t>(kTop)) << where;
      EXPECT_NEAR(t.logprob, lp[t.id], 1e-4) << where;
      for (int i = 0; i < kTop; ++i) {
        const v1::TokenLogprob& e = t.top[i];
        EXPECT_EQ(e.token_id(), best[i]) << where << " rank " << i;
        EXPECT_NEAR(e.logprob(), lp[best[i]], 1e-4) << where << " rank " << i;
        if (i > 0) {
          EXPECT_LE(e.logprob(), t.top[i - 1].logprob()) << where << " rank " << i;
        }
        EXPECT_EQ(e.text(), (*engine)->tokenizer().TokenToPiece(e.token_id(), true)) << where;
        if (e.token_id() == t.id) {
          EXPECT_EQ(e.logprob(), t.logprob) << where;
        }
      }
      const bool in_list = std::any_of(t.top.begin(), t.top.end(), [&](const auto& e) {
        return e.token_id() == t.id;
      });
      if (requests[r].second.temperature == 0) {
        EXPECT_EQ(t.top[0].token_id(), t.id) << where;
      } else {
        (in_list ? sampled_in_list : sampled_outside) += 1;
      }
    }
  }
  std::printf("hot request: %d sampled tokens in the top %d, %d outside\n", sampled_in_list, kTop,
              sampled_outside);
  EXPECT_GT(sampled_in_list, 0);  // so the equality of the two numbers was checked
}

// --kv-dtype f16 on the coordinator makes every worker keep its KV cache in
// half precision; the tokens must still be bitwise those of the
// single-process engine with a half cache.
TEST(PipelineKvHalfTest, TwoStagesReproduceRunWithHalfCache) {
  const TokensByCase half = RunReference(kernels::DType::kF16);
  ASSERT_EQ(half.size(), Cases().size()) << "the reference engine failed to run";
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 2;
  o.coordinator_flags = {"--max-context=1024", "--max-seqs=4", "--kv-dtype=f16"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  auto stub = cluster.InferenceStub();
  int differs_from_f32 = 0;
  for (const Case& c : Cases()) {
    Generation g = Generate(stub.get(), RequestFor(c));
    ASSERT_TRUE(g.status.ok()) << c.name << ": " << g.status.error_message();
    EXPECT_EQ(g.ids, half.at(c.name)) << c.name;
    differs_from_f32 += g.ids != Reference().at(c.name);
  }
  // Each worker built its pool in half precision: 2 bytes per K and V value.
  grpc::ClientContext ctx;
  v1::ModelInfo info;
  ASSERT_TRUE(cluster.InferenceStub()->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
  for (const v1::StageInfo& stage : info.stages()) {
    const v1::WorkerStatus st = StatusOf(stage.worker_address());
    const uint64_t layers = st.layer_end() - st.layer_begin();
    // SmolLM2: 3 KV heads of 64 dims.
    EXPECT_EQ(st.kv_dtype(), v1::DTYPE_F16);
    EXPECT_GT(st.kv_blocks(), 0);
    EXPECT_EQ(st.kv_bytes(), st.kv_blocks() * 16 * layers * 2 * 3 * 64 * 2) << stage.index();
  }
  std::printf("half KV: %d of %zu cases differ from the f32-cache tokens (informational)\n",
              differs_from_f32, Cases().size());
}

// Workers and coordinator given a Hugging Face directory (config.json +
// safetensors + tokenizer.json) instead of a GGUF: each worker reads only its
// layer range from the safetensors mappings. The tokens must be bitwise those
// of `tessera run` on the GGUF converted from the same weights (tests/golden/
// arch; arch_golden_test proves the two formats give identical logits).
TEST(PipelineHfTest, TwoStagesOverHuggingFaceDirectoryReproduceRunOnGguf) {
  for (const std::string name : {"glm4", "qwen2"}) {
    LocalEngineOptions lo;
    lo.model_path = tessera::testing::GoldenPath("arch/" + name + ".gguf");
    lo.max_context = 128;
    auto engine = LocalEngine::Open(lo);
    ASSERT_TRUE(engine.ok()) << engine.status();
    SamplingParams sampling;
    sampling.seed = 5;
    sampling.temperature = 0.7f;
    const std::string prompt = "etaoin shrdlu cmfw";
    std::vector<int32_t> want;
    GenerateOptions g;
    g.max_tokens = 24;
    g.sampling = sampling;
    const std::vector<int32_t> ids = (*engine)->tokenizer().Encode(prompt, true, true);
    ASSERT_TRUE((*engine)->Generate(ids, g, [&](int32_t id, float) {
                           want.push_back(id);
                           return true;
                         }).ok());

    ClusterOptions o;
    o.model = tessera::testing::GoldenPath("arch/" + name + "_hf");
    o.workers = 2;
    o.coordinator_flags = {"--max-context=128", "--max-seqs=2"};
    Cluster cluster(o);
    ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
    auto stub = cluster.InferenceStub();
    Generation got = Generate(stub.get(), tessera::testing::TextRequest(prompt, 24, sampling));
    ASSERT_TRUE(got.status.ok()) << name << ": " << got.status.error_message();
    EXPECT_EQ(got.ids, want) << name;
    grpc::ClientContext ctx;
    v1::ModelInfo info;
    ASSERT_TRUE(stub->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
    EXPECT_EQ(info.stages_size(), 2) << name;
  }
}

// The same pipeline with each worker in its own network namespace: its own
// address on a bridge, its link throttled by tbf both ways. Tokens must not
// change, and the activations must demonstrably cross the throttled links.
TEST(PipelineNetnsTest, WorkersInOwnNamespacesBehindRateLimitedLinks) {
  tessera::testing::NetnsOptions no;
  no.workers = 2;
  no.rate = "100mbit";
  absl::StatusOr<std::unique_ptr<tessera::testing::NetnsTopology>> net =
      tessera::testing::NetnsTopology::Create(no);
  // Missing tools fail (the test command installs them); missing privileges
  // to make namespaces are a reason to skip.
  ASSERT_NE(net.status().code(), absl::StatusCode::kNotFound) << net.status();
  if (!net.ok()) GTEST_SKIP() << "network-namespace variant: " << net.status();
  ASSERT_EQ(Reference().size(), Cases().size()) << "the reference engine failed to run";
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 2;
  o.coordinator_flags = {"--max-context=1024", "--max-seqs=4"};
  o.coordinator_host = (*net)->host_address();
  for (int i = 0; i < 2; ++i) {
    o.worker_prefix.push_back((*net)->worker_prefix(i));
    o.worker_host.push_back((*net)->worker_address(i));
  }
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output() << "\n"
                               << cluster.worker(0).output() << "\n"
                               << cluster.worker(1).output();
  EXPECT_THAT(cluster.StageAddress(0), HasSubstr((*net)->worker_address(0) + ":"));
  EXPECT_THAT(cluster.StageAddress(1), HasSubstr((*net)->worker_address(1) + ":"));

  auto stub = cluster.InferenceStub();
  for (const Case& c : Cases()) {
    Generation g = Generate(stub.get(), RequestFor(c));
    ASSERT_TRUE(g.status.ok()) << c.name << ": " << g.status.error_message();
    EXPECT_EQ(g.ids, Reference().at(c.name)) << c.name;
  }
  // Stage 0 sent at least one f32 hidden row per token it computed to stage
  // 1 through its throttled egress, and stage 1 received it through its
  // throttled hub port.
  const v1::WorkerStatus s0 = StatusOf(cluster.StageAddress(0));
  const uint64_t hidden_bytes = s0.tokens() * 576 * sizeof(float);
  EXPECT_GT(s0.tokens(), 100u);
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<uint64_t> out = (*net)->worker_egress_bytes(i);
    absl::StatusOr<uint64_t> in = (*net)->worker_ingress_bytes(i);
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_TRUE(in.ok()) << in.status();
    std::printf("worker %d link (tbf %s): sent %.1f KiB, received %.1f KiB\n", i,
                no.rate.c_str(), *out / 1024.0, *in / 1024.0);
    EXPECT_GE(i == 0 ? *out : *in, hidden_bytes) << "worker " << i;
  }
}

TEST(PipelineCliTest, GenerateMatchesRun) {
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 2;
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const std::vector<std::string> common = {"--prompt", "Why is the sky blue?", "--chat",
                                           "--max-tokens", "48", "--seed", "3"};
  std::vector<std::string> gen = {TESSERA_BINARY, "generate", "--coordinator", cluster.address()};
  std::vector<std::string> run = {TESSERA_BINARY, "run", "--model", DefaultModelPath(),
                                  "--threads", "1"};
  gen.insert(gen.end(), common.begin(), common.end());
  run.insert(run.end(), common.begin(), common.end());
  tessera::testing::ChildProcess g(gen), r(run);
  ASSERT_EQ(g.WaitExit(absl::Seconds(60)), 0) << g.output();
  ASSERT_EQ(r.WaitExit(absl::Seconds(60)), 0) << r.output();
  // Both print the text on stdout and one "[tessera]" line on stderr; the
  // text before it must be identical.
  const std::string go = g.output(), ro = r.output();
  const std::string gt = go.substr(0, go.find("[tessera]"));
  const std::string rt = ro.substr(0, ro.find("[tessera]"));
  EXPECT_FALSE(gt.empty());
  EXPECT_EQ(gt, rt);
}

}  // namespace
}  // namespace tessera
