// Tessera against llama.cpp on SmolLM2-135M, through golden files written by
// scripts/golden/gen_model_golden.py (llama-cpp-python; settings recorded in
// each file's header). Two weight sets, two kinds of check:
//
//  * F32: the default model's weights dequantized to F32. Neither side
//    quantizes activations, so this measures the forward pass itself:
//    top-1 equal wherever llama.cpp's top-1/top-2 margin exceeds 0.02, the
//    largest |logit difference| over llama.cpp's top-10 ids <= 0.05, and
//    64-token greedy continuations identical for >= 18 of 20 prompts with
//    divergences only at low-margin positions.
//  * Q4_1 (the default model as shipped): both sides quantize activations to
//    int8, and on this model any change of summation order flips roundings
//    that grow to ~0.2 logits. There the check is against the model's exact
//    logits (float64, scripts/golden/gen_float64_golden.py): Tessera's
//    distance from them must be about llama.cpp's. The figures are printed
//    and recorded in docs/numerics.md.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "testing/status_matchers.h"
#include "engine/local_engine.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/dequantized_copy.h"
#include "tests/engine/test_paths.h"

namespace tessera::testing {
namespace {

using nlohmann::json;

constexpr double kTopOneMargin = 0.02;
constexpr double kLogitTarget = 0.05;
// A greedy divergence is acceptable only where the reference itself was close
// to a tie.
constexpr double kDivergenceMargin = 0.1;
// Q4_1: how far beyond llama.cpp's own noise floor we may be (the f16 KV
// cache test, which measures a storage change, not an error).
constexpr double kNoiseFloorSlack = 1.25;
// Q4_1 against the exact logits: how much worse than llama.cpp's error
// Tessera's may be, in mean and 99th percentile. Equally valid summation
// orders move these statistics by this much: Tessera's three ISA paths
// (2026-12-04, same prompts) give mean 0.168 / 0.176 / 0.169 and p99
// 0.681 / 0.815 / 0.712 (AVX-512 / AVX2 / scalar), llama.cpp 0.170 and
// 0.707. The maximum gets no slack: every path stays under llama.cpp's.
constexpr double kExactMeanSlack = 1.1;
constexpr double kExactP99Slack = 1.25;

struct Fixture {
  json golden;
  std::unique_ptr<LocalEngine> engine;
};

std::unique_ptr<Fixture> Load(const std::string& golden, const std::string& model,
                              kernels::DType kv_dtype = kernels::DType::kF32) {
  auto f = std::make_unique<Fixture>();
  std::ifstream in(GoldenPath(golden));
  if (!in) {
    ADD_FAILURE() << "missing " << GoldenPath(golden);
    return nullptr;
  }
  f->golden = json::parse(in);
  LocalEngineOptions o;
  o.model_path = model;
  o.threads = 2;
  o.max_context = 512;
  o.kv_dtype = kv_dtype;
  auto engine = LocalEngine::Open(o);
  if (!engine.ok()) {
    ADD_FAILURE() << engine.status();
    return nullptr;
  }
  f->engine = std::move(*engine);
  return f;
}

class FidelityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    q41_ = Load("smollm2_logits.json", DefaultModelPath()).release();
    q41_half_kv_ =
        Load("smollm2_logits.json", DefaultModelPath(), kernels::DType::kF16).release();
    const std::string f32_path = ::testing::TempDir() + "/smollm2-f32.gguf";
    absl::Status s = WriteDequantizedCopy(DefaultModelPath(), f32_path);
    if (!s.ok()) {
      ADD_FAILURE() << s;
      return;
    }
    f32_ = Load("smollm2_f32_logits.json", f32_path).release();
  }
  static void TearDownTestSuite() {
    delete q41_;
    delete q41_half_kv_;
    delete f32_;
  }
  static Fixture* q41_;
  static Fixture* q41_half_kv_;  // --kv-dtype f16
  static Fixture* f32_;
};
Fixture* FidelityTest::q41_ = nullptr;
Fixture* FidelityTest::q41_half_kv_ = nullptr;
Fixture* FidelityTest::f32_ = nullptr;

struct TeacherForced {
  double max_delta = 0, mean_delta = 0;
  int64_t positions = 0, decisive = 0, top1_mismatch = 0;
  std::vector<std::string> mismatches;
  // With `exact` given: |ours - float64| and |llama.cpp - float64| at every
  // compared (position, id).
  std::vector<double> ours_vs_exact, llama_vs_exact;
};

// Mean, 99th percentile and maximum of `v`.
struct Spread {
  double mean = 0, p99 = 0, max = 0;
};
Spread SpreadOf(std::vector<double> v) {
  Spread s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  s.p99 = v[static_cast<size_t>(0.99 * static_cast<double>(v.size() - 1))];
  s.max = v.back();
  return s;
}

// `exact`: tests/golden/smollm2_float64_logits.json, or null.
TeacherForced CompareTeacherForced(Fixture& f, const json* exact = nullptr) {
  TeacherForced r;
  const int64_t vocab = f.engine->config().vocab_size;
  double sum = 0;
  int64_t compared = 0;
  for (size_t ci = 0; ci < f.golden["cases"].size(); ++ci) {
    const json& c = f.golden["cases"][ci];
    const auto tokens = c["tokens"].get<std::vector<int32_t>>();
    EXPECT_GE(tokens.size(), 64u);
    auto logits = f.engine->PromptLogits(tokens, 64);
    EXPECT_TRUE(logits.ok()) << logits.status();
    if (!logits.ok()) return r;
    const json& tf = c["teacher_forced"];
    EXPECT_EQ(tf.size(), tokens.size());
    for (size_t p = 0; p < tokens.size() && p < tf.size(); ++p) {
      const float* row = &(*logits)[p * vocab];
      const auto ids = tf[p]["ids"].get<std::vector<int32_t>>();
      const auto ref = tf[p]["logits"].get<std::vector<double>>();
      for (size_t i = 0; i < ids.size(); ++i) {
        const double d = std::fabs(row[ids[i]] - ref[i]);
        r.max_delta = std::max(r.max_delta, d);
        sum += d;
        ++compared;
        if (exact != nullptr) {
          const double x = (*exact)["cases"][ci]["positions"][p][i].get<double>();
          r.ours_vs_exact.push_back(std::fabs(row[ids[i]] - x));
          r.llama_vs_exact.push_back(std::fabs(ref[i] - x));
        }
      }
      int32_t ours = 0;
      for (int64_t v = 1; v < vocab; ++v) {
        if (row[v] > row[ours]) ours = static_cast<int32_t>(v);
      }
      ++r.positions;
      if (tf[p]["margin"].get<double>() > kTopOneMargin) {
        ++r.decisive;
        if (ours != ids[0]) {
          ++r.top1_mismatch;
          r.mismatches.push_back(absl::StrFormat(
              "position %d of '%s': ours %d, llama.cpp %d (margin %.4f)", p,
              c["text"].get<std::string>().substr(0, 30), ours, ids[0],
              tf[p]["margin"].get<double>()));
        }
      }
    }
  }
  r.mean_delta = compared ? sum / compared : 0;
  return r;
}

struct Greedy {
  int identical = 0, cases = 0;
  std::vector<double> divergence_margins;
};

Greedy CompareGreedy(Fixture& f, const char* label) {
  Greedy r;
  for (const json& c : f.golden["cases"]) {
    const auto tokens = c["tokens"].get<std::vector<int32_t>>();
    const auto want = c["greedy"].get<std::vector<int32_t>>();
    const auto margins = c["greedy_margins"].get<std::vector<double>>();
    GenerateOptions go;
    go.max_tokens = static_cast<int32_t>(want.size());
    go.sampling.temperature = 0.0f;
    go.stop_at_end_of_generation = false;
    std::vector<int32_t> got;
    auto stats = f.engine->Generate(tokens, go, [&](int32_t id, float) {
      got.push_back(id);
      return true;
    });
    EXPECT_TRUE(stats.ok()) << stats.status();
    ++r.cases;
    if (got == want) {
      ++r.identical;
      continue;
    }
    size_t first = 0;
    while (first < got.size() && first < want.size() && got[first] == want[first]) ++first;
    const double margin = first < margins.size() ? margins[first] : 0.0;
    r.divergence_margins.push_back(margin);
    std::printf("[fidelity %s] greedy divergence at token %zu of '%s': ours %d, llama.cpp %d, "
                "llama.cpp margin %.4f\n",
                label, first, c["text"].get<std::string>().substr(0, 30).c_str(),
                first < got.size() ? got[first] : -1, first < want.size() ? want[first] : -1,
                margin);
  }
  std::printf("[fidelity %s] greedy 64-token continuations identical: %d of %d\n", label,
              r.identical, r.cases);
  return r;
}

TEST_F(FidelityTest, GoldenFilesMatchThisModel) {
  ASSERT_NE(q41_, nullptr);
  ASSERT_NE(f32_, nullptr);
  for (Fixture* f : {q41_, f32_}) {
    EXPECT_GE(f->golden["cases"].size(), 20u);
    std::printf("[fidelity] reference: llama-cpp-python %s, threads %d, kv %s\n",
                f->golden["llama_cpp_python_version"].get<std::string>().c_str(),
                f->golden["n_threads"].get<int>(),
                f->golden["kv_cache_type"].get<std::string>().c_str());
  }
}

TEST_F(FidelityTest, PromptTokenizationMatchesLlamaCpp) {
  ASSERT_NE(q41_, nullptr);
  for (const json& c : q41_->golden["cases"]) {
    const std::vector<int32_t> ours =
        q41_->engine->tokenizer().Encode(c["text"].get<std::string>(), true, true);
    EXPECT_EQ(ours, c["tokens"].get<std::vector<int32_t>>()) << c["text"];
  }
}

TEST_F(FidelityTest, F32TeacherForcedLogitsMatchLlamaCpp) {
  ASSERT_NE(f32_, nullptr);
  const TeacherForced r = CompareTeacherForced(*f32_);
  std::printf("[fidelity f32] teacher-forced: %lld positions (%lld with margin > %.2f), top-1 "
              "mismatches %lld; |dlogit| over llama.cpp's top-10: max %.6f, mean %.6f "
              "(target <= %.2f)\n",
              (long long)r.positions, (long long)r.decisive, kTopOneMargin,
              (long long)r.top1_mismatch, r.max_delta, r.mean_delta, kLogitTarget);
  for (const std::string& m : r.mismatches) ADD_FAILURE() << "top-1 differs at " << m;
  EXPECT_GE(r.positions, 20 * 64);
  EXPECT_LE(r.max_delta, kLogitTarget);
}

TEST_F(FidelityTest, F32GreedyContinuationsMatchLlamaCpp) {
  ASSERT_NE(f32_, nullptr);
  const Greedy r = CompareGreedy(*f32_, "f32");
  EXPECT_GE(r.identical, 18);
  for (double m : r.divergence_margins) EXPECT_LT(m, kDivergenceMargin);
}

// Q4_1 (both engines quantize activations to int8) against the model's
// exact logits: float64 on the dequantized weights with nothing rounded
// (tests/golden/smollm2_float64_logits.json). Tessera must be about as
// close to them as llama.cpp is (kExact*Slack), and its worst value no
// worse than llama.cpp's, over every (position, id) llama.cpp ranked
// top-10. llama.cpp's own distance is the yardstick: about 0.17 mean and
// 5.4 max, the size of int8 rounding flips amplified through 30 layers.
//
// Why not bound |Tessera - llama.cpp| by llama.cpp's decode-vs-prefill
// deviation: the two engines are independent approximations, each off from
// the exact value by that much, so their difference is about as large as
// either error (0.16 mean), while llama.cpp's two paths share most of their
// rounding (0.05 mean); Tessera's own AVX2 and AVX-512 paths differ by 0.16
// too (docs/numerics.md). A 6-logit error would fail this test's maximum.
TEST_F(FidelityTest, Q41IsNoFurtherFromExactLogitsThanLlamaCpp) {
  ASSERT_NE(q41_, nullptr);
  std::ifstream in(GoldenPath("smollm2_float64_logits.json"));
  const json exact = json::parse(in, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(exact.is_object()) << "tests/golden/smollm2_float64_logits.json is missing";
  ASSERT_EQ(exact["model_sha256"], q41_->golden["model_sha256"]);
  ASSERT_EQ(exact["cases"].size(), q41_->golden["cases"].size());
  const TeacherForced r = CompareTeacherForced(*q41_, &exact);
  ASSERT_EQ(r.ours_vs_exact.size(), exact["llama_cpp_vs_float64"]["values"].get<size_t>());
  const Spread ours = SpreadOf(r.ours_vs_exact);
  const Spread llama = SpreadOf(r.llama_vs_exact);
  const double agreement = r.decisive ? 1.0 - double(r.top1_mismatch) / r.decisive : 0;
  std::printf("[fidelity q4_1] |logit - exact| over llama.cpp's top-10 ids, %zu values: "
              "Tessera mean %.4f p99 %.4f max %.4f; llama.cpp mean %.4f p99 %.4f max %.4f\n",
              r.ours_vs_exact.size(), ours.mean, ours.p99, ours.max, llama.mean, llama.p99,
              llama.max);
  std::printf("[fidelity q4_1] Tessera vs llama.cpp: %lld positions, top-1 agreement %.4f where "
              "llama.cpp's margin > %.2f, |dlogit| max %.4f mean %.4f\n",
              (long long)r.positions, agreement, kTopOneMargin, r.max_delta, r.mean_delta);
  EXPECT_NEAR(llama.mean, exact["llama_cpp_vs_float64"]["mean_abs_dlogit"].get<double>(), 1e-9);
  EXPECT_LE(ours.mean, kExactMeanSlack * llama.mean);
  EXPECT_LE(ours.p99, kExactP99Slack * llama.p99);
  EXPECT_LE(ours.max, llama.max);
  // Reported, not asserted: on Q4_1 greedy paths part at the first near-tie.
  CompareGreedy(*q41_, "q4_1");
}

// A half KV cache moves our logits away from llama.cpp's f32-cache logits by
// no more than a half cache moves llama.cpp's own (the golden file's
// f16_kv_vs_f32_kv floor): half storage is rounding, not a defect.
TEST_F(FidelityTest, Q41HalfKvCacheStaysWithinLlamaCppsOwnHalfCacheShift) {
  ASSERT_NE(q41_half_kv_, nullptr);
  const json& floor = q41_half_kv_->golden["noise_floor"]["f16_kv_vs_f32_kv"];
  const TeacherForced r = CompareTeacherForced(*q41_half_kv_);
  const double agreement = r.decisive ? 1.0 - double(r.top1_mismatch) / r.decisive : 0;
  std::printf("[fidelity q4_1, f16 KV] teacher-forced vs llama.cpp (f32 KV): top-1 agreement "
              "%.4f, |dlogit| max %.4f mean %.4f; llama.cpp f16 vs f32 KV: agreement %.4f, "
              "max %.4f mean %.4f\n",
              agreement, r.max_delta, r.mean_delta,
              floor["top1_agreement_margin_gt_0.02"].get<double>(),
              floor["max_abs_dlogit"].get<double>(), floor["mean_abs_dlogit"].get<double>());
  EXPECT_LE(r.mean_delta, kNoiseFloorSlack * floor["mean_abs_dlogit"].get<double>());
  EXPECT_LE(r.max_delta, kNoiseFloorSlack * floor["max_abs_dlogit"].get<double>());
  EXPECT_GE(agreement, floor["top1_agreement_margin_gt_0.02"].get<double>() - 0.01);
}

}  // namespace
}  // namespace tessera::testing
