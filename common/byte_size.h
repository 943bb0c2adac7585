// Byte sizes as operators write them on command lines: "24GiB", "512MiB",
// "1.5GB", "1000000". Binary (KiB, MiB, GiB, TiB) and decimal (KB, MB, GB,
// TB) units, case-insensitive, an optional "B". Thread-safe: pure functions.
#ifndef TESSERA_COMMON_BYTE_SIZE_H_
#define TESSERA_COMMON_BYTE_SIZE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tessera {

// INVALID_ARGUMENT naming the text when it is not a size.
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);

// "1.50 GiB", "12.00 MiB", "512 B": two decimals in the largest binary unit.
std::string FormatBytes(uint64_t bytes);

}  // namespace tessera

#endif  // TESSERA_COMMON_BYTE_SIZE_H_
