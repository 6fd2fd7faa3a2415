// common/str_cat.h — absl::StrCat that also takes std::string_view.
//
// Debian's Abseil is built with its own absl::string_view (not an alias of
// std::string_view), so absl::StrCat rejects std::string_view arguments. This
// forwards to it after converting them.
#ifndef EDGELLM_COMMON_STR_CAT_H_
#define EDGELLM_COMMON_STR_CAT_H_

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace edgellm {
namespace internal_str_cat {

template <typename T>
decltype(auto) Adapt(const T& value) {
  if constexpr (std::is_same_v<T, std::string_view>) {
    return absl::string_view(value.data(), value.size());
  } else {
    return (value);
  }
}

}  // namespace internal_str_cat

template <typename... Args>
std::string StrCat(const Args&... args) {
  return absl::StrCat(internal_str_cat::Adapt(args)...);
}

}  // namespace edgellm

#endif  // EDGELLM_COMMON_STR_CAT_H_
