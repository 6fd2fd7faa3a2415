// engine/symbol_merge.h — the greedy pair-merge loop both tokenizers share.
#ifndef EDGELLM_ENGINE_SYMBOL_MERGE_H_
#define EDGELLM_ENGINE_SYMBOL_MERGE_H_

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace edgellm::engine {

// Priority of merging two adjacent pieces into `merged`; nullopt if they may
// not merge. Higher merges first.
using MergePriority =
    std::function<std::optional<double>(std::string_view left, std::string_view right, std::string_view merged)>;

// Splits `text` into UTF-8 characters, then repeatedly merges the adjacent
// pair of highest priority (the leftmost on ties) until no pair may merge.
// Returns the final pieces, in order, as views into `text`.
std::vector<std::string_view> MergeSymbols(std::string_view text, const MergePriority& priority);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_SYMBOL_MERGE_H_
