// The one admission path, against a fake pipeline: ids, prompts in each
// form, the sampling default order, readiness, and errors that name the
// request and the field the same way for both front ends.
#include "coordinator/admission.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/fake_pipeline.h"
#include "tests/coordinator/test_vocab.h"

namespace tessera::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class AdmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = TestTokenizer();
    ASSERT_NE(tokenizer_, nullptr);
    config_.vocab_size = tokenizer_->vocab_size();
    SchedulerOptions so;
    so.max_context = 64;
    router_ = std::make_unique<Router>(tokenizer_.get(), config_, so);
    FakePipelineOptions fo;
    fo.manual = true;  // nothing runs: these tests are about admission
    router_->ReplicaReady(0, 1, std::make_unique<FakePipeline>(fo), fo.kv_blocks, 1);
    Admission::Options ao;
    ao.model_defaults.temperature = 0.6f;
    ao.not_ready_reason = [this] { return not_ready_; };
    admission_ = std::make_unique<Admission>(tokenizer_.get(), router_.get(), ao);
  }

  AdmissionRequest Text(const std::string& text) {
    AdmissionRequest r;
    r.prompt = TextPrompt{text, "text"};
    r.max_tokens = 4;
    return r;
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  ModelConfig config_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Admission> admission_;
  std::string not_ready_;
};

TEST_F(AdmissionTest, AssignsIdsWithTheFrontEndsPrefixAndKeepsGivenOnes) {
  AdmissionRequest r = Text("abc");
  r.id_prefix = "chatcmpl";
  absl::StatusOr<Admitted> a = admission_->Admit(r);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(a->request_id, MatchesRegex("chatcmpl-[0-9]+-[0-9a-f]{4}"));
  r = Text("abc");
  r.request_id = "mine";
  a = admission_->Admit(r);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->request_id, "mine");
  r.request_id = std::string(kMaxRequestIdBytes + 1, 'x');
  a = admission_->Admit(r);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(a.status()), "request_id");
}

TEST_F(AdmissionTest, PromptErrorsNameTheRequestAndTheApisField) {
  AdmissionRequest r = Text("");
  r.request_id = "r1";
  absl::StatusOr<Admitted> a = admission_->Admit(r);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.status().message(), "request r1: text is empty");
  EXPECT_EQ(FieldOf(a.status()), "text") << "the payload survives the request prefix";

  r.prompt = ChatPromptMessages{{{"tool", "x"}}, "messages"};
  a = admission_->Admit(r);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(a.status().message(), HasSubstr("request r1: messages[0].role = \"tool\""));
  EXPECT_EQ(FieldOf(a.status()), "messages");

  r.prompt = std::monostate();
  a = admission_->Admit(r);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(a.status().message(), HasSubstr("one of text, token_ids or chat is required"));
  EXPECT_EQ(FieldOf(a.status()), "prompt");

  r.prompt = IdsPrompt{{1, 2, 100000}};
  a = admission_->Admit(r);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(a.status()), "prompt") << "the scheduler's range check";
}

TEST_F(AdmissionTest, SamplingIsTheClientsThenTheModelsThenTheApis) {
  SamplingDefaults given;
  given.top_p = 0.5f;
  SamplingDefaults model;
  model.temperature = 0.6f;
  model.top_p = 0.9f;
  SamplingParams api;
  api.temperature = 1.0f;
  api.top_k = 0;
  const SamplingParams p = ResolveSampling(given, model, api);
  EXPECT_EQ(p.top_p, 0.5f);        // the client's
  EXPECT_EQ(p.temperature, 0.6f);  // the model's
  EXPECT_EQ(p.top_k, 0);           // the API's
  EXPECT_EQ(p.repeat_last_n, SamplingParams{}.repeat_last_n);

  AdmissionRequest r = Text("abc");
  r.sampling.seed = 42;
  absl::StatusOr<RequestSpec> spec = ToRequestSpec(*tokenizer_, r, model, "x");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->sampling.seed, 42u);
  EXPECT_EQ(spec->sampling.temperature, 0.6f);
  EXPECT_EQ(spec->prompt, tokenizer_->Encode("abc", true, true));
}

TEST_F(AdmissionTest, NoPipelineIsUnavailableWithTheReason) {
  not_ready_ = "waiting for 2 workers, 1 joined";
  AdmissionRequest r = Text("abc");
  r.request_id = "early";
  absl::StatusOr<Admitted> a = admission_->Admit(r);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a.status().message(),
            "request early: no pipeline is ready: waiting for 2 workers, 1 joined");
}

}  // namespace
}  // namespace tessera::testing
