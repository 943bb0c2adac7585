#include "common/tokenizer/pre_tokenizer.h"

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/tokenizer/string_view_compat.h"
#include "common/tokenizer/unicode.h"

namespace tessera {
namespace {

// A split is a list of piece lengths (in code points) covering the text.
using Pieces = std::vector<size_t>;

constexpr uint32_t kOutOfPiece = 0xFFFFFFFF;

// Views one piece [begin, end) of the code points: positions outside it read
// as kOutOfPiece with no flags, which is how the patterns see a piece's edge.
class PieceView {
 public:
  PieceView(const std::vector<uint32_t>& cpts, size_t begin, size_t end)
      : cpts_(cpts), begin_(begin), end_(end) {}
  uint32_t Cpt(size_t pos) const { return pos < end_ ? cpts_[pos] : kOutOfPiece; }
  uint16_t Flags(size_t pos) const { return pos < end_ ? CodepointFlagsOf(cpts_[pos]) : 0; }
  size_t begin() const { return begin_; }
  size_t end() const { return end_; }

 private:
  const std::vector<uint32_t>& cpts_;
  size_t begin_, end_;
};

// Emits pieces as the scanner advances: Cut(pos) closes the piece that
// started at the previous cut.
class Cutter {
 public:
  Cutter(Pieces* out, size_t start) : out_(out), prev_(start) {}
  void Cut(size_t pos) {
    if (pos > prev_) out_->push_back(pos - prev_);
    prev_ = pos;
  }

 private:
  Pieces* out_;
  size_t prev_;
};

constexpr uint16_t kWsLetterNumber = kCpWhitespace | kCpLetter | kCpNumber;

uint32_t AsciiLower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

// Length of a contraction ('s 't 'm 'd 're 've 'll) at pos, or 0.
size_t ContractionLength(const PieceView& v, size_t pos, bool ignore_case) {
  if (v.Cpt(pos) != '\'' || pos + 1 >= v.end()) return 0;
  auto fold = [&](uint32_t c) { return ignore_case ? AsciiLower(c) : c; };
  const uint32_t a = fold(v.Cpt(pos + 1));
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (pos + 2 >= v.end()) return 0;
  const uint32_t b = fold(v.Cpt(pos + 2));
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

void ScanGpt2(const PieceView& v, Pieces* out) {
  Cutter cut(out, v.begin());
  size_t pos = v.begin();
  while (pos < v.end()) {
    const uint32_t c = v.Cpt(pos);
    if (size_t n = ContractionLength(v, pos, /*ignore_case=*/false)) {
      pos += n;
      cut.Cut(pos);
      continue;
    }
    // " ?X+" alternatives: an optional leading space, judged by what follows.
    const size_t body = pos + (c == ' ' ? 1 : 0);
    const uint16_t f = v.Flags(body);
    if (f & kCpLetter) {
      pos = body;
      while (v.Flags(pos) & kCpLetter) ++pos;
      cut.Cut(pos);
      continue;
    }
    if (f & kCpNumber) {
      pos = body;
      while (v.Flags(pos) & kCpNumber) ++pos;
      cut.Cut(pos);
      continue;
    }
    auto is_other = [](uint16_t fl) { return fl != 0 && !(fl & kWsLetterNumber); };
    if (is_other(f)) {
      pos = body;
      while (is_other(v.Flags(pos))) ++pos;
      cut.Cut(pos);
      continue;
    }
    size_t n_ws = 0;
    while (v.Flags(pos + n_ws) & kCpWhitespace) ++n_ws;
    if (n_ws > 1 && pos + n_ws < v.end()) {
      // \s+(?!\S): leave the last space to lead the next word.
      pos += n_ws - 1;
    } else if (n_ws > 0) {
      pos += n_ws;
    } else {
      ++pos;  // unreachable for code points < 0x110000; kept for safety
    }
    cut.Cut(pos);
  }
}

void ScanLlama3(const PieceView& v, Pieces* out) {
  Cutter cut(out, v.begin());
  size_t pos = v.begin();
  while (pos < v.end()) {
    const uint32_t c = v.Cpt(pos);
    const uint16_t f = v.Flags(pos);
    if (size_t n = ContractionLength(v, pos, /*ignore_case=*/true)) {
      pos += n;
      cut.Cut(pos);
      continue;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(c == '\r' || c == '\n' || (f & kCpNumber))) {
      if ((f & kCpLetter) || (v.Flags(pos + 1) & kCpLetter)) {
        ++pos;
        while (v.Flags(pos) & kCpLetter) ++pos;
        cut.Cut(pos);
        continue;
      }
    }
    // \p{N}{1,3}
    if (f & kCpNumber) {
      size_t run_start = pos;
      while (v.Flags(pos) & kCpNumber) {
        if (++pos - run_start >= 3) {
          cut.Cut(pos);
          run_start = pos;
        }
      }
      cut.Cut(pos);
      continue;
    }
    // ' '?[^\s\p{L}\p{N}]+[\r\n]*  -- llama.cpp tests the optional space's
    // successor for the class but the current code point for "is in range".
    const uint16_t f2 = c == ' ' ? v.Flags(pos + 1) : f;
    if (!(f2 & kWsLetterNumber) && f != 0) {
      pos += (c == ' ');
      while (v.Flags(pos) != 0 && !(v.Flags(pos) & kWsLetterNumber)) ++pos;
      while (v.Cpt(pos) == '\r' || v.Cpt(pos) == '\n') ++pos;
      cut.Cut(pos);
      continue;
    }
    size_t n_ws = 0;
    size_t after_last_newline = 0;
    while (v.Flags(pos + n_ws) & kCpWhitespace) {
      const uint32_t w = v.Cpt(pos + n_ws);
      if (w == '\r' || w == '\n') after_last_newline = pos + n_ws + 1;
      ++n_ws;
    }
    if (after_last_newline > 0) {
      pos = after_last_newline;  // \s*[\r\n]+
    } else if (n_ws > 1 && pos + n_ws < v.end()) {
      pos += n_ws - 1;  // \s+(?!\S)
    } else if (n_ws > 0) {
      pos += n_ws;  // \s+
    } else {
      ++pos;
    }
    cut.Cut(pos);
  }
}

// Matches of a one-code-point class, each as its own piece ("\p{N}").
template <typename Pred>
void SplitIsolated(const PieceView& v, Pred in_class, Pieces* out) {
  Cutter cut(out, v.begin());
  for (size_t pos = v.begin(); pos < v.end(); ++pos) {
    if (in_class(v.Cpt(pos))) {
      cut.Cut(pos);
      cut.Cut(pos + 1);
    }
  }
  cut.Cut(v.end());
}

// Maximal runs of a class as pieces, text between them as pieces ("[...]+").
template <typename Pred>
void SplitRuns(const PieceView& v, Pred in_class, Pieces* out) {
  Cutter cut(out, v.begin());
  size_t pos = v.begin();
  while (pos < v.end()) {
    if (!in_class(v.Cpt(pos))) {
      ++pos;
      continue;
    }
    cut.Cut(pos);
    while (pos < v.end() && in_class(v.Cpt(pos))) ++pos;
    cut.Cut(pos);
  }
  cut.Cut(v.end());
}

// "[0-9][0-9][0-9]": leftmost non-overlapping triples of ASCII digits.
void SplitAsciiDigitTriples(const PieceView& v, Pieces* out) {
  auto digit = [&](size_t p) { return v.Cpt(p) >= '0' && v.Cpt(p) <= '9'; };
  Cutter cut(out, v.begin());
  size_t pos = v.begin();
  while (pos + 3 <= v.end()) {
    if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
      cut.Cut(pos);
      cut.Cut(pos + 3);
      pos += 3;
    } else {
      ++pos;
    }
  }
  cut.Cut(v.end());
}

// Applies `step(view, out)` within every current piece.
template <typename Step>
Pieces Refine(const std::vector<uint32_t>& cpts, const Pieces& pieces, Step step) {
  Pieces out;
  out.reserve(pieces.size() * 2);
  size_t start = 0;
  for (size_t len : pieces) {
    step(PieceView(cpts, start, start + len), &out);
    start += len;
  }
  return out;
}

bool IsNumber(uint32_t c) { return (CodepointFlagsOf(c) & kCpNumber) != 0; }

// llama.cpp's "[\p{P}\$\+<=>\^~\|]+" class.
bool IsPunctuationLike(uint32_t c) {
  if (CodepointFlagsOf(c) & kCpPunctuation) return true;
  switch (c) {
    case '$': case '+': case '<': case '=': case '>': case '^': case '~': case '|':
      return true;
    default:
      return false;
  }
}

}  // namespace

absl::StatusOr<PreTokenizerKind> PreTokenizerFromName(std::string_view name) {
  if (name.empty() || name == "default") return PreTokenizerKind::kDefault;
  if (name == "gpt-2" || name == "gpt2") return PreTokenizerKind::kGpt2;
  if (name == "smollm") return PreTokenizerKind::kSmolLm;
  if (name == "llama3" || name == "llama-v3" || name == "llama-bpe") {
    return PreTokenizerKind::kLlama3;
  }
  return absl::UnimplementedError(absl::StrCat(
      "unsupported pre-tokenizer (tokenizer.ggml.pre) '", ToAbsl(name),
      "'; supported: default, gpt-2, smollm, llama-bpe"));
}

std::vector<std::string> PreTokenize(PreTokenizerKind kind, std::string_view text) {
  const std::vector<uint32_t> cpts = DecodeUtf8Lenient(text);
  if (cpts.empty()) return {};
  Pieces pieces = {cpts.size()};
  auto gpt2 = [](const PieceView& v, Pieces* out) { ScanGpt2(v, out); };
  switch (kind) {
    case PreTokenizerKind::kDefault:
      pieces = Refine(cpts, pieces, [](const PieceView& v, Pieces* out) {
        SplitRuns(v, IsPunctuationLike, out);
      });
      pieces = Refine(cpts, pieces, gpt2);
      pieces = Refine(cpts, pieces, [](const PieceView& v, Pieces* out) {
        SplitRuns(v, IsNumber, out);
      });
      pieces = Refine(cpts, pieces, SplitAsciiDigitTriples);
      break;
    case PreTokenizerKind::kGpt2:
      pieces = Refine(cpts, pieces, gpt2);
      break;
    case PreTokenizerKind::kSmolLm:
      pieces = Refine(cpts, pieces, [](const PieceView& v, Pieces* out) {
        SplitIsolated(v, IsNumber, out);
      });
      pieces = Refine(cpts, pieces, gpt2);
      break;
    case PreTokenizerKind::kLlama3:
      pieces = Refine(cpts, pieces, ScanLlama3);
      break;
  }
  std::vector<std::string> words;
  words.reserve(pieces.size());
  size_t start = 0;
  for (size_t len : pieces) {
    std::string word;
    for (size_t i = start; i < start + len; ++i) AppendUtf8(cpts[i], &word);
    words.push_back(std::move(word));
    start += len;
  }
  return words;
}

}  // namespace tessera
