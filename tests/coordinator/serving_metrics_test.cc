// The coordinator's event metrics (coordinator/serving_metrics.h): what a
// request's end counts as, the step-time window `tessera status` shows
// (against a sort done here), and the scheduler's latency and prefix-cache
// counts for requests whose lengths are known, run on the fake pipeline.
#include "coordinator/serving_metrics.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/scheduler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/fake_pipeline.h"
#include "tests/coordinator/stream_outcome.h"
#include "tests/coordinator/test_vocab.h"

namespace tessera::testing {
namespace {

// family name -> (label values joined) -> value (counter, gauge, or a
// histogram's sample count).
std::map<std::string, std::map<std::string, double>> Values(const ServingMetrics& m) {
  std::map<std::string, std::map<std::string, double>> out;
  for (const prometheus::MetricFamily& f : m.registry()->Collect()) {
    for (const prometheus::ClientMetric& c : f.metric) {
      std::string key;
      for (const auto& l : c.label) {
        if (l.name != "model_name") key += l.value + ",";
      }
      out[f.name][key] = f.type == prometheus::MetricType::Counter     ? c.counter.value
                         : f.type == prometheus::MetricType::Histogram ? c.histogram.sample_count
                                                                       : c.gauge.value;
    }
  }
  return out;
}

TEST(ServingMetricsTest, AnEndCountsByItsReasonAndTokens) {
  ServingMetrics m("model.gguf");
  m.Finished({absl::OkStatus(), "stop", 10, 3}, absl::Milliseconds(20));
  m.Finished({absl::OkStatus(), "length", 5, 8}, absl::Milliseconds(30));
  m.Finished({absl::CancelledError("left"), "", 7, 2}, absl::Milliseconds(5));
  m.Finished({absl::DataLossError("bad stage"), "", 4, 0}, absl::Milliseconds(5));
  m.Rejected(RejectReason::kRateLimited);
  m.Rejected(RejectReason::kRateLimited);
  m.Rejected(RejectReason::kQueueFull);
  auto v = Values(m);
  EXPECT_EQ(v["tessera_requests_finished_total"]["stop,"], 1);
  EXPECT_EQ(v["tessera_requests_finished_total"]["length,"], 1);
  EXPECT_EQ(v["tessera_requests_finished_total"]["abort,"], 1);
  EXPECT_EQ(v["tessera_requests_finished_total"]["error,"], 1);
  EXPECT_EQ(v["tessera_prompt_tokens_total"][""], 26);
  EXPECT_EQ(v["tessera_generation_tokens_total"][""], 13);
  EXPECT_EQ(v["tessera_e2e_request_latency_seconds"][""], 4);
  EXPECT_EQ(v["tessera_requests_rejected_total"]["rate_limited,"], 2);
  EXPECT_EQ(v["tessera_requests_rejected_total"]["queue_full,"], 1);
  EXPECT_EQ(v["tessera_requests_rejected_total"]["unauthenticated,"], 0);
  EXPECT_EQ(m.requests_finished(), 4u);
  EXPECT_EQ(m.generated_tokens(), 13u);
}

// 300 steps of 1..300 ms: the window keeps the last 256 (45..300 ms); the
// nearest-rank p50 is the 128th of them, p99 the 254th.
TEST(ServingMetricsTest, StepWindowKeepsTheLastStepsAndRanksThem) {
  ServingMetrics m("model.gguf");
  EXPECT_EQ(m.StageWindow(0, 1).steps, 0u);
  for (int i = 1; i <= 300; ++i) m.StageStep(0, 1, i * 1000, 100);
  const ServingMetrics::StepWindow w = m.StageWindow(0, 1);
  EXPECT_EQ(w.steps, ServingMetrics::kWindow);
  EXPECT_DOUBLE_EQ(w.p50_seconds, 0.172);
  EXPECT_DOUBLE_EQ(w.p99_seconds, 0.298);
  EXPECT_EQ(m.StageWindow(1, 1).steps, 0u);  // another replica
  auto v = Values(m);
  EXPECT_EQ(v["tessera_stage_step_seconds"]["0,1,"], 300);
  EXPECT_EQ(v["tessera_stage_link_bytes_total"]["0,1,"], 30000);
  EXPECT_EQ(v["tessera_stage_link_messages_total"]["0,1,"], 300);
}

// Three requests with the same 40-token prompt, one after another, each
// generating exactly 5 tokens: 3 first tokens, 12 later ones, 3 admissions;
// each looks up the prompt's 2 full blocks before its last token (block
// size 16: 32 tokens), and the second and third find the first's.
TEST(ServingMetricsTest, TheSchedulerTimesTokensAndCountsPrefixHits) {
  constexpr int kVocab = 300;
  std::unique_ptr<Tokenizer> tokenizer = TestTokenizer(kVocab);
  ASSERT_NE(tokenizer, nullptr);
  ModelConfig config;
  config.vocab_size = kVocab;
  FakePipelineOptions fake;
  fake.vocab = kVocab;
  fake.block_size = 16;
  ServingMetrics metrics("model.gguf");
  SchedulerOptions options;
  options.block_size = fake.block_size;
  options.max_context = 512;
  options.metrics = &metrics;
  Scheduler scheduler(tokenizer.get(), config, options);
  scheduler.SetPipeline(std::make_unique<FakePipeline>(fake), fake.kv_blocks, 1, "");
  std::vector<int32_t> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back((i * 7 + 3) % (kVocab - 1));
  for (int r = 0; r < 3; ++r) {
    RequestSpec spec;
    spec.request_id = "r" + std::to_string(r);
    spec.prompt = prompt;
    spec.max_tokens = 5;
    spec.ignore_eos = true;
    absl::StatusOr<std::shared_ptr<RequestStream>> stream = scheduler.Submit(spec);
    ASSERT_TRUE(stream.ok()) << stream.status();
    const Outcome o = Drain(**stream);
    ASSERT_TRUE(o.ended);
    ASSERT_EQ(o.ids.size(), 5u);
  }
  auto v = Values(metrics);
  EXPECT_EQ(v["tessera_time_to_first_token_seconds"][""], 3);
  EXPECT_EQ(v["tessera_inter_token_latency_seconds"][""], 12);
  EXPECT_EQ(v["tessera_request_queue_time_seconds"][""], 3);
  EXPECT_EQ(v["tessera_prefix_cache_queries_total"][""], 96);
  EXPECT_EQ(v["tessera_prefix_cache_hits_total"][""], 64);
  EXPECT_EQ(v["tessera_preemptions_total"][""], 0);
}

}  // namespace
}  // namespace tessera::testing
