// The OpenAI HTTP API's refusals against a real 1-worker cluster, over raw
// sockets: unknown models (404), unimplemented and out-of-range fields,
// malformed chat shapes (400 naming the field, the coordinator lives on),
// and the same parameters refused the same way over gRPC and HTTP.
// References are the API contract's status codes and field names.
#include "tests/cluster/http_fixture.h"

namespace tessera {
namespace {

using namespace ::tessera::http_testing;  // NOLINT: the fixture's helpers

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

}  // namespace
}  // namespace tessera
