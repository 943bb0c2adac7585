#include "common/model_identity.h"

#include <cstring>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace tessera {
namespace {

// Large odd constants with well-spread bits (golden ratio, splitmix64 and
// murmur3 finaliser multipliers). Any change here changes every identity and
// must be mirrored in tests/common/gen_hash_vectors.py.
constexpr uint64_t kP1 = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kP2 = 0xBF58476D1CE4E5B9ull;
constexpr uint64_t kP3 = 0x94D049BB133111EBull;
constexpr uint64_t kP4 = 0xFF51AFD7ED558CCDull;

inline uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// Little-endian loads on every host, so the hash does not depend on byte order.
template <typename T>
inline T LoadLittle(const uint8_t* p) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  T v;
  std::memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  if constexpr (sizeof(T) == 8) {
    v = __builtin_bswap64(v);
  } else {
    v = __builtin_bswap32(v);
  }
#endif
  return v;
}
inline uint64_t Load64(const uint8_t* p) { return LoadLittle<uint64_t>(p); }
inline uint32_t Load32(const uint8_t* p) { return LoadLittle<uint32_t>(p); }

inline uint64_t LaneRound(uint64_t v, uint64_t word) { return Rotl(v ^ (word * kP2), 29) * kP1; }

// Folds a finished lane (or an 8-byte tail word, pre-mixed) into the total.
inline uint64_t FoldWord(uint64_t h, uint64_t k) { return Rotl(h ^ k, 27) * kP1 + kP4; }

// The layer index of a blk.<i>.* name, or -1.
int BlockIndex(std::string_view name) {
  constexpr std::string_view kBlk = "blk.";
  if (name.substr(0, kBlk.size()) != kBlk) return -1;
  std::string_view rest = name.substr(kBlk.size());
  size_t dot = rest.find('.');
  int layer = -1;
  if (dot == std::string_view::npos ||
      !absl::SimpleAtoi(absl::string_view(rest.data(), dot), &layer))
    return -1;
  return layer < 0 ? -1 : layer;
}

// The selection rule of RangeIdentity for one tensor name.
bool RangeHolds(std::string_view name, int begin, int end, int n_layer, bool has_output) {
  if (name.substr(0, 4) == "blk.") {
    int layer = BlockIndex(name);
    return layer >= begin && layer < end;
  }
  if (name == "rope_freqs.weight") return true;
  if (name == "token_embd.weight") return begin == 0 || (end == n_layer && !has_output);
  if (name == "output_norm.weight" || name == "output.weight") return end == n_layer;
  return false;
}

}  // namespace

uint64_t ContentHash64(const void* data, size_t n, uint64_t seed) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t v0 = seed + kP1;
  uint64_t v1 = seed + kP2;
  uint64_t v2 = seed + kP3;
  uint64_t v3 = seed + kP4;
  size_t rem = n;
  for (; rem >= 32; rem -= 32, p += 32) {
    v0 = LaneRound(v0, Load64(p));
    v1 = LaneRound(v1, Load64(p + 8));
    v2 = LaneRound(v2, Load64(p + 16));
    v3 = LaneRound(v3, Load64(p + 24));
  }

  // Folding the lanes one after another (not a symmetric sum) keeps lane order
  // significant, so swapping two 8-byte columns changes the hash.
  uint64_t h = seed ^ kP4;
  h = FoldWord(h, Rotl(v0 * kP3, 31) * kP1);
  h = FoldWord(h, Rotl(v1 * kP3, 31) * kP1);
  h = FoldWord(h, Rotl(v2 * kP3, 31) * kP1);
  h = FoldWord(h, Rotl(v3 * kP3, 31) * kP1);
  h += static_cast<uint64_t>(n);

  for (; rem >= 8; rem -= 8, p += 8) h = FoldWord(h, Rotl(Load64(p) * kP2, 31) * kP1);
  if (rem >= 4) {
    h = Rotl(h ^ (static_cast<uint64_t>(Load32(p)) * kP1), 23) * kP2 + kP3;
    rem -= 4;
    p += 4;
  }
  for (; rem > 0; --rem, ++p) h = Rotl(h ^ (static_cast<uint64_t>(*p) * kP4), 11) * kP1;

  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

uint64_t GgufHeaderHash(const GgufFile& file) {
  return ContentHash64(file.data(), file.header_bytes());
}

absl::StatusOr<uint64_t> RangeIdentity(const GgufFile& file, int layer_begin, int layer_end,
                                       int n_layer) {
  if (n_layer <= 0 || layer_begin < 0 || layer_begin >= layer_end || layer_end > n_layer) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: bad layer range [%d, %d) for a model of %d layers", file.path(),
                        layer_begin, layer_end, n_layer));
  }
  const bool has_output = file.FindTensor("output.weight") != nullptr;
  // A layer with no tensors means n_layer (or the range) does not describe
  // this file; hashing would silently give an identity nobody else computes.
  std::vector<bool> layer_seen(layer_end - layer_begin, false);

  uint64_t h = GgufHeaderHash(file);
  for (const GgufTensorInfo& t : file.tensors()) {
    if (!RangeHolds(t.name, layer_begin, layer_end, n_layer, has_output)) continue;
    int layer = BlockIndex(t.name);
    if (layer >= 0) layer_seen[layer - layer_begin] = true;
    // Each tensor's data is hashed on its own (seed 0) and then chained, so a
    // caller could hash tensors in parallel and still get the same value.
    uint64_t data_hash = ContentHash64(file.TensorData(t), t.size_bytes);
    uint8_t le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<uint8_t>(data_hash >> (8 * i));
    h = ContentHash64(t.name.data(), t.name.size(), h);
    h = ContentHash64(le, sizeof(le), h);
  }
  for (int i = layer_begin; i < layer_end; ++i) {
    if (!layer_seen[i - layer_begin]) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: no tensors for layer %d (blk.%d.*); is n_layer=%d right for this file?", file.path(),
          i, i, n_layer));
    }
  }
  return h;
}

std::string IdentityHex(uint64_t id) { return absl::StrFormat("%016x", id); }

}  // namespace tessera
