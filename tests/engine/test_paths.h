// Where tests find the default model and golden files.
#ifndef TESSERA_TESTS_ENGINE_TEST_PATHS_H_
#define TESSERA_TESTS_ENGINE_TEST_PATHS_H_

#include <cstdlib>
#include <string>

namespace tessera::testing {

// $TESSERA_MODEL, else models/SmolLM2-135M-Instruct.Q4_1.gguf in the source
// tree (scripts/fetch_model.sh puts it there).
inline std::string DefaultModelPath() {
  if (const char* env = std::getenv("TESSERA_MODEL"); env != nullptr && *env != '\0') return env;
  return std::string(TESSERA_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline std::string GoldenPath(const std::string& name) {
  return std::string(TESSERA_SOURCE_DIR) + "/tests/golden/" + name;
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_ENGINE_TEST_PATHS_H_
