#include "common/tokenizer/incremental_detokenizer.h"

#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/unicode.h"

namespace tessera {

std::string IncrementalDetokenizer::Push(int32_t id) {
  pending_ += tokenizer_->DecodeNext(id, &state_);
  const size_t keep = IncompleteUtf8Suffix(pending_);
  std::string out;
  AppendValidUtf8(std::string_view(pending_).substr(0, pending_.size() - keep), &out);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string IncrementalDetokenizer::Flush() {
  std::string out;
  AppendValidUtf8(pending_, &out);
  pending_.clear();
  state_ = DecodeState();
  return out;
}

}  // namespace tessera
