// Command lines accept --max-tokens as well as absl's --max_tokens spelling:
// NormaliseDashedFlags rewrites dashes in flag names (not in values) to
// underscores before absl::ParseCommandLine sees them. Used by every binary's
// main. Thread-safe: a pure function.
#ifndef TESSERA_COMMON_DASHED_FLAGS_H_
#define TESSERA_COMMON_DASHED_FLAGS_H_

#include <algorithm>
#include <string>
#include <vector>

namespace tessera {

// `storage` keeps the rewritten strings alive; the result points into it.
inline std::vector<char*> NormaliseDashedFlags(int argc, char** argv,
                                               std::vector<std::string>* storage) {
  storage->clear();
  storage->reserve(argc);
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) == 0) {
      const size_t eq = a.find('=');
      for (size_t j = 2; j < std::min(eq, a.size()); ++j) {
        if (a[j] == '-') a[j] = '_';
      }
    }
    storage->push_back(std::move(a));
  }
  std::vector<char*> out;
  for (std::string& s : *storage) out.push_back(s.data());
  return out;
}

}  // namespace tessera

#endif  // TESSERA_COMMON_DASHED_FLAGS_H_
