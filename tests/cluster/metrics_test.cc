// Observability end to end (issue 16): a real coordinator and two real
// workers, each with --metrics-listen, scraped by a real Prometheus server
// (Debian's `prometheus`) every second while requests run, and checked
// through Prometheus' HTTP API:
//   - every target is up, the TTFT and end-to-end histograms count exactly
//     the requests sent, generated tokens have a positive rate, each stage's
//     step-time histogram and each worker's moved;
//   - `promtool check metrics` finds nothing to say about any endpoint's
//     exposition, and `promtool check config` accepts deploy/prometheus;
//   - every series a panel of deploy/grafana/tessera.json queries is in the
//     live /metrics output, and so is every series of tessera-gpu.json: the
//     second worker loads tests/common/fake_nvml.c as its NVML
//     (TESSERA_NVML_LIBRARY), a stand-in with two GPUs; the first has none
//     and says so in one log line.
// Without the prometheus or promtool binary (scripts/setup.sh installs
// them) the tests that need them print why and are skipped.
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/cluster.h"
#include "testing/process.h"
#include "tests/engine/test_paths.h"

namespace tessera {
namespace {

using ::tessera::testing::ChildProcess;
using ::tessera::testing::Cluster;
using ::tessera::testing::ClusterOptions;
using ::tessera::testing::DefaultModelPath;

constexpr int kRequests = 5;
constexpr int kMaxTokens = 8;

bool HaveBinary(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

// Runs argv (through /usr/bin/env) and returns (exit code, output).
std::pair<int, std::string> RunCommand(std::vector<std::string> argv, absl::Duration timeout) {
  argv.insert(argv.begin(), "/usr/bin/env");
  ChildProcess p(argv);
  const int rc = p.WaitExit(timeout);
  return {rc, p.output()};
}

std::string Get(const std::string& url) {
  return RunCommand({"curl", "-sS", "--max-time", "30", url}, absl::Seconds(40)).second;
}

// "host:port" after "metrics listening on " in a process's log.
std::string MetricsAddress(ChildProcess& p) {
  std::string after;
  if (!p.WaitFor("metrics listening on ", absl::Seconds(20), &after)) return "";
  return after.substr(0, after.find(' '));
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

class MetricsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.model = DefaultModelPath();
    o.workers = 2;
    o.coordinator_flags = {"--max-context=512", "--http-listen=127.0.0.1:0",
                           "--metrics-listen=127.0.0.1:0"};
    o.worker_flags = {{"--metrics-listen=127.0.0.1:0"}, {"--metrics-listen=127.0.0.1:0"}};
    o.worker_prefix = {{"/usr/bin/env", "TESSERA_NVML_LIBRARY=/nonexistent/libnvidia-ml.so.1"},
                       {"/usr/bin/env", std::string("TESSERA_NVML_LIBRARY=") + FAKE_NVML_PATH}};
    cluster_ = new Cluster(o);
    if (!cluster_->ready()) return;
    std::string after;
    if (cluster_->coordinator().WaitFor("http listening on 127.0.0.1:", absl::Seconds(20),
                                        &after)) {
      (void)absl::SimpleAtoi(after.substr(0, after.find(' ')), &http_port_);
    }
    targets_ = new std::vector<std::string>{MetricsAddress(cluster_->coordinator()),
                                            MetricsAddress(cluster_->worker(0)),
                                            MetricsAddress(cluster_->worker(1))};
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete targets_;
  }

  void SetUp() override {
    ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
    ASSERT_GT(http_port_, 0);
    for (const std::string& t : *targets_) ASSERT_FALSE(t.empty());
  }

  // Sends kRequests completions over HTTP, one after another.
  static void SendRequests() {
    for (int i = 0; i < kRequests; ++i) {
      const auto [rc, out] = RunCommand(
          {"curl", "-sS", "--max-time", "60", "-H", "Content-Type: application/json", "-d",
           absl::StrCat(R"({"prompt":"The capital of France is","max_tokens":)", kMaxTokens,
                        R"(,"temperature":0,"ignore_eos":true})"),
           absl::StrCat("http://127.0.0.1:", http_port_, "/v1/completions")},
          absl::Seconds(70));
      ASSERT_EQ(rc, 0) << out;
      ASSERT_THAT(out, ::testing::HasSubstr("\"finish_reason\":\"length\"")) << out;
    }
  }

  static std::string AllMetrics() {
    std::string all;
    for (const std::string& t : *targets_) all += Get("http://" + t + "/metrics");
    return all;
  }

  static Cluster* cluster_;
  static int http_port_;
  static std::vector<std::string>* targets_;
};

Cluster* MetricsTest::cluster_ = nullptr;
int MetricsTest::http_port_ = 0;
std::vector<std::string>* MetricsTest::targets_ = nullptr;

TEST_F(MetricsTest, PromtoolFindsNothingInAnyEndpointOrTheScrapeConfig) {
  if (!HaveBinary("promtool")) GTEST_SKIP() << "promtool not installed (prometheus package)";
  SendRequests();
  for (const std::string& t : *targets_) {
    const std::string text = Get("http://" + t + "/metrics");
    ASSERT_THAT(text, ::testing::HasSubstr("tessera_build_info")) << t;
    const std::string file = ::testing::TempDir() + "/metrics.txt";
    std::ofstream(file) << text;
    const auto [rc, out] =
        RunCommand({"bash", "-c", "promtool check metrics < '" + file + "'"}, absl::Seconds(30));
    EXPECT_EQ(rc, 0) << t << ":\n" << out;
    EXPECT_EQ(out, "") << t;
  }
  const auto [rc, out] = RunCommand({"promtool", "check", "config",
                              std::string(TESSERA_SOURCE_DIR) + "/deploy/prometheus/prometheus.yml"},
                             absl::Seconds(30));
  EXPECT_EQ(rc, 0) << out;
}

// `tessera status`: the table names both stages' workers and their step
// times; --json carries the same as the message's fields.
TEST_F(MetricsTest, TesseraStatusShowsReplicasStagesAndTotals) {
  SendRequests();
  const auto [rc, table] = RunCommand(
      {TESSERA_BINARY, "status", "--coordinator", cluster_->address()}, absl::Seconds(30));
  ASSERT_EQ(rc, 0) << table;
  EXPECT_THAT(table, ::testing::HasSubstr("1 of 1 replica(s) serving, 2 worker(s)"));
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(table, ::testing::HasSubstr(cluster_->StageAddress(i))) << table;
  }
  const auto [jrc, json] = RunCommand(
      {TESSERA_BINARY, "status", "--coordinator", cluster_->address(), "--json"},
      absl::Seconds(30));
  ASSERT_EQ(jrc, 0) << json;
  const nlohmann::json s = nlohmann::json::parse(json);
  ASSERT_EQ(s["replicas"].size(), 1u) << json;
  const auto& r = s["replicas"][0];
  EXPECT_EQ(r["state"], "serving");
  ASSERT_EQ(r["stages"].size(), 2u);
  int layers = 0;
  for (int i = 0; i < 2; ++i) {
    const auto& st = r["stages"][i];
    EXPECT_EQ(st["stage"], i);
    EXPECT_EQ(st["address"], cluster_->StageAddress(i));
    EXPECT_EQ(st["state"], "serving");
    EXPECT_LT(st["heartbeat_age_seconds"].get<double>(), 5.0);
    EXPECT_GT(st["step_p50_seconds"].get<double>(), 0.0);
    EXPECT_GE(st["step_p99_seconds"].get<double>(), st["step_p50_seconds"].get<double>());
    layers += st["layer_end"].get<int>() - st["layer_begin"].get<int>();
  }
  EXPECT_EQ(layers, 30);  // SmolLM2's layers, split between the two stages
  // uint64 fields print as JSON strings (proto3's JSON mapping).
  EXPECT_GE(std::stoll(s["requests_finished"].get<std::string>()), kRequests);
  EXPECT_GE(std::stoll(s["generated_tokens"].get<std::string>()), kRequests * kMaxTokens);
  EXPECT_EQ(s["workers"], 2);
}

// Every tessera_* name a panel's PromQL mentions must be a series some
// endpoint exposes (histogram names as their _bucket series).
TEST_F(MetricsTest, EveryDashboardSeriesIsExposed) {
  SendRequests();
  const std::string live = AllMetrics();
  std::set<std::string> exposed;
  for (absl::string_view line : absl::StrSplit(live, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    exposed.insert(std::string(line.substr(0, line.find_first_of("{ "))));
  }
  const std::regex name(R"(\btessera_[a-z0-9_]+)");
  for (const auto& [file, least] : {std::pair<const char*, int>{"tessera.json", 20},
                                    {"tessera-gpu.json", 6}}) {
    std::ifstream in(std::string(TESSERA_SOURCE_DIR) + "/deploy/grafana/" + file);
    ASSERT_TRUE(in.good()) << file;
    const nlohmann::json dashboard = nlohmann::json::parse(in);
    int queried = 0;
    for (const auto& panel : dashboard["panels"]) {
      if (!panel.contains("targets")) continue;
      for (const auto& target : panel["targets"]) {
        const std::string expr = target["expr"];
        for (std::sregex_iterator it(expr.begin(), expr.end(), name), end; it != end; ++it) {
          ++queried;
          EXPECT_TRUE(exposed.count(it->str()) > 0)
              << file << ": panel \"" << panel["title"].get<std::string>() << "\" queries "
              << it->str() << ", which no endpoint exposes";
        }
      }
    }
    EXPECT_GE(queried, least) << file;
  }
  // The worker without NVML said why, once; the one with it found 2 GPUs.
  const std::string quiet = cluster_->worker(0).output();
  const std::string reason = "no GPU telemetry: /nonexistent/libnvidia-ml.so.1";
  EXPECT_NE(quiet.find(reason), std::string::npos) << quiet;
  EXPECT_EQ(quiet.find(reason), quiet.rfind(reason)) << "said more than once:\n" << quiet;
  EXPECT_THAT(cluster_->worker(1).output(),
              ::testing::HasSubstr("GPU telemetry through NVML: 2 device(s)"));
}

// A real Prometheus scrapes the three endpoints every second; what it
// stores must move with the traffic.
TEST_F(MetricsTest, PrometheusSeesRatesAndHistogramsMove) {
  if (!HaveBinary("prometheus")) GTEST_SKIP() << "prometheus not installed (prometheus package)";
  const std::string dir = ::testing::TempDir() + "/prometheus";
  std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str());
  {
    std::ofstream config(dir + "/prometheus.yml");
    config << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
           << "scrape_configs:\n"
           << "  - job_name: coordinator\n    static_configs:\n      - targets: [\""
           << (*targets_)[0] << "\"]\n"
           << "  - job_name: workers\n    static_configs:\n      - targets: [\""
           << (*targets_)[1] << "\", \"" << (*targets_)[2] << "\"]\n";
  }
  const int port = FreePort();
  ASSERT_GT(port, 0);
  ChildProcess prometheus({"/usr/bin/env", "prometheus", "--config.file=" + dir + "/prometheus.yml",
                           "--storage.tsdb.path=" + dir + "/data",
                           absl::StrCat("--web.listen-address=127.0.0.1:", port)});
  ASSERT_TRUE(prometheus.WaitFor("Server is ready to receive web requests", absl::Seconds(60)))
      << prometheus.output();
  // One value of an instant query, or NaN when it has none.
  auto query = [&](const std::string& promql) {
    const std::string body =
        RunCommand({"curl", "-sS", "--max-time", "10", "-G",
             absl::StrCat("http://127.0.0.1:", port, "/api/v1/query"), "--data-urlencode",
             "query=" + promql},
            absl::Seconds(20))
            .second;
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success" || j["data"]["result"].empty()) {
      return std::nan("");
    }
    return std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
  };
  auto wait_until = [&](const std::string& promql, auto ok) {
    double v = std::nan("");
    for (int i = 0; i < 60; ++i) {
      v = query(promql);
      if (ok(v)) return v;
      absl::SleepFor(absl::Milliseconds(500));
    }
    return v;
  };
  EXPECT_EQ(wait_until("count(up == 1)", [](double v) { return v == 3; }), 3)
      << prometheus.output();
  const double before = query("sum(tessera_time_to_first_token_seconds_count)");
  SendRequests();
  const double base = std::isnan(before) ? 0 : before;
  // A request's first token is counted before its end, so a scrape taken
  // during the last request can hold all the first tokens and not yet all
  // the ends: wait for each.
  EXPECT_EQ(wait_until("sum(tessera_time_to_first_token_seconds_count)",
                       [&](double v) { return v == base + kRequests; }),
            base + kRequests);
  EXPECT_EQ(wait_until("sum(tessera_e2e_request_latency_seconds_count)",
                       [&](double v) { return v == base + kRequests; }),
            base + kRequests);
  EXPECT_EQ(query("sum(tessera_requests_finished_total)"), base + kRequests);
  EXPECT_GT(wait_until("sum(rate(tessera_generation_tokens_total[30s]))",
                       [](double v) { return v > 0; }),
            0);
  EXPECT_GE(query("sum(tessera_generation_tokens_total)"), kRequests * kMaxTokens);
  EXPECT_EQ(query("count(tessera_stage_step_seconds_count > 0)"), 2);
  EXPECT_EQ(query("count(tessera_worker_step_seconds_count > 0)"), 2);
  EXPECT_EQ(query("sum(tessera_kv_cache_capacity_blocks) > 0"),
            query("sum(tessera_kv_cache_capacity_blocks)"));
  EXPECT_EQ(query("sum(tessera_replica_state{state=\"serving\"})"), 1);
  const double p99 = query(
      "histogram_quantile(0.99, sum by (le) (rate(tessera_inter_token_latency_seconds_bucket[1m])))");
  EXPECT_GT(p99, 0);
  EXPECT_LT(p99, 60);
}

}  // namespace
}  // namespace tessera
