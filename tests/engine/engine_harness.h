// A model, a KV cache and a runner for one layer range, built directly from a
// GGUF file: what engine tests drive.
#ifndef TESSERA_TESTS_ENGINE_ENGINE_HARNESS_H_
#define TESSERA_TESTS_ENGINE_ENGINE_HARNESS_H_

#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "absl/status/statusor.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "base/status_macros.h"
#include "engine/kv_cache.h"
#include "engine/model_runner.h"
#include "engine/model_weights.h"

namespace tessera::testing {

struct EngineHarness {
  std::unique_ptr<GgufFile> file;
  ModelConfig config;
  std::unique_ptr<ModelWeights> weights;
  std::unique_ptr<kernels::ThreadPool> pool;
  std::unique_ptr<KvCache> kv;
  std::unique_ptr<ModelRunner> runner;

  // Layers [begin, end); end < 0 means all layers.
  static absl::StatusOr<std::unique_ptr<EngineHarness>> Open(const std::string& path, int threads,
                                                             int64_t kv_blocks, int begin = 0,
                                                             int end = -1) {
    auto h = std::make_unique<EngineHarness>();
    ASSIGN_OR_RETURN(h->file, GgufFile::Open(path));
    ASSIGN_OR_RETURN(h->config, ModelConfigFromGguf(*h->file));
    const LayerRange range{begin, end < 0 ? h->config.n_layer : end};
    ASSIGN_OR_RETURN(h->weights, ModelWeights::Load(*h->file, h->config, range));
    h->pool = std::make_unique<kernels::ThreadPool>(threads);
    h->kv = std::make_unique<KvCache>(h->config, range, kv_blocks);
    h->runner = std::make_unique<ModelRunner>(h->weights.get(), h->kv.get(), h->pool.get());
    return h;
  }
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_ENGINE_ENGINE_HARNESS_H_
