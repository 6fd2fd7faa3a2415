#include "common/atomic_file.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "tests/support/test_support.h"

namespace edgellm {
namespace {

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(AtomicFile, WritesAndReplaces) {
  const auto dir = testing::TestDir();
  const std::string path = (dir / "f.txt").string();
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  EXPECT_EQ(ReadAll(path), "first");
  ASSERT_TRUE(WriteFileAtomically(path, "second").ok());
  EXPECT_EQ(ReadAll(path), "second");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);  // no temporary left
}

TEST(AtomicFile, AFailedProducerLeavesTheOldFileAndNoTemporary) {
  const auto dir = testing::TestDir();
  const std::string path = (dir / "f.txt").string();
  ASSERT_TRUE(WriteFileAtomically(path, "keep me").ok());
  const absl::Status s = WriteFileAtomically(path, [](FileSink& sink) {
    const std::string partial = "partial";
    EXPECT_TRUE(sink.Append({reinterpret_cast<const uint8_t*>(partial.data()), partial.size()}).ok());
    return absl::DataLossError("producer failed");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReadAll(path), "keep me");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
}

TEST(AtomicFile, UnwritableDirectoryIsAnError) {
  const absl::Status s = WriteFileAtomically("/nonexistent-dir/f.txt", "x");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent-dir/f.txt"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace edgellm
