// Metrics read from live state when Prometheus scrapes, rather than kept as
// counters: queue lengths, KV use, heartbeat ages, replica states. A
// Collector is a prometheus::Collectable whose Collect() calls a function
// that builds the families from whatever it reads (under the owner's own
// locks), so nothing is copied between scrapes.
//
// FamilyBuilder makes those families: one name, help text and type, and a
// sample per label set.
//
// Thread-safety: Collect() runs on the scraping thread; the function must be
// thread-safe and must not block for long.
#ifndef TESSERA_COMMON_METRICS_COLLECTOR_H_
#define TESSERA_COMMON_METRICS_COLLECTOR_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace tessera {

class Collector final : public prometheus::Collectable {
 public:
  using Fn = std::function<std::vector<prometheus::MetricFamily>()>;
  explicit Collector(Fn fn) : fn_(std::move(fn)) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return fn_(); }

 private:
  const Fn fn_;
};

class FamilyBuilder {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  static FamilyBuilder Gauge(std::string name, std::string help) {
    return FamilyBuilder(std::move(name), std::move(help), prometheus::MetricType::Gauge);
  }
  static FamilyBuilder Counter(std::string name, std::string help) {
    return FamilyBuilder(std::move(name), std::move(help), prometheus::MetricType::Counter);
  }

  // One sample with `labels` (a gauge's or counter's value).
  FamilyBuilder& Add(const Labels& labels, double value) {
    prometheus::ClientMetric m;
    for (const auto& [k, v] : labels) m.label.push_back({k, v});
    if (family_.type == prometheus::MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    family_.metric.push_back(std::move(m));
    return *this;
  }
  FamilyBuilder& Add(double value) { return Add({}, value); }

  // Appends the family to `out` (a family without samples too: its HELP
  // and TYPE lines tell a scraper the metric exists).
  void AppendTo(std::vector<prometheus::MetricFamily>* out) { out->push_back(std::move(family_)); }

 private:
  FamilyBuilder(std::string name, std::string help, prometheus::MetricType type) {
    family_.name = std::move(name);
    family_.help = std::move(help);
    family_.type = type;
  }
  prometheus::MetricFamily family_;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_METRICS_COLLECTOR_H_
