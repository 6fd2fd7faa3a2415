// Base-model deltas: a delta rebuilds the new file exactly from the old one,
// is small where little moved, and a delta that lies — truncated, against
// another file, stating another size, reaching outside the old file, running
// on past the file, a zstd bomb — is refused with a reason, never followed.
#include "federated/release/base_delta.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "tests/support/federation.h"
#include "tests/support/test_support.h"

namespace edgellm::release {
namespace {

namespace fs = std::filesystem;
using edgellm::testing::ReadAll;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  return bytes;
}

void Write(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A delta stream written by hand, through zstd.
std::string Frame(const std::string& stream) {
  std::string out(ZSTD_compressBound(stream.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), stream.data(), stream.size(), 1));
  return out;
}
std::string Header(uint64_t old_size, uint64_t new_size) {
  std::string s = "EDGELLM-DELTA-1\n";
  PutU64(s, old_size);
  PutU64(s, new_size);
  return s;
}

TEST(BaseDelta, RebuildsTheNewFileExactlyAndIsSmallWhereLittleMoved) {
  const fs::path dir = edgellm::testing::TestDir();
  const std::string old_bytes = RandomBytes(3 << 20, 1);
  // A new header, the old tensor moved by 100 bytes with a few weights one
  // step up or down, and a new tensor at the end.
  std::string new_bytes = RandomBytes(4196, 2) + old_bytes.substr(4096);
  for (size_t i = 10'000; i < 3'000'000; i += 997) new_bytes[i] = static_cast<char>(new_bytes[i] + (i % 2 ? 1 : -1));
  new_bytes += RandomBytes(5000, 3);
  Write(dir / "old", old_bytes);
  Write(dir / "new", new_bytes);
  const std::vector<MatchedRange> matched = {{4196, 4096, old_bytes.size() - 4096}};
  ASSERT_TRUE(WriteBaseDelta((dir / "old").string(), (dir / "new").string(), matched, (dir / "delta").string(), 3).ok());
  const uint64_t delta_bytes = fs::file_size(dir / "delta");
  EXPECT_LT(delta_bytes, new_bytes.size() / 50) << "what did not move is zeros";
  const absl::Status applied =
      ApplyBaseDelta((dir / "old").string(), (dir / "delta").string(), new_bytes.size(), (dir / "rebuilt").string());
  ASSERT_TRUE(applied.ok()) << applied;
  EXPECT_EQ(ReadAll(dir / "rebuilt"), new_bytes);

  // Nothing matched: the file verbatim, still rebuilt.
  ASSERT_TRUE(WriteBaseDelta((dir / "old").string(), (dir / "new").string(), {}, (dir / "plain").string(), 1).ok());
  ASSERT_TRUE(ApplyBaseDelta((dir / "old").string(), (dir / "plain").string(), new_bytes.size(),
                             (dir / "rebuilt2").string()).ok());
  EXPECT_EQ(ReadAll(dir / "rebuilt2"), new_bytes);
  // Ranges outside the files or overlapping are refused before anything is written.
  EXPECT_EQ(WriteBaseDelta((dir / "old").string(), (dir / "new").string(), {{0, old_bytes.size() - 10, 100}},
                           (dir / "bad").string(), 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteBaseDelta((dir / "old").string(), (dir / "new").string(), {{0, 0, 100}, {50, 0, 100}},
                           (dir / "bad").string(), 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir / "bad"));
}

TEST(BaseDelta, ADeltaThatLiesIsRefusedWithItsReason) {
  const fs::path dir = edgellm::testing::TestDir();
  const std::string old_bytes = RandomBytes(1 << 16, 1);
  Write(dir / "old", old_bytes);
  const auto apply = [&](const std::string& delta, uint64_t new_size) {
    Write(dir / "delta", delta);
    return ApplyBaseDelta((dir / "old").string(), (dir / "delta").string(), new_size, (dir / "out").string());
  };
  const auto refused_for = [&](const std::string& delta, uint64_t new_size, const std::string& words) {
    const absl::Status s = apply(delta, new_size);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find(words), std::string::npos) << s;
  };
  std::string good = Header(old_bytes.size(), 100);
  good += '\0';
  PutU64(good, 100);
  good += std::string(100, 'x');
  ASSERT_TRUE(apply(Frame(good), 100).ok());
  EXPECT_EQ(ReadAll(dir / "out"), std::string(100, 'x'));

  refused_for(Frame(good).substr(0, Frame(good).size() - 8), 100, "the delta");  // truncated
  refused_for(Frame(good), 99, "the release states 99");
  refused_for(Frame("not a delta at all, just words"), 100, "not an edgellm base-model delta");
  refused_for("plain bytes that are no zstd frame", 100, "zstd");
  refused_for(Frame(Header(old_bytes.size() + 1, 100)), 100, "against a file of");
  std::string outside = Header(old_bytes.size(), 100);
  outside += '\1';
  PutU64(outside, 100);
  PutU64(outside, old_bytes.size() - 50);  // reaches past the old file's end
  outside += std::string(100, '\0');
  refused_for(Frame(outside), 100, "does not fit the files");
  std::string unknown = Header(old_bytes.size(), 100);
  unknown += '\7';
  PutU64(unknown, 100);
  refused_for(Frame(unknown), 100, "unknown kind");
  refused_for(Frame(good + "trailing"), 100, "goes on past the file");
  // A bomb: a segment stating far more bytes than the release has.
  std::string bomb = Header(old_bytes.size(), 100);
  bomb += '\0';
  PutU64(bomb, uint64_t{1} << 40);
  bomb += std::string(1 << 20, '\0');
  refused_for(Frame(bomb), 100, "does not fit the files");
  EXPECT_LE(fs::file_size(dir / "out"), 100u);
}

}  // namespace
}  // namespace edgellm::release
