#include "coordinator/planner.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace {

uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Storage formats the planner may suggest, in the order it tries them, with
// their bits per weight including block scales.
struct Quantization {
  const char* name;
  double bits_per_weight;
};
constexpr Quantization kQuantizations[] = {
    {"F16", 16.0}, {"Q8_0", 8.5}, {"Q6_K", 6.5625}, {"Q5_K", 5.5},
    {"Q4_K", 4.5}, {"Q4_1", 5.0}, {"Q4_0", 4.5},
};

// The byte sizes a plan places on stages: the model as stored, or as it
// would be stored in another format.
struct ModelParts {
  std::vector<uint64_t> layer;
  uint64_t embedding = 0;
  uint64_t head = 0;  // includes `tied`
  uint64_t tied = 0;
  uint64_t other = 0;
  // Estimated decode time per token (ModelFootprint::layer_cost and friends).
  std::vector<double> layer_cost;
  double head_cost = 0;
  double other_cost = 0;

  uint64_t total() const {
    uint64_t t = embedding + head - tied + other;
    for (uint64_t b : layer) t += b;
    return t;
  }
};

// Time counts as bytes where the footprint has no estimate (a hand-built one),
// and for a model priced in another format (only whether it fits matters).
void CostsAreBytes(ModelParts* p) {
  p->layer_cost.assign(p->layer.begin(), p->layer.end());
  p->head_cost = static_cast<double>(p->head);
  p->other_cost = static_cast<double>(p->other);
}

ModelParts PartsAsStored(const ModelFootprint& m) {
  ModelParts p;
  p.layer = m.layer_bytes;
  p.embedding = m.embedding_bytes;
  p.head = m.head_bytes;
  p.tied = m.tied_embedding_bytes;
  p.other = m.other_bytes;
  if (m.layer_cost.size() == m.layer_bytes.size()) {
    p.layer_cost = m.layer_cost;
    p.head_cost = m.head_cost;
    p.other_cost = m.other_cost;
  } else {
    CostsAreBytes(&p);
  }
  return p;
}

// Prices every part at `bits_per_weight`. Uses the per-part element counts
// when the footprint has them; otherwise (a hand-built footprint) scales the
// stored bytes by the ratio of the priced parameter count to the stored total.
ModelParts PartsAt(const ModelFootprint& m, double bits_per_weight) {
  auto price = [&](uint64_t elements) {
    return static_cast<uint64_t>(std::ceil(static_cast<double>(elements) * bits_per_weight / 8));
  };
  ModelParts p;
  if (m.layer_parameters.size() == m.layer_bytes.size() && m.parameter_count > 0) {
    for (uint64_t e : m.layer_parameters) p.layer.push_back(price(e));
    p.embedding = price(m.embedding_parameters);
    p.head = price(m.head_parameters);
    p.tied = m.tied_embedding_bytes > 0 ? p.embedding : 0;
    p.other = price(m.other_parameters);
    CostsAreBytes(&p);
    return p;
  }
  const double scale = static_cast<double>(price(m.parameter_count)) /
                       static_cast<double>(std::max<uint64_t>(1, m.total_bytes()));
  auto scaled = [&](uint64_t b) {
    return static_cast<uint64_t>(std::ceil(static_cast<double>(b) * scale));
  };
  for (uint64_t b : m.layer_bytes) p.layer.push_back(scaled(b));
  p.embedding = scaled(m.embedding_bytes);
  p.head = scaled(m.head_bytes);
  p.tied = scaled(m.tied_embedding_bytes);
  p.other = scaled(m.other_bytes);
  CostsAreBytes(&p);
  return p;
}

// What stage j holds when it runs layers [b, e): everything the DP asks.
class StageCosts {
 public:
  StageCosts(const ModelParts& parts, const ModelConfig& config,
             absl::Span<const WorkerCapacity> workers, const PlanOptions& options)
      : parts_(parts), workers_(workers), options_(options) {
    prefix_.push_back(0);
    for (uint64_t b : parts.layer) prefix_.push_back(prefix_.back() + b);
    cost_prefix_.push_back(0);
    for (double t : parts.layer_cost) cost_prefix_.push_back(cost_prefix_.back() + t);
    kv_per_layer_ = KvBytesPerTokenPerLayer(config, options.kv_dtype_bytes);
    // Each extra rank keeps its own copy of the F32 norms: two per layer and
    // the output norm.
    norms_per_layer_ = 2ull * 4 * static_cast<uint64_t>(config.n_embd);
    output_norm_ = 4ull * static_cast<uint64_t>(config.n_embd);
    activation_ = ActivationBytes(config, options, /*last_stage=*/false);
    activation_last_ = ActivationBytes(config, options, /*last_stage=*/true);
    min_blocks_ = CeilDiv(options.max_context, options.block_size);
    use_bandwidth_ = std::all_of(workers.begin(), workers.end(), [](const WorkerCapacity& w) {
      return w.bandwidth_bytes_per_s > 0;
    });
  }

  int num_layers() const { return static_cast<int>(parts_.layer.size()); }
  int num_workers() const { return static_cast<int>(workers_.size()); }
  bool first(int j) const { return j == 0; }
  bool last(int j) const { return j == num_workers() - 1; }
  bool use_bandwidth() const { return use_bandwidth_; }
  uint64_t min_blocks() const { return min_blocks_; }

  uint64_t Weight(int j, int b, int e) const {
    uint64_t w = prefix_[e] - prefix_[b] + parts_.other;
    if (first(j)) w += parts_.embedding;
    if (last(j)) w += parts_.head;
    // One process holding both ends stores the tied tensor once.
    if (first(j) && last(j)) w -= parts_.tied;
    const uint64_t extra_ranks = static_cast<uint64_t>(Tp(j) - 1);
    w += extra_ranks * norms_per_layer_ * static_cast<uint64_t>(e - b);
    if (last(j)) w += extra_ranks * output_norm_;
    return w;
  }
  // Estimated time of one decoded token on the stage, in layer bytes
  // (ModelFootprint::layer_cost): its layers and the whole LM head (every
  // decoded token needs logits), but not the token embedding, of which a
  // lookup reads one row. Stage 0 stores the embedding without paying for it
  // in time, and a plan that charged it would starve stage 0 of layers.
  double Work(int j, int b, int e) const {
    double t = cost_prefix_[e] - cost_prefix_[b] + parts_.other_cost;
    if (last(j)) t += parts_.head_cost;
    return t;
  }
  uint64_t KvPerToken(int b, int e) const { return static_cast<uint64_t>(e - b) * kv_per_layer_; }
  // Every rank of a tensor-parallel worker has the scratch of a whole step
  // (its residual stream and gathered logits are full width), so this is an
  // upper bound for tp > 1.
  uint64_t Activation(int j) const {
    return (last(j) ? activation_last_ : activation_) * static_cast<uint64_t>(Tp(j));
  }
  int Tp(int j) const { return std::max(1, workers_[j].tensor_parallel); }
  uint64_t BlockBytes(int b, int e) const { return KvPerToken(b, e) * options_.block_size; }
  // Weights, activations and the KV of one max_context sequence.
  uint64_t MinNeed(int j, int b, int e) const {
    return Weight(j, b, e) + Activation(j) + min_blocks_ * BlockBytes(b, e);
  }
  bool Fits(int j, int b, int e) const { return MinNeed(j, b, e) <= workers_[j].memory_bytes; }
  // Blocks the memory left after weights and activations holds; Fits() first.
  uint64_t BlocksFit(int j, int b, int e) const {
    const uint64_t left = workers_[j].memory_bytes - Weight(j, b, e) - Activation(j);
    return left / BlockBytes(b, e);
  }
  double Cost(int j, int b, int e) const {
    const double t = Work(j, b, e);
    return use_bandwidth_ ? t / workers_[j].bandwidth_bytes_per_s : t;
  }
  double Seconds(int j, int b, int e) const {
    const double bw = workers_[j].bandwidth_bytes_per_s;
    return bw > 0 ? Work(j, b, e) / bw : 0.0;
  }

 private:
  const ModelParts& parts_;
  absl::Span<const WorkerCapacity> workers_;
  const PlanOptions& options_;
  std::vector<uint64_t> prefix_;
  std::vector<double> cost_prefix_;
  uint64_t kv_per_layer_ = 0;
  uint64_t norms_per_layer_ = 0;
  uint64_t output_norm_ = 0;
  uint64_t activation_ = 0;
  uint64_t activation_last_ = 0;
  uint64_t min_blocks_ = 0;
  bool use_bandwidth_ = false;
};

// Splits layers [0, L) into W contiguous non-empty ranges, range j going to
// worker j, minimising the largest score(j, b, e) over the stages; a stage
// whose score is nullopt is not allowed. Exact: O(W × L²) evaluations.
// Returns the W + 1 boundaries, or nullopt when no split is allowed.
template <typename ScoreFn>
std::optional<std::vector<int>> MinMaxSplit(int L, int W, ScoreFn score) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // best[j][e]: the smallest max score over stages 0..j-1 covering [0, e).
  std::vector<std::vector<double>> best(W + 1, std::vector<double>(L + 1, kInf));
  std::vector<std::vector<int>> from(W + 1, std::vector<int>(L + 1, -1));
  best[0][0] = -kInf;
  for (int j = 1; j <= W; ++j) {
    // Stage j-1 ends at e; the stages after it each need one layer.
    for (int e = j; e <= L - (W - j); ++e) {
      for (int b = j - 1; b < e; ++b) {
        if (best[j - 1][b] == kInf) continue;
        const std::optional<double> s = score(j - 1, b, e);
        if (!s) continue;
        const double v = std::max(best[j - 1][b], *s);
        if (v < best[j][e]) {
          best[j][e] = v;
          from[j][e] = b;
        }
      }
    }
  }
  if (best[W][L] == kInf) return std::nullopt;
  std::vector<int> bounds(W + 1);
  bounds[W] = L;
  for (int j = W; j > 0; --j) bounds[j - 1] = from[j][bounds[j]];
  return bounds;
}

// The split with the most KV blocks among those whose slowest stage is as
// fast as possible; nullopt when nothing fits.
std::optional<std::vector<int>> BestSplit(const StageCosts& c) {
  const int L = c.num_layers(), W = c.num_workers();
  auto fastest = MinMaxSplit(L, W, [&](int j, int b, int e) -> std::optional<double> {
    if (!c.Fits(j, b, e)) return std::nullopt;
    return c.Cost(j, b, e);
  });
  if (!fastest) return std::nullopt;
  double slowest = 0;
  for (int j = 0; j < W; ++j)
    slowest = std::max(slowest, c.Cost(j, (*fastest)[j], (*fastest)[j + 1]));
  // Costs are prefix-sum differences of doubles, so equal stages can differ
  // in the last bits; the tolerance absorbs that rounding, nothing more.
  const double limit = slowest * (1 + 1e-9);
  auto roomiest = MinMaxSplit(L, W, [&](int j, int b, int e) -> std::optional<double> {
    if (!c.Fits(j, b, e) || c.Cost(j, b, e) > limit) return std::nullopt;
    return -static_cast<double>(c.BlocksFit(j, b, e));
  });
  return roomiest ? roomiest : fastest;
}

std::string LayerLabel(int begin, int end, bool embedding, bool head) {
  std::string s = absl::StrCat(begin, "-", end - 1);
  if (embedding) absl::StrAppend(&s, " +embd");
  if (head) absl::StrAppend(&s, " +head");
  return s;
}

std::string ResourceExhaustedMessage(const ModelFootprint& model,
                                     absl::Span<const WorkerCapacity> workers,
                                     const PlanOptions& options, const StageCosts& c) {
  const int L = c.num_layers(), W = c.num_workers();
  uint64_t total_memory = 0;
  for (const WorkerCapacity& w : workers) total_memory += w.memory_bytes;
  const uint64_t kv_token = c.KvPerToken(0, L);
  const uint64_t kv_needed = kv_token * c.min_blocks() * options.block_size * options.max_seqs;
  std::string msg = absl::StrFormat(
      "the model does not fit: weights %s (%s, %d layers) + KV cache %s for %d sequence(s) of "
      "%d tokens (%d B/token) + activations; the %d worker(s) have %s in all",
      FormatBytes(model.total_bytes()), model.weight_type.empty() ? "?" : model.weight_type, L,
      FormatBytes(kv_needed), options.max_seqs, options.max_context, kv_token, W,
      FormatBytes(total_memory));

  // The split that comes closest, to show which stage is short and by how much.
  auto closest = MinMaxSplit(L, W, [&](int j, int b, int e) -> std::optional<double> {
    return static_cast<double>(c.MinNeed(j, b, e)) - static_cast<double>(workers[j].memory_bytes);
  });
  if (closest) {
    int tight = 0;
    double worst = -std::numeric_limits<double>::infinity();
    for (int j = 0; j < W; ++j) {
      const double d = static_cast<double>(c.MinNeed(j, (*closest)[j], (*closest)[j + 1])) -
                       static_cast<double>(workers[j].memory_bytes);
      if (d > worst) worst = d, tight = j;
    }
    const int b = (*closest)[tight], e = (*closest)[tight + 1];
    absl::StrAppend(
        &msg,
        absl::StrFormat(
            ". Tightest stage: worker %s with layers %s needs %s (weights %s, activations %s, KV "
            "for one %d-token sequence %s) but has %s",
            workers[tight].name, LayerLabel(b, e, c.first(tight), c.last(tight)),
            FormatBytes(c.MinNeed(tight, b, e)), FormatBytes(c.Weight(tight, b, e)),
            FormatBytes(c.Activation(tight)), options.max_context,
            FormatBytes(c.min_blocks() * c.BlockBytes(b, e)),
            FormatBytes(workers[tight].memory_bytes)));
  }

  uint64_t q4_0_bytes = 0;
  for (const Quantization& q : kQuantizations) {
    const ModelParts parts = PartsAt(model, q.bits_per_weight);
    if (std::string_view(q.name) == "Q4_0") q4_0_bytes = parts.total();
    // A format no smaller than the file's own cannot be the answer.
    if (parts.total() >= model.total_bytes()) continue;
    const StageCosts priced(parts, model.config, workers, options);
    if (BestSplit(priced)) {
      absl::StrAppend(&msg, absl::StrFormat(". %s (%g bits/weight, about %s of weights) would fit",
                                            q.name, q.bits_per_weight, FormatBytes(parts.total())));
      return msg;
    }
  }
  absl::StrAppend(
      &msg, absl::StrFormat(". No quantization fits: even Q4_0 would need %s of "
                            "weights; add workers or memory, or lower the context or the largest "
                            "step (max batch tokens)",
                            FormatBytes(q4_0_bytes)));
  return msg;
}

absl::Status ValidateInputs(const ModelFootprint& model, absl::Span<const WorkerCapacity> workers,
                            const PlanOptions& o) {
  if (o.max_context <= 0 || o.max_seqs <= 0 || o.max_batch_tokens <= 0 || o.block_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "plan options must be positive: max_context ", o.max_context, ", max_seqs ", o.max_seqs,
        ", max_batch_tokens ", o.max_batch_tokens, ", block_size ", o.block_size));
  }
  if (o.kv_dtype_bytes != 2 && o.kv_dtype_bytes != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_dtype_bytes must be 4 (f32) or 2 (f16), not ", o.kv_dtype_bytes));
  }
  const ModelConfig& c = model.config;
  if (model.layer_bytes.empty() || static_cast<int>(model.layer_bytes.size()) != c.n_layer) {
    return absl::InvalidArgumentError(absl::StrCat("the footprint has ", model.layer_bytes.size(),
                                                   " layers but its config says ", c.n_layer));
  }
  if (c.n_kv_head <= 0 || c.head_dim <= 0 || c.n_head <= 0 || c.n_embd <= 0 || c.n_ff <= 0 ||
      c.vocab_size <= 0) {
    return absl::InvalidArgumentError(
        "the model config needs positive n_embd, n_ff, n_head, n_kv_head, head_dim and vocab_size");
  }
  if (workers.empty()) return absl::InvalidArgumentError("a plan needs at least one worker");
  if (workers.size() > model.layer_bytes.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(workers.size(), " workers but only ", model.layer_bytes.size(),
                     " layers: every worker needs at least one layer"));
  }
  for (const WorkerCapacity& w : workers) {
    if (!std::isfinite(w.bandwidth_bytes_per_s) || w.bandwidth_bytes_per_s < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("worker ", w.name, ": bandwidth ", w.bandwidth_bytes_per_s,
                       " must be a non-negative number of bytes per second"));
    }
    const std::string refusal = TensorParallelRefusal(c, std::max(1, w.tensor_parallel));
    if (!refusal.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("worker ", w.name, ": ", refusal));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string TensorParallelRefusal(const ModelConfig& c, int tp) {
  if (tp < 1) return absl::StrFormat("tensor-parallel degree %d must be at least 1", tp);
  if (c.n_kv_head % tp != 0) {
    return absl::StrFormat(
        "tensor-parallel degree %d does not divide the model's %d KV heads (%d query heads); "
        "attention is split by KV-head groups, so tp must divide %d",
        tp, c.n_kv_head, c.n_head, c.n_kv_head);
  }
  if (c.n_ff % tp != 0) {
    return absl::StrFormat(
        "tensor-parallel degree %d does not divide the feed-forward size n_ff %d", tp, c.n_ff);
  }
  const int64_t rows_per_rank = (c.vocab_size + tp - 1) / tp;
  if (rows_per_rank * (tp - 1) >= c.vocab_size) {
    return absl::StrFormat(
        "tensor-parallel degree %d leaves a rank without rows of the %d-token vocabulary", tp,
        c.vocab_size);
  }
  return "";
}

uint64_t KvBytesPerTokenPerLayer(const ModelConfig& config, int kv_dtype_bytes) {
  return 2ull * config.n_kv_head * config.head_dim * kv_dtype_bytes;
}

uint64_t ActivationBytes(const ModelConfig& c, const PlanOptions& o, bool last_stage) {
  const uint64_t q_dim = static_cast<uint64_t>(c.n_head) * c.head_dim;
  const uint64_t kv_dim = static_cast<uint64_t>(c.n_kv_head) * c.head_dim;
  const uint64_t per_token = 5ull * c.n_embd + 2 * q_dim + 2 * kv_dim + 2ull * c.n_ff +
                             static_cast<uint64_t>(std::max(c.n_embd, c.n_ff));
  uint64_t bytes = 4 * o.max_batch_tokens * per_token;
  bytes += 4ull * c.n_head * o.max_context;
  if (last_stage) bytes += 4 * o.max_batch_tokens * static_cast<uint64_t>(c.vocab_size);
  return bytes;
}

absl::StatusOr<PipelinePlan> PlanPipeline(const ModelFootprint& model,
                                          absl::Span<const WorkerCapacity> workers,
                                          const PlanOptions& options) {
  if (absl::Status s = ValidateInputs(model, workers, options); !s.ok()) return s;
  const ModelParts parts = PartsAsStored(model);
  const StageCosts c(parts, model.config, workers, options);
  const std::optional<std::vector<int>> bounds = BestSplit(c);
  if (!bounds) {
    return absl::ResourceExhaustedError(ResourceExhaustedMessage(model, workers, options, c));
  }

  PipelinePlan plan;
  plan.block_size = options.block_size;
  uint64_t tightest = std::numeric_limits<uint64_t>::max();
  for (int j = 0; j < c.num_workers(); ++j) {
    StagePlan s;
    s.worker = j;
    s.layer_begin = (*bounds)[j];
    s.layer_end = (*bounds)[j + 1];
    s.has_embedding = c.first(j);
    s.has_head = c.last(j);
    s.weight_bytes = c.Weight(j, s.layer_begin, s.layer_end);
    s.kv_bytes_per_token = c.KvPerToken(s.layer_begin, s.layer_end);
    s.activation_bytes = c.Activation(j);
    s.decode_cost = c.Work(j, s.layer_begin, s.layer_end);
    s.seconds_per_token = c.Seconds(j, s.layer_begin, s.layer_end);
    tightest = std::min(tightest, c.BlocksFit(j, s.layer_begin, s.layer_end));
    plan.stages.push_back(s);
  }
  const uint64_t wanted = static_cast<uint64_t>(options.max_seqs) * c.min_blocks();
  plan.max_blocks_fit = static_cast<int64_t>(std::min<uint64_t>(tightest, INT64_MAX));
  plan.num_blocks = static_cast<int64_t>(std::min(tightest, wanted));
  for (StagePlan& s : plan.stages) {
    s.kv_bytes = static_cast<uint64_t>(plan.num_blocks) * options.block_size * s.kv_bytes_per_token;
    s.free_bytes =
        workers[s.worker].memory_bytes - s.weight_bytes - s.activation_bytes - s.kv_bytes;
  }
  return plan;
}

std::string FormatPlan(const ModelFootprint& model, absl::Span<const WorkerCapacity> workers,
                       const PlanOptions& options, const PipelinePlan& plan) {
  const ModelConfig& c = model.config;
  std::string out;
  absl::StrAppend(&out,
                  absl::StrFormat("model: %s (%s, %d layers, %.2fM parameters, %s), weights %s\n",
                                  c.name.empty() ? "unnamed" : c.name, c.architecture, c.n_layer,
                                  static_cast<double>(model.parameter_count) / 1e6,
                                  model.weight_type.empty() ? "?" : model.weight_type,
                                  FormatBytes(model.total_bytes())));
  const uint64_t kv_layer = KvBytesPerTokenPerLayer(c, options.kv_dtype_bytes);
  absl::StrAppend(&out, absl::StrFormat("KV cache: %s, 2 x %d layers x %d KV heads x %d dims x %d "
                                        "B = %d B/token; blocks of %d tokens\n",
                                        options.kv_dtype_bytes == 2 ? "f16" : "f32", c.n_layer,
                                        c.n_kv_head, c.head_dim, options.kv_dtype_bytes,
                                        kv_layer * c.n_layer, options.block_size));
  absl::StrAppend(
      &out,
      absl::StrFormat("request: context %d tokens x concurrency %d, steps of up to %d tokens\n\n",
                      options.max_context, options.max_seqs, options.max_batch_tokens));

  std::vector<std::vector<std::string>> rows = {{"stage", "worker", "memory", "layers", "weights",
                                                 "KV/token", "activations", "KV pool", "free",
                                                 "time share", "s/token"}};
  double slowest = 0;
  // Shares are of seconds when every worker's bandwidth is known, else of
  // decode_cost (all workers equally fast), as the split itself counts.
  const bool timed = std::all_of(plan.stages.begin(), plan.stages.end(),
                                 [](const StagePlan& s) { return s.seconds_per_token > 0; });
  auto share_of = [&](const StagePlan& s) { return timed ? s.seconds_per_token : s.decode_cost; };
  double total_cost = 0, slowest_cost = 0;
  for (const StagePlan& s : plan.stages) {
    total_cost += share_of(s);
    slowest_cost = std::max(slowest_cost, share_of(s));
  }
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    const StagePlan& s = plan.stages[i];
    const WorkerCapacity& w = workers[s.worker];
    slowest = std::max(slowest, s.seconds_per_token);
    rows.push_back({absl::StrCat(i), w.name, FormatBytes(w.memory_bytes),
                    LayerLabel(s.layer_begin, s.layer_end, s.has_embedding, s.has_head),
                    FormatBytes(s.weight_bytes), FormatBytes(s.kv_bytes_per_token),
                    FormatBytes(s.activation_bytes), FormatBytes(s.kv_bytes),
                    FormatBytes(s.free_bytes),
                    total_cost > 0 ? absl::StrFormat("%.1f%%", 100 * share_of(s) / total_cost)
                                   : std::string("-"),
                    s.seconds_per_token > 0 ? absl::StrFormat("%.2f ms", s.seconds_per_token * 1e3)
                                            : std::string("-")});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t k = 0; k < r.size(); ++k) width[k] = std::max(width[k], r[k].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t k = 0; k < r.size(); ++k) {
      absl::StrAppend(&line, r[k]);
      if (k + 1 < r.size()) line.append(width[k] - r[k].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }

  const int64_t per_seq = static_cast<int64_t>(CeilDiv(options.max_context, options.block_size));
  const int64_t seqs = plan.num_blocks / per_seq;
  const int64_t seqs_max = plan.max_blocks_fit / per_seq;
  absl::StrAppend(&out, absl::StrFormat("\nKV pool: %d blocks x %d tokens = %d tokens on every "
                                        "stage; fits %d sequence%s of %d tokens",
                                        plan.num_blocks, plan.block_size, plan.kv_capacity_tokens(),
                                        seqs, seqs == 1 ? "" : "s", options.max_context));
  if (plan.max_blocks_fit > plan.num_blocks) {
    absl::StrAppend(&out, absl::StrFormat(" (capped at concurrency %d; the tightest stage could "
                                          "hold %d blocks = %d sequence%s of "
                                          "%d tokens)",
                                          options.max_seqs, plan.max_blocks_fit, seqs_max,
                                          seqs_max == 1 ? "" : "s", options.max_context));
  } else if (seqs < options.max_seqs) {
    absl::StrAppend(&out, absl::StrFormat(" (fewer than the %d asked for)", options.max_seqs));
  }
  absl::StrAppend(&out, "\n");
  // Time share: each stage's part of the estimated decode time per token
  // (weights by storage type, docs/planning.md), the quantity the split
  // balances when workers are equally fast.
  if (plan.stages.size() > 1 && total_cost > 0) {
    absl::StrAppend(&out, absl::StrFormat("time share: estimated decode time per token by "
                                          "stage; the largest is %.2fx the mean\n",
                                          slowest_cost * plan.stages.size() / total_cost));
  }
  if (slowest > 0) {
    absl::StrAppend(&out, absl::StrFormat("slowest stage: about %.2f ms per decoded token "
                                          "(estimate): at most %.0f decode steps/s per pipeline\n",
                                          slowest * 1e3, 1.0 / slowest));
  }
  return out;
}


}  // namespace tessera
