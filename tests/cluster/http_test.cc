// The coordinator's OpenAI-compatible HTTP API against a real 1-worker
// cluster, spoken to over raw sockets (so the test checks the bytes on the
// wire, not a client library's reading of them), plus the official `openai`
// Python client when it is installed.
//
// References are independent of the HTTP code: the gRPC Generate API's text
// for the same request, hand-written expectations of OpenAI's JSON shapes,
// and status codes fixed by the API contract.
#include "tests/cluster/http_fixture.h"

namespace tessera {
namespace {

using namespace ::tessera::http_testing;  // NOLINT: the fixture's helpers

TEST_F(HttpTest, ListsTheModelAndItsServedNames) {
  const Reply r = Request(port_, "GET", "/v1/models");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 3u);
  EXPECT_EQ(j["data"][0]["id"], "SmolLM2-135M-Instruct.Q4_1");
  EXPECT_EQ(j["data"][1]["id"], "smol");
  EXPECT_EQ(j["data"][2]["id"], "tessera-test");
  for (const json& m : j["data"]) EXPECT_EQ(m["object"], "model");
}

// OpenAI answers a model it does not serve with 404 model_not_found; the
// file's id and every --served-model-name alias are served, and a response
// names the model as the request did.
// Request fields whose meaning Tessera does not implement are refused with
// 400 naming them (OpenAI's `param`), not ignored; their no-op values pass.
// A chat body of any shape is answered 400 naming the part, and the
// coordinator lives on: one request once aborted the whole process (an
// uncaught JSON type_error), taking every other stream with it.
TEST_F(HttpTest, CompletionMatchesGrpcGenerate) {
  const std::string expected = GrpcText(8);
  ASSERT_FALSE(expected.empty());
  const Reply r = Request(port_, "POST", "/v1/completions",
                          json{{"model", "smol"}, {"prompt", kPrompt}, {"max_tokens", 8},
                               {"temperature", 0}, {"logprobs", 1}}
                              .dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.head, HasSubstr("Content-Length: "));
  const json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "text_completion");
  const json& c = j["choices"][0];
  EXPECT_EQ(c["text"], expected);
  EXPECT_EQ(c["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);
  EXPECT_EQ(j["usage"]["total_tokens"],
            j["usage"]["prompt_tokens"].get<int>() + 8);
  ASSERT_EQ(c["logprobs"]["token_logprobs"].size(), 8u);
  std::string joined;
  for (const json& t : c["logprobs"]["tokens"]) joined += t.get<std::string>();
  EXPECT_EQ(joined, expected);  // ASCII continuation: pieces concatenate to the text
  for (const json& lp : c["logprobs"]["token_logprobs"]) EXPECT_LE(lp.get<double>(), 0.0);
}

TEST_F(HttpTest, StreamedCompletionGivesTheSameText) {
  const std::string expected = GrpcText(8);
  const Reply r = Request(port_, "POST", "/v1/completions",
                          json{{"prompt", kPrompt}, {"max_tokens", 8}, {"temperature", 0},
                               {"stream", true}}
                              .dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.head, HasSubstr("Content-Type: text/event-stream"));
  const std::vector<std::string> data = SseData(r.body);
  ASSERT_GE(data.size(), 2u) << r.body;
  EXPECT_EQ(data.back(), "[DONE]");
  std::string text, finish;
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    const json j = json::parse(data[i]);
    text += j["choices"][0]["text"].get<std::string>();
    if (!j["choices"][0]["finish_reason"].is_null()) finish = j["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, expected);
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(json::parse(data[data.size() - 2])["usage"]["completion_tokens"], 8);
}

TEST_F(HttpTest, StopStringCutsTheText) {
  const std::string full = GrpcText(8);
  const size_t dot = full.find('.');
  ASSERT_NE(dot, std::string::npos) << full;
  const Reply r = Request(port_, "POST", "/v1/completions",
                          json{{"prompt", kPrompt}, {"max_tokens", 8}, {"temperature", 0},
                               {"stop", "."}}
                              .dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["choices"][0]["text"], full.substr(0, dot));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
}

TEST_F(HttpTest, ChatCompletionStreamedAndNot) {
  const json request = {{"messages", {{{"role", "user"}, {"content", "Say hello."}}}},
                        {"max_tokens", 6}, {"temperature", 0}};
  const Reply r = Request(port_, "POST", "/v1/chat/completions", request.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  const std::string text = j["choices"][0]["message"]["content"];
  EXPECT_FALSE(text.empty());

  json streaming = request;
  streaming["stream"] = true;
  const Reply s = Request(port_, "POST", "/v1/chat/completions", streaming.dump());
  ASSERT_EQ(s.status, 200) << s.body;
  const std::vector<std::string> data = SseData(s.body);
  ASSERT_GE(data.size(), 3u);
  EXPECT_EQ(json::parse(data[0])["choices"][0]["delta"]["role"], "assistant");
  std::string streamed;
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    const json c = json::parse(data[i]);
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    streamed += c["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(data.back(), "[DONE]");
}

// An HTTP/1.0 client has no chunked encoding: its stream comes unframed
// and ends when the server closes the connection, with the same events an
// HTTP/1.1 client gets.
TEST_F(HttpTest, AnHttp10ClientGetsItsStreamUnchunkedUntilClose) {
  json request = {{"messages", {{{"role", "user"}, {"content", "Say hello."}}}},
                  {"max_tokens", 6}, {"temperature", 0}, {"stream", true}};
  const Reply v11 = Request(port_, "POST", "/v1/chat/completions", request.dump());
  ASSERT_EQ(v11.status, 200) << v11.body;
  const int fd = SendRequest(port_, "POST", "/v1/chat/completions", request.dump(),
                             /*http10=*/true);
  ASSERT_GE(fd, 0);
  const Reply v10 = ReadReply(fd);  // returns at the server's close
  ASSERT_EQ(v10.status, 200) << v10.head;
  EXPECT_THAT(v10.head, Not(HasSubstr("Transfer-Encoding")));
  EXPECT_THAT(v10.head, HasSubstr("Connection: close"));
  std::vector<std::string> a = SseData(v11.body), b = SseData(v10.body);
  ASSERT_EQ(a.size(), b.size()) << v10.body;
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.back(), "[DONE]");
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    json x = json::parse(a[i]), y = json::parse(b[i]);
    EXPECT_EQ(x["choices"], y["choices"]) << i;
  }
}

// One table of invalid parameters through both front ends: each is refused
// by both (INVALID_ARGUMENT / 400), both messages name the same field, and
// the HTTP error's `param` is that field. The two APIs once disagreed (an
// empty stop string was refused over HTTP and served over gRPC).
// The chat API's logprobs.content[i].top_logprobs: 5 {token, logprob,
// bytes} entries per token, most likely first, the greedy token first with
// its own logprob; streamed chunks carry the same entries as the whole
// body; and the numbers are those of gRPC's top_logprobs for the same
// request (which pipeline_test checks against the engine's log-softmax).
TEST_F(HttpTest, ChatTopLogprobsStreamedAndNot) {
  const json request = {{"messages", {{{"role", "user"}, {"content", "Name a fruit."}}}},
                        {"max_tokens", 6}, {"temperature", 0}, {"logprobs", true},
                        {"top_logprobs", 5}, {"ignore_eos", true}};
  const Reply r = Request(port_, "POST", "/v1/chat/completions", request.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json content = json::parse(r.body)["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 6u) << r.body;
  for (const json& t : content) {
    const json& top = t["top_logprobs"];
    ASSERT_EQ(top.size(), 5u) << t.dump();
    EXPECT_EQ(top[0]["token"], t["token"]);
    EXPECT_EQ(top[0]["logprob"].get<double>(), t["logprob"].get<double>());
    for (size_t i = 0; i < top.size(); ++i) {
      ASSERT_TRUE(top[i]["token"].is_string() && top[i]["logprob"].is_number() &&
                  top[i]["bytes"].is_array())
          << top[i].dump();
      if (i > 0) {
        EXPECT_LE(top[i]["logprob"].get<double>(), top[i - 1]["logprob"].get<double>());
      }
      const std::string token = top[i]["token"];
      if (token.find("\xef\xbf\xbd") == std::string::npos) {  // no replaced partial UTF-8
        std::vector<int> bytes(token.begin(), token.end());
        for (int& b : bytes) b &= 0xff;
        EXPECT_EQ(top[i]["bytes"].get<std::vector<int>>(), bytes) << token;
      }
    }
  }

  // The same request over gRPC, rendered with the same chat template.
  v1::GenerateRequest g;
  v1::ChatMessage* m = g.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content("Name a fruit.");
  g.set_max_tokens(6);
  g.mutable_sampling()->set_temperature(0);
  g.set_ignore_eos(true);
  g.set_top_logprobs(5);
  grpc::ClientContext ctx;
  auto reader = cluster_->InferenceStub()->Generate(&ctx, g);
  std::vector<v1::TopLogprobs> grpc_tops;
  v1::GenerateResponse resp;
  while (reader->Read(&resp)) {
    grpc_tops.insert(grpc_tops.end(), resp.top_logprobs().begin(), resp.top_logprobs().end());
  }
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(grpc_tops.size(), content.size());
  for (size_t k = 0; k < content.size(); ++k) {
    ASSERT_EQ(grpc_tops[k].candidates_size(), 5);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(content[k]["top_logprobs"][i]["logprob"].get<double>(),
                grpc_tops[k].candidates(i).logprob())
          << "token " << k << " rank " << i;
      EXPECT_EQ(content[k]["top_logprobs"][i]["bytes"].size(),
                grpc_tops[k].candidates(i).text().size());
    }
  }

  json streaming = request;
  streaming["stream"] = true;
  const Reply s = Request(port_, "POST", "/v1/chat/completions", streaming.dump());
  ASSERT_EQ(s.status, 200) << s.body;
  json streamed = json::array();
  const std::vector<std::string> data = SseData(s.body);
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    const json c = json::parse(data[i]);
    const json& lp = c["choices"][0]["logprobs"];
    if (lp.is_null()) continue;
    for (const json& t : lp["content"]) streamed.push_back(t);
  }
  EXPECT_EQ(streamed, content);
}

// The legacy completions API: "logprobs": N gives, per token, a {text:
// logprob} map of the N most likely tokens that always holds the sampled
// one (so N or N + 1 entries), streamed or not.
TEST_F(HttpTest, CompletionTopLogprobsAreTextToLogprobMaps) {
  for (bool stream : {false, true}) {
    const Reply r = Request(port_, "POST", "/v1/completions",
                            json{{"prompt", kPrompt}, {"max_tokens", 8}, {"temperature", 0},
                                 {"logprobs", 3}, {"stream", stream}}
                                .dump());
    ASSERT_EQ(r.status, 200) << r.body;
    json tokens = json::array(), values = json::array(), tops = json::array();
    std::vector<json> bodies;
    if (stream) {
      const std::vector<std::string> data = SseData(r.body);
      for (size_t i = 0; i + 1 < data.size(); ++i) bodies.push_back(json::parse(data[i]));
    } else {
      bodies.push_back(json::parse(r.body));
    }
    for (const json& b : bodies) {
      const json& lp = b["choices"][0]["logprobs"];
      if (lp.is_null()) continue;
      ASSERT_EQ(lp["top_logprobs"].size(), lp["tokens"].size()) << lp.dump();
      for (size_t i = 0; i < lp["tokens"].size(); ++i) {
        tokens.push_back(lp["tokens"][i]);
        values.push_back(lp["token_logprobs"][i]);
        tops.push_back(lp["top_logprobs"][i]);
      }
    }
    ASSERT_EQ(tokens.size(), 8u) << r.body;
    for (size_t k = 0; k < tokens.size(); ++k) {
      const json& map = tops[k];
      ASSERT_TRUE(map.is_object()) << map.dump();
      EXPECT_GE(map.size(), 3u) << map.dump();
      EXPECT_LE(map.size(), 4u) << map.dump();
      const std::string token = tokens[k];
      ASSERT_TRUE(map.contains(token)) << token << " not in " << map.dump();
      EXPECT_EQ(map[token].get<double>(), values[k].get<double>());
      // Greedy: the sampled token is the most likely one.
      double best = -INFINITY;
      for (const auto& [text, lp] : map.items()) best = std::max(best, lp.get<double>());
      EXPECT_EQ(best, values[k].get<double>()) << map.dump();
    }
  }
}

TEST_F(HttpTest, ThreeHundredConcurrentStreamsAllComplete) {
  constexpr int kStreams = 300;
  std::vector<int> fds;
  for (int i = 0; i < kStreams; ++i) {
    const json body = {{"prompt", absl::StrCat("Count to ", i % 10, ":")},
                       {"max_tokens", 4}, {"temperature", 0.5}, {"seed", i},
                       {"ignore_eos", true}, {"stream", true}};
    const int fd = SendRequest(port_, "POST", "/v1/completions", body.dump());
    ASSERT_GE(fd, 0) << "connection " << i;
    fds.push_back(fd);
  }
  // Every request is open at once; read them in turn (each is small enough
  // to wait in socket buffers while others are read).
  int complete = 0;
  for (int i = 0; i < kStreams; ++i) {
    const Reply r = ReadReply(fds[i]);
    const std::vector<std::string> data = SseData(r.body);
    if (r.status == 200 && !data.empty() && data.back() == "[DONE]" && data.size() >= 2 &&
        json::parse(data[data.size() - 2])["usage"]["completion_tokens"] == 4) {
      ++complete;
    } else {
      ADD_FAILURE() << "stream " << i << ": " << r.status << " " << r.body.substr(0, 300);
    }
  }
  EXPECT_EQ(complete, kStreams);
}

TEST_F(HttpTest, OfficialOpenAiClientWorksUnchanged) {
  const std::string expected = GrpcText(6);
  const std::string script =
      std::string(TESSERA_SOURCE_DIR) + "/tests/cluster/openai_client_check.py";
  const std::string base = absl::StrCat("http://127.0.0.1:", port_, "/v1");
  const pid_t pid = fork();
  if (pid == 0) {
    execlp("python3", "python3", script.c_str(), base.c_str(), kPrompt, expected.c_str(), "6",
           static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  // The test command installs python3 and the openai package, so neither
  // missing is a reason to skip.
  ASSERT_NE(WEXITSTATUS(status), 127) << "python3 could not be started";
  ASSERT_NE(WEXITSTATUS(status), 3)
      << "the openai package is not installed; scripts/setup.sh installs it";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "openai_client_check.py failed; see its output above";
}

// A separate cluster whose HTTP admission limit is 2.
TEST(HttpAdmissionTest, PastMaxStreamsGets429AtOnce) {
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 1;
  o.coordinator_flags = {"--http-listen=127.0.0.1:0", "--http-max-streams=2",
                         "--max-context=256"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  std::string after;
  ASSERT_TRUE(cluster.coordinator().WaitFor("http listening on 127.0.0.1:", absl::Seconds(5),
                                            &after));
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(after.substr(0, after.find(' ')), &port));

  // Two long streams hold both slots.
  const json long_body = {{"prompt", kPrompt}, {"max_tokens", 240}, {"ignore_eos", true},
                          {"stream", true}};
  std::vector<int> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(SendRequest(port, "POST", "/v1/completions", long_body.dump()));
    ASSERT_GE(held.back(), 0);
    // Wait for the response head, so the slot is surely taken.
    pollfd p{held.back(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 10000), 1);
  }
  const Reply third = Request(port, "POST", "/v1/completions",
                              json{{"prompt", kPrompt}, {"max_tokens", 2}}.dump());
  EXPECT_EQ(third.status, 429) << third.body;
  EXPECT_THAT(ErrorMessage(third), HasSubstr("--http-max-streams"));
  // Refused while both slots were still held, not after a stream ended: at
  // the moment the 429 is read, neither held stream has finished.
  for (int fd : held) {
    std::string so_far;
    char buf[8192];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) so_far.append(buf, n);
    EXPECT_EQ(so_far.find("[DONE]"), std::string::npos) << "a held stream ended first";
  }

  // Closing the held streams cancels them and frees the slots.
  for (int fd : held) close(fd);
  EXPECT_TRUE(cluster.coordinator().WaitFor("HTTP client went away", absl::Seconds(5)));
  Reply again;
  for (int i = 0; i < 50; ++i) {
    again = Request(port, "POST", "/v1/completions",
                    json{{"prompt", kPrompt}, {"max_tokens", 2}}.dump());
    if (again.status != 429) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(again.status, 200) << again.body;
}

}  // namespace
}  // namespace tessera
