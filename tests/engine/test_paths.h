// Where tests find the default model and golden files.
#ifndef TESSERA_TESTS_ENGINE_TEST_PATHS_H_
#define TESSERA_TESTS_ENGINE_TEST_PATHS_H_

#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace tessera::testing {

// $TESSERA_MODEL, else models/SmolLM2-135M-Instruct.Q4_1.gguf in the source
// tree (scripts/fetch_model.sh puts it there; the test command sets
// TESSERA_MODEL to it). A path that names no file is a test failure, never a
// fall back to the other place and never a skip: the test command fetches
// the model, so its absence is a broken setup.
inline std::string DefaultModelPath() {
  const char* env = std::getenv("TESSERA_MODEL");
  const bool from_env = env != nullptr && *env != '\0';
  const std::string path = from_env ? std::string(env)
                                    : std::string(TESSERA_SOURCE_DIR) +
                                          "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::ifstream(path).good()) {
    ADD_FAILURE() << "no model at " << path
                  << (from_env ? " (from TESSERA_MODEL)"
                               : " (run scripts/fetch_model.sh, or set TESSERA_MODEL)");
  }
  return path;
}

inline std::string GoldenPath(const std::string& name) {
  return std::string(TESSERA_SOURCE_DIR) + "/tests/golden/" + name;
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_ENGINE_TEST_PATHS_H_
