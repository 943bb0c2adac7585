#include "common/gguf/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tessera {
namespace {

// Value type ids, as in GgufValueType (kept local so that the writer does not
// depend on the reader).
constexpr uint32_t kUint32 = 4, kInt32 = 5, kFloat32 = 6, kBool = 7, kString = 8, kArray = 9,
                   kUint64 = 10;
constexpr char kAlignmentKey[] = "general.alignment";

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutF32(std::string* out, float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  PutU32(out, u);
}
void PutString(std::string* out, const std::string& s) {
  PutU64(out, s.size());
  out->append(s);
}
uint64_t AlignUp(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

void GgufWriter::Set(const std::string& key, std::string encoded) {
  auto [it, inserted] = metadata_index_.emplace(key, metadata_.size());
  if (inserted) {
    metadata_.emplace_back(key, std::move(encoded));
  } else {
    metadata_[it->second].second = std::move(encoded);
  }
}

void GgufWriter::SetString(const std::string& key, const std::string& value) {
  std::string e;
  PutU32(&e, kString);
  PutString(&e, value);
  Set(key, std::move(e));
}

void GgufWriter::SetUint32(const std::string& key, uint32_t value) {
  std::string e;
  PutU32(&e, kUint32);
  PutU32(&e, value);
  Set(key, std::move(e));
  if (key == kAlignmentKey && value != 0 && (value & (value - 1)) == 0) alignment_ = value;
}

void GgufWriter::SetUint64(const std::string& key, uint64_t value) {
  std::string e;
  PutU32(&e, kUint64);
  PutU64(&e, value);
  Set(key, std::move(e));
}

void GgufWriter::SetInt32(const std::string& key, int32_t value) {
  std::string e;
  PutU32(&e, kInt32);
  PutU32(&e, static_cast<uint32_t>(value));
  Set(key, std::move(e));
}

void GgufWriter::SetFloat32(const std::string& key, float value) {
  std::string e;
  PutU32(&e, kFloat32);
  PutF32(&e, value);
  Set(key, std::move(e));
}

void GgufWriter::SetBool(const std::string& key, bool value) {
  std::string e;
  PutU32(&e, kBool);
  e.push_back(value ? 1 : 0);
  Set(key, std::move(e));
}

void GgufWriter::SetStringArray(const std::string& key, const std::vector<std::string>& values) {
  std::string e;
  PutU32(&e, kArray);
  PutU32(&e, kString);
  PutU64(&e, values.size());
  for (const std::string& v : values) PutString(&e, v);
  Set(key, std::move(e));
}

void GgufWriter::SetInt32Array(const std::string& key, const std::vector<int32_t>& values) {
  std::string e;
  PutU32(&e, kArray);
  PutU32(&e, kInt32);
  PutU64(&e, values.size());
  for (int32_t v : values) PutU32(&e, static_cast<uint32_t>(v));
  Set(key, std::move(e));
}

void GgufWriter::SetFloat32Array(const std::string& key, const std::vector<float>& values) {
  std::string e;
  PutU32(&e, kArray);
  PutU32(&e, kFloat32);
  PutU64(&e, values.size());
  for (float v : values) PutF32(&e, v);
  Set(key, std::move(e));
}

absl::StatusOr<uint64_t> GgufWriter::CheckTensor(const std::string& name,
                                                  const std::vector<int64_t>& shape,
                                                  GgmlType type) const {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor name '", name, "' must be 1 to 64 bytes long"));
  }
  if (tensor_index_.contains(name)) {
    return absl::AlreadyExistsError(absl::StrCat("tensor '", name, "' was already added"));
  }
  const int64_t block = GgmlBlockSize(type);
  if (block == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' has unknown type id ", static_cast<uint32_t>(type)));
  }
  if (shape.empty() || shape.size() > 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' has ", shape.size(), " dimensions; expected 1 to 4"));
  }
  int64_t elements = 1;
  for (int64_t d : shape) {
    // Test-sized tensors only: refuse anything whose element count could overflow.
    if (d <= 0 || d > (int64_t{1} << 40) || elements > (int64_t{1} << 40) / d) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has shape [",
                                                     absl::StrJoin(shape, ", "),
                                                     "]; dimensions must be positive"));
    }
    elements *= d;
  }
  if (shape[0] % block != 0) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has rows of ", shape[0],
                                                   " values, not a multiple of ",
                                                   GgmlTypeName(type), "'s block of ", block));
  }
  return static_cast<uint64_t>(elements / block) * GgmlBlockBytes(type);
}

absl::Status GgufWriter::AddTensor(const std::string& name, std::vector<int64_t> shape,
                                   GgmlType type, std::string bytes) {
  absl::StatusOr<uint64_t> expected = CheckTensor(name, shape, type);
  if (!expected.ok()) return expected.status();
  if (bytes.size() != *expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' of shape [", absl::StrJoin(shape, ", "), "] and type ",
                     GgmlTypeName(type), " needs ", *expected, " bytes, got ", bytes.size()));
  }
  tensor_index_.emplace(name, tensors_.size());
  tensors_.push_back(Tensor{name, std::move(shape), type, *expected, std::move(bytes), nullptr});
  return absl::OkStatus();
}

absl::Status GgufWriter::AddTensor(const std::string& name, std::vector<int64_t> shape,
                                   GgmlType type, Producer produce) {
  absl::StatusOr<uint64_t> expected = CheckTensor(name, shape, type);
  if (!expected.ok()) return expected.status();
  if (!produce) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has no producer"));
  }
  tensor_index_.emplace(name, tensors_.size());
  tensors_.push_back(Tensor{name, std::move(shape), type, *expected, "", std::move(produce)});
  return absl::OkStatus();
}

absl::StatusOr<std::string> GgufWriter::Bytes(const Tensor& t) const {
  if (!t.produce) return t.bytes;
  std::string bytes = t.produce();
  if (bytes.size() != t.size) {
    return absl::InternalError(absl::StrCat("tensor '", t.name, "': its producer made ",
                                            bytes.size(), " bytes; its shape needs ", t.size));
  }
  return bytes;
}

std::string GgufWriter::Header() const {
  std::string out;
  out.append("GGUF", 4);
  PutU32(&out, 3);
  PutU64(&out, tensors_.size());
  PutU64(&out, metadata_.size());
  for (const auto& [key, encoded] : metadata_) {
    PutString(&out, key);
    out.append(encoded);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    PutString(&out, t.name);
    PutU32(&out, static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) PutU64(&out, static_cast<uint64_t>(d));
    PutU32(&out, static_cast<uint32_t>(t.type));
    PutU64(&out, offset);
    offset = AlignUp(offset + t.size, alignment_);
  }
  out.resize(AlignUp(out.size(), alignment_), '\0');
  return out;
}

std::string GgufWriter::Serialize() const {
  std::string out = Header();
  for (const Tensor& t : tensors_) {
    absl::StatusOr<std::string> bytes = Bytes(t);
    // A producer that breaks its contract leaves a file the parser rejects.
    if (bytes.ok()) out.append(*bytes);
    out.resize(AlignUp(out.size(), alignment_), '\0');
  }
  return out;
}

absl::Status GgufWriter::WriteFile(const std::string& path) const {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
  if (!f) {
    const int err = errno;
    std::string msg = absl::StrCat(path, ": cannot create: ", std::strerror(err));
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(msg);
    if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
    return absl::InternalError(msg);
  }
  auto put = [&](const std::string& bytes) -> absl::Status {
    if (std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
      return absl::InternalError(absl::StrCat(path, ": write failed: ", std::strerror(errno)));
    }
    return absl::OkStatus();
  };
  uint64_t written = 0;
  const std::string header = Header();
  if (absl::Status s = put(header); !s.ok()) return s;
  written += header.size();
  for (const Tensor& t : tensors_) {
    absl::StatusOr<std::string> bytes = Bytes(t);
    if (!bytes.ok()) return bytes.status();
    if (absl::Status s = put(*bytes); !s.ok()) return s;
    written += bytes->size();
    const std::string pad(AlignUp(written, alignment_) - written, '\0');
    if (absl::Status s = put(pad); !s.ok()) return s;
    written += pad.size();
  }
  if (std::fflush(f.get()) != 0) {
    return absl::InternalError(absl::StrCat(path, ": write failed: ", std::strerror(errno)));
  }
  if (std::fclose(f.release()) != 0) {
    return absl::InternalError(absl::StrCat(path, ": close failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace tessera
