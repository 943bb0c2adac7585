#include "tests/engine/dequantized_copy.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/gguf/gguf_file.h"
#include "common/gguf/gguf_writer.h"
#include "common/gguf/tensor_encoding.h"
#include "base/status_macros.h"
#include "engine/model_weights.h"

namespace tessera::testing {
namespace {

absl::Status CopyKey(const GgufFile& in, const std::string& key, GgufWriter& out) {
  ASSIGN_OR_RETURN(GgufValueType type, in.GetType(key));
  switch (type) {
    case GgufValueType::kString: {
      ASSIGN_OR_RETURN(std::string v, in.GetString(key));
      out.SetString(key, v);
      return absl::OkStatus();
    }
    case GgufValueType::kBool: {
      ASSIGN_OR_RETURN(bool v, in.GetBool(key));
      out.SetBool(key, v);
      return absl::OkStatus();
    }
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64: {
      ASSIGN_OR_RETURN(double v, in.GetFloat(key));
      out.SetFloat32(key, static_cast<float>(v));
      return absl::OkStatus();
    }
    case GgufValueType::kArray: {
      if (auto s = in.GetStringArray(key); s.ok()) {
        out.SetStringArray(key, *s);
      } else if (auto i = in.GetIntArray(key); i.ok()) {
        out.SetInt32Array(key, std::vector<int32_t>(i->begin(), i->end()));
      } else {
        ASSIGN_OR_RETURN(std::vector<float> f, in.GetFloatArray(key));
        out.SetFloat32Array(key, f);
      }
      return absl::OkStatus();
    }
    default: {
      ASSIGN_OR_RETURN(uint64_t v, in.GetUint(key));
      out.SetUint32(key, static_cast<uint32_t>(v));
      return absl::OkStatus();
    }
  }
}

}  // namespace

absl::Status WriteDequantizedCopy(const std::string& in_path, const std::string& out_path) {
  ASSIGN_OR_RETURN(auto in, GgufFile::Open(in_path));
  GgufWriter out;
  for (const std::string& key : in->Keys()) {
    if (key == "general.file_type" || key == "general.quantization_version") continue;
    RETURN_IF_ERROR(CopyKey(*in, key, out));
  }
  out.SetUint32("general.file_type", 0);  // all F32
  for (const GgufTensorInfo& t : in->tensors()) {
    kernels::WeightMatrix m;
    ASSIGN_OR_RETURN(m.dtype, KernelDType(t.type));
    m.data = in->TensorData(t);
    m.cols = t.shape[0];
    m.rows = t.num_elements() / m.cols;
    m.row_bytes = kernels::RowBytes(m.dtype, m.cols);
    std::vector<float> values(t.num_elements());
    for (int64_t r = 0; r < m.rows; ++r) kernels::DequantizeRow(m, r, &values[r * m.cols]);
    RETURN_IF_ERROR(out.AddTensor(t.name, t.shape, GgmlType::kF32, EncodeF32(values)));
  }
  return out.WriteFile(out_path);
}

}  // namespace tessera::testing
