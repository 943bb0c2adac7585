// What was built: the project version (CMake's project VERSION) and the git
// commit the build was configured from ("unknown" outside a git checkout),
// for `tessera_build_info` and --version.
//
// Thread-safety: constants.
#ifndef TESSERA_COMMON_METRICS_BUILD_INFO_H_
#define TESSERA_COMMON_METRICS_BUILD_INFO_H_

namespace tessera {

const char* BuildVersion();
const char* BuildCommit();

}  // namespace tessera

#endif  // TESSERA_COMMON_METRICS_BUILD_INFO_H_
