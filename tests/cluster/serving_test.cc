// Integration tests of serving many requests at once on a real cluster
// (coordinator + workers as processes): continuous batching with several
// micro-batches in flight, chunked prefill, preemption under a tiny KV pool,
// cancellation and overload, and hundreds of open gRPC streams served
// without a thread each. The reference for every stream is the same
// request run alone in the single-process engine (`tessera run`), which the
// pipeline reproduces bitwise (pipeline_test); batching must not change a
// bit.
#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/generic/generic_stub.h"
#include "engine/local_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/cluster.h"
#include "tests/engine/test_paths.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using ::tessera::testing::Cluster;
using ::tessera::testing::ClusterOptions;
using ::tessera::testing::DefaultModelPath;
using ::tessera::testing::Generate;
using ::tessera::testing::Generation;
using ::tessera::testing::WorkerStatusOf;
using ::testing::HasSubstr;

struct Job {
  std::string prompt;
  int32_t max_tokens;
  SamplingParams sampling;
  bool ignore_eos = false;
};

// 32 requests: prompts from a few words to a few hundred tokens, outputs
// from 4 to 48 tokens, every one sampled with its own seed (some with a
// repetition penalty, some greedy).
std::vector<Job> MixedJobs(int n) {
  const std::vector<std::string> topics = {
      "the history of the printing press", "how rivers shape valleys",
      "why the sky is blue", "the rules of chess", "baking sourdough bread",
      "the life cycle of stars", "learning a second language", "the invention of the telephone"};
  std::vector<Job> jobs;
  for (int i = 0; i < n; ++i) {
    Job j;
    std::string p = absl::StrCat("Write about ", topics[i % topics.size()], ".");
    for (int k = 0; k < (i % 5) * 12; ++k) absl::StrAppend(&p, " Add detail number ", k, ".");
    j.prompt = p;
    j.max_tokens = 4 + (i * 7) % 45;
    j.sampling.seed = 1000 + i;
    j.sampling.temperature = i % 4 == 0 ? 0.0f : 0.9f;
    if (i % 3 == 1) j.sampling.repetition_penalty = 1.2f;
    j.ignore_eos = i % 2 == 0;
    jobs.push_back(j);
  }
  return jobs;
}

std::vector<int32_t> RunAlone(LocalEngine* engine, const Job& j) {
  GenerateOptions g;
  g.max_tokens = j.max_tokens;
  g.sampling = j.sampling;
  g.stop_at_end_of_generation = !j.ignore_eos;
  std::vector<int32_t> ids;
  const std::vector<int32_t> prompt = engine->tokenizer().Encode(j.prompt, true, true);
  auto stats = engine->Generate(prompt, g, [&](int32_t id, float) {
    ids.push_back(id);
    return true;
  });
  EXPECT_TRUE(stats.ok()) << stats.status();
  return ids;
}

std::vector<std::vector<int32_t>> References(const std::vector<Job>& jobs) {
  LocalEngineOptions o;
  o.model_path = DefaultModelPath();
  o.threads = 1;
  o.max_context = 1024;
  auto engine = LocalEngine::Open(o);
  EXPECT_TRUE(engine.ok()) << engine.status();
  std::vector<std::vector<int32_t>> out;
  if (!engine.ok()) return out;
  for (const Job& j : jobs) out.push_back(RunAlone(engine->get(), j));
  return out;
}

v1::GenerateRequest RequestFor(const Job& j) {
  v1::GenerateRequest r = tessera::testing::TextRequest(j.prompt, j.max_tokens, j.sampling);
  r.set_ignore_eos(j.ignore_eos);
  return r;
}

// Runs every job at once, one client thread each.
std::vector<Generation> RunConcurrently(const Cluster& cluster, const std::vector<Job>& jobs) {
  std::vector<Generation> out(jobs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < jobs.size(); ++i) {
    threads.emplace_back([&, i] {
      auto stub = cluster.InferenceStub();
      out[i] = Generate(stub.get(), RequestFor(jobs[i]), absl::Seconds(300));
    });
  }
  for (std::thread& t : threads) t.join();
  return out;
}

v1::ServingStats Serving(const Cluster& cluster) {
  grpc::ClientContext ctx;
  v1::ModelInfo info;
  cluster.InferenceStub()->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info);
  return info.serving();
}

v1::PipelineStats Pipeline(const Cluster& cluster) {
  grpc::ClientContext ctx;
  v1::ModelInfo info;
  cluster.InferenceStub()->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info);
  return info.stats();
}

// Waits until every KV block is free again (finished requests give theirs
// back as soon as no step of theirs is in flight).
bool AllBlocksFree(const Cluster& cluster, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    const v1::ServingStats s = Serving(cluster);
    if (s.kv_blocks_total() > 0 && s.kv_blocks_free() == s.kv_blocks_total()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

void ExpectMatchesAlone(const std::vector<Job>& jobs, const std::vector<Generation>& got,
                        const std::vector<std::vector<int32_t>>& want) {
  ASSERT_EQ(want.size(), jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << "job " << i << ": " << got[i].status.error_message();
    EXPECT_EQ(got[i].ids, want[i]) << "job " << i << " (" << jobs[i].prompt.substr(0, 40)
                                   << "..., max_tokens " << jobs[i].max_tokens << ")";
  }
}

TEST(ServingTest, ThirtyTwoConcurrentStreamsOnTwoStagesMatchEachRunAlone) {
  const std::vector<Job> jobs = MixedJobs(32);
  const auto want = References(jobs);
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 2;
  o.coordinator_flags = {"--max-context=1024", "--max-seqs=32", "--max-batch-tokens=256"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const std::vector<Generation> got = RunConcurrently(cluster, jobs);
  ExpectMatchesAlone(jobs, got, want);
  const v1::ServingStats s = Serving(cluster);
  std::printf("32 streams: %lld steps, %lld prefill tokens, %lld preemptions\n",
              (long long)s.steps(), (long long)s.prefill_tokens(), (long long)s.preemptions());
  // Batched: far fewer steps than the tokens produced one request at a time.
  int64_t tokens = 0;
  for (const Generation& g : got) tokens += static_cast<int64_t>(g.ids.size());
  EXPECT_LT(s.steps(), tokens / 3);
  EXPECT_TRUE(AllBlocksFree(cluster, absl::Seconds(5)));
}

// A pool of 16 blocks (256 tokens) for requests that need up to 8 blocks
// each: six at once cannot all hold their KV, so the scheduler must preempt
// and recompute, and nobody may see a different token or an error.
TEST(ServingTest, PreemptionUnderATinyKvPoolChangesNoToken) {
  std::vector<Job> jobs;
  for (int i = 0; i < 6; ++i) {
    Job j;
    j.prompt = absl::StrCat("Tell a long story about a lighthouse keeper named ", i, ".");
    j.max_tokens = 90 + 5 * i;
    j.sampling.seed = 77 + i;
    j.ignore_eos = true;
    jobs.push_back(j);
  }
  const auto want = References(jobs);
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 2;
  o.coordinator_flags = {"--max-context=256", "--max-seqs=6", "--kv-blocks=16"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  EXPECT_EQ(Serving(cluster).kv_blocks_total(), 16);
  const std::vector<Generation> got = RunConcurrently(cluster, jobs);
  ExpectMatchesAlone(jobs, got, want);
  const v1::ServingStats s = Serving(cluster);
  std::printf("tiny pool: %lld preemptions, %lld prefill tokens (incl. recompute)\n",
              (long long)s.preemptions(), (long long)s.prefill_tokens());
  EXPECT_GT(s.preemptions(), 0);
  EXPECT_TRUE(AllBlocksFree(cluster, absl::Seconds(5)));
}

// A 300-token prompt through 48-token steps is prefilled in chunks, mixed
// with another stream's decodes; both outputs stay those of a lone run.
TEST(ServingTest, ChunkedPrefillOfALongPromptChangesNoToken) {
  std::vector<Job> jobs(2);
  jobs[0].prompt = "Summarise:";
  for (int k = 0; k < 40; ++k) absl::StrAppend(&jobs[0].prompt, " The river bends again at mile ", k, ".");
  jobs[0].max_tokens = 24;
  jobs[0].sampling.seed = 5;
  jobs[1].prompt = "Count slowly from one to fifty:";
  jobs[1].max_tokens = 60;
  jobs[1].sampling.temperature = 0;
  jobs[1].ignore_eos = true;
  const auto want = References(jobs);
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 2;
  o.coordinator_flags = {"--max-context=1024", "--max-batch-tokens=48"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const std::vector<Generation> got = RunConcurrently(cluster, jobs);
  ExpectMatchesAlone(jobs, got, want);
  ASSERT_GT(got[0].prompt_tokens, 48 * 5);
  // Really chunked, by the scheduler's own counters: no step carried more
  // than --max-batch-tokens, and the long prompt alone needed this many
  // chunks (the short one adds at least one more).
  const v1::ServingStats s = Serving(cluster);
  EXPECT_LE(s.max_step_tokens(), 48);
  EXPECT_GT(s.max_step_tokens(), 1);
  EXPECT_GE(s.prefill_chunks(), (got[0].prompt_tokens + 47) / 48 + 1);
}

// With two stages and several streams, the default (one micro-batch per
// stage) keeps two steps in flight, and stage 0 computes one step while
// stage 1 still computes the previous: the stages' own compute intervals
// (their traces, on one host's clock) say so. With --micro-batches=1 neither
// ever happens (the control).
TEST(ServingTest, MicroBatchesKeepTwoStagesBusyAtOnce) {
  std::vector<Job> jobs(4);
  for (int i = 0; i < 4; ++i) {
    jobs[i].prompt = absl::StrCat("List the colours of the rainbow, take ", i, ":");
    jobs[i].max_tokens = 24;
    jobs[i].sampling.temperature = 0;
    jobs[i].ignore_eos = true;
  }
  const auto want = References(jobs);
  for (int micro_batches : {0, 1}) {
    ClusterOptions o;
    o.model = DefaultModelPath();
    o.workers = 2;
    o.coordinator_flags = {"--max-context=256", absl::StrCat("--micro-batches=", micro_batches)};
    Cluster cluster(o);
    ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
    const std::vector<Generation> got = RunConcurrently(cluster, jobs);
    ExpectMatchesAlone(jobs, got, want);
    const v1::ServingStats s = Serving(cluster);
    const v1::PipelineStats p = Pipeline(cluster);
    std::printf("--micro-batches=%d: %lld steps, at most %lld in flight, %llu overlapped\n",
                micro_batches, (long long)s.steps(), (long long)s.max_steps_in_flight(),
                (unsigned long long)p.overlapped_steps());
    if (micro_batches == 0) {
      EXPECT_EQ(s.max_steps_in_flight(), 2);
      EXPECT_GT(p.overlapped_steps(), 0u);
    } else {
      EXPECT_EQ(s.max_steps_in_flight(), 1);
      EXPECT_EQ(p.overlapped_steps(), 0u);
    }
  }
}

// A client that goes away mid-stream gets its KV blocks returned at once
// (visible in GetModelInfo's serving stats), and the cluster keeps serving.
TEST(ServingTest, CancellingMidStreamReturnsItsBlocks) {
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 2;
  o.coordinator_flags = {"--max-context=1024"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const int64_t total = Serving(cluster).kv_blocks_total();
  ASSERT_GT(total, 0);

  auto stub = cluster.InferenceStub();
  grpc::ClientContext ctx;
  v1::GenerateRequest r;
  r.set_text("Tell me a very long story.");
  r.set_max_tokens(900);
  r.set_ignore_eos(true);
  auto reader = stub->Generate(&ctx, r);
  v1::GenerateResponse resp;
  int tokens = 0;
  while (tokens < 40 && reader->Read(&resp)) tokens += resp.token_ids_size();
  ASSERT_GE(tokens, 40);
  // 40+ tokens in, its blocks are held.
  EXPECT_LT(Serving(cluster).kv_blocks_free(), total);
  ctx.TryCancel();
  while (reader->Read(&resp)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(AllBlocksFree(cluster, absl::Seconds(2)))
      << "free " << Serving(cluster).kv_blocks_free() << " of " << total;
  EXPECT_EQ(Serving(cluster).running(), 0);

  Generation after = Generate(stub.get(), [] {
    v1::GenerateRequest q;
    q.set_text("Hello");
    q.set_max_tokens(8);
    q.set_ignore_eos(true);
    return q;
  }());
  EXPECT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ(after.ids.size(), 8u);
}

// The "Threads:" line of /proc/<pid>/status; -1 if unreadable.
int ThreadsOf(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    int n = 0;
    if (absl::StartsWith(line, "Threads:") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(8)), &n)) {
      return n;
    }
  }
  return -1;
}

// Generate streams are reactors, not threads: with 4 long requests running
// and 200 more queued behind them (all 204 streams open at once), the
// coordinator has far fewer threads than streams. A thread per stream would
// need at least 204. Cancelling the long ones mid-stream is noticed and
// frees their blocks; then every queued stream completes with the tokens it
// gets alone.
TEST(ServingTest, TwoHundredOpenStreamsHoldNoThreadEach) {
  constexpr int kLong = 4;
  constexpr int kShort = 200;
  std::vector<Job> distinct(8);
  for (size_t i = 0; i < distinct.size(); ++i) {
    distinct[i].prompt = absl::StrCat("Name a colour, number ", i, ":");
    distinct[i].max_tokens = 3;
    distinct[i].sampling.seed = 40 + i;
    distinct[i].sampling.temperature = i % 2 == 0 ? 0.0f : 0.7f;
    distinct[i].ignore_eos = true;
  }
  const auto want = References(distinct);
  ASSERT_EQ(want.size(), distinct.size());
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 1;
  o.coordinator_flags = {"--max-context=512", absl::StrCat("--max-seqs=", kLong),
                         "--max-queue=256"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const pid_t pid = cluster.coordinator().pid();
  const int idle_threads = ThreadsOf(pid);
  ASSERT_GT(idle_threads, 0);
  const int64_t total_blocks = Serving(cluster).kv_blocks_total();

  auto stub = cluster.InferenceStub();
  std::vector<std::unique_ptr<grpc::ClientContext>> long_ctx;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>>> long_streams;
  for (int i = 0; i < kLong; ++i) {
    v1::GenerateRequest r;
    r.set_request_id(absl::StrCat("long-", i));
    r.set_text(absl::StrCat("Tell a very long story about ship number ", i, "."));
    r.set_max_tokens(480);
    r.set_ignore_eos(true);
    long_ctx.push_back(std::make_unique<grpc::ClientContext>());
    long_streams.push_back(stub->Generate(long_ctx.back().get(), r));
  }
  // Each long one is generating before the short ones arrive, so these take
  // every running slot and the short ones all wait in the queue.
  for (auto& s : long_streams) {
    v1::GenerateResponse resp;
    ASSERT_TRUE(s->Read(&resp)) << cluster.coordinator().output();
  }
  std::vector<std::unique_ptr<grpc::ClientContext>> short_ctx;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>>> short_streams;
  for (int i = 0; i < kShort; ++i) {
    v1::GenerateRequest r = RequestFor(distinct[i % distinct.size()]);
    r.set_request_id(absl::StrCat("short-", i));
    short_ctx.push_back(std::make_unique<grpc::ClientContext>());
    short_ctx.back()->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(600)));
    short_streams.push_back(stub->Generate(short_ctx.back().get(), r));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  v1::ServingStats s = Serving(cluster);
  while (s.queued() < kShort && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    s = Serving(cluster);
  }
  ASSERT_EQ(s.queued(), kShort) << "running " << s.running();
  ASSERT_EQ(s.running(), kLong);
  const int open_threads = ThreadsOf(pid);
  std::printf("coordinator threads: %d idle, %d with %d streams open\n", idle_threads,
              open_threads, kLong + kShort);
  EXPECT_LT(open_threads, 64);

  for (auto& c : long_ctx) c->TryCancel();
  for (auto& r : long_streams) {
    v1::GenerateResponse resp;
    while (r->Read(&resp)) {
    }
    EXPECT_EQ(r->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  for (int i = 0; i < kShort; ++i) {
    Generation g;
    v1::GenerateResponse resp;
    while (short_streams[i]->Read(&resp)) {
      g.ids.insert(g.ids.end(), resp.token_ids().begin(), resp.token_ids().end());
      if (resp.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) g.finish = resp.finish_reason();
      EXPECT_EQ(resp.request_id(), absl::StrCat("short-", i));
    }
    g.status = short_streams[i]->Finish();
    ASSERT_TRUE(g.status.ok()) << "stream " << i << ": " << g.status.error_message();
    EXPECT_EQ(g.ids, want[i % want.size()]) << "stream " << i;
    EXPECT_EQ(g.finish, v1::FINISH_REASON_LENGTH) << "stream " << i;
  }
  EXPECT_TRUE(AllBlocksFree(cluster, absl::Seconds(5)))
      << "free " << Serving(cluster).kv_blocks_free() << " of " << total_blocks;
  for (int i = 0; i < kLong; ++i) {
    EXPECT_TRUE(cluster.coordinator().WaitFor(
        absl::StrCat("request long-", i, ": cancelled by the client"), absl::Seconds(5)));
  }
  EXPECT_TRUE(cluster.coordinator().WaitFor("request short-199: done: length, 3 tokens",
                                            absl::Seconds(5)));
}

// The raw bytes of one grpc.reflection.v1alpha list_services answer.
std::string ListServicesByReflection(const std::string& address) {
  grpc::GenericStub stub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  if (!cq.Next(&tag, &ok) || !ok) return "";
  // ServerReflectionRequest{list_services: ""}: field 7, length-delimited.
  const std::string request("\x3a\x00", 2);
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1);
  call->Write(out, reinterpret_cast<void*>(2));
  if (!cq.Next(&tag, &ok) || !ok) return "";
  grpc::ByteBuffer in;
  call->Read(&in, reinterpret_cast<void*>(3));
  if (!cq.Next(&tag, &ok) || !ok) return "";
  call->WritesDone(reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  std::vector<grpc::Slice> slices;
  if (!in.Dump(&slices).ok()) return "";
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

// The callback-API Inference service sits beside the sync Control
// service, health and reflection in one server.
TEST(ServingTest, ReflectionListsEveryServiceOfTheCoordinator) {
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 1;
  o.coordinator_flags = {"--max-context=512"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const std::string services = ListServicesByReflection(cluster.address());
  EXPECT_THAT(services, HasSubstr("tessera.v1.Inference"));
  EXPECT_THAT(services, HasSubstr("grpc.health.v1.Health"));
  EXPECT_THAT(services, HasSubstr("tessera.v1.Control"));
}

// Past the queue limit a request is refused at once with RESOURCE_EXHAUSTED
// and a retry hint, rather than waiting.
TEST(ServingTest, OverloadIsRefusedPromptly) {
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 1;
  o.coordinator_flags = {"--max-context=1024", "--max-seqs=1", "--max-queue=2"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  // One running and two queued long requests fill the cluster.
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>>> readers;
  auto stub = cluster.InferenceStub();
  // The first is admitted before the others arrive, or all three would be
  // waiting at once and the third would already be refused.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (int i = 0; i < 3; ++i) {
    v1::GenerateRequest r;
    r.set_text(absl::StrCat("Story number ", i));
    r.set_max_tokens(800);
    r.set_ignore_eos(true);
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    readers.push_back(stub->Generate(contexts.back().get(), r));
    while (i == 0 && Serving(cluster).running() < 1 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  while (Serving(cluster).queued() < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(Serving(cluster).queued(), 2) << cluster.coordinator().output();

  v1::GenerateRequest extra;
  extra.set_text("One more");
  extra.set_max_tokens(4);
  Generation g = Generate(stub.get(), extra, absl::Seconds(30));
  EXPECT_EQ(g.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(g.status.error_message(), HasSubstr("retry"));
  // Promptly, without a timing threshold: the refusal came while the three
  // 800-token requests were all still there, i.e. it waited for none of them.
  const v1::ServingStats s = Serving(cluster);
  EXPECT_EQ(s.running(), 1);
  EXPECT_EQ(s.queued(), 2);
  for (auto& c : contexts) c->TryCancel();
  for (auto& r : readers) {
    v1::GenerateResponse resp;
    while (r->Read(&resp)) {
    }
    r->Finish();
  }
}

// Requests sharing a long prefix: the second reuses the first's full KV
// blocks, so the workers compute fewer tokens (their own counter), and every
// output is still what the request gives alone.
TEST(ServingTest, PrefixCacheHitSkipsComputeAndChangesNoToken) {
  std::string system = "You are a careful assistant. Here are the house rules:";
  for (int k = 0; k < 12; ++k) absl::StrAppend(&system, " Rule ", k, ": be brief and exact.");
  std::vector<Job> jobs(3);
  jobs[0].prompt = system + " Question: what is the capital of France?";
  jobs[1].prompt = system + " Question: name a large river.";
  jobs[2].prompt = jobs[0].prompt;  // the same prompt again
  for (size_t i = 0; i < jobs.size(); ++i) {
    jobs[i].max_tokens = 16;
    jobs[i].sampling.seed = 300 + i;
    jobs[i].ignore_eos = true;
  }
  const auto want = References(jobs);
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 2;
  o.coordinator_flags = {"--max-context=1024"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const std::string stage0 = cluster.StageAddress(0);
  auto stub = cluster.InferenceStub();
  std::vector<int64_t> computed;  // tokens stage 0 computed per request
  std::vector<Generation> got;
  for (const Job& j : jobs) {
    const uint64_t before = WorkerStatusOf(stage0).tokens();
    got.push_back(Generate(stub.get(), RequestFor(j)));
    ASSERT_TRUE(AllBlocksFree(cluster, absl::Seconds(5)));
    computed.push_back(static_cast<int64_t>(WorkerStatusOf(stage0).tokens() - before));
  }
  ExpectMatchesAlone(jobs, got, want);
  const v1::ServingStats s = Serving(cluster);
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::printf("request %zu: %lld prompt tokens, stage 0 computed %lld tokens\n", i,
                (long long)got[i].prompt_tokens, (long long)computed[i]);
  }
  std::printf("prefix cache: %lld blocks cached, %lld block hits\n",
              (long long)s.kv_blocks_cached(), (long long)s.prefix_hit_blocks());
  ASSERT_GT(got[0].prompt_tokens, 100);
  // The first computes its whole prompt and its tokens (the last sampled
  // token is never fed back).
  EXPECT_EQ(computed[0], got[0].prompt_tokens + 15);
  // The second shares the system prompt's full blocks.
  const int64_t shared_blocks = s.prefix_hit_blocks() - (got[2].prompt_tokens - 1) / 16;
  EXPECT_GE(shared_blocks, 4);
  EXPECT_EQ(computed[1], got[1].prompt_tokens + 15 - 16 * shared_blocks);
  // The repeat reuses every full block of its prompt but the one holding its
  // last token.
  EXPECT_EQ(computed[2], got[2].prompt_tokens + 15 - 16 * ((got[2].prompt_tokens - 1) / 16));
}

}  // namespace
}  // namespace tessera
