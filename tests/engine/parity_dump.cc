// parity_dump MODEL GOLDEN.json OUT_DIR GREEDY: for every case of a golden
// file (scripts/golden/gen_model_golden.py), Tessera's teacher-forced logits
// of its prompt (OUT_DIR/caseN.logits, float32 [tokens][vocab], prefilled in
// one chunk) and its greedy continuation of GREEDY tokens
// (OUT_DIR/caseN.greedy, int32 ids; end-of-generation does not stop it).
// For bench/format_parity.py, which compares them with llama.cpp's, and
// scripts/analysis/float64_forward.py (GREEDY 0).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "engine/local_engine.h"
#include "nlohmann/json.hpp"

namespace {

bool Write(const std::string& path, const void* data, size_t bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(data, 1, bytes, f) == bytes;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: parity_dump MODEL GOLDEN.json OUT_DIR GREEDY\n");
    return 2;
  }
  tessera::LocalEngineOptions o;
  o.model_path = argv[1];
  o.threads = 2;
  o.max_context = 512;
  auto engine = tessera::LocalEngine::Open(o);
  if (!engine.ok()) {
    std::fprintf(stderr, "parity_dump: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  std::ifstream in(argv[2]);
  const auto golden = nlohmann::json::parse(in);
  const std::string out_dir = argv[3];
  const int greedy = std::atoi(argv[4]);
  for (size_t c = 0; c < golden["cases"].size(); ++c) {
    const auto tokens = golden["cases"][c]["tokens"].get<std::vector<int32_t>>();
    auto logits = (*engine)->PromptLogits(tokens, 512);
    if (!logits.ok()) {
      std::fprintf(stderr, "parity_dump: case %zu: %s\n", c, logits.status().ToString().c_str());
      return 1;
    }
    tessera::GenerateOptions go;
    go.max_tokens = greedy;
    go.sampling.temperature = 0.0f;
    go.stop_at_end_of_generation = false;
    std::vector<int32_t> ids;
    auto stats = (*engine)->Generate(tokens, go, [&](int32_t id, float) {
      ids.push_back(id);
      return true;
    });
    if (!stats.ok()) {
      std::fprintf(stderr, "parity_dump: case %zu: %s\n", c, stats.status().ToString().c_str());
      return 1;
    }
    const std::string base = out_dir + "/case" + std::to_string(c);
    if (!Write(base + ".logits", logits->data(), logits->size() * sizeof(float)) ||
        !Write(base + ".greedy", ids.data(), ids.size() * sizeof(int32_t))) {
      std::fprintf(stderr, "parity_dump: cannot write %s.*\n", base.c_str());
      return 1;
    }
  }
  return 0;
}
