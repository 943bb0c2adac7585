// Content identity of a model file, and of the slice of it one stage serves.
//
// A worker and the coordinator must agree that they load the same model. File
// names and sizes are not enough: a fine-tune has the same shapes, names and
// header layout as its base model, so identity covers the tensor bytes. A
// worker maps only the layers it serves, so it hashes only that range;
// RangeIdentity gives the coordinator the same value for any range from its
// own full copy.
//
// ContentHash64 is a fixed, documented algorithm (tests/common/
// gen_hash_vectors.py is an independent transcription), so a value computed on
// one machine, compiler or run matches any other. It is NOT cryptographic: it
// catches the wrong or a corrupted file, not an adversary crafting a collision.
//
// All functions are pure and safe to call from any number of threads.
#ifndef TESSERA_COMMON_MODEL_IDENTITY_H_
#define TESSERA_COMMON_MODEL_IDENTITY_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/gguf/gguf_file.h"

namespace tessera {

// A stable, well-mixed 64-bit hash of data[0, n). Four independent 64-bit
// lanes each take 8 bytes of every 32-byte stripe (so the multiplies of the
// lanes overlap in the pipeline); the tail bytes and the length are folded in
// after the lanes are merged; a final xor-shift-multiply avalanche spreads
// every input bit over the output. Inputs are read as little-endian words on
// every host.
uint64_t ContentHash64(const void* data, size_t n, uint64_t seed = 0);

// Hash of the GGUF header: every byte before the tensor data section
// ([0, file.header_bytes())), i.e. all metadata and tensor descriptors.
uint64_t GgufHeaderHash(const GgufFile& file);

// The identity of layers [layer_begin, layer_end) of a model with `n_layer`
// layers. Starts from GgufHeaderHash and folds in, in file order, the name
// and the ContentHash64 of the data of each tensor the range holds:
//   - blk.<i>.* for layer_begin <= i < layer_end;
//   - token_embd.weight when layer_begin == 0;
//   - output_norm.weight and output.weight when layer_end == n_layer, and
//     token_embd.weight there too when the file has no output.weight (tied);
//   - rope_freqs.weight, if present, for every range.
// INVALID_ARGUMENT for a range outside [0, n_layer) or empty, or when the file
// holds no tensors for some layer in the range (n_layer does not match it).
absl::StatusOr<uint64_t> RangeIdentity(const GgufFile& file, int layer_begin, int layer_end,
                                       int n_layer);

// 16 lowercase hex digits, zero-padded.
std::string IdentityHex(uint64_t id);

}  // namespace tessera

#endif  // TESSERA_COMMON_MODEL_IDENTITY_H_
