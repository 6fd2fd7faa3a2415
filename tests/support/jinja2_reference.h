// tests/support/jinja2_reference.h — what Python's Jinja2 renders for a chat
// template (tests/integration/render_jinja2.py run by Debian's python3, where
// python3-jinja2 is installed): the reference every chat-template test
// compares with.
#ifndef EDGELLM_TESTS_SUPPORT_JINJA2_REFERENCE_H_
#define EDGELLM_TESTS_SUPPORT_JINJA2_REFERENCE_H_

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace edgellm::testing {

// The text the template in `source` renders with `context`'s entries as
// variables; with `hf`, transformers' settings (trim_blocks, lstrip_blocks).
// The script prints "RAISED: ..." when the template raised and "ERROR: ..."
// when Jinja2 failed; "the Python reference failed" when it could not run.
// `dir` holds the context file.
inline std::string Jinja2Renders(const std::filesystem::path& source, const nlohmann::ordered_json& context,
                                 const std::filesystem::path& dir, bool hf = true) {
  const std::filesystem::path context_path = dir / "jinja2-context.json";
  std::ofstream(context_path) << context.dump();
  const std::string command = "/usr/bin/python3 " EDGELLM_SOURCE_DIR "/tests/integration/render_jinja2.py '" +
                              source.string() + "' '" + context_path.string() + "' " + (hf ? "hf" : "plain");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "the Python reference failed: popen";
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  if (pclose(pipe) != 0) return "the Python reference failed: " + out;
  return out;
}

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_JINJA2_REFERENCE_H_
