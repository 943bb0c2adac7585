// A read-only memory mapping of a whole file.
//
// Model files are hundreds of megabytes to hundreds of gigabytes; mapping them
// lets weights be used in place and paged in lazily by the OS instead of being
// copied. The mapping lives exactly as long as the MappedFile object; every
// pointer obtained from data() dangles once it is destroyed.
//
// The contents are immutable after Open, so a MappedFile may be read from any
// number of threads concurrently. (If another process truncates the file while
// it is mapped, reads past the new end fault; that is outside our control.)
#ifndef TESSERA_COMMON_MAPPED_FILE_H_
#define TESSERA_COMMON_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace tessera {

class MappedFile {
 public:
  // Maps `path` read-only. NOT_FOUND when it does not exist, PERMISSION_DENIED
  // when it cannot be read, INVALID_ARGUMENT when it is not a regular file.
  // An empty file maps to size() == 0 with a non-null data().
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size, bool mapped)
      : path_(std::move(path)), data_(data), size_(size), mapped_(mapped) {}

  std::string path_;
  const uint8_t* data_;
  size_t size_;
  bool mapped_;  // false for empty files, which mmap refuses
};

}  // namespace tessera

#endif  // TESSERA_COMMON_MAPPED_FILE_H_
