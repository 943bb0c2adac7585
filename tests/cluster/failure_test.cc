// Integration tests of what goes wrong: a worker without enough memory, a
// worker with another model file or protocol version, a peer sending bad
// steps, and malformed client requests. Each must get a precise status and a
// message naming the offending thing, and the cluster must keep serving.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/gguf/gguf_file.h"
#include "common/model_identity.h"
#include "engine/step_runner_factory.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "kernels/cpu/isa.h"
#include "tessera/v1/control.grpc.pb.h"
#include "testing/cluster.h"
#include "tests/engine/test_paths.h"
#include "tests/engine/tiny_model.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using ::tessera::testing::AddTestStageProof;
using ::tessera::testing::kTestJoinSecret;
using ::tessera::testing::WorkerStatusOf;
using ::tessera::testing::Cluster;
using ::tessera::testing::ClusterOptions;
using ::tessera::testing::DefaultModelPath;
using ::tessera::testing::Generate;
using ::tessera::testing::Generation;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(ClusterFailureTest, TooLittleMemoryGivesThePlannersMessage) {
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 1;
  o.worker_flags = {{"--memory-limit", "20MiB"}};
  o.wait_ready = false;
  Cluster cluster(o);
  ASSERT_TRUE(cluster.coordinator().WaitFor("cannot plan", absl::Seconds(30)))
      << cluster.coordinator().output();
  v1::GenerateRequest r;
  r.set_text("hello");
  Generation g = Generate(cluster.InferenceStub().get(), r);
  EXPECT_EQ(g.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  // The planner's numbers and the quantization it would take.
  EXPECT_THAT(g.status.error_message(), AllOf(HasSubstr("20.00 MiB"), HasSubstr("Q4_0")));
}

// A Control session that joins with the given request and returns how the
// coordinator ended it.
grpc::Status FakeJoin(const std::string& coordinator, const v1::JoinRequest& join) {
  auto stub = v1::Control::NewStub(
      grpc::CreateChannel(coordinator, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto stream = stub->Session(&ctx);
  v1::WorkerMessage m;
  *m.mutable_join() = join;
  stream->Write(m);
  stream->WritesDone();
  v1::CoordinatorMessage reply;
  while (stream->Read(&reply)) {
  }
  return stream->Finish();
}

TEST(ClusterFailureTest, RefusesOtherProtocolVersionsAndModelFiles) {
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 2;
  o.wait_ready = false;
  // Worker 1 gets a copy of the model with one weight byte changed in layer
  // 29 (always on the last stage): same shapes and header, different weights
  // (a "fine-tune").
  const std::string copy = std::filesystem::temp_directory_path() / "tessera_finetune.gguf";
  std::filesystem::copy_file(DefaultModelPath(), copy,
                             std::filesystem::copy_options::overwrite_existing);
  uint64_t offset = 0;
  {
    auto file = GgufFile::Open(DefaultModelPath());
    ASSERT_TRUE(file.ok());
    const GgufTensorInfo* t = (*file)->FindTensor("blk.29.attn_q.weight");
    ASSERT_NE(t, nullptr);
    offset = static_cast<uint64_t>((*file)->TensorData(*t) - (*file)->data()) + 100;
  }
  {
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(offset);
    char c = 0;
    f.read(&c, 1);
    c ^= 0x10;
    f.seekp(offset);
    f.write(&c, 1);
  }
  o.worker_flags = {{}, {"--model", copy}};
  Cluster cluster(o);
  ASSERT_FALSE(cluster.address().empty());

  // The fine-tuned worker joins (same header) but is refused once its range
  // hashes differently, and exits saying so.
  EXPECT_EQ(cluster.worker(1).WaitExit(absl::Seconds(60)), 1) << cluster.worker(1).output();
  EXPECT_THAT(cluster.worker(1).output(),
              AllOf(HasSubstr("FAILED_PRECONDITION"), HasSubstr("refused this worker"),
                    HasSubstr("hash to")));

  v1::JoinRequest join;
  join.set_protocol_version(99);
  join.set_join_secret(kTestJoinSecret);
  join.set_worker_address("127.0.0.1:1");
  join.mutable_devices()->set_free_memory_bytes(1 << 30);
  grpc::Status s = FakeJoin(cluster.address(), join);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr("protocol version 99"),
                                       HasSubstr(absl::StrCat("version ", static_cast<int>(
                                                                 v1::PROTOCOL_VERSION_CURRENT)))));

  join.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  join.mutable_model()->set_file_name("other.gguf");
  join.mutable_model()->set_file_bytes(1234);
  join.mutable_model()->set_header_hash(42);
  s = FakeJoin(cluster.address(), join);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(),
              AllOf(HasSubstr("different model file"), HasSubstr("other.gguf")));

  // The right model, but kernels that compute other bits than worker 0's.
  {
    auto file = GgufFile::Open(DefaultModelPath());
    ASSERT_TRUE(file.ok());
    join.mutable_model()->set_file_name("SmolLM2-135M-Instruct.Q4_1.gguf");
    join.mutable_model()->set_file_bytes((*file)->size());
    join.mutable_model()->set_header_hash(GgufHeaderHash(**file));
  }
  join.mutable_devices()->set_type("cpu");
  join.mutable_devices()->set_isa("neon");
  s = FakeJoin(cluster.address(), join);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr("cpu, neon kernels"),
                                       HasSubstr("--mixed-numerics")));
  // Worker 0's kernels, split over three tensor-parallel ranks: other sums.
  join.mutable_devices()->set_isa(kernels::IsaName(kernels::ActiveIsa()));
  join.mutable_devices()->set_tensor_parallel(3);
  s = FakeJoin(cluster.address(), join);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(),
              AllOf(HasSubstr(absl::StrCat("cpu, ", kernels::IsaName(kernels::ActiveIsa()),
                                           " kernels, tp 3")),
                    HasSubstr("--mixed-numerics")));
  std::filesystem::remove(copy);
}

// A model whose token 7 computes NaN (its embedding row is NaN): a request
// whose prompt holds it fails, while a request in the same steps without it
// gets exactly its lone output. On one stage the last stage refuses to
// sample its non-finite logits (INTERNAL); on two or three, stage 1 refuses
// its non-finite hidden states (DATA_LOSS naming stage 0). On three, stage 1
// is a middle stage: its refusal travels down with the step and reaches the
// coordinator in the last stage's result.
TEST(ClusterNumericFaultTest, NonFiniteValuesFailOnlyTheirRequest) {
  testing::TinyModelSpec spec;
  spec.n_layer = 4;
  spec.vocab = 320;
  spec.with_tokenizer = true;
  spec.tied_embeddings = false;
  spec.embedding_type = GgmlType::kF32;
  spec.poison_token = 7;
  const std::string model = ::testing::TempDir() + "/poisoned_tiny.gguf";
  ASSERT_TRUE(testing::WriteTinyModel(spec, model).ok());
  auto ids_request = [](std::vector<int32_t> ids) {
    v1::GenerateRequest r;
    r.mutable_token_ids()->mutable_ids()->Add(ids.begin(), ids.end());
    r.set_max_tokens(6);
    r.set_ignore_eos(true);
    r.mutable_sampling()->set_temperature(0);
    return r;
  };
  for (int workers : {1, 2, 3}) {
    ClusterOptions o;
    o.model = model;
    o.workers = workers;
    o.coordinator_flags = {"--max-context=128"};
    Cluster cluster(o);
    ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
    auto stub = cluster.InferenceStub();
    const Generation alone = Generate(stub.get(), ids_request({40, 41, 42, 43}));
    ASSERT_TRUE(alone.status.ok()) << alone.status.error_message();
    ASSERT_EQ(alone.ids.size(), 6u);

    Generation poisoned, clean;
    std::thread a([&] { poisoned = Generate(stub.get(), ids_request({40, 7, 42, 43})); });
    std::thread b([&] { clean = Generate(stub.get(), ids_request({40, 41, 42, 43})); });
    a.join();
    b.join();
    if (workers == 1) {
      EXPECT_EQ(poisoned.status.error_code(), grpc::StatusCode::INTERNAL);
      EXPECT_THAT(poisoned.status.error_message(),
                  AllOf(HasSubstr("logits"), HasSubstr("not sampled"), HasSubstr("last stage")));
    } else {
      EXPECT_EQ(poisoned.status.error_code(), grpc::StatusCode::DATA_LOSS);
      EXPECT_THAT(poisoned.status.error_message(),
                  AllOf(HasSubstr("non-finite"), HasSubstr("sent to stage 1 by stage 0")));
    }
    EXPECT_TRUE(poisoned.ids.empty());
    ASSERT_TRUE(clean.status.ok()) << clean.status.error_message();
    EXPECT_EQ(clean.ids, alone.ids) << workers << " worker(s)";
  }
}

class ServingClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.model = DefaultModelPath();
    o.workers = 2;
    o.coordinator_flags = {"--max-context=1024"};
    cluster_ = new Cluster(o);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static Cluster* cluster_;
};
Cluster* ServingClusterTest::cluster_ = nullptr;

v1::GenerateRequest Greedy(const std::string& text, int max_tokens) {
  v1::GenerateRequest r;
  r.set_text(text);
  r.set_max_tokens(max_tokens);
  r.mutable_sampling()->set_temperature(0);
  return r;
}

// Sends one step on its own stream to stage `stage`, as the planned peer
// would, and returns the stage's answer.
v1::StepResult Step(v1::Stage::Stub* stub, const v1::StepRequest& req, int stage) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  AddTestStageProof(&ctx, "steps", req.epoch(), stage);
  auto stream = stub->Steps(&ctx);
  stream->Write(req);
  v1::StepResult r;
  if (!stream->Read(&r)) r.set_message("no answer");
  stream->WritesDone();
  stream->Finish();
  return r;
}

TEST_F(ServingClusterTest, StageRejectsBadStepsAndKeepsServing) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  auto stub = cluster_->InferenceStub();
  const Generation before = Generate(stub.get(), Greedy("The moon is", 24));
  ASSERT_TRUE(before.status.ok()) << before.status.error_message();

  // A fake peer on the last stage's stream: one stream, many steps, each
  // answered on its own.
  auto stage1 = v1::Stage::NewStub(
      grpc::CreateChannel(cluster_->StageAddress(1), grpc::InsecureChannelCredentials()));
  // A peer must name the replica epoch the stage serves.
  const uint64_t epoch1 = WorkerStatusOf(cluster_->StageAddress(1)).epoch();
  ASSERT_NE(epoch1, 0u);
  grpc::ClientContext ctx;
  AddTestStageProof(&ctx, "steps", epoch1, 1);
  auto stream = stage1->Steps(&ctx);
  const int n_embd = 576;
  auto make = [&](uint64_t step, int64_t seq, int start, int tokens, v1::DType dtype,
                  std::vector<int64_t> shape, size_t bytes, std::vector<int32_t> blocks) {
    v1::StepRequest r;
    r.set_step_id(step);
    r.set_epoch(epoch1);
    v1::SequenceWork* w = r.add_seqs();
    w->set_seq_id(seq);
    w->set_start_pos(start);
    w->set_num_tokens(tokens);
    w->mutable_block_table()->Add(blocks.begin(), blocks.end());
    w->set_sample(true);
    w->mutable_sampling()->set_top_p(1);
    w->mutable_sampling()->set_repetition_penalty(1);
    v1::Tensor* t = r.mutable_hidden();
    t->set_dtype(dtype);
    t->mutable_shape()->Add(shape.begin(), shape.end());
    t->set_data(std::string(bytes, '\0'));
    return r;
  };
  const size_t row = n_embd * 4;
  struct Bad {
    v1::StepRequest req;
    std::string field;
  };
  std::vector<Bad> bad = {
      {make(1, 900001, 0, 1, v1::DTYPE_BF16, {1, n_embd}, row / 2, {0}), "hidden.dtype"},
      {make(2, 900001, 0, 1, v1::DTYPE_F32, {1, 100}, row, {0}), "hidden.shape"},
      {make(3, 900001, 0, 2, v1::DTYPE_F32, {2, n_embd}, row, {0}), "hidden.data"},
      {make(4, 900001, 5, 1, v1::DTYPE_F32, {1, n_embd}, row, {0}), "unknown sequence id 900001"},
      {make(5, 900001, 0, 1, v1::DTYPE_F32, {1, n_embd}, row, {999999}), "999999"},
      {make(6, 900001, 0, 1, v1::DTYPE_F32, {1, n_embd}, row, {}), "block"},
      {make(7, 900001, 0, 0, v1::DTYPE_F32, {0, n_embd}, 0, {0}), "num_tokens"},
  };
  for (const Bad& b : bad) ASSERT_TRUE(stream->Write(b.req));
  // Then a good step on the same stream: it is answered with a token.
  v1::StepRequest good = make(8, 900002, 0, 1, v1::DTYPE_F32, {1, n_embd}, row, {0});
  ASSERT_TRUE(stream->Write(good));
  v1::StepRequest gap = make(9, 900002, 4, 1, v1::DTYPE_F32, {1, n_embd}, row, {0});
  ASSERT_TRUE(stream->Write(gap));
  // prefix_cached is only for a new sequence, and its block table must still
  // cover the positions it claims are cached.
  v1::StepRequest recached = make(10, 900002, 1, 1, v1::DTYPE_F32, {1, n_embd}, row, {0});
  recached.mutable_seqs(0)->set_prefix_cached(true);
  ASSERT_TRUE(stream->Write(recached));
  v1::StepRequest uncovered = make(11, 900004, 40, 1, v1::DTYPE_F32, {1, n_embd}, row, {0});
  uncovered.mutable_seqs(0)->set_prefix_cached(true);
  ASSERT_TRUE(stream->Write(uncovered));
  // A top_logprobs count outside 0..20 is refused, not allocated; 20 is served.
  v1::StepRequest too_many = make(12, 900005, 0, 1, v1::DTYPE_F32, {1, n_embd}, row, {0});
  too_many.mutable_seqs(0)->set_top_logprobs(21);
  ASSERT_TRUE(stream->Write(too_many));
  v1::StepRequest negative = make(13, 900005, 0, 1, v1::DTYPE_F32, {1, n_embd}, row, {0});
  negative.mutable_seqs(0)->set_top_logprobs(-1);
  ASSERT_TRUE(stream->Write(negative));
  v1::StepRequest twenty = make(14, 900006, 0, 1, v1::DTYPE_F32, {1, n_embd}, row, {0});
  twenty.mutable_seqs(0)->set_top_logprobs(20);
  ASSERT_TRUE(stream->Write(twenty));
  // A step of another replica epoch (a stale pipeline) is refused.
  v1::StepRequest stale = make(15, 900007, 0, 1, v1::DTYPE_F32, {1, n_embd}, row, {0});
  stale.set_epoch(epoch1 - 1);
  ASSERT_TRUE(stream->Write(stale));
  std::map<uint64_t, v1::StepResult> answers;
  v1::StepResult r;
  while (answers.size() < bad.size() + 8 && stream->Read(&r)) answers[r.step_id()] = r;
  ASSERT_EQ(answers.size(), bad.size() + 8);
  for (size_t i = 0; i < bad.size(); ++i) {
    const v1::StepResult& a = answers[i + 1];
    EXPECT_EQ(a.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT)) << bad[i].field;
    EXPECT_THAT(a.message(), HasSubstr(bad[i].field));
  }
  EXPECT_EQ(answers[8].code(), 0) << answers[8].message();
  EXPECT_EQ(answers[8].tokens_size(), 1);
  EXPECT_EQ(answers[9].code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(answers[9].message(), HasSubstr("holds positions 0..0"));
  EXPECT_EQ(answers[10].code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(answers[10].message(), HasSubstr("prefix_cached"));
  EXPECT_EQ(answers[11].code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(answers[11].message(), HasSubstr("block table"));
  for (uint64_t id : {12, 13}) {
    EXPECT_EQ(answers[id].code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    EXPECT_THAT(answers[id].message(), AllOf(HasSubstr("top_logprobs"), HasSubstr("900005")));
  }
  ASSERT_EQ(answers[14].code(), 0) << answers[14].message();
  ASSERT_EQ(answers[14].tokens_size(), 1);
  const v1::SampledToken& t20 = answers[14].tokens(0);
  ASSERT_EQ(t20.top_token_ids_size(), 20);
  ASSERT_EQ(t20.top_logprobs_size(), 20);
  for (int i = 1; i < 20; ++i) EXPECT_LE(t20.top_logprobs(i), t20.top_logprobs(i - 1));
  EXPECT_EQ(answers[15].code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_THAT(answers[15].message(), HasSubstr("replica epoch"));
  v1::StepRequest release;
  release.set_epoch(epoch1);
  release.add_release_seq_ids(900002);
  release.add_release_seq_ids(900006);
  stream->Write(release);
  stream->WritesDone();
  stream->Finish();

  // Stage 0 checks token ids against the vocabulary.
  auto stage0 = v1::Stage::NewStub(
      grpc::CreateChannel(cluster_->StageAddress(0), grpc::InsecureChannelCredentials()));
  v1::StepRequest oov;
  oov.set_step_id(1);
  oov.set_epoch(WorkerStatusOf(cluster_->StageAddress(0)).epoch());
  v1::SequenceWork* w = oov.add_seqs();
  w->set_seq_id(900003);
  w->set_num_tokens(1);
  w->add_token_ids(49152);
  w->add_block_table(0);
  v1::StepResult a = Step(stage0.get(), oov, 0);
  EXPECT_EQ(a.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(a.message(), HasSubstr("49152"));

  // The cluster still serves, and gives the same tokens as before.
  const Generation after = Generate(stub.get(), Greedy("The moon is", 24));
  ASSERT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ(after.ids, before.ids);
}

// A peer that sends the last stage hidden states holding NaN or infinity
// for one sequence (a faulty stage 0, or one that overflowed) gets DATA_LOSS
// for that sequence alone, naming it and the sending stage; the step's other
// sequence is sampled as usual.
TEST_F(ServingClusterTest, NonFiniteActivationsAreRefusedNamingTheSender) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  auto stub = cluster_->InferenceStub();
  const Generation before = Generate(stub.get(), Greedy("The moon is", 12));
  ASSERT_TRUE(before.status.ok()) << before.status.error_message();

  auto stage1 = v1::Stage::NewStub(
      grpc::CreateChannel(cluster_->StageAddress(1), grpc::InsecureChannelCredentials()));
  const int n_embd = 576;
  uint64_t step_id = 0;
  int64_t seq = 910000;
  const uint64_t epoch1 = WorkerStatusOf(cluster_->StageAddress(1)).epoch();
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    v1::StepRequest r;
    r.set_step_id(++step_id);
    r.set_epoch(epoch1);
    const int64_t good_seq = ++seq, bad_seq = ++seq;
    for (int64_t id : {good_seq, bad_seq}) {
      v1::SequenceWork* w = r.add_seqs();
      w->set_seq_id(id);
      w->set_request_id("fake-" + std::to_string(id));
      w->set_num_tokens(2);
      w->add_block_table(id == good_seq ? 0 : 1);
      w->set_sample(true);
      w->mutable_sampling()->set_top_p(1);
      w->mutable_sampling()->set_repetition_penalty(1);
    }
    std::vector<float> hidden(4 * n_embd, 0.25f);
    hidden[3 * n_embd + 100] = bad;  // the second sequence's second token
    v1::Tensor* t = r.mutable_hidden();
    t->set_dtype(v1::DTYPE_F32);
    t->add_shape(4);
    t->add_shape(n_embd);
    t->set_data(reinterpret_cast<const char*>(hidden.data()), hidden.size() * sizeof(float));
    r.add_release_seq_ids(good_seq);  // applied after the step
    const v1::StepResult a = Step(stage1.get(), r, 1);
    ASSERT_EQ(a.code(), 0) << a.message();
    ASSERT_EQ(a.tokens_size(), 2);
    for (const v1::SampledToken& tok : a.tokens()) {
      if (tok.seq_id() == good_seq) {
        EXPECT_EQ(tok.code(), 0) << tok.message();
        continue;
      }
      EXPECT_EQ(tok.seq_id(), bad_seq);
      EXPECT_EQ(tok.code(), static_cast<int>(grpc::StatusCode::DATA_LOSS));
      EXPECT_THAT(tok.message(),
                  AllOf(HasSubstr(absl::StrCat("sequence ", bad_seq)),
                        HasSubstr(absl::StrCat("fake-", bad_seq)), HasSubstr("position 1"),
                        HasSubstr("non-finite"), HasSubstr("sent to stage 1 by stage 0")));
    }
  }
  const Generation after = Generate(stub.get(), Greedy("The moon is", 12));
  ASSERT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ(after.ids, before.ids);
}

// A second process started on an address already in use must fail at start
// naming it. gRPC sets SO_REUSEPORT by default, so a second coordinator once
// started fine on the same port and took a share of new clients.
TEST_F(ServingClusterTest, ListenersRefuseAnAddressInUse) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  const std::string coordinator = cluster_->address();
  const std::string stage0 = cluster_->StageAddress(0);
  ASSERT_FALSE(stage0.empty());
  const std::string model = DefaultModelPath();
  struct Attempt {
    std::vector<std::string> argv;
    std::string address;  // named in the error
  };
  const std::vector<Attempt> attempts = {
      {{TESSERA_COORDINATOR_BINARY, "--model", model, "--listen", coordinator,
        "--join-secret", kTestJoinSecret},
       coordinator},
      {{TESSERA_WORKER_BINARY, "--model", model, "--coordinator", coordinator, "--listen",
        stage0, "--join-secret", kTestJoinSecret},
       stage0},
      // The HTTP listener, on a port the running coordinator's gRPC holds.
      {{TESSERA_COORDINATOR_BINARY, "--model", model, "--listen", "127.0.0.1:0",
        "--http-listen", coordinator, "--join-secret", kTestJoinSecret},
       coordinator},
  };
  for (const Attempt& a : attempts) {
    ::tessera::testing::ChildProcess p(a.argv);
    EXPECT_EQ(p.WaitExit(absl::Seconds(30)), 1) << a.argv[0] << "\n" << p.output();
    EXPECT_THAT(p.output(), AllOf(HasSubstr(a.address), HasSubstr("Address already in use")))
        << a.argv[0];
  }
  // Every new client still reaches the one coordinator that has workers.
  auto stub = cluster_->InferenceStub();
  for (int i = 0; i < 20; ++i) {
    auto fresh = v1::Inference::NewStub(
        grpc::CreateChannel(coordinator, grpc::InsecureChannelCredentials()));
    const Generation g = Generate(fresh.get(), Greedy("Hi", 1));
    EXPECT_TRUE(g.status.ok()) << "client " << i << ": " << g.status.error_message();
  }
}

// A worker whose --device it cannot use exits at start, naming the device,
// before it listens or joins: the coordinator never plans it into a
// pipeline. (cuda:64: no machine has that many, so the expectation is the
// same with or without a GPU.)
TEST_F(ServingClusterTest, AWorkerThatCannotUseItsDeviceExitsBeforeJoining) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  ::tessera::testing::ChildProcess p({TESSERA_WORKER_BINARY, "--model", DefaultModelPath(),
                                      "--coordinator", cluster_->address(), "--device",
                                      "cuda:64", "--join-secret", kTestJoinSecret});
  EXPECT_EQ(p.WaitExit(absl::Seconds(30)), 1) << p.output();
  if (CudaBackendBuilt()) {
    EXPECT_THAT(p.output(), HasSubstr("FAILED_PRECONDITION: --device cuda:64"));
  } else {
    EXPECT_THAT(p.output(), HasSubstr("UNIMPLEMENTED: --device cuda:64: this build has no CUDA"));
  }
  EXPECT_THAT(p.output(), Not(HasSubstr("listening")));
  EXPECT_THAT(p.output(), Not(HasSubstr("joined")));
}

TEST_F(ServingClusterTest, MalformedClientRequestsNameTheField) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  auto stub = cluster_->InferenceStub();
  struct BadRequest {
    v1::GenerateRequest req;
    std::vector<std::string> mentions;
  };
  std::vector<BadRequest> cases;
  cases.push_back({v1::GenerateRequest(), {"prompt"}});
  {
    v1::GenerateRequest r = Greedy("hi", 4);
    r.mutable_sampling()->set_temperature(-1);
    cases.push_back({r, {"temperature"}});
  }
  {
    v1::GenerateRequest r = Greedy("hi", 4);
    r.mutable_sampling()->set_top_p(0);
    cases.push_back({r, {"top_p"}});
  }
  cases.push_back({Greedy("hi", 2000), {"max_tokens (2000)", "1024"}});
  cases.push_back({Greedy("hi", -1), {"max_tokens"}});
  {
    v1::GenerateRequest r;
    r.mutable_token_ids()->add_ids(123456);
    cases.push_back({r, {"token_ids[0]", "123456"}});
  }
  {
    v1::GenerateRequest r;
    v1::ChatMessage* m = r.mutable_chat()->add_messages();
    m->set_role("robot");
    m->set_content("x");
    cases.push_back({r, {"role", "robot"}});
  }
  for (int32_t top : {21, -1}) {
    v1::GenerateRequest r = Greedy("hi", 4);
    r.set_top_logprobs(top);
    cases.push_back({r, {"top_logprobs", absl::StrCat(top)}});
  }
  {
    v1::GenerateRequest r = Greedy("hi", 4);
    r.set_request_id(std::string(200, 'x'));
    cases.push_back({r, {"request_id"}});
  }
  for (const BadRequest& c : cases) {
    Generation g = Generate(stub.get(), c.req);
    EXPECT_EQ(g.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.mentions[0];
    for (const std::string& m : c.mentions) EXPECT_THAT(g.status.error_message(), HasSubstr(m));
  }

  // A deadline that passes mid-generation ends the request, and the cluster
  // goes on serving.
  v1::GenerateRequest long_story = Greedy("Tell me a long story.", 900);
  long_story.set_ignore_eos(true);
  Generation late = Generate(stub.get(), long_story, absl::Milliseconds(300));
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  Generation ok = Generate(stub.get(), Greedy("Hello", 8));
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.ids.size(), 8u);
}

}  // namespace
}  // namespace tessera
