// Stop strings over streamed text. Text is released only once it can no
// longer turn out to be the start of a stop string, so a client never sees
// part of a stop string, and the text before the first match is delivered
// exactly.
//
// Thread-safety: a plain value; one per request.
#ifndef TESSERA_COORDINATOR_STOP_MATCHER_H_
#define TESSERA_COORDINATOR_STOP_MATCHER_H_

#include <string>
#include <vector>

namespace tessera {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends `text` and returns what may be released now. Sets *stopped when a
  // stop string completed (the returned text ends just before it).
  std::string Push(const std::string& text, bool* stopped);
  // Releases whatever is held back (the request ended another way).
  std::string Flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;  // text not yet released
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STOP_MATCHER_H_
