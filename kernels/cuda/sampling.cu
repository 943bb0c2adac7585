// Device sampling; see sampling.h for the contract.
//
// CPU reference (engine/sampler.cc), on candidates (id, logit):
//   penalty: l = l > 0 ? l / r : l * r for each distinct recent id
//   greedy: the first candidate under (logit desc, id asc)
//   else sort by that order, keep top_k, then with T = temperature:
//     e_i = exp(double(l_i) / T - l_0 / T); p_i = e_i / sum_i e_i
//     top-p: keep i + 1 where i is the first index with cum_i >= top_p
//     min-p: keep the prefix with p_i >= min_p * p_0 (at least one)
//     u = uniform * sum(kept p); pick the first i with u < cum_i (else last)
// Here: copy + penalty kernels, then either a one-block arg-max, or a CUB
// radix sort of the whole row and a one-block kernel that runs the steps
// above with block-wide scans in double.
#include <cub/cub.cuh>

#include <cmath>
#include <vector>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/sampling.h"

namespace tessera::kernels::cuda {
namespace {

constexpr int kThreads = 1024;

struct DeviceResult {
  int32_t id;
  float logprob;
};

// keys = logits (+0.0f turns -0.0 into +0.0: the radix sort orders the two
// bit patterns, the CPU comparison does not), ids = 0..vocab-1.
__global__ void PrepareKernel(const float* __restrict__ logits, int32_t vocab,
                              float* __restrict__ keys, int32_t* __restrict__ ids) {
  for (int32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < vocab;
       i += gridDim.x * blockDim.x) {
    keys[i] = logits[i] + 0.0f;
    ids[i] = i;
  }
}

__global__ void PenaltyKernel(float* keys, const int32_t* __restrict__ penalised, int32_t n,
                              float penalty) {
  for (int32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const float l = keys[penalised[i]];
    keys[penalised[i]] = (l > 0 ? l / penalty : l * penalty) + 0.0f;
  }
}

// (logit desc, id asc): true if a comes first.
__device__ __forceinline__ bool Before(float la, int32_t ia, float lb, int32_t ib) {
  return la > lb || (la == lb && ia < ib);
}

__global__ void __launch_bounds__(kThreads)
    ArgMaxKernel(const float* __restrict__ keys, int32_t vocab, DeviceResult* result) {
  __shared__ float best_l[kThreads / kWarpSize];
  __shared__ int32_t best_i[kThreads / kWarpSize];
  float bl = -INFINITY;
  int32_t bi = INT32_MAX;
  for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    if (Before(keys[i], i, bl, bi)) {
      bl = keys[i];
      bi = i;
    }
  }
  // The order is total, so the reduction order cannot change the winner.
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const float ol = __shfl_xor_sync(0xffffffffu, bl, offset);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, bi, offset);
    if (Before(ol, oi, bl, bi)) {
      bl = ol;
      bi = oi;
    }
  }
  const int warp = threadIdx.x / kWarpSize;
  if (threadIdx.x % kWarpSize == 0) {
    best_l[warp] = bl;
    best_i[warp] = bi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / kWarpSize; ++w) {
      if (Before(best_l[w], best_i[w], bl, bi)) {
        bl = best_l[w];
        bi = best_i[w];
      }
    }
    // All -inf (or NaN) logits: fall back to id 0 as the CPU's scan would.
    result->id = bi == INT32_MAX ? 0 : bi;
  }
}

// The sampled path over the sorted row; see the reference at the top.
__global__ void __launch_bounds__(kThreads)
    DrawKernel(const float* __restrict__ keys, const int32_t* __restrict__ ids, int32_t keep,
               float temperature, float top_p, float min_p, double uniform,
               DeviceResult* result) {
  using Scan = cub::BlockScan<double, kThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ double scratch[kWarpSize];
  __shared__ int32_t found;

  const double t = static_cast<double>(temperature);
  const double max = keys[0] / t;
  double sum = 0.0;
  for (int32_t i = threadIdx.x; i < keep; i += blockDim.x) sum += exp(keys[i] / t - max);
  sum = BlockSum(sum, scratch);
  auto prob = [&](int32_t i) { return exp(keys[i] / t - max) / sum; };

  // First i in [0, n) whose cumulative probability satisfies `pred`, or n.
  auto first_cum = [&](int32_t n, auto pred) -> int32_t {
    double carry = 0.0;
    for (int32_t base = 0; base < n; base += kThreads) {
      const int32_t i = base + threadIdx.x;
      const double p = i < n ? prob(i) : 0.0;
      double inclusive, aggregate;
      Scan(scan_storage).InclusiveSum(p, inclusive, aggregate);
      if (threadIdx.x == 0) found = n;
      __syncthreads();
      if (i < n && pred(carry + inclusive)) atomicMin(&found, i);
      __syncthreads();
      const int32_t f = found;
      __syncthreads();  // before `found` and the scan storage are reused
      if (f < n) return f;
      carry += aggregate;
    }
    return n;
  };

  if (top_p < 1.0f) {
    const int32_t i = first_cum(keep, [&](double cum) { return cum >= top_p; });
    keep = min(keep, i + 1);
  }
  if (min_p > 0.0f) {
    const double floor = static_cast<double>(min_p) * prob(0);
    if (threadIdx.x == 0) found = keep;
    __syncthreads();
    for (int32_t i = 1 + threadIdx.x; i < keep; i += blockDim.x) {
      if (prob(i) < floor) atomicMin(&found, i);
    }
    __syncthreads();
    keep = found;
    __syncthreads();
  }
  double total = 0.0;
  for (int32_t i = threadIdx.x; i < keep; i += blockDim.x) total += prob(i);
  total = BlockSum(total, scratch);
  const double u = uniform * total;
  int32_t pick = first_cum(keep, [&](double cum) { return u < cum; });
  if (pick >= keep) pick = keep - 1;
  if (threadIdx.x == 0) result->id = ids[pick];
}

// logprob = logits[id] - (max + log(sum exp(double(l) - max))), as the CPU's
// LogSumExp over the unpenalised row.
__global__ void __launch_bounds__(kThreads)
    LogprobKernel(const float* __restrict__ logits, int32_t vocab, DeviceResult* result) {
  __shared__ float fscratch[kWarpSize];
  __shared__ double dscratch[kWarpSize];
  float max = -INFINITY;
  for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) max = fmaxf(max, logits[i]);
  max = BlockMax(max, fscratch);
  double sum = 0.0;
  for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    sum += exp(static_cast<double>(logits[i]) - max);
  }
  sum = BlockSum(sum, dscratch);
  if (threadIdx.x == 0) {
    const float log_z = max + static_cast<float>(log(sum));
    result->logprob = logits[result->id] - log_z;
  }
}

}  // namespace

absl::StatusOr<SampleResult> Sample(SamplerWorkspace& ws, const float* logits, int32_t vocab,
                                    const SampleOptions& options,
                                    absl::Span<const int32_t> penalised, cudaStream_t stream) {
  if (vocab <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat("CUDA Sample: vocabulary of %d", vocab));
  }
  const size_t n = static_cast<size_t>(vocab);
  RETURN_IF_ERROR(ws.keys.Reserve(n * sizeof(float)));
  RETURN_IF_ERROR(ws.ids.Reserve(n * sizeof(int32_t)));
  RETURN_IF_ERROR(ws.result.Reserve(sizeof(DeviceResult)));
  RETURN_IF_ERROR(ws.host_result.Reserve(sizeof(DeviceResult)));
  float* keys = ws.keys.as<float>();
  int32_t* ids = ws.ids.as<int32_t>();
  DeviceResult* result = ws.result.as<DeviceResult>();

  constexpr int kEltThreads = 256;
  PrepareKernel<<<GridFor(vocab, kEltThreads), kEltThreads, 0, stream>>>(logits, vocab, keys,
                                                                         ids);
  CUDA_RETURN_IF_LAUNCH_ERROR("PrepareKernel");
  if (options.repetition_penalty != 1.0f && !penalised.empty()) {
    for (int32_t id : penalised) {
      if (id < 0 || id >= vocab) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "CUDA Sample: penalised id %d outside the vocabulary of %d", id, vocab));
      }
    }
    RETURN_IF_ERROR(ws.penalised.Reserve(penalised.size() * sizeof(int32_t)));
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ws.penalised.data(), penalised.data(),
                                         penalised.size() * sizeof(int32_t),
                                         cudaMemcpyHostToDevice, stream));
    const int32_t count = static_cast<int32_t>(penalised.size());
    PenaltyKernel<<<GridFor(count, kEltThreads), kEltThreads, 0, stream>>>(
        keys, ws.penalised.as<int32_t>(), count, options.repetition_penalty);
    CUDA_RETURN_IF_LAUNCH_ERROR("PenaltyKernel");
  }

  if (options.temperature == 0.0f) {
    ArgMaxKernel<<<1, kThreads, 0, stream>>>(keys, vocab, result);
    CUDA_RETURN_IF_LAUNCH_ERROR("ArgMaxKernel");
  } else {
    RETURN_IF_ERROR(ws.sorted_keys.Reserve(n * sizeof(float)));
    RETURN_IF_ERROR(ws.sorted_ids.Reserve(n * sizeof(int32_t)));
    size_t temp_bytes = 0;
    CUDA_RETURN_IF_ERROR(cub::DeviceRadixSort::SortPairsDescending(
        nullptr, temp_bytes, keys, ws.sorted_keys.as<float>(), ids, ws.sorted_ids.as<int32_t>(),
        vocab, 0, 32, stream));
    RETURN_IF_ERROR(ws.sort_temp.Reserve(temp_bytes));
    temp_bytes = ws.sort_temp.bytes();
    CUDA_RETURN_IF_ERROR(cub::DeviceRadixSort::SortPairsDescending(
        ws.sort_temp.data(), temp_bytes, keys, ws.sorted_keys.as<float>(), ids,
        ws.sorted_ids.as<int32_t>(), vocab, 0, 32, stream));
    const int32_t keep =
        options.top_k > 0 && options.top_k < vocab ? options.top_k : vocab;
    DrawKernel<<<1, kThreads, 0, stream>>>(ws.sorted_keys.as<float>(),
                                           ws.sorted_ids.as<int32_t>(), keep,
                                           options.temperature, options.top_p, options.min_p,
                                           options.uniform, result);
    CUDA_RETURN_IF_LAUNCH_ERROR("DrawKernel");
  }
  if (options.want_logprob) {
    LogprobKernel<<<1, kThreads, 0, stream>>>(logits, vocab, result);
    CUDA_RETURN_IF_LAUNCH_ERROR("LogprobKernel");
  }
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ws.host_result.data(), result, sizeof(DeviceResult),
                                       cudaMemcpyDeviceToHost, stream));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  const DeviceResult r = *ws.host_result.as<DeviceResult>();
  return SampleResult{r.id, options.want_logprob ? r.logprob : NAN};
}

}  // namespace tessera::kernels::cuda
