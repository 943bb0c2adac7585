#include "tests/cuda/generated_models_check.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/thread_pool.h"
#include "engine/kv_cache.h"
#include "engine/model_runner.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/cuda/loaded_model.h"

namespace tessera::cuda_test {
namespace {

using kernels::DType;

// Byte address of row `row` of a weight view.
const uint8_t* RowAddress(const kernels::WeightMatrix& m, int64_t row) {
  return static_cast<const uint8_t*>(m.data) + row * m.row_bytes;
}

}  // namespace

void GeneratedModelsLoadInCpuEngine() {
  testing::RandomModelShape qwen2;
  qwen2.name = "tiny-qwen2";
  qwen2.architecture = "qwen2";
  qwen2.n_layer = 2;
  qwen2.n_embd = 128;
  qwen2.n_ff = 192;
  qwen2.n_head = 4;
  qwen2.n_kv_head = 2;
  qwen2.vocab = 256;
  qwen2.context = 256;
  qwen2.qkv_bias = true;
  testing::RandomModelShape glm4 = qwen2;
  glm4.name = "tiny-glm4";
  glm4.architecture = "glm4";
  glm4.rope_dim = 16;  // of head_dim 32
  glm4.tied_embeddings = false;
  testing::RandomModelShape glm4_fused = glm4;
  glm4_fused.fused_qkv = true;

  for (const testing::RandomModelShape* shape : {&qwen2, &glm4, &glm4_fused}) {
    const bool is_glm4 = shape->architecture == "glm4";
    CUDA_TEST_ASSIGN_OR_FAIL(LoadedModel m,
                             WriteAndLoad(*shape, GgmlType::kF32,
                                          ModelDir() + "/" + shape->name + ".gguf"));
    const ModelConfig& c = m.config;
    const char* n = shape->name.c_str();
    CUDA_TEST_CHECK(c.architecture == shape->architecture, "%s: architecture %s", n,
                    c.architecture.c_str());
    CUDA_TEST_CHECK(c.head_dim == 32 && c.rope_dim == (is_glm4 ? 16 : 32),
                    "%s: head_dim %d rope_dim %d", n, c.head_dim, c.rope_dim);
    CUDA_TEST_CHECK(c.rope_neox == !is_glm4, "%s: rope_neox %d", n, c.rope_neox);
    CUDA_TEST_CHECK(c.qkv_bias, "%s: no Q/K/V biases", n);
    CUDA_TEST_CHECK(c.post_norms == is_glm4 && c.fused_gate_up == is_glm4,
                    "%s: post_norms %d fused_gate_up %d", n, c.post_norms, c.fused_gate_up);
    CUDA_TEST_CHECK(c.fused_qkv == shape->fused_qkv, "%s: fused_qkv %d", n, c.fused_qkv);
    CUDA_TEST_CHECK(c.tied_embeddings == shape->tied_embeddings, "%s: tied %d", n,
                    c.tied_embeddings);
    const int64_t q_dim = int64_t{c.n_head} * c.head_dim;
    for (int l = 0; l < c.n_layer; ++l) {
      const LayerWeights& w = m.weights->layer(l);
      CUDA_TEST_CHECK(w.bq != nullptr && w.bk != nullptr && w.bv != nullptr,
                      "%s layer %d: a bias is missing", n, l);
      CUDA_TEST_CHECK((w.attn_post_norm != nullptr) == is_glm4 &&
                          (w.ffn_post_norm != nullptr) == is_glm4,
                      "%s layer %d: post-norms present %d/%d", n, l, w.attn_post_norm != nullptr,
                      w.ffn_post_norm != nullptr);
      if (is_glm4) {
        // [gate; up] in one tensor: up starts n_ff rows after gate.
        CUDA_TEST_CHECK(w.w_up.data == RowAddress(w.w_gate, c.n_ff),
                        "%s layer %d: gate/up are not views of one fused tensor", n, l);
      }
      if (shape->fused_qkv) {
        CUDA_TEST_CHECK(w.wk.data == RowAddress(w.wq, q_dim) && w.bk == w.bq + q_dim,
                        "%s layer %d: Q/K are not views of one fused tensor", n, l);
      }
    }
    KvCache kv(c, LayerRange{0, c.n_layer}, 4, 16, DType::kF32);
    kernels::ThreadPool pool(2);
    ModelRunner cpu(m.weights.get(), &kv, &pool);
    SequenceStep s;
    s.seq_id = 1;
    s.start_pos = 0;
    s.num_tokens = 8;
    s.tokens = {1, 7, 42, 255, 0, 3, 99, 128};
    s.block_table = {2};
    s.logits = LogitsMode::kAll;
    StepOutput out;
    CUDA_TEST_ASSERT_OK(cpu.Forward({s}, {}, &out));
    CUDA_TEST_CHECK(out.logit_rows == 8 && static_cast<int64_t>(out.logits.size()) == 8 * c.vocab_size,
                    "%s: %ld logit rows", n, long(out.logit_rows));
    CUDA_TEST_CHECK(std::all_of(out.logits.begin(), out.logits.end(),
                                [](float v) { return std::isfinite(v); }),
                    "%s: non-finite logits", n);
  }
  // Shapes the engine would misread are refused by the generator.
  testing::RandomModelShape unbiased = qwen2;
  unbiased.qkv_bias = false;
  const absl::Status refused =
      testing::WriteRandomModel(unbiased, GgmlType::kF32, 1, ModelDir() + "/refused.gguf");
  CUDA_TEST_CHECK(refused.code() == absl::StatusCode::kInvalidArgument, "qwen2 without biases: %s",
                  refused.ToString().c_str());
}


}  // namespace tessera::cuda_test
