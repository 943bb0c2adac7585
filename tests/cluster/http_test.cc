// The coordinator's OpenAI-compatible HTTP API against a real 1-worker
// cluster, spoken to over raw sockets (so the test checks the bytes on the
// wire, not a client library's reading of them), plus the official `openai`
// Python client when it is installed.
//
// References are independent of the HTTP code: the gRPC Generate API's text
// for the same request, hand-written expectations of OpenAI's JSON shapes,
// and status codes fixed by the API contract.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/cluster.h"
#include "tests/engine/test_paths.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using ::nlohmann::json;
using ::tessera::testing::Cluster;
using ::tessera::testing::ClusterOptions;
using ::tessera::testing::DefaultModelPath;
using ::tessera::testing::Generate;
using ::tessera::testing::Generation;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPrompt[] = "The capital of France is";

// A connected socket with the request sent; -1 on failure. HTTP/1.1 with
// "Connection: close" unless `http10`.
int SendRequest(int port, const std::string& method, const std::string& path,
                const std::string& body, bool http10 = false) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  const std::string request =
      absl::StrCat(method, " ", path,
                   http10 ? " HTTP/1.0\r\nHost: localhost\r\n"
                          : " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n",
                   "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n",
                   body);
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

struct Reply {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;  // de-chunked
};

// Reads the whole response (the server closes after it: Connection: close).
Reply ReadReply(int fd) {
  std::string raw;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    raw.append(buf, n);
  }
  close(fd);
  Reply r;
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  r.head = raw.substr(0, end);
  std::vector<std::string> first = absl::StrSplit(r.head.substr(0, r.head.find("\r\n")), ' ');
  if (first.size() >= 2) (void)absl::SimpleAtoi(first[1], &r.status);
  std::string rest = raw.substr(end + 4);
  if (r.head.find("Transfer-Encoding: chunked") == std::string::npos) {
    r.body = rest;
    return r;
  }
  size_t pos = 0;
  for (;;) {
    const size_t eol = rest.find("\r\n", pos);
    if (eol == std::string::npos) break;
    size_t size = 0;
    if (!absl::SimpleHexAtoi(rest.substr(pos, eol - pos), &size) || size == 0) break;
    r.body += rest.substr(eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  return r;
}

Reply Request(int port, const std::string& method, const std::string& path,
              const std::string& body = "") {
  const int fd = SendRequest(port, method, path, body);
  if (fd < 0) return Reply();
  return ReadReply(fd);
}

// The JSON payloads of an SSE body, "[DONE]" included as a string.
std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> data;
  for (absl::string_view event : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&event, "data: ")) data.emplace_back(event);
  }
  return data;
}

// Checks OpenAI's error shape and returns the message.
std::string ErrorMessage(const Reply& r) {
  const json j = json::parse(r.body, nullptr, false);
  EXPECT_TRUE(j.is_object() && j.contains("error")) << r.body;
  if (!j.is_object() || !j.contains("error")) return "";
  const json& e = j["error"];
  for (const char* key : {"message", "type", "param", "code"}) {
    EXPECT_TRUE(e.contains(key)) << key << " missing in " << r.body;
  }
  return e.value("message", "");
}

class HttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.model = DefaultModelPath();
    o.workers = 1;
    o.coordinator_flags = {"--http-listen=127.0.0.1:0", "--max-seqs=64", "--max-queue=512",
                           "--max-context=256", "--served-model-name=smol,tessera-test"};
    cluster_ = new Cluster(o);
    port_ = HttpPort(*cluster_);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static int HttpPort(Cluster& c) {
    std::string after;
    int port = 0;
    if (!c.coordinator().WaitFor("http listening on 127.0.0.1:", absl::Seconds(20), &after)) {
      return 0;
    }
    (void)absl::SimpleAtoi(after.substr(0, after.find(' ')), &port);
    return port;
  }
  void SetUp() override {
    ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
    ASSERT_GT(port_, 0) << cluster_->coordinator().output();
  }
  // The greedy text gRPC Generate gives for kPrompt.
  static std::string GrpcText(int32_t max_tokens) {
    SamplingParams p;
    p.temperature = 0;
    Generation g = Generate(cluster_->InferenceStub().get(),
                            tessera::testing::TextRequest(kPrompt, max_tokens, p));
    EXPECT_TRUE(g.status.ok()) << g.status.error_message();
    return g.text;
  }

  static Cluster* cluster_;
  static int port_;
};
Cluster* HttpTest::cluster_ = nullptr;
int HttpTest::port_ = 0;

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
TEST_F(HttpTest, UnknownModelIs404AndAliasesAreServed) {
  for (const char* path : {"/v1/completions", "/v1/chat/completions"}) {
    const json body = std::string(path) == "/v1/completions"
                          ? json{{"model", "gpt-5"}, {"prompt", kPrompt}, {"max_tokens", 2}}
                          : json{{"model", "gpt-5"},
                                 {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                 {"max_tokens", 2}};
    const Reply r = Request(port_, "POST", path, body.dump());
    EXPECT_EQ(r.status, 404) << path << " -> " << r.body;
    EXPECT_THAT(ErrorMessage(r), HasSubstr("gpt-5"));
    const json e = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(e.is_object()) << r.body;
    EXPECT_EQ(e["error"]["code"], "model_not_found") << r.body;
    EXPECT_EQ(e["error"]["param"], "model") << r.body;
    EXPECT_EQ(e["error"]["type"], "invalid_request_error") << r.body;
  }
  for (const char* name : {"SmolLM2-135M-Instruct.Q4_1", "smol", "tessera-test"}) {
    const Reply r = Request(port_, "POST", "/v1/completions",
                            json{{"model", name}, {"prompt", kPrompt}, {"max_tokens", 2}}.dump());
    ASSERT_EQ(r.status, 200) << name << " -> " << r.body;
    EXPECT_EQ(json::parse(r.body)["model"], name);
  }
  // No model at all: the canonical id.
  const Reply none = Request(port_, "POST", "/v1/completions",
                             json{{"prompt", kPrompt}, {"max_tokens", 2}}.dump());
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_EQ(json::parse(none.body)["model"], "SmolLM2-135M-Instruct.Q4_1");
}

// Request fields whose meaning Tessera does not implement are refused with
// 400 naming them (OpenAI's `param`), not ignored; their no-op values pass.
TEST_F(HttpTest, UnimplementedFieldsAreRefusedNamingThem) {
  const json messages = {{{"role", "user"}, {"content", "hi"}}};
  struct Case {
    const char* path;
    const char* field;
    json value;
  };
  const json tool = {{"type", "function"},
                     {"function", {{"name", "get_weather"}, {"parameters", json::object()}}}};
  const std::vector<Case> refused = {
      {"/v1/chat/completions", "response_format",
       {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", json::object()}}}}},
      {"/v1/chat/completions", "response_format", {{"type", "json_object"}}},
      {"/v1/chat/completions", "tools", json::array({tool})},
      {"/v1/chat/completions", "tool_choice", "required"},
      {"/v1/chat/completions", "tool_choice",
       {{"type", "function"}, {"function", {{"name", "get_weather"}}}}},
      {"/v1/chat/completions", "functions", json::array({tool["function"]})},
      {"/v1/chat/completions", "function_call", {{"name", "get_weather"}}},
      {"/v1/chat/completions", "logit_bias", {{"50256", -100}}},
      {"/v1/chat/completions", "presence_penalty", 0.5},
      {"/v1/chat/completions", "frequency_penalty", -1},
      {"/v1/chat/completions", "modalities", json::array({"text", "audio"})},
      {"/v1/chat/completions", "audio", {{"voice", "alloy"}, {"format", "wav"}}},
      {"/v1/chat/completions", "prediction", {{"type", "content"}, {"content", "x"}}},
      {"/v1/completions", "echo", true},
      {"/v1/completions", "best_of", 3},
      {"/v1/completions", "suffix", "end"},
      {"/v1/completions", "logit_bias", {{"1", 5}}},
  };
  for (const Case& c : refused) {
    json body = std::string(c.path) == "/v1/completions"
                    ? json{{"prompt", kPrompt}, {"max_tokens", 2}}
                    : json{{"messages", messages}, {"max_tokens", 2}};
    body[c.field] = c.value;
    const Reply r = Request(port_, "POST", c.path, body.dump());
    EXPECT_EQ(r.status, 400) << body.dump() << " -> " << r.body;
    EXPECT_THAT(ErrorMessage(r), HasSubstr(c.field)) << body.dump();
    const json e = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(e.is_object() && e["error"]["param"] == c.field) << r.body;
  }
  // A tool call in the conversation is refused too.
  const json with_call = {
      {"messages",
       {{{"role", "user"}, {"content", "hi"}},
        {{"role", "assistant"},
         {"content", nullptr},
         {"tool_calls", {{{"id", "c1"}, {"type", "function"},
                          {"function", {{"name", "f"}, {"arguments", "{}"}}}}}}}}},
      {"max_tokens", 2}};
  const Reply call = Request(port_, "POST", "/v1/chat/completions", with_call.dump());
  EXPECT_EQ(call.status, 400) << call.body;
  EXPECT_THAT(ErrorMessage(call), HasSubstr("messages[1].tool_calls"));

  // Their no-op values, and fields that do not change the output, pass.
  const json noop = {{"messages", messages},      {"max_tokens", 2},
                     {"tools", json::array()},    {"tool_choice", "none"},
                     {"response_format", {{"type", "text"}}},
                     {"logit_bias", json::object()}, {"presence_penalty", 0},
                     {"frequency_penalty", 0.0},  {"modalities", json::array({"text"})},
                     {"user", "u-1"},             {"metadata", {{"k", "v"}}},
                     {"store", false},            {"stream_options", {{"include_usage", true}}},
                     {"parallel_tool_calls", true}, {"some_vendor_field", 1}};
  const Reply ok = Request(port_, "POST", "/v1/chat/completions", noop.dump());
  EXPECT_EQ(ok.status, 200) << ok.body;
  const Reply legacy = Request(port_, "POST", "/v1/completions",
                               json{{"prompt", kPrompt}, {"max_tokens", 2}, {"echo", false},
                                    {"best_of", 1}, {"suffix", ""}}
                                   .dump());
  EXPECT_EQ(legacy.status, 200) << legacy.body;
  EXPECT_TRUE(cluster_->coordinator().WaitFor("ignored unknown fields: some_vendor_field",
                                              absl::Seconds(5)));
}

// A chat body of any shape is answered 400 naming the part, and the
// coordinator lives on: one request once aborted the whole process (an
// uncaught JSON type_error), taking every other stream with it.
TEST_F(HttpTest, MalformedChatShapesGet400AndTheCoordinatorLivesOn) {
  // A stream held open across all of it must finish intact.
  const int held = SendRequest(
      port_, "POST", "/v1/completions",
      json{{"prompt", kPrompt}, {"max_tokens", 24}, {"ignore_eos", true}, {"stream", true}}
          .dump());
  ASSERT_GE(held, 0);
  const std::vector<json> contents = {
      json::array({{{"type", 5}, {"text", "x"}}}),
      json::array({json::object()}),
      json::array({{{"type", nullptr}, {"text", "x"}}}),
      json::array({{{"type", "text"}, {"text", 5}}}),
      json::array({{{"type", "text"}}}),
      json::array({{{"type", json::array()}, {"text", "x"}}}),
      json::array({{{"type", {{"a", 1}}}, {"text", "x"}}}),
      json::array({"just a string"}),
      json::array({json::array({1, 2})}),
      json::array({{{"type", "image_url"}, {"image_url", {{"url", "data:,"}}}}}),
      json(5),
      json(true),
      json::object(),
  };
  for (const json& content : contents) {
    const json body = {{"messages", {{{"role", "user"}, {"content", content}}}}};
    const Reply r = Request(port_, "POST", "/v1/chat/completions", body.dump());
    EXPECT_EQ(r.status, 400) << body.dump() << " -> " << r.body;
    EXPECT_THAT(ErrorMessage(r), HasSubstr("messages[0].content")) << body.dump();
  }
  const std::vector<json> messages = {
      json(5), json::array(), json::array({5}), json::array({{{"role", 5}}}),
      json::array({{{"role", nullptr}}}), json::array({{{"content", "x"}}}),
      json::array({{{"role", "tool"}, {"content", "x"}}}),
      json::array({{{"role", "user"}, {"content", "x"}, {"tool_calls", 7}}}),
  };
  for (const json& m : messages) {
    const json body = {{"messages", m}};
    const Reply r = Request(port_, "POST", "/v1/chat/completions", body.dump());
    EXPECT_EQ(r.status, 400) << body.dump() << " -> " << r.body;
    EXPECT_THAT(ErrorMessage(r), HasSubstr("messages")) << body.dump();
  }
  EXPECT_EQ(cluster_->coordinator().WaitExit(absl::Milliseconds(1)), -1)
      << "the coordinator exited:\n" << cluster_->coordinator().output();
  const Reply after = ReadReply(held);
  const std::vector<std::string> data = SseData(after.body);
  ASSERT_GE(data.size(), 2u) << after.body;
  EXPECT_EQ(data.back(), "[DONE]");
  EXPECT_EQ(json::parse(data[data.size() - 2])["usage"]["completion_tokens"], 24);
}

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

TEST_F(HttpTest, BadRequestsGet400InOpenAiShape) {
  struct Case {
    std::string body;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {json{{"prompt", kPrompt}, {"temperature", -1}}.dump(), "temperature"},
      {json{{"prompt", kPrompt}, {"temperature", "hot"}}.dump(), "temperature"},
      {json{{"prompt", kPrompt}, {"n", 2}}.dump(), "n"},
      {"{\"prompt\": ", "JSON"},
      {json{{"max_tokens", 4}}.dump(), "prompt"},
  };
  for (const Case& c : cases) {
    const Reply r = Request(port_, "POST", "/v1/completions", c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_THAT(ErrorMessage(r), HasSubstr(c.message_part)) << c.body;
  }
  const Reply chat = Request(port_, "POST", "/v1/chat/completions",
                             json{{"messages", {{{"role", "robot"}, {"content", "x"}}}}}.dump());
  EXPECT_EQ(chat.status, 400);
  EXPECT_THAT(ErrorMessage(chat), HasSubstr("role"));
  EXPECT_EQ(Request(port_, "GET", "/v1/nothing").status, 404);
}

// One table of invalid parameters through both front ends: each is refused
// by both (INVALID_ARGUMENT / 400), both messages name the same field, and
// the HTTP error's `param` is that field. The two APIs once disagreed (an
// empty stop string was refused over HTTP and served over gRPC).
TEST_F(HttpTest, GrpcAndHttpRefuseTheSameParameters) {
  struct Case {
    std::string name;
    std::function<void(v1::GenerateRequest*)> grpc;
    json http;           // merged into a completions body, or a chat body if `chat`
    std::string field;   // named by both messages; the HTTP `param`
    bool chat = false;
  };
  auto sampling = [](auto set) {
    return [set](v1::GenerateRequest* r) { set(r->mutable_sampling()); };
  };
  const std::vector<Case> cases = {
      {"temperature<0", sampling([](v1::SamplingParameters* s) { s->set_temperature(-1); }),
       {{"temperature", -1}}, "temperature"},
      {"temperature>100", sampling([](v1::SamplingParameters* s) { s->set_temperature(101); }),
       {{"temperature", 101}}, "temperature"},
      {"top_p=0", sampling([](v1::SamplingParameters* s) { s->set_top_p(0); }),
       {{"top_p", 0}}, "top_p"},
      {"top_p>1", sampling([](v1::SamplingParameters* s) { s->set_top_p(1.5); }),
       {{"top_p", 1.5}}, "top_p"},
      {"min_p<0", sampling([](v1::SamplingParameters* s) { s->set_min_p(-0.5); }),
       {{"min_p", -0.5}}, "min_p"},
      {"min_p>1", sampling([](v1::SamplingParameters* s) { s->set_min_p(2); }),
       {{"min_p", 2}}, "min_p"},
      {"top_k<0", sampling([](v1::SamplingParameters* s) { s->set_top_k(-1); }),
       {{"top_k", -1}}, "top_k"},
      {"repetition_penalty=0",
       sampling([](v1::SamplingParameters* s) { s->set_repetition_penalty(0); }),
       {{"repetition_penalty", 0}}, "repetition_penalty"},
      {"repetition_penalty<0",
       sampling([](v1::SamplingParameters* s) { s->set_repetition_penalty(-2); }),
       {{"repetition_penalty", -2}}, "repetition_penalty"},
      {"max_tokens<0", [](v1::GenerateRequest* r) { r->set_max_tokens(-1); },
       {{"max_tokens", -1}}, "max_tokens"},
      {"max_tokens>context", [](v1::GenerateRequest* r) { r->set_max_tokens(5000); },
       {{"max_tokens", 5000}}, "max_tokens"},
      {"stop empty", [](v1::GenerateRequest* r) { r->add_stop(""); },
       {{"stop", json::array({""})}}, "stop"},
      {"stop second empty",
       [](v1::GenerateRequest* r) {
         r->add_stop("ok");
         r->add_stop("");
       },
       {{"stop", json::array({"ok", ""})}}, "stop"},
      {"stop_token_ids<0", [](v1::GenerateRequest* r) { r->add_stop_token_ids(-1); },
       {{"stop_token_ids", json::array({-1})}}, "stop_token_ids"},
      {"stop_token_ids>vocab", [](v1::GenerateRequest* r) { r->add_stop_token_ids(49152); },
       {{"stop_token_ids", json::array({49152})}}, "stop_token_ids"},
      {"top_logprobs>20", [](v1::GenerateRequest* r) { r->set_top_logprobs(21); },
       {{"logprobs", true}, {"top_logprobs", 21}}, "top_logprobs", true},
      {"top_logprobs<0", [](v1::GenerateRequest* r) { r->set_top_logprobs(-1); },
       {{"logprobs", true}, {"top_logprobs", -1}}, "top_logprobs", true},
      {"prompt id outside vocab",
       [](v1::GenerateRequest* r) { r->mutable_token_ids()->add_ids(49152); },
       {{"prompt", json::array({49152})}}, "prompt"},
      {"unknown role",
       [](v1::GenerateRequest* r) {
         v1::ChatMessage* m = r->mutable_chat()->add_messages();
         m->set_role("robot");
         m->set_content("x");
       },
       {{"messages", {{{"role", "robot"}, {"content", "x"}}}}}, "messages", true},
  };
  for (const Case& c : cases) {
    v1::GenerateRequest g;
    g.set_text(kPrompt);
    g.set_max_tokens(4);
    c.grpc(&g);
    const Generation gen = Generate(cluster_->InferenceStub().get(), g);
    EXPECT_EQ(gen.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.name << ": " << gen.status.error_message();
    EXPECT_THAT(gen.status.error_message(), HasSubstr(c.field)) << c.name;

    json body = c.chat ? json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}}
                       : json{{"prompt", kPrompt}};
    body["max_tokens"] = 4;
    body.update(c.http);
    const Reply r =
        Request(port_, "POST", c.chat ? "/v1/chat/completions" : "/v1/completions", body.dump());
    EXPECT_EQ(r.status, 400) << c.name << ": " << body.dump() << " -> " << r.body;
    EXPECT_THAT(ErrorMessage(r), HasSubstr(c.field)) << c.name;
    const json e = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(e.is_object() && e["error"]["param"] == c.field) << c.name << ": " << r.body;
  }
}

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
      if (i > 0) EXPECT_LE(top[i]["logprob"].get<double>(), top[i - 1]["logprob"].get<double>());
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

TEST_F(HttpTest, TopLogprobsOutOfRangeOrWithoutLogprobsGet400) {
  const json messages = {{{"role", "user"}, {"content", "hi"}}};
  const std::vector<json> bodies = {
      {{"messages", messages}, {"top_logprobs", 2}},
      {{"messages", messages}, {"logprobs", false}, {"top_logprobs", 2}},
      {{"messages", messages}, {"logprobs", true}, {"top_logprobs", 21}},
  };
  for (const json& b : bodies) {
    const Reply r = Request(port_, "POST", "/v1/chat/completions", b.dump());
    EXPECT_EQ(r.status, 400) << b.dump() << " -> " << r.body;
    EXPECT_THAT(ErrorMessage(r), HasSubstr("top_logprobs")) << b.dump();
    EXPECT_EQ(json::parse(r.body)["error"]["param"], "top_logprobs") << r.body;
  }
  const Reply legacy = Request(port_, "POST", "/v1/completions",
                               json{{"prompt", kPrompt}, {"logprobs", 21}}.dump());
  EXPECT_EQ(legacy.status, 400) << legacy.body;
  EXPECT_EQ(json::parse(legacy.body)["error"]["param"], "logprobs") << legacy.body;
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
