#include "coordinator/output_processor.h"

#include <utility>

namespace tessera {

OutputProcessor::OutputProcessor(const Tokenizer* tokenizer, std::vector<std::string> stops,
                                 bool logprobs, int64_t prompt_tokens)
    : tokenizer_(tokenizer),
      detok_(*tokenizer),
      stops_(std::move(stops)),
      logprobs_(logprobs),
      prompt_tokens_(prompt_tokens) {}

RequestEvent FinalEvent(const GenerationEnd& end) {
  RequestEvent e;
  e.final = true;
  e.status = end.status;
  e.finish_reason = end.finish_reason;
  e.prompt_tokens = end.prompt_tokens;
  e.completion_tokens = end.completion_tokens;
  return e;
}

void OutputProcessor::Token(const GeneratedToken& token, std::vector<RequestEvent>* out,
                            bool* stopped) {
  *stopped = false;
  if (done_) return;
  ++tokens_;
  RequestEvent e;
  e.token_ids.push_back(token.id);
  if (logprobs_) e.logprobs.push_back(token.logprob);
  if (!token.top.empty()) {
    std::vector<TopLogprob>& top = e.top_logprobs.emplace_back();
    top.reserve(token.top.size());
    for (const auto& [id, logprob] : token.top) {
      top.push_back({id, logprob, tokenizer_->TokenToPiece(id, /*render_special=*/true)});
    }
  }
  e.text = stops_.Push(detok_.Push(token.id), stopped);
  out->push_back(std::move(e));
  if (!*stopped) return;
  // What the detokenizer still holds is past the stop string: dropped.
  done_ = true;
  RequestEvent end;
  end.final = true;
  end.finish_reason = "stop";
  end.prompt_tokens = prompt_tokens_;
  end.completion_tokens = tokens_;
  out->push_back(std::move(end));
}

void OutputProcessor::End(const GenerationEnd& end, std::vector<RequestEvent>* out) {
  if (done_) return;
  done_ = true;
  RequestEvent e = FinalEvent(end);
  if (end.status.ok()) {
    // Whatever the detokenizer and the stop matcher still hold is output.
    bool stopped = false;
    e.text = stops_.Push(detok_.Flush(), &stopped);
    if (!stopped) e.text += stops_.Flush();
  }
  out->push_back(std::move(e));
}

}  // namespace tessera
