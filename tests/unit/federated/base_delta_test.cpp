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
#include <thread>

#include "common/read_file.h"
#include "federated/aggregator/artifact_store.h"
#include "federated/aggregator/base_deltas.h"
#include "tests/support/federation.h"
#include "tests/support/model_fixtures.h"
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

// An aggregator stopping while it makes a delta does not leave half of one.
TEST(BaseDelta, StoppingLeavesNothingBehind) {
  const fs::path dir = edgellm::testing::TestDir();
  Write(dir / "old", RandomBytes(3 << 20, 1));
  Write(dir / "new", RandomBytes(3 << 20, 2));
  int asked = 0;
  const absl::Status stopped = WriteBaseDelta((dir / "old").string(), (dir / "new").string(), {{0, 0, 3 << 20}},
                                              (dir / "delta").string(), 1, [&] { return ++asked > 1; });
  EXPECT_EQ(stopped.code(), absl::StatusCode::kCancelled) << stopped;
  EXPECT_EQ(asked, 2) << "asked before each chunk";
  EXPECT_FALSE(fs::exists(dir / "delta"));
  EXPECT_FALSE(fs::exists(dir / "delta.tmp"));
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

// The aggregator's deltas: made on a thread of their own against the file
// the fleet holds, offered once made; stopped while one is being made, the
// aggregator keeps no part of it and makes it at its next start.
class BaseDeltasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = edgellm::testing::TestDir();
    fs::create_directories(dir_ / "artifacts");
    store_ = std::make_unique<federated::ArtifactStore>((dir_ / "artifacts").string());
    absl::StatusOr<std::string> old_bytes =
        ReadFileToString(edgellm::testing::SyntheticModel("test-spm", engine::GgmlType::kF32), "model");
    ASSERT_TRUE(old_bytes.ok());
    old_ = *old_bytes;
    // The same tensors with a few weights moved, as merging an adapter does.
    new_ = old_;
    for (size_t i = new_.size() / 2; i < new_.size(); i += 4099) new_[i] = static_cast<char>(new_[i] ^ 0x10);
    old_sha_ = *store_->Put(old_);
    new_sha_ = *store_->Put(new_);
  }
  void ExpectRebuilds(const federated::BaseDelta& delta) {
    EXPECT_EQ(delta.from_sha256, old_sha_);
    EXPECT_LT(delta.bytes, new_.size() / 10);
    const absl::Status applied =
        ApplyBaseDelta(store_->PathOf(old_sha_), store_->PathOf(delta.sha256), new_.size(), (dir_ / "rebuilt").string());
    ASSERT_TRUE(applied.ok()) << applied;
    EXPECT_EQ(ReadAll(dir_ / "rebuilt"), new_);
  }

  fs::path dir_;
  std::unique_ptr<federated::ArtifactStore> store_;
  std::string old_, new_, old_sha_, new_sha_;
};

TEST_F(BaseDeltasTest, AreMadeInTheBackgroundAndOfferedOnceMade) {
  federated::BaseDeltas deltas(*store_, (dir_ / "deltas").string(), [](const std::string&) {});
  deltas.StartMaking("m", new_sha_, store_->PathOf(old_sha_), old_sha_);
  for (int i = 0; i < 6000 && deltas.Making(new_sha_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_FALSE(deltas.Making(new_sha_));
  const std::optional<federated::BaseDelta> delta = deltas.For(new_sha_);
  ASSERT_TRUE(delta.has_value());
  EXPECT_TRUE(deltas.IsDeltaOf(new_sha_, delta->sha256));
  ExpectRebuilds(*delta);
}

TEST_F(BaseDeltasTest, StoppedWhileMakingOneItKeepsNoPartAndMakesItAtTheNextStart) {
  {
    federated::BaseDeltas deltas(*store_, (dir_ / "deltas").string(), [](const std::string&) {});
    deltas.StartMaking("m", new_sha_, store_->PathOf(old_sha_), old_sha_);
  }
  const fs::path job = dir_ / "deltas" / (new_sha_ + ".job");
  const fs::path made = dir_ / "deltas" / (new_sha_ + ".json");
  for (const fs::directory_entry& e : fs::directory_iterator(dir_ / "deltas")) {
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  }
  EXPECT_NE(fs::exists(job), fs::exists(made)) << "stopped, its job is kept; made, it is gone";
  // As a stop before the delta was made leaves it, whichever way the one above went.
  if (fs::exists(made)) {
    fs::remove(made);
    Write(job, R"({"from_path": ")" + store_->PathOf(old_sha_) + R"(", "from_sha256": ")" + old_sha_ + R"("})");
  }
  std::vector<std::string> said;
  federated::BaseDeltas restarted(*store_, (dir_ / "deltas").string(),
                                  [&](const std::string& line) { said.push_back(line); });
  restarted.ResumeStopped();
  for (int i = 0; i < 6000 && restarted.Making(new_sha_); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::optional<federated::BaseDelta> delta = restarted.For(new_sha_);
  ASSERT_TRUE(delta.has_value());
  ExpectRebuilds(*delta);
  EXPECT_FALSE(fs::exists(job)) << "the job is done";
  ASSERT_FALSE(said.empty());
  EXPECT_NE(said.front().find("making the delta a stop interrupted"), std::string::npos) << said.front();
}

}  // namespace
}  // namespace edgellm::release
