#include "daemon/engine/gguf_writer.h"

#include <gtest/gtest.h>

#include "daemon/engine/gguf_reader.h"
#include "tests/support/test_support.h"

namespace edgellm::engine {
namespace {

TEST(GgufWriter, RefusesInvalidTensors) {
  GgufWriter w;
  std::vector<uint8_t> data(34);
  EXPECT_TRUE(w.AddTensor("t", GgmlType::kQ8_0, {32}, data).ok());
  EXPECT_EQ(w.AddTensor("t", GgmlType::kQ8_0, {32}, data).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("u", GgmlType::kQ8_0, {31}, data).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("v", GgmlType::kF32, {1, 1, 1, 1, 1}, data).code(), absl::StatusCode::kInvalidArgument);
}

TEST(GgufWriter, ABadTensorFailsTheWriteAndKeepsTheOldFile) {
  const std::string path = (edgellm::testing::TestDir() / "m.gguf").string();
  GgufWriter good;
  good.Set("general.name", GgufValue::String("good"));
  ASSERT_TRUE(good.Write(path).ok());

  GgufWriter bad;
  std::vector<uint8_t> too_short(10);
  ASSERT_TRUE(bad.AddTensor("t", GgmlType::kF32, {8}, too_short).ok());
  const absl::Status s = bad.Write(path);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("tensor t"), absl::string_view::npos) << s;
  auto reader = GgufReader::Open(path);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(*(*reader)->GetString("general.name"), "good");
}

TEST(GgufWriter, HonoursACustomAlignment) {
  GgufWriter w(64);
  std::vector<uint8_t> a(4), b(4);
  ASSERT_TRUE(w.AddTensor("a", GgmlType::kF32, {1}, a).ok());
  ASSERT_TRUE(w.AddTensor("b", GgmlType::kF32, {1}, b).ok());
  auto r = GgufReader::FromBytes(*w.Serialize());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->alignment(), 64u);
  EXPECT_EQ((*r)->FindTensor("b")->offset, 64u);
  EXPECT_EQ((*r)->data_offset() % 64, 0u);
}

}  // namespace
}  // namespace edgellm::engine
