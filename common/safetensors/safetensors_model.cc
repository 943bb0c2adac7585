#include "common/safetensors/safetensors_model.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/stat.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include <nlohmann/json.hpp>

namespace tessera {
namespace {

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return ss.str();
}

// A shard name must stay inside the model directory.
bool IsPlainFileName(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsModel>> SafetensorsModel::Open(const std::string& dir) {
  std::unique_ptr<SafetensorsModel> model(new SafetensorsModel());
  const std::string index_path = dir + "/model.safetensors.index.json";
  const std::string single_path = dir + "/model.safetensors";

  if (!IsRegularFile(index_path)) {
    if (!IsRegularFile(single_path)) {
      return absl::NotFoundError(absl::StrCat(dir, ": neither model.safetensors.index.json nor ",
                                              "model.safetensors exists"));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> f, SafetensorsFile::Open(single_path));
    for (const SafetensorsTensorInfo& t : f->tensors()) {
      model->tensors_[t.name] = TensorRef{f.get(), &t};
    }
    model->shards_.push_back(std::move(f));
    return model;
  }

  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(index_path));
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(index_path, ": not valid JSON: ", e.what()));
  }
  if (!index.is_object()) return absl::DataLossError(absl::StrCat(index_path, ": not an object"));
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object()) {
    return absl::DataLossError(
        absl::StrCat(index_path, ": key 'weight_map' is missing or not an object"));
  }

  // Shard name -> the tensors the index puts in it (sorted, so errors are
  // deterministic).
  std::map<std::string, std::vector<std::string>> by_shard;
  std::vector<std::string> shard_order;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string() || !IsPlainFileName(it.value().get<std::string>())) {
      return absl::DataLossError(absl::StrCat(index_path, ": key 'weight_map.", it.key(),
                                              "' is not a file name in the model directory"));
    }
    const std::string shard = it.value().get<std::string>();
    auto& list = by_shard[shard];
    if (list.empty()) shard_order.push_back(shard);
    list.push_back(it.key());
  }

  for (const std::string& shard : shard_order) {
    const std::vector<std::string>& names = by_shard[shard];
    const std::string shard_path = dir + "/" + shard;
    if (!IsRegularFile(shard_path)) {
      return absl::NotFoundError(absl::StrCat(index_path, ": shard '", shard, "' (holding tensor '",
                                              names.front(), "' and ", names.size() - 1,
                                              " others) not found at ", shard_path));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> f, SafetensorsFile::Open(shard_path));
    for (const std::string& name : names) {
      const SafetensorsTensorInfo* t = f->FindTensor(name);
      if (t == nullptr) {
        return absl::DataLossError(absl::StrCat(index_path, ": tensor '", name,
                                                "' is mapped to shard '", shard,
                                                "', which does not contain it"));
      }
      model->tensors_[name] = TensorRef{f.get(), t};
    }
    model->shards_.push_back(std::move(f));
  }
  return model;
}

const SafetensorsModel::TensorRef* SafetensorsModel::FindTensor(std::string_view name) const {
  auto it = tensors_.find(absl::string_view(name.data(), name.size()));
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> SafetensorsModel::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& [name, ref] : tensors_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace tessera
