// make_f32_model IN.gguf OUT.gguf: writes IN with every tensor dequantized to
// F32. scripts/golden/gen_model_golden.py runs llama.cpp on this file.
#include <cstdio>

#include "tests/engine/dequantized_copy.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_f32_model IN.gguf OUT.gguf\n");
    return 2;
  }
  absl::Status s = tessera::testing::WriteDequantizedCopy(argv[1], argv[2]);
  if (!s.ok()) {
    std::fprintf(stderr, "make_f32_model: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
