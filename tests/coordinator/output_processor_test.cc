// Turning sampled tokens into what a client sees: text, stop strings, top
// logprob pieces and the final event; and the RequestStream that runs it on
// the consumer's thread.
#include "coordinator/output_processor.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/request_stream.h"
#include "coordinator/stop_matcher.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/test_vocab.h"

namespace tessera::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int32_t kSpace = 52;
constexpr int32_t kEos = 299;

int32_t Letter(char c) { return c - 'a'; }

GeneratedToken Tok(int32_t id, float logprob = -1.0f) {
  GeneratedToken t;
  t.id = id;
  t.logprob = logprob;
  return t;
}

std::string Text(const std::vector<RequestEvent>& events) {
  std::string s;
  for (const RequestEvent& e : events) s += e.text;
  return s;
}

class OutputProcessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = TestTokenizer();
    ASSERT_NE(tokenizer_, nullptr);
  }
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST(StopMatcherTest, HoldsBackOnlyWhatCouldStartAStopString) {
  StopMatcher m({"lo w", ""});
  bool stopped = false;
  std::string out;
  for (const char* piece : {"h", "e", "l", "l", "o", " "}) {
    out += m.Push(piece, &stopped);
    EXPECT_FALSE(stopped);
  }
  EXPECT_EQ(out, "hel") << "\"lo \" may still become \"lo w\"";
  EXPECT_EQ(m.Push("x", &stopped), "lo x");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(m.Push("lo wor", &stopped), "");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcherTest, TheEarliestOfSeveralStopsWinsAndFlushReleasesTheRest) {
  StopMatcher m({"cd", "bcx"});
  bool stopped = false;
  EXPECT_EQ(m.Push("abc", &stopped), "a");
  EXPECT_EQ(m.Push("de", &stopped), "b");
  EXPECT_TRUE(stopped);
  StopMatcher n({"xyz"});
  EXPECT_EQ(n.Push("axy", &stopped), "a");
  EXPECT_EQ(n.Flush(), "xy");
}

TEST_F(OutputProcessorTest, AStopStringAcrossTokensEndsTheRequestBeforeIt) {
  OutputProcessor p(tokenizer_.get(), {"lo "}, /*logprobs=*/true, /*prompt_tokens=*/9);
  std::vector<RequestEvent> out;
  bool stopped = false;
  const std::vector<int32_t> ids = {Letter('h'), Letter('e'), Letter('l'), Letter('l'),
                                    Letter('o'), kSpace};
  for (size_t i = 0; i < ids.size(); ++i) {
    p.Token(Tok(ids[i]), &out, &stopped);
    EXPECT_EQ(stopped, i + 1 == ids.size());
  }
  EXPECT_EQ(Text(out), "hel");
  ASSERT_TRUE(out.back().final);
  EXPECT_EQ(out.back().finish_reason, "stop");
  EXPECT_EQ(out.back().prompt_tokens, 9);
  EXPECT_EQ(out.back().completion_tokens, 6);
  EXPECT_EQ(out.front().logprobs, std::vector<float>{-1.0f});
  // Anything after the stop is ignored.
  out.clear();
  p.Token(Tok(Letter('z')), &out, &stopped);
  p.End(GenerationEnd{absl::OkStatus(), "length", 9, 7}, &out);
  EXPECT_THAT(out, IsEmpty());
}

TEST_F(OutputProcessorTest, TheEndReleasesHeldTextUnlessTheRequestFailed) {
  for (bool ok : {true, false}) {
    OutputProcessor p(tokenizer_.get(), {"xyz"}, /*logprobs=*/false, 2);
    std::vector<RequestEvent> out;
    bool stopped = false;
    p.Token(Tok(Letter('a')), &out, &stopped);
    p.Token(Tok(Letter('x')), &out, &stopped);
    EXPECT_EQ(Text(out), "a");
    EXPECT_THAT(out[0].logprobs, IsEmpty()) << "logprobs were not asked for";
    out.clear();
    GenerationEnd end{ok ? absl::OkStatus() : absl::InternalError("stage 1 died"),
                      ok ? "length" : "", 2, 2};
    p.End(end, &out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].final);
    EXPECT_EQ(out[0].text, ok ? "x" : "");
    EXPECT_EQ(out[0].status, end.status);
  }
}

TEST_F(OutputProcessorTest, TopLogprobsCarryEachTokensPieceControlTokensRendered) {
  OutputProcessor p(tokenizer_.get(), {}, true, 1);
  std::vector<RequestEvent> out;
  bool stopped = false;
  GeneratedToken t = Tok(Letter('q'));
  t.top = {{Letter('q'), -0.5f}, {kEos, -1.5f}, {kSpace, -2.0f}};
  p.Token(t, &out, &stopped);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].top_logprobs.size(), 1u);
  const std::vector<TopLogprob>& top = out[0].top_logprobs[0];
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].piece, "q");
  EXPECT_EQ(top[1].piece, "<|endoftext|>");
  EXPECT_EQ(top[1].logprob, -1.5f);
  EXPECT_EQ(top[2].piece, " ");
}

TEST_F(OutputProcessorTest, AStreamStoppedByAStopStringIsCancelledForTheScheduler) {
  RequestStream stream("r", std::make_unique<OutputProcessor>(tokenizer_.get(),
                                                              std::vector<std::string>{"b"},
                                                              false, 1));
  stream.PushToken(Tok(Letter('a')));
  stream.PushToken(Tok(Letter('b')));
  stream.PushToken(Tok(Letter('c')));
  stream.PushEnd(GenerationEnd{absl::OkStatus(), "length", 1, 3});
  EXPECT_FALSE(stream.cancelled()) << "nothing is processed before the consumer takes it";
  std::vector<RequestEvent> events;
  RequestEvent e;
  while (stream.TryPop(&e)) events.push_back(e);
  EXPECT_TRUE(stream.cancelled());
  EXPECT_EQ(Text(events), "a");
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(events.back().final);
  EXPECT_EQ(events.back().finish_reason, "stop");
  EXPECT_EQ(events.back().completion_tokens, 2);
  int finals = 0;
  for (const RequestEvent& ev : events) finals += ev.final ? 1 : 0;
  EXPECT_EQ(finals, 1) << "the scheduler's own end is dropped";
}

TEST_F(OutputProcessorTest, PopWaitsForAPushFromAnotherThreadAndTheNotifierFires) {
  RequestStream stream("r");
  int notified = 0;
  stream.SetNotifier([&] { ++notified; });
  std::thread pusher([&] {
    absl::SleepFor(absl::Milliseconds(20));
    stream.PushToken(Tok(Letter('k'), -0.25f));
  });
  RequestEvent e;
  EXPECT_TRUE(stream.Pop(&e, absl::Seconds(10)));
  pusher.join();
  EXPECT_THAT(e.token_ids, ElementsAre(Letter('k')));
  EXPECT_EQ(notified, 1);
  EXPECT_FALSE(stream.Pop(&e, absl::Milliseconds(10)));
}

}  // namespace
}  // namespace tessera::testing
