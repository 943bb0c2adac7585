#include "engine/sampler.h"

#include <cmath>
#include <vector>

#include "common/testing/status_matchers.h"
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
