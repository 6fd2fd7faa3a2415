#include "daemon/engine/gguf_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "daemon/engine/gguf_writer.h"
#include "tests/support/test_support.h"

namespace edgellm::engine {
namespace {

// A small but complete file: every metadata type, nested arrays, two tensors.
GgufWriter SampleWriter(std::vector<uint8_t>* storage) {
  GgufWriter w;
  w.Set("general.architecture", GgufValue::String("llama"));
  w.Set("u8", GgufValue::FromRaw(GgufType::kUint8, std::vector<uint8_t>{200}));
  w.Set("i8", GgufValue::FromRaw(GgufType::kInt8, std::vector<uint8_t>{0xfe}));
  w.Set("u16", GgufValue::FromRaw(GgufType::kUint16, std::vector<uint8_t>{0x34, 0x12}));
  w.Set("i16", GgufValue::FromRaw(GgufType::kInt16, std::vector<uint8_t>{0xff, 0xff}));
  w.Set("u32", GgufValue::Uint32(4000000000u));
  w.Set("i32", GgufValue::Int32(-7));
  w.Set("f32", GgufValue::Float32(0.5f));
  w.Set("bool", GgufValue::Bool(true));
  w.Set("u64", GgufValue::Uint64(1ull << 40));
  w.Set("i64", GgufValue::FromRaw(GgufType::kInt64, std::vector<uint8_t>{0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  w.Set("f64", GgufValue::FromRaw(GgufType::kFloat64, std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0xf8, 0x3f}));
  w.Set("strings", GgufValue::StringArray({"a", "", "ünï"}));
  w.Set("floats", GgufValue::Float32Array(std::vector<float>{1.5f, -2.0f}));
  w.Set("nested", GgufValue::NestedArray(GgufType::kArray, {GgufValue::Int32Array(std::vector<int32_t>{1, 2}),
                                                           GgufValue::StringArray({"x"})}));
  storage->resize(4 * 32 + 2 * 34);
  for (size_t i = 0; i < storage->size(); ++i) (*storage)[i] = static_cast<uint8_t>(i * 7);
  EXPECT_TRUE(w.AddTensor("a", GgmlType::kF32, {32, 1}, absl::MakeConstSpan(storage->data(), 128)).ok());
  EXPECT_TRUE(w.AddTensor("b", GgmlType::kQ8_0, {32, 2}, absl::MakeConstSpan(storage->data() + 128, 68)).ok());
  return w;
}

std::string SampleBytes() {
  std::vector<uint8_t> storage;
  absl::StatusOr<std::string> bytes = SampleWriter(&storage).Serialize();
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

TEST(GgufReader, ReadsBackEveryValueType) {
  std::vector<uint8_t> storage;
  const std::string bytes = *SampleWriter(&storage).Serialize();
  auto reader = GgufReader::FromBytes(bytes);
  ASSERT_TRUE(reader.ok()) << reader.status();
  const GgufReader& r = **reader;
  EXPECT_EQ(r.version(), 3u);
  EXPECT_EQ(*r.GetString("general.architecture"), "llama");
  EXPECT_EQ(*r.GetInt("u8"), 200);
  EXPECT_EQ(*r.GetInt("i8"), -2);
  EXPECT_EQ(*r.GetInt("u16"), 0x1234);
  EXPECT_EQ(*r.GetInt("i16"), -1);
  EXPECT_EQ(*r.GetInt("u32"), 4000000000);
  EXPECT_EQ(*r.GetInt("i32"), -7);
  EXPECT_EQ(*r.GetFloat("f32"), 0.5);
  EXPECT_EQ(*r.GetInt("bool"), 1);
  EXPECT_EQ(*r.GetInt("u64"), int64_t{1} << 40);
  EXPECT_EQ(*r.GetInt("i64"), -10);
  EXPECT_EQ(*r.GetFloat("f64"), 1.5);
  EXPECT_EQ(*r.Find("strings")->AsStringArray(), (std::vector<std::string>{"a", "", "ünï"}));
  EXPECT_EQ(*r.Find("floats")->AsFloatArray(), (std::vector<float>{1.5f, -2.0f}));
  const GgufValue* nested = r.Find("nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->items().size(), 2u);
  EXPECT_EQ(*nested->items()[0].AsIntArray(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(*nested->items()[1].AsStringArray(), (std::vector<std::string>{"x"}));

  ASSERT_EQ(r.tensors().size(), 2u);
  const GgufTensorInfo* b = r.FindTensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, GgmlType::kQ8_0);
  EXPECT_EQ(b->dims, (std::vector<uint64_t>{32, 2}));
  EXPECT_EQ(b->n_bytes, 68u);
  EXPECT_EQ(r.data_offset() % 32, 0u);
  const absl::Span<const uint8_t> data = r.TensorData(*b);
  EXPECT_EQ(std::memcmp(data.data(), storage.data() + 128, 68), 0);
  EXPECT_EQ(std::memcmp(r.TensorData(*r.FindTensor("a")).data(), storage.data(), 128), 0);
}

TEST(GgufValue, IntegerArraysAreExact) {
  const std::vector<int64_t> big = {(int64_t{1} << 60) + 1, -((int64_t{1} << 62) + 3)};
  std::vector<uint8_t> raw(16);
  std::memcpy(raw.data(), big.data(), 16);
  const GgufValue v = GgufValue::RawArray(GgufType::kInt64, 2, raw);
  EXPECT_EQ(*v.AsIntArray(), big);
  EXPECT_FALSE(GgufValue::Float32Array(std::vector<float>{1.0f}).AsIntArray().ok());
  EXPECT_FALSE(GgufValue::Uint64(~uint64_t{0}).AsInt().ok());
}

TEST(GgufReader, TypedGettersRefuseTheWrongType) {
  auto r = GgufReader::FromBytes(SampleBytes());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->GetInt("general.architecture").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*r)->GetString("u32").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*r)->GetInt("missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*(*r)->GetInt("missing", 42), 42);
}

TEST(GgufReader, OpensAFileFromDisk) {
  const auto path = edgellm::testing::TestDir() / "sample.gguf";
  std::vector<uint8_t> storage;
  ASSERT_TRUE(SampleWriter(&storage).Write(path.string()).ok());
  auto r = GgufReader::Open(path.string());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->file_size(), std::filesystem::file_size(path));
  EXPECT_EQ(GgufReader::Open((path.parent_path() / "absent.gguf").string()).status().code(),
            absl::StatusCode::kNotFound);
}

// Every prefix of a valid file must be refused cleanly (the last tensor's
// data ends exactly at the end of the file, so every cut loses something).
TEST(GgufReaderMalformed, EveryTruncationIsRefused) {
  const std::string bytes = SampleBytes();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    auto r = GgufReader::FromBytes(bytes.substr(0, cut), "cut");
    ASSERT_FALSE(r.ok()) << "accepted a file cut at " << cut;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    EXPECT_NE(r.status().message().find("gguf cut"), absl::string_view::npos) << r.status();
  }
}

// Overwrites bytes of a valid file at `offset`.
std::string Patched(std::string bytes, size_t offset, const void* value, size_t n) {
  std::memcpy(bytes.data() + offset, value, n);
  return bytes;
}

// The offset of the first byte after the first occurrence of `needle`.
size_t After(const std::string& bytes, const std::string& needle) {
  const size_t at = bytes.find(needle);
  EXPECT_NE(at, std::string::npos);
  return at + needle.size();
}

void ExpectRefused(const std::string& bytes, const std::string& expected_message_part) {
  auto r = GgufReader::FromBytes(bytes, "bad");
  ASSERT_FALSE(r.ok()) << "accepted a malformed file (" << expected_message_part << ")";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(expected_message_part), absl::string_view::npos) << r.status();
}

TEST(GgufReaderMalformed, WrongMagic) { ExpectRefused(Patched(SampleBytes(), 0, "GGML", 4), "bad magic"); }

TEST(GgufReaderMalformed, UnsupportedVersions) {
  for (uint32_t version : {0u, 1u, 4u, 0xffffffffu}) {
    ExpectRefused(Patched(SampleBytes(), 4, &version, 4), "unsupported GGUF version");
  }
}

TEST(GgufReaderMalformed, AbsurdCounts) {
  const uint64_t huge = uint64_t{1} << 60;
  ExpectRefused(Patched(SampleBytes(), 8, &huge, 8), "tensor count");
  ExpectRefused(Patched(SampleBytes(), 16, &huge, 8), "metadata count");
}

TEST(GgufReaderMalformed, StringLongerThanTheFile) {
  const std::string bytes = SampleBytes();
  // The length prefix of the first key sits right after the header.
  const uint64_t huge = uint64_t{1} << 40;
  ExpectRefused(Patched(bytes, 24, &huge, 8), "exceeds the limit");
  const uint64_t too_long = 1000;
  ExpectRefused(Patched(bytes, 24, &too_long, 8), "truncated");
}

TEST(GgufReaderMalformed, UnknownValueType) {
  const std::string bytes = SampleBytes();
  const uint32_t bad = 13;
  ExpectRefused(Patched(bytes, After(bytes, "general.architecture"), &bad, 4), "unknown value type 13");
}

TEST(GgufReaderMalformed, ArrayCountLargerThanTheFile) {
  const std::string bytes = SampleBytes();
  // "floats": key, type (array), element type, then the count.
  const uint64_t huge = uint64_t{1} << 58;
  ExpectRefused(Patched(bytes, After(bytes, "floats") + 8, &huge, 8), "does not fit");
}

TEST(GgufReaderMalformed, DuplicateKey) {
  const std::string bytes = SampleBytes();
  // Rename key "i8" to "u8" (same length): the second "u8" is a duplicate.
  ExpectRefused(Patched(bytes, After(bytes, "u8") + 4 + 1 + 8, "u8", 2), "duplicate metadata key");
}

// Offset of tensor `name`'s info: right after its name.
size_t TensorInfoAt(const std::string& bytes, const std::string& name) {
  const std::string length_and_name = std::string("\x01\0\0\0\0\0\0\0", 8) + name;
  const size_t at = bytes.rfind(length_and_name);
  EXPECT_NE(at, std::string::npos);
  return at + length_and_name.size();
}

TEST(GgufReaderMalformed, BadDimensions) {
  const std::string bytes = SampleBytes();
  const size_t info = TensorInfoAt(bytes, "b");
  const uint32_t five_dims = 5;
  ExpectRefused(Patched(bytes, info, &five_dims, 4), "5 dimensions");
  const uint64_t zero = 0;
  ExpectRefused(Patched(bytes, info + 4, &zero, 8), "invalid dimension 0");
  const uint64_t overflow = uint64_t{1} << 62;
  ExpectRefused(Patched(bytes, info + 4 + 8, &overflow, 8), "invalid dimension");
  const uint64_t not_block_multiple = 33;
  ExpectRefused(Patched(bytes, info + 4, &not_block_multiple, 8), "block size");
}

TEST(GgufReaderMalformed, UnknownTensorType) {
  const std::string bytes = SampleBytes();
  const uint32_t bad = 99;
  ExpectRefused(Patched(bytes, TensorInfoAt(bytes, "b") + 4 + 16, &bad, 4), "unknown type 99");
}

TEST(GgufReaderMalformed, TensorOffsets) {
  const std::string bytes = SampleBytes();
  const size_t offset_at = TensorInfoAt(bytes, "b") + 4 + 16 + 4;
  const uint64_t unaligned = 130;
  ExpectRefused(Patched(bytes, offset_at, &unaligned, 8), "not aligned");
  const uint64_t past_end = 1 << 20;
  ExpectRefused(Patched(bytes, offset_at, &past_end, 8), "past the end");
  const uint64_t wraps = ~uint64_t{0} - 31;
  ExpectRefused(Patched(bytes, offset_at, &wraps, 8), "past the end");
}

TEST(GgufReaderMalformed, TensorLargerThanItsData) {
  const std::string bytes = SampleBytes();
  // Claim 3 rows for "b": its data would run 34 bytes past the end.
  const uint64_t rows = 3;
  ExpectRefused(Patched(bytes, TensorInfoAt(bytes, "b") + 4 + 8, &rows, 8), "past the end");
}

TEST(GgufReaderMalformed, DuplicateTensor) {
  const std::string bytes = SampleBytes();
  ExpectRefused(Patched(bytes, TensorInfoAt(bytes, "b") - 1, "a", 1), "duplicate tensor");
}

TEST(GgufReaderMalformed, BadAlignment) {
  GgufWriter w;
  w.Set("general.alignment", GgufValue::Uint32(3));
  ExpectRefused(*w.Serialize(), "power of two");
}

TEST(GgufReaderMalformed, RandomByteFlipsNeverCrash) {
  // Not every flip makes the file invalid; the point is a status, never a crash.
  const std::string bytes = SampleBytes();
  uint32_t state = 12345;
  for (int i = 0; i < 3000; ++i) {
    std::string mutated = bytes;
    for (int j = 0; j < 4; ++j) {
      state = state * 1664525u + 1013904223u;
      mutated[(state >> 8) % mutated.size()] = static_cast<char>(state >> 24);
    }
    auto r = GgufReader::FromBytes(mutated);
    if (r.ok()) {
      for (const GgufTensorInfo& t : (*r)->tensors()) {
        EXPECT_LE((*r)->data_offset() + t.offset + t.n_bytes, mutated.size());
      }
    }
  }
}

}  // namespace
}  // namespace edgellm::engine
