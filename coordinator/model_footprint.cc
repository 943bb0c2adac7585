#include "coordinator/model_footprint.h"

#include <map>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"

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

absl::StatusOr<ModelFootprint> ModelFootprint::FromGguf(const GgufFile& file) {
  ModelFootprint fp;
  ASSIGN_OR_RETURN(fp.config, ModelConfigFromGguf(file));
  const int n_layer = fp.config.n_layer;
  fp.layer_bytes.assign(n_layer, 0);
  fp.layer_parameters.assign(n_layer, 0);
  std::vector<int> tensors_per_layer(n_layer, 0);
  std::map<std::string, uint64_t> matrix_elements_by_type;  // ordered: ties break by name

  bool has_output = false;
  for (const GgufTensorInfo& t : file.tensors()) {
    const uint64_t elements = static_cast<uint64_t>(t.num_elements());
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
      ++tensors_per_layer[layer];
      if (t.shape.size() >= 2) matrix_elements_by_type[GgmlTypeName(t.type)] += elements;
    } else if (t.name == "token_embd.weight") {
      fp.embedding_bytes += t.size_bytes;
      fp.embedding_parameters += elements;
    } else if (t.name == "output_norm.weight" || t.name == "output.weight") {
      has_output |= t.name == "output.weight";
      fp.head_bytes += t.size_bytes;
      fp.head_parameters += elements;
    } else {
      fp.other_bytes += t.size_bytes;
      fp.other_parameters += elements;
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
