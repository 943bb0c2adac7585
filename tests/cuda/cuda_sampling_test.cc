// Device sampling against engine/sampler.cc's Sample (the oracle): greedy,
// top-k, top-p, min-p, temperature and repetition penalty, over vocabularies
// of real sizes, with deliberate ties.
//
// The uniform number is the CPU's CounterUniform, so every draw must pick the
// CPU's token (a mismatch is possible only when u lands within rounding of a
// cumulative boundary, about 1e-12 per draw: the test allows none). The
// logprob must be within 1e-5 * max(1, |cpu|) of the CPU's.
#include <cmath>
#include <random>
#include <vector>

#include "engine/cuda/cuda_sampler.h"
#include "engine/sampler.h"
#include "tests/cuda/cuda_test_util.h"

namespace tessera::cuda_test {
namespace {

using kernels::cuda::DeviceBuffer;

std::vector<float> RandomLogits(int32_t vocab, float spread, std::mt19937_64& rng) {
  std::normal_distribution<float> d(0.0f, spread);
  std::vector<float> l(vocab);
  for (float& x : l) x = d(rng);
  // Ties at the top and in the body: equal logits must resolve to the lower id.
  l[vocab / 2] = 40.0f;
  l[vocab / 3] = 40.0f;
  l[7] = l[vocab - 1] = 3.25f;
  l[11] = -0.0f;
  l[12] = 0.0f;
  return l;
}

void SampleMatchesCpu() {
  std::mt19937_64 rng(CaseSeed(77));
  kernels::cuda::SamplerWorkspace ws;
  CUDA_TEST_ASSIGN_OR_FAIL(auto stream, kernels::cuda::Stream::Create());
  std::vector<SamplingParams> params;
  auto make = [](float temp, int k, float p, float min_p, float pen) {
    SamplingParams s;
    s.temperature = temp;
    s.top_k = k;
    s.top_p = p;
    s.min_p = min_p;
    s.repetition_penalty = pen;
    s.repeat_last_n = 64;
    s.seed = 1234;
    return s;
  };
  params.push_back(make(0.0f, 40, 0.95f, 0.05f, 1.0f));   // greedy
  params.push_back(make(0.0f, 0, 1.0f, 0.0f, 1.3f));      // greedy + penalty
  params.push_back(make(0.8f, 40, 0.95f, 0.05f, 1.0f));   // the defaults
  params.push_back(make(1.0f, 0, 1.0f, 0.0f, 1.0f));      // whole vocabulary
  params.push_back(make(1.5f, 0, 0.9f, 0.0f, 1.1f));      // top-p only, penalty
  params.push_back(make(0.7f, 5, 1.0f, 0.0f, 1.0f));      // top-k only
  params.push_back(make(2.0f, 1000, 0.99f, 0.01f, 0.9f)); // penalty < 1
  params.push_back(make(0.5f, 1, 1.0f, 0.0f, 1.0f));      // k = 1
  int draws = 0, mismatches = 0;
  for (int32_t vocab : {49152, 128256, 1000}) {
    for (float spread : {1.0f, 4.0f}) {
      std::vector<float> logits = RandomLogits(vocab, spread, rng);
      std::vector<int32_t> recent;
      for (int i = 0; i < 100; ++i) recent.push_back(static_cast<int32_t>(rng() % vocab));
      recent.push_back(vocab / 2);  // penalise one of the tied top logits
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dl, ToDevice(logits));
      for (const SamplingParams& p : params) {
        for (uint64_t counter = 0; counter < 12; ++counter) {
          const SampledToken cpu = Sample(logits, p, recent, counter, true);
          CUDA_TEST_ASSIGN_OR_FAIL(
              SampledToken gpu, SampleOnDevice(ws, dl.as<float>(), vocab, p, recent, counter,
                                               true, stream.get()));
          ++draws;
          if (gpu.id != cpu.id) {
            ++mismatches;
            CUDA_TEST_CHECK(false, "vocab %d spread %.0f temp %.2f k %d p %.2f min_p %.2f pen %.2f "
                                   "counter %lu: GPU %d, CPU %d",
                            vocab, spread, p.temperature, p.top_k, p.top_p, p.min_p,
                            p.repetition_penalty, (unsigned long)counter, gpu.id, cpu.id);
          }
          const double lp_err = std::fabs(double(gpu.logprob) - cpu.logprob) /
                                std::fmax(1.0, std::fabs(double(cpu.logprob)));
          CUDA_TEST_CHECK(lp_err < 1e-5, "logprob GPU %.7g CPU %.7g", gpu.logprob, cpu.logprob);
        }
      }
    }
  }
  std::printf("  %d draws, %d differ from the CPU\n", draws, mismatches);
}

}  // namespace
}  // namespace tessera::cuda_test

int main() {
  using namespace tessera::cuda_test;
  return RunCudaTests("cuda_sampling_test", {{"SampleMatchesCpu", SampleMatchesCpu}});
}
