#include "common/safetensors/safetensors_file.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include <nlohmann/json.hpp>

namespace tessera {
namespace {

using nlohmann::json;

// Dtypes the safetensors format defines that we do not compute with; they are
// reported as UNIMPLEMENTED rather than as corruption.
constexpr const char* kUnsupportedDtypes[] = {"F64",  "I8",  "U8",      "I16",    "U16",
                                              "I32",  "U32", "I64",     "U64",    "BOOL",
                                              "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3",
                                              "F6_E3M2", "F4"};

bool ParseDtype(const std::string& s, SafetensorsDtype* out) {
  if (s == "F32") *out = SafetensorsDtype::kF32;
  else if (s == "F16") *out = SafetensorsDtype::kF16;
  else if (s == "BF16") *out = SafetensorsDtype::kBF16;
  else return false;
  return true;
}

// A non-negative JSON integer. nlohmann stores non-negative integers as
// number_unsigned and negative ones as number_integer; anything too large for
// uint64 becomes a float, which we reject like any other non-integer.
bool AsUint(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

}  // namespace

const char* SafetensorsDtypeName(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::kF32: return "F32";
    case SafetensorsDtype::kF16: return "F16";
    case SafetensorsDtype::kBF16: return "BF16";
  }
  return "?";
}

size_t SafetensorsDtypeSize(SafetensorsDtype dtype) {
  return dtype == SafetensorsDtype::kF32 ? 4 : 2;
}

int64_t SafetensorsTensorInfo::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated not to overflow at parse time
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapping, MappedFile::Open(path));
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(path));
  file->data_ = mapping->data();
  file->size_ = mapping->size();
  file->mapping_ = std::move(mapping);
  RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBuffer(std::string name,
                                                                             std::string bytes) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(std::move(name)));
  file->owned_.reset(new uint8_t[bytes.empty() ? 1 : bytes.size()]);
  if (!bytes.empty()) std::memcpy(file->owned_.get(), bytes.data(), bytes.size());
  file->data_ = file->owned_.get();
  file->size_ = bytes.size();
  RETURN_IF_ERROR(file->Parse());
  return file;
}

const SafetensorsTensorInfo* SafetensorsFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(absl::string_view(name.data(), name.size()));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

absl::Status SafetensorsFile::Parse() {
  auto corrupt = [this](const std::string& what) {
    return absl::DataLossError(absl::StrCat(path_, ": ", what));
  };
  if (size_ < 8) {
    return corrupt(absl::StrCat("file is ", size_, " bytes, too short for the 8-byte header length"));
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data_[i];
  if (header_len > size_ - 8) {
    return corrupt(absl::StrCat("header length ", header_len, " runs past the end of the file (",
                                size_, " bytes)"));
  }
  data_start_ = 8 + static_cast<size_t>(header_len);
  const uint64_t data_size = size_ - data_start_;

  // nlohmann keeps the last of duplicate keys silently; a duplicated tensor
  // name is ambiguous, so catch it with the parser callback.
  std::set<std::string> seen;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json header;
  try {
    const char* begin = reinterpret_cast<const char*>(data_ + 8);
    header = json::parse(begin, begin + header_len, cb);
  } catch (const json::exception& e) {
    return corrupt(absl::StrCat("header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) return corrupt("header is not a JSON object");
  if (!duplicate.empty()) return corrupt(absl::StrCat("tensor '", duplicate, "' appears twice"));

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) return corrupt("key '__metadata__' is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          return corrupt(absl::StrCat("key '__metadata__." , m.key(), "' is not a string"));
        }
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) {
      return corrupt(absl::StrCat("tensor '", name, "': ", what));
    };
    if (!entry.is_object()) return bad("entry is not an object");
    auto dt = entry.find("dtype");
    auto sh = entry.find("shape");
    auto off = entry.find("data_offsets");
    if (dt == entry.end() || !dt->is_string()) return bad("'dtype' is missing or not a string");
    if (sh == entry.end() || !sh->is_array()) return bad("'shape' is missing or not an array");
    if (off == entry.end() || !off->is_array() || off->size() != 2) {
      return bad("'data_offsets' is missing or not an array of two integers");
    }
    SafetensorsTensorInfo t;
    t.name = name;
    const std::string dtype = dt->get<std::string>();
    if (!ParseDtype(dtype, &t.dtype)) {
      const bool known = std::any_of(std::begin(kUnsupportedDtypes), std::end(kUnsupportedDtypes),
                                     [&](const char* d) { return dtype == d; });
      return absl::UnimplementedError(absl::StrCat(
          path_, ": tensor '", name, "' has ", known ? "unsupported" : "unknown", " dtype '", dtype,
          "'; supported: F32, F16, BF16"));
    }
    uint64_t bytes = SafetensorsDtypeSize(t.dtype);
    for (const json& d : *sh) {
      uint64_t dim = 0;
      if (!AsUint(d, &dim) || dim > static_cast<uint64_t>(INT64_MAX)) {
        return bad(absl::StrCat("'shape' ", sh->dump(), " has a dimension that is not a ",
                                "non-negative integer"));
      }
      if (__builtin_mul_overflow(bytes, dim, &bytes)) {
        return bad(absl::StrCat("'shape' ", sh->dump(), " overflows 64 bits"));
      }
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    if (!AsUint((*off)[0], &t.begin) || !AsUint((*off)[1], &t.end)) {
      return bad(absl::StrCat("'data_offsets' ", off->dump(), " are not non-negative integers"));
    }
    if (t.begin > t.end) {
      return bad(absl::StrCat("'data_offsets' ", off->dump(), " begin after they end"));
    }
    if (t.end > data_size) {
      return bad(absl::StrCat("'data_offsets' ", off->dump(), " run past the data section (",
                              data_size, " bytes)"));
    }
    if (t.end - t.begin != bytes) {
      return bad(absl::StrCat("'data_offsets' ", off->dump(), " span ", t.end - t.begin,
                              " bytes but shape ", sh->dump(), " of ", dtype, " needs ", bytes));
    }
    tensors_.push_back(std::move(t));
  }

  // Overlap check: sort by range, then each non-empty range must start at or
  // after the end of every earlier one.
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::make_pair(tensors_[a].begin, tensors_[a].end) <
           std::make_pair(tensors_[b].begin, tensors_[b].end);
  });
  uint64_t max_end = 0;
  const SafetensorsTensorInfo* max_owner = nullptr;
  for (size_t i : order) {
    const SafetensorsTensorInfo& t = tensors_[i];
    if (t.begin == t.end) continue;  // empty tensors occupy no bytes
    if (max_owner != nullptr && t.begin < max_end) {
      return corrupt(absl::StrCat("tensor '", t.name, "' bytes [", t.begin, ", ", t.end,
                                  ") overlap tensor '", max_owner->name, "'"));
    }
    if (t.end > max_end) {
      max_end = t.end;
      max_owner = &t;
    }
  }

  // nlohmann's default object is a std::map, so tensors_ is already sorted.
  for (size_t i = 0; i < tensors_.size(); ++i) tensor_index_[tensors_[i].name] = i;
  return absl::OkStatus();
}

}  // namespace tessera
