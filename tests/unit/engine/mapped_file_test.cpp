#include "daemon/engine/mapped_file.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace edgellm::engine {
namespace {

std::vector<uint8_t> WriteFile(const std::filesystem::path& path, size_t size) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(i * 131 + i / 4096);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(size));
  return bytes;
}

TEST(MappedFile, BothAccessModesHoldTheFilesBytes) {
  const std::filesystem::path dir = edgellm::testing::TestDir();
  // Sizes around a page, one that spans many pages and ends mid-page, and one
  // large enough that a resident copy is read in parts by several threads.
  for (size_t size : {size_t{1}, size_t{4096}, size_t{4097}, size_t{3 << 20} + 5, size_t{130 << 20} + 7}) {
    const std::filesystem::path path = dir / ("file-" + std::to_string(size));
    const std::vector<uint8_t> expected = WriteFile(path, size);
    for (FileAccess access : {FileAccess::kMapped, FileAccess::kResident}) {
      absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path.string(), access);
      ASSERT_TRUE(file.ok()) << file.status();
      ASSERT_EQ((*file)->bytes().size(), size);
      EXPECT_TRUE(std::equal(expected.begin(), expected.end(), (*file)->bytes().begin()))
          << size << " bytes, access " << static_cast<int>(access);
      EXPECT_EQ((*file)->path(), path.string());
    }
  }
}

TEST(MappedFile, AnEmptyFileHasNoBytes) {
  const std::filesystem::path path = edgellm::testing::TestDir() / "empty";
  WriteFile(path, 0);
  for (FileAccess access : {FileAccess::kMapped, FileAccess::kResident}) {
    absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path.string(), access);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_TRUE((*file)->bytes().empty());
  }
}

TEST(MappedFile, AMissingFileIsNotFoundWithItsPath) {
  const std::string path = (edgellm::testing::TestDir() / "absent.gguf").string();
  for (FileAccess access : {FileAccess::kMapped, FileAccess::kResident}) {
    absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path, access);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
    EXPECT_NE(file.status().message().find(path), std::string::npos) << file.status();
  }
}

}  // namespace
}  // namespace edgellm::engine
