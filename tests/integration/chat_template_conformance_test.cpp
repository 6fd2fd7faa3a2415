// Every real chat template in ../shared/chat-templates, rendered for a set of
// conversations (multi-turn, system prompt, tool calls and results, unicode),
// byte for byte as Debian's python3-jinja2 renders it, with Jinja's plain
// settings and with transformers' (trim_blocks and lstrip_blocks).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/chat/jinja_template.h"
#include "tests/support/jinja2_reference.h"
#include "tests/support/test_support.h"

namespace edgellm::chat::jinja {
namespace {

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ChatTemplateConformance, EveryTemplateRendersAsJinja2Does) {
  const std::filesystem::path templates = testing::SharedPath("chat-templates");
  EDGELLM_REQUIRE_SHARED_FILE(templates / "README.md");
  const nlohmann::ordered_json conversations =
      nlohmann::ordered_json::parse(ReadAll(EDGELLM_SOURCE_DIR "/tests/integration/chat_conversations.json"));
  const std::filesystem::path dir = testing::TestDir();
  std::vector<std::filesystem::path> sources;
  for (const auto& entry : std::filesystem::directory_iterator(templates)) {
    if (entry.path().extension() == ".jinja") sources.push_back(entry.path());
  }
  ASSERT_GE(sources.size(), 15u);
  int rendered = 0, refused_alike = 0;
  for (const std::filesystem::path& source : sources) {
    for (const bool hf : {false, true}) {
      ParseOptions options;
      options.trim_blocks = options.lstrip_blocks = hf;
      absl::StatusOr<Template> parsed = Template::Parse(ReadAll(source), options);
      ASSERT_TRUE(parsed.ok()) << source.filename() << ": " << parsed.status();
      for (auto it = conversations.begin(); it != conversations.end(); ++it) {
        const std::string want = testing::Jinja2Renders(source, it.value(), dir, hf);
        absl::StatusOr<std::string> got = parsed->Render(Value::FromJson(it.value()));
        const std::string where = source.filename().string() + " / " + it.key() + (hf ? " (hf)" : " (plain)");
        if (want.rfind("RAISED: ", 0) == 0 || want.rfind("ERROR: ", 0) == 0) {
          // The template refuses the conversation (a role it does not take, a
          // tool call it cannot print): so must we, with its words where it
          // gave some through raise_exception.
          ASSERT_FALSE(got.ok()) << where << " rendered what Jinja2 refused: " << want;
          if (want.rfind("RAISED: ", 0) == 0) {
            EXPECT_NE(got.status().message().find("the template raised: " + want.substr(8)), std::string::npos)
                << where << ": " << got.status() << " vs " << want;
          }
          ++refused_alike;
          continue;
        }
        ASSERT_TRUE(got.ok()) << where << ": " << got.status();
        EXPECT_EQ(*got, want) << where;
        ++rendered;
      }
    }
  }
  EXPECT_GE(rendered, 100) << refused_alike << " refused alike";
}

}  // namespace
}  // namespace edgellm::chat::jinja
