#include "coordinator/model_footprint.h"

#include <map>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"

namespace tessera {
namespace {

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The layer index of "blk.<i>.<rest>", or -1 when the digits are missing or
// malformed. Names outside the blk. namespace are not asked about.
int64_t LayerIndexOf(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  const std::string_view rest = name.substr(kPrefix.size());
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return -1;
  const std::string_view digits = rest.substr(0, dot);
  for (char c : digits) {
    if (c < '0' || c > '9') return -1;
  }
  int64_t index = 0;
  if (digits.size() > 9 || !absl::SimpleAtoi(Sv(digits), &index)) return -1;
  return index;
}

}  // namespace

double DecodeCostPerByte(GgmlType type, bool is_matrix) {
  if (!is_matrix) return 1.0;
  switch (type) {
    case GgmlType::kQ4_1:
      return 1.0;
    case GgmlType::kQ8_0:
      return 0.55;
    case GgmlType::kF32:
      return 0.7;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return 1.15;
    case GgmlType::kQ4_K:
      return 1.45;
    case GgmlType::kQ5_K:
      return 1.2;
    case GgmlType::kQ6_K:
      return 1.0;
    case GgmlType::kQ4_0:
      return 0.95;
    case GgmlType::kQ5_0:
      return 0.85;
    case GgmlType::kQ5_1:
      return 0.85;
    case GgmlType::kIQ4_NL:
      return 0.95;
    case GgmlType::kIQ4_XS:
      return 1.45;
    case GgmlType::kQ2_K:
      return 2.35;
    case GgmlType::kQ3_K:
      return 2.15;
  }
  return 1.0;
}

absl::StatusOr<ModelFootprint> ModelFootprint::FromGguf(const GgufFile& file) {
  ModelFootprint fp;
  ASSIGN_OR_RETURN(fp.config, ModelConfigFromGguf(file));
  const int n_layer = fp.config.n_layer;
  fp.layer_bytes.assign(n_layer, 0);
  fp.layer_parameters.assign(n_layer, 0);
  fp.layer_cost.assign(n_layer, 0.0);
  double embedding_cost = 0;  // only needed again as a tied head
  std::vector<int> tensors_per_layer(n_layer, 0);
  std::map<std::string, uint64_t> matrix_elements_by_type;  // ordered: ties break by name

  bool has_output = false;
  for (const GgufTensorInfo& t : file.tensors()) {
    const uint64_t elements = static_cast<uint64_t>(t.num_elements());
    const bool is_matrix = t.shape.size() >= 2;
    const double cost =
        static_cast<double>(t.size_bytes) * DecodeCostPerByte(t.type, is_matrix);
    fp.parameter_count += elements;
    if (t.name.rfind("blk.", 0) == 0) {
      const int64_t layer = LayerIndexOf(t.name);
      if (layer < 0 || layer >= n_layer) {
        return absl::InvalidArgumentError(absl::StrCat(file.path(), ": tensor '", t.name,
                                                       "' has no layer index in [0, ", n_layer,
                                                       ") (the model has ", n_layer, " layers)"));
      }
      fp.layer_bytes[layer] += t.size_bytes;
      fp.layer_parameters[layer] += elements;
      fp.layer_cost[layer] += is_matrix ? cost * kLayerOverhead : cost;
      ++tensors_per_layer[layer];
      if (t.shape.size() >= 2) matrix_elements_by_type[GgmlTypeName(t.type)] += elements;
    } else if (t.name == "token_embd.weight") {
      fp.embedding_bytes += t.size_bytes;
      fp.embedding_parameters += elements;
      embedding_cost += cost;
    } else if (t.name == "output_norm.weight" || t.name == "output.weight") {
      has_output |= t.name == "output.weight";
      fp.head_bytes += t.size_bytes;
      fp.head_parameters += elements;
      fp.head_cost += cost;
    } else {
      fp.other_bytes += t.size_bytes;
      fp.other_parameters += elements;
      fp.other_cost += cost;
    }
  }
  for (int i = 0; i < n_layer; ++i) {
    if (tensors_per_layer[i] == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.path(), ": layer ", i, " has no blk.", i, ".* tensors"));
    }
  }
  // A tied head is the embedding read a second time; the last stage must hold
  // it even though the file stores it once.
  if (!has_output) {
    fp.tied_embedding_bytes = fp.embedding_bytes;
    fp.head_bytes += fp.embedding_bytes;
    fp.head_parameters += fp.embedding_parameters;
    fp.head_cost += embedding_cost;
  }
  uint64_t best = 0;
  for (const auto& [name, elements] : matrix_elements_by_type) {
    if (elements > best) {
      best = elements;
      fp.weight_type = name;
    }
  }
  return fp;
}

uint64_t ModelFootprint::total_bytes() const {
  uint64_t total = embedding_bytes + head_bytes - tied_embedding_bytes + other_bytes;
  for (uint64_t b : layer_bytes) total += b;
  return total;
}

}  // namespace tessera
