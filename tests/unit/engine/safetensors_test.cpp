#include "daemon/engine/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/fp16.h"

namespace edgellm::engine {
namespace {

// A file of the given header text and `data_bytes` zero bytes of data.
std::string FileWith(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t size = header.size();
  std::memcpy(out.data(), &size, 8);
  return out + header + std::string(data_bytes, '\0');
}

absl::Status ParseStatus(std::string bytes) { return SafetensorsReader::FromBytes(std::move(bytes)).status(); }

TEST(Safetensors, WrittenTensorsReadBackWithTheirMetadata) {
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -8.5f};
  const std::vector<float> b = {0.125f, 42.0f};
  SafetensorsWriter writer;
  writer.SetMetadata("format", "pt");
  ASSERT_TRUE(writer.Add("z.weight", {2, 3}, a).ok());
  ASSERT_TRUE(writer.Add("a.weight", {2}, b).ok());
  EXPECT_FALSE(writer.Add("a.weight", {2}, b).ok()) << "a repeated name";
  EXPECT_FALSE(writer.Add("c.weight", {3}, b).ok()) << "a shape that does not match the data";

  const std::string bytes = writer.Serialize();
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ((8 + header_size) % 8, 0u) << "data starts 8-byte aligned";

  auto reader = SafetensorsReader::FromBytes(bytes);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->metadata().at("format"), "pt");
  ASSERT_EQ((*reader)->tensors().size(), 2u);
  const SafetensorsTensor* z = (*reader)->Find("z.weight");
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(z->shape, (std::vector<int64_t>{2, 3}));
  std::vector<float> values(6);
  ReadFloats(*z, absl::MakeSpan(values));
  EXPECT_EQ(values, a);
  EXPECT_EQ((*reader)->Find("missing"), nullptr);
}

TEST(Safetensors, ReadsHalfAndBfloat16) {
  std::string header = R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}})";
  std::string bytes = FileWith(header, 6);
  uint8_t* data = reinterpret_cast<uint8_t*>(bytes.data()) + 8 + header.size();
  StoreFp16(data, 1.5f);
  StoreFp16(data + 2, -0.25f);
  const uint16_t bf16 = 0x4049;  // 3.140625
  std::memcpy(data + 4, &bf16, 2);
  auto reader = SafetensorsReader::FromBytes(bytes);
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<float> h(2), b(1);
  ReadFloats(*(*reader)->Find("h"), absl::MakeSpan(h));
  ReadFloats(*(*reader)->Find("b"), absl::MakeSpan(b));
  EXPECT_EQ(h, (std::vector<float>{1.5f, -0.25f}));
  EXPECT_EQ(b[0], 3.140625f);
}

TEST(Safetensors, AMalformedHeaderIsRefusedWithItsReason) {
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const struct {
    std::string bytes;
    std::string reason;
  } cases[] = {
      {"abc", "shorter than the 8-byte header length"},
      {FileWith("{}", 0).substr(0, 9), "runs past the end"},
      {std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", "exceeds"},
      {FileWith("[1,2]", 0), "not a JSON object"},
      {FileWith("{\"t\":", 0), "not valid JSON"},
      {FileWith(R"({"t":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8), "has dtype I64"},
      {FileWith(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "not a non-negative integer"},
      {FileWith(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8), "outside the 8 data bytes"},
      {FileWith(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "8 bytes for 3 elements"},
      {FileWith(R"({"t":{"dtype":"F32","shape":[2]}})", 8), "no data_offsets"},
      {FileWith(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12), "begins at byte 4, expected 0"},
      {FileWith("{" + ok_entry + R"(,"u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), "overlap"},
      {FileWith("{" + ok_entry + "}", 12), "4 bytes after the last tensor"},
      {FileWith(R"({"__metadata__":{"k":1}})", 0), "not a string"},
      {FileWith(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", 8),
       "larger than the file"},
  };
  for (const auto& c : cases) {
    const absl::Status status = ParseStatus(c.bytes);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.reason;
    EXPECT_NE(status.message().find(c.reason), std::string_view::npos) << status << " vs " << c.reason;
  }
}

}  // namespace
}  // namespace edgellm::engine
