// tessera_make_random_model: writes a random-weight model of a real shape.
//
//   tessera_make_random_model --shape=llama3-8b --type=bf16 --out=/tmp/l3.gguf
//
// --layers overrides the layer count (smaller files with the same widths).
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "tests/cuda/random_model.h"

ABSL_FLAG(std::string, shape, "smollm2-135m",
          "smollm2-135m, llama3-8b, qwen2-0.5b or glm4-9b");
ABSL_FLAG(std::string, type, "bf16", "storage type of the matrices: f32, f16 or bf16");
ABSL_FLAG(uint64_t, seed, 1, "random seed");
ABSL_FLAG(int, layers, 0, "override the number of layers (0 = the shape's)");
ABSL_FLAG(std::string, out, "", "output GGUF path");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto shape = tessera::testing::RandomModelShapeByName(absl::GetFlag(FLAGS_shape));
  if (!shape.ok()) {
    std::fprintf(stderr, "%s\n", shape.status().ToString().c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_layers) > 0) shape->n_layer = absl::GetFlag(FLAGS_layers);
  const std::string type_name = absl::GetFlag(FLAGS_type);
  tessera::GgmlType type;
  if (type_name == "f32") {
    type = tessera::GgmlType::kF32;
  } else if (type_name == "f16") {
    type = tessera::GgmlType::kF16;
  } else if (type_name == "bf16") {
    type = tessera::GgmlType::kBF16;
  } else {
    std::fprintf(stderr, "--type must be f32, f16 or bf16, not '%s'\n", type_name.c_str());
    return 2;
  }
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::fprintf(stderr, "--out is required\n");
    return 2;
  }
  const absl::Status s =
      tessera::testing::WriteRandomModel(*shape, type, absl::GetFlag(FLAGS_seed), out);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("wrote %s: %s, %d layers, %s, %.2f GB of weights\n", out.c_str(),
              shape->name.c_str(), shape->n_layer, type_name.c_str(),
              tessera::testing::RandomModelWeightBytes(*shape, type) / 1e9);
  return 0;
}
