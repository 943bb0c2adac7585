#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::tessera::testing::IsOk;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

SamplingParams Plain(float temperature) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 1234;
  return p;
}

// Softmax in float64: the reference distribution.
std::vector<double> Softmax64(const std::vector<float>& logits, double temperature) {
  double max = -INFINITY, sum = 0;
  for (float l : logits) max = std::max(max, l / temperature);
  std::vector<double> p(logits.size());
  for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp(logits[i] / temperature - max);
  for (double& x : p) x /= sum;
  return p;
}

std::vector<double> Frequencies(const std::vector<float>& logits, const SamplingParams& p,
                                int draws) {
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) f[Sample(logits, p, {}, i).id] += 1.0 / draws;
  return f;
}

TEST(SamplerTest, GreedyTakesArgmaxAndLowestIdOnTies) {
  EXPECT_EQ(Sample({0.1f, 2.0f, -1.0f, 2.0f}, Plain(0), {}, 0).id, 1);
  EXPECT_EQ(Sample({-5.0f, -4.0f, -4.5f}, Plain(0), {}, 7).id, 1);
}

TEST(SamplerTest, LogprobIsLogSoftmaxOfRawLogits) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f};
  const std::vector<double> p = Softmax64(logits, 1.0);
  const SampledToken t = Sample(logits, Plain(0), {}, 0);
  EXPECT_NEAR(t.logprob, std::log(p[1]), 1e-5);
  // Without a logprob request the token is the same and the logprob is NaN.
  const SampledToken cheap = Sample(logits, Plain(0), {}, 0, /*want_logprob=*/false);
  EXPECT_EQ(cheap.id, t.id);
  EXPECT_TRUE(std::isnan(cheap.logprob));
}

TEST(SamplerTest, SameSeedAndCounterGiveSameTokenDifferentCountersVary) {
  std::vector<float> logits(64);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(float(i));
  const SamplingParams p = Plain(1.0f);
  std::vector<int32_t> a, b;
  for (int i = 0; i < 50; ++i) a.push_back(Sample(logits, p, {}, i).id);
  for (int i = 0; i < 50; ++i) b.push_back(Sample(logits, p, {}, i).id);
  EXPECT_EQ(a, b);
  std::sort(a.begin(), a.end());
  EXPECT_GT(std::unique(a.begin(), a.end()) - a.begin(), 10);
  SamplingParams other = p;
  other.seed = 99;
  int same = 0;
  for (int i = 0; i < 50; ++i) same += Sample(logits, p, {}, i).id == Sample(logits, other, {}, i).id;
  EXPECT_LT(same, 25);
}

TEST(SamplerTest, CounterUniformIsInUnitIntervalAndUnbiased) {
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = CounterUniform(42, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.005);
}

TEST(SamplerTest, TemperatureSamplingMatchesFloat64Softmax) {
  const std::vector<float> logits = {1.5f, 0.2f, -0.3f, 1.0f, 0.0f};
  const int draws = 200000;
  const std::vector<double> want = Softmax64(logits, 0.7);
  const std::vector<double> got = Frequencies(logits, Plain(0.7f), draws);
  for (size_t i = 0; i < want.size(); ++i) {
    const double sigma = std::sqrt(want[i] * (1 - want[i]) / draws);
    EXPECT_NEAR(got[i], want[i], 5 * sigma) << "token " << i;
  }
}

TEST(SamplerTest, TopKKeepsOnlyKMostLikely) {
  const std::vector<float> logits = {0.0f, 3.0f, 1.0f, 2.5f, -1.0f};
  SamplingParams p = Plain(1.0f);
  p.top_k = 2;
  const std::vector<double> got = Frequencies(logits, p, 50000);
  EXPECT_EQ(got[0] + got[2] + got[4], 0.0);
  const double want1 = std::exp(3.0) / (std::exp(3.0) + std::exp(2.5));
  EXPECT_NEAR(got[1], want1, 0.01);
}

TEST(SamplerTest, TopPKeepsSmallestNucleus) {
  // Probabilities 0.5, 0.3, 0.15, 0.05.
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                                     std::log(0.05f)};
  SamplingParams p = Plain(1.0f);
  p.top_p = 0.75f;
  const std::vector<double> got = Frequencies(logits, p, 50000);
  EXPECT_EQ(got[2] + got[3], 0.0);
  EXPECT_NEAR(got[0], 0.5 / 0.8, 0.01);
}

TEST(SamplerTest, MinPDropsUnlikelyTokens) {
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                                     std::log(0.05f)};
  SamplingParams p = Plain(1.0f);
  p.min_p = 0.25f;  // floor 0.125: keeps 0.5, 0.3, 0.15
  const std::vector<double> got = Frequencies(logits, p, 50000);
  EXPECT_EQ(got[3], 0.0);
  EXPECT_GT(got[2], 0.1);
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingParams p = Plain(0);
  p.repetition_penalty = 2.0f;
  // Token 0 (3.0 -> 1.5) loses to token 1 (2.0) once penalised.
  EXPECT_EQ(Sample({3.0f, 2.0f}, p, {}, 0).id, 0);
  EXPECT_EQ(Sample({3.0f, 2.0f}, p, {0}, 0).id, 1);
  // Negative logits get more negative: token 0 (-1 -> -2) loses to token 1 (-1.5).
  EXPECT_EQ(Sample({-1.0f, -1.5f}, p, {0, 0}, 0).id, 1);
  // Only the last repeat_last_n tokens count.
  p.repeat_last_n = 1;
  EXPECT_EQ(Sample({3.0f, 2.0f}, p, {0, 1}, 0).id, 0);
}

// The reference top-N: every token's log-softmax in float64, fully sorted by
// (logit descending, id ascending).
std::vector<std::pair<int32_t, double>> TopN64(const std::vector<float>& logits, int n) {
  double max = -INFINITY, sum = 0;
  for (float l : logits) max = std::max<double>(max, l);
  for (float l : logits) sum += std::exp(double(l) - max);
  const double log_z = max + std::log(sum);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::vector<std::pair<int32_t, double>> top;
  for (int i = 0; i < n && i < static_cast<int>(order.size()); ++i) {
    top.emplace_back(order[i], double(logits[order[i]]) - log_z);
  }
  return top;
}

void ExpectMatchesReference(const std::vector<float>& logits, int n, const char* label) {
  const std::vector<TokenLogprob> got = TopLogprobs(logits, n);
  const auto want = TopN64(logits, n);
  ASSERT_EQ(got.size(), want.size()) << label << " n=" << n;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].first) << label << " n=" << n << " rank " << i;
    EXPECT_NEAR(got[i].logprob, want[i].second, 1e-5 * std::max(1.0, std::fabs(want[i].second)))
        << label << " n=" << n << " rank " << i;
  }
}

TEST(SamplerTest, TopLogprobsMatchFloat64ReferenceOnRandomLogits) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int vocab : {1, 2, 37, 1000, 49152}) {
    std::vector<float> logits(vocab);
    for (float& l : logits) l = normal(rng);
    for (int n : {1, 2, 5, 20}) ExpectMatchesReference(logits, n, "random");
  }
}

TEST(SamplerTest, TopLogprobsBreakTiesByLowestId) {
  // Only three distinct values over 60 tokens: the top 20 are the tokens at
  // 2.0 (ids 2, 5, 8, ...) and then the lowest ids at 1.0.
  std::vector<float> logits(60);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(i % 3);
  const std::vector<TokenLogprob> top = TopLogprobs(logits, 20);
  ASSERT_EQ(top.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(top[i].id, 3 * i + 2) << "rank " << i;
  ExpectMatchesReference(logits, 20, "ties");
  // One more than the tokens at 2.0: the next is id 1, the lowest at 1.0.
  const std::vector<TokenLogprob> more = TopLogprobs(logits, 21);
  ASSERT_EQ(more.size(), 21u);
  EXPECT_EQ(more[20].id, 1);
  // All equal: the lowest ids, each log(1/60).
  const std::vector<TokenLogprob> flat = TopLogprobs(std::vector<float>(60, -3.5f), 5);
  ASSERT_EQ(flat.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(flat[i].id, i);
    EXPECT_NEAR(flat[i].logprob, -std::log(60.0), 1e-6);
  }
}

TEST(SamplerTest, TopLogprobsSurviveARisingMaximum) {
  // Ascending logits move the running maximum at every token, so the
  // one-pass normalizer rescales its sum each time; large offsets would
  // overflow a naive exp.
  std::vector<float> logits(5000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = 500.0f + 0.01f * float(i);
  ExpectMatchesReference(logits, 20, "ascending");
  std::reverse(logits.begin(), logits.end());
  ExpectMatchesReference(logits, 20, "descending");
}

TEST(SamplerTest, TopLogprobsCountEdgeCases) {
  const std::vector<float> logits = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, -0.5f, 3.0f};
  EXPECT_TRUE(TopLogprobs(logits, 0).empty());
  EXPECT_TRUE(TopLogprobs(logits, -4).empty());
  // More than the vocabulary: every token, once, and their probabilities sum to 1.
  const std::vector<TokenLogprob> all = TopLogprobs(logits, 20);
  ASSERT_EQ(all.size(), logits.size());
  const std::vector<int32_t> want_ids = {6, 2, 4, 0, 3, 5, 1};
  double total = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].id, want_ids[i]) << "rank " << i;
    total += std::exp(double(all[i].logprob));
  }
  EXPECT_NEAR(total, 1.0, 1e-6);
  ExpectMatchesReference(logits, 20, "small vocab");
  ExpectMatchesReference(logits, 1, "small vocab");
}

TEST(SamplerTest, SampleReportsTopLogprobsOfTheUnmodifiedDistribution) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(3000);
  for (float& l : logits) l = normal(rng);
  const std::vector<TokenLogprob> want = TopLogprobs(logits, 5);
  // Greedy: the token is the first entry, with the same logprob bit for bit.
  const SampledToken g = Sample(logits, Plain(0), {}, 0, /*want_logprob=*/true, 5);
  ASSERT_EQ(g.top_logprobs.size(), 5u);
  EXPECT_EQ(g.id, g.top_logprobs[0].id);
  EXPECT_EQ(g.logprob, g.top_logprobs[0].logprob);
  // Temperature, top-k and a repetition penalty on the leader change the
  // draw but not the reported distribution.
  SamplingParams p = Plain(1.3f);
  p.top_k = 50;
  p.repetition_penalty = 1.5f;
  const std::vector<int32_t> recent = {want[0].id, want[1].id};
  int in_list = 0;
  for (uint64_t counter = 0; counter < 200; ++counter) {
    const SampledToken t = Sample(logits, p, recent, counter, /*want_logprob=*/false, 5);
    EXPECT_EQ(t.id, Sample(logits, p, recent, counter, /*want_logprob=*/false).id);
    ASSERT_EQ(t.top_logprobs.size(), 5u);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(t.top_logprobs[i].id, want[i].id);
      EXPECT_EQ(t.top_logprobs[i].logprob, want[i].logprob);
    }
    EXPECT_NEAR(t.logprob, std::log(Softmax64(logits, 1.0)[t.id]), 1e-5);
    for (const TokenLogprob& e : t.top_logprobs) {
      if (e.id == t.id) {
        EXPECT_EQ(e.logprob, t.logprob);
        ++in_list;
      }
    }
  }
  EXPECT_GT(in_list, 0);
  // Not asked for: none.
  EXPECT_TRUE(Sample(logits, Plain(0), {}, 0).top_logprobs.empty());
}

TEST(SamplerTest, RejectsOutOfRangeParameters) {
  SamplingParams p;
  p.temperature = -1;
  EXPECT_THAT(ValidateSamplingParams(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature")));
  p = SamplingParams();
  p.top_p = 0;
  EXPECT_THAT(ValidateSamplingParams(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_p")));
  p = SamplingParams();
  p.top_k = -3;
  EXPECT_THAT(ValidateSamplingParams(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_k")));
  p = SamplingParams();
  p.min_p = 1.5f;
  EXPECT_THAT(ValidateSamplingParams(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("min_p")));
  p = SamplingParams();
  p.repetition_penalty = 0;
  EXPECT_THAT(ValidateSamplingParams(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("repetition_penalty")));
  p = SamplingParams();
  p.temperature = NAN;
  EXPECT_THAT(ValidateSamplingParams(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature")));
  EXPECT_THAT(ValidateSamplingParams(SamplingParams()), IsOk());
}

}  // namespace
}  // namespace tessera
