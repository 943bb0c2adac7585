// Host check of the random-model generator, run by cuda_runner_test before
// its device cases (so also on a machine without a GPU).
#ifndef TESSERA_TESTS_CUDA_GENERATED_MODELS_CHECK_H_
#define TESSERA_TESTS_CUDA_GENERATED_MODELS_CHECK_H_

namespace tessera::cuda_test {

// Small qwen2 / glm4 files from the generator load in the CPU engine with
// exactly the features they were written with (so the device cases really
// exercise biases, post-norms, fused tensors and partial rotary), a CPU
// forward step gives finite logits, and shapes the engine would misread are
// refused by the generator.
void GeneratedModelsLoadInCpuEngine();

}  // namespace tessera::cuda_test

#endif  // TESSERA_TESTS_CUDA_GENERATED_MODELS_CHECK_H_
