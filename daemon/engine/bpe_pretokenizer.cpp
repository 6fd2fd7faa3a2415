#include "daemon/engine/bpe_pretokenizer.h"

#include <algorithm>

#include "absl/strings/str_join.h"
#include "common/str_cat.h"
#include "daemon/engine/utf8.h"

namespace edgellm::engine {
namespace {

constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr std::string_view kLlama3Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// The CJK ranges DeepSeek's tokenizers keep together.
constexpr std::string_view kCjkPattern = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+";

struct PreTokenizerSpec {
  std::vector<std::string_view> names;
  std::vector<std::string_view> patterns;
  bool ignore_merges = false;
  bool adds_bos = false;  // a BOS is added unless the file says otherwise
};

// llama.cpp's pre-tokenizers (llama-vocab.cpp), by the names GGUF files carry.
const std::vector<PreTokenizerSpec>& Specs() {
  static const auto* specs = new std::vector<PreTokenizerSpec>{
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral"}, {kLlama3Pattern}, true, true},
      {{"dbrx", "smaug-bpe"}, {kLlama3Pattern}},
      {{"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"}, {kQwen2Pattern}},
      {{"gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de"},
       {kGpt2Pattern}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {R"(\p{N})", kGpt2Pattern}},
      {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2Pattern, "[0-9][0-9][0-9]"}},
      {{"deepseek-llm"},
       {"[\r\n]",
        "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-"
        "\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481"
        "\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-"
        "\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57"
        "\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-"
        "\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-"
        "\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184"
        "\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-"
        "\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-"
        "\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2"
        "\U000118a0-\U000118df\U0001e900-\U0001e943]+",
        "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+", R"(\s+$)", kCjkPattern,
        R"(\p{N}+)"}},
      {{"deepseek-coder"}, {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkPattern, R"(\p{N})"}},
      {{"", "default"},
       {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2Pattern, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
  };
  return *specs;
}

struct CodePoint {
  size_t start;  // byte offsets in the text
  size_t end;
  uint32_t value;
};

// Byte views of the pieces with these code-point lengths.
std::vector<std::string_view> Pieces(std::string_view text, const std::vector<CodePoint>& cps,
                                     const std::vector<size_t>& lengths) {
  std::vector<std::string_view> words;
  words.reserve(lengths.size());
  size_t at = 0;
  for (size_t n : lengths) {
    words.push_back(text.substr(cps[at].start, cps[at + n - 1].end - cps[at].start));
    at += n;
  }
  return words;
}

std::vector<CodePoint> DecodeCodePoints(std::string_view text) {
  std::vector<CodePoint> cps;
  cps.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = pos;
    const uint32_t cp = Utf8Next(text, &pos);
    cps.push_back({start, pos, cp});
  }
  return cps;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::ForName(std::string_view name) {
  for (const PreTokenizerSpec& spec : Specs()) {
    if (std::find(spec.names.begin(), spec.names.end(), name) == spec.names.end()) continue;
    std::unique_ptr<PreTokenizer> pre(new PreTokenizer());
    pre->ignore_merges_ = spec.ignore_merges;
    for (std::string_view pattern : spec.patterns) {
      absl::StatusOr<SplitRegex> regex = SplitRegex::Compile(pattern);
      if (!regex.ok()) {
        return absl::InternalError(edgellm::StrCat("pre-tokenizer '", name, "': ", regex.status().message()));
      }
      pre->patterns_.push_back(*std::move(regex));
    }
    return pre;
  }
  return absl::InvalidArgumentError(edgellm::StrCat("tokenizer.ggml.pre: unsupported pre-tokenizer '", name,
                                                    "' (supported: ", absl::StrJoin(Names(), ", "), ")"));
}

bool PreTokenizer::AddsBosByDefault(std::string_view name) {
  for (const PreTokenizerSpec& spec : Specs()) {
    if (std::find(spec.names.begin(), spec.names.end(), name) != spec.names.end()) return spec.adds_bos;
  }
  return false;
}

std::vector<std::string> PreTokenizer::Names() {
  std::vector<std::string> names;
  for (const PreTokenizerSpec& spec : Specs()) {
    for (std::string_view name : spec.names) {
      if (!name.empty()) names.emplace_back(name);
    }
  }
  return names;
}

std::vector<std::string_view> PreTokenizer::Split(std::string_view text) const {
  const std::vector<CodePoint> decoded = DecodeCodePoints(text);
  if (decoded.empty()) return {};
  std::vector<size_t> lengths = {decoded.size()}, next;
  // The code points as patterns without and with categories match them,
  // each computed once, when a step first needs it.
  std::vector<uint32_t> matched_as[2];
  for (const SplitRegex& regex : patterns_) {
    std::vector<uint32_t>& chars = matched_as[regex.uses_categories()];
    if (chars.empty()) {
      chars.reserve(decoded.size());
      for (const CodePoint& c : decoded) chars.push_back(regex.MatchValue(c.value));
    }
    next.clear();
    regex.Split(chars, lengths, &next);
    lengths.swap(next);
  }
  return Pieces(text, decoded, lengths);
}

}  // namespace edgellm::engine
