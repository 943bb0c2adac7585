// dump_logits MODEL GOLDEN.json CASE OUT.bin: teacher-forced logits of one
// golden prompt as raw float32 [tokens][vocab], for offline analysis
// (scripts/analysis/float64_forward.py).
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "engine/local_engine.h"
#include "nlohmann/json.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: dump_logits MODEL GOLDEN.json CASE OUT.bin\n");
    return 2;
  }
  tessera::LocalEngineOptions o;
  o.model_path = argv[1];
  o.threads = 2;
  o.max_context = 512;
  auto engine = tessera::LocalEngine::Open(o);
  if (!engine.ok()) {
    std::fprintf(stderr, "dump_logits: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  std::ifstream in(argv[2]);
  const auto golden = nlohmann::json::parse(in);
  const auto tokens = golden["cases"][std::atoi(argv[3])]["tokens"].get<std::vector<int32_t>>();
  auto logits = (*engine)->PromptLogits(tokens, 512);
  if (!logits.ok()) {
    std::fprintf(stderr, "dump_logits: %s\n", logits.status().ToString().c_str());
    return 1;
  }
  FILE* f = std::fopen(argv[4], "wb");
  if (f == nullptr) return 1;
  std::fwrite(logits->data(), sizeof(float), logits->size(), f);
  std::fclose(f);
  return 0;
}
