#include "federated/adapter/adapter_tensors.h"
#include "federated/protocol/update_codec.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cmath>

#include "daemon/engine/lora_adapter.h"
#include "federated/protocol/sha256.h"
#include "federated/protocol/tensor_set.h"
#include "tests/support/model_fixtures.h"

namespace edgellm::federated {
namespace {

TensorSet Sample() {
  TensorSet set = {{"layers.0.q_proj.lora_B", 64, 4, {}}, {"layers.1.v_proj.lora_B", 33, 3, {}}};
  for (NamedTensor& t : set) {
    t.values.resize(static_cast<size_t>(t.rows * t.cols));
    for (size_t i = 0; i < t.values.size(); ++i) t.values[i] = 0.37f * std::sin(static_cast<float>(i) * 1.3f) - 0.01f;
  }
  return set;
}

// An uncompressed update body with one tensor header "w" of rows x cols.
std::string Header(uint32_t rows, uint32_t cols, uint8_t encoding) {
  std::string raw = "EDLU";
  auto put = [&raw](const auto& v) { raw.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  put(uint32_t{1});
  put(uint16_t{1});
  raw += "m";
  put(uint64_t{1});
  put(uint64_t{1});
  put(uint32_t{1});
  put(uint16_t{1});
  raw += "w";
  put(rows);
  put(cols);
  put(encoding);
  return raw;
}

std::string Frame(const std::string& raw) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 1));
  return out;
}

double MaxError(const TensorSet& a, const TensorSet& b) {
  double worst = 0;
  for (size_t t = 0; t < a.size(); ++t) {
    for (size_t i = 0; i < a[t].values.size(); ++i) worst = std::max<double>(worst, std::fabs(a[t].values[i] - b[t].values[i]));
  }
  return worst;
}

TEST(UpdateCodec, RoundTripsEachEncodingWithinItsPrecision) {
  const TensorSet sample = Sample();
  for (auto [encoding, tolerance] : {std::pair{TensorEncoding::kF32, 0.0}, {TensorEncoding::kF16, 2e-4},
                                     {TensorEncoding::kInt8, 0.38 / 127.0 * 0.51}}) {
    const std::string bytes = EncodeTensors({"m", 7, 3, sample}, encoding);
    auto decoded = DecodeTensors(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->model_id, "m");
    EXPECT_EQ(decoded->round_id, 7u);
    EXPECT_EQ(decoded->base_version, 3u);
    ASSERT_TRUE(CheckSameLayout(sample, decoded->tensors).ok());
    EXPECT_LE(MaxError(sample, decoded->tensors), tolerance) << TensorEncodingName(encoding);
  }
  // int8 costs about a quarter of f32 before compression.
  EXPECT_LT(EncodeTensors({"m", 1, 1, sample}, TensorEncoding::kInt8).size(),
            EncodeTensors({"m", 1, 1, sample}, TensorEncoding::kF32).size() / 2);
}

TEST(UpdateCodec, CarriesNonFiniteValuesForTheReceiverToRefuse) {
  TensorSet sample = Sample();
  sample[1].values[40] = std::nanf("");
  for (TensorEncoding e : {TensorEncoding::kF32, TensorEncoding::kF16, TensorEncoding::kInt8}) {
    auto decoded = DecodeTensors(EncodeTensors({"m", 1, 1, sample}, e));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(FirstNonFinite(decoded->tensors), "layers.1.v_proj.lora_B") << TensorEncodingName(e);
  }
}

TEST(UpdateCodec, RefusesMalformedBytesSayingWhat) {
  const std::string good = EncodeTensors({"m", 1, 1, Sample()}, TensorEncoding::kF16);
  auto refused = [](std::string_view bytes, const std::string& words, DecodeLimits limits = {}) {
    auto decoded = DecodeTensors(bytes, limits);
    ASSERT_FALSE(decoded.ok());
    EXPECT_NE(decoded.status().message().find(words), std::string::npos) << decoded.status();
  };
  refused("not zstd at all", "not a zstd frame");
  refused(good.substr(0, good.size() - 3), "zstd");
  refused(good + good, "bytes after the zstd frame");
  DecodeLimits small;
  small.max_decoded_bytes = 100;
  refused(good, "more than the limit", small);
  DecodeLimits few;
  few.max_tensors = 1;
  refused(good, "2 tensors, more than 1", few);
  // Well-formed frames whose content lies.
  refused(Frame(Header(1000, 1000, 0) + std::string(10, '\0')), "is truncated");
  refused(Frame(Header(2, 2, 9) + std::string(16, '\0')), "unknown encoding 9");
  refused(Frame(Header(2, 2, 0) + std::string(20, '\0')), "4 bytes after the last tensor");
  refused(Frame("EDLX" + std::string(40, '\0')), "not an edgellm update");
}

TEST(TensorSet, DeltasOfAnAdapterApplyBackToIt) {
  auto model = edgellm::testing::LoadModel(edgellm::testing::SyntheticModel("test-spm", engine::GgmlType::kF32));
  engine::LoraConfig lora;
  lora.rank = 4;
  lora.targets = {engine::LoraTarget::kQ, engine::LoraTarget::kV};
  auto before = engine::LoraAdapter::Create(lora, model->config());
  ASSERT_TRUE(before.ok());
  engine::LoraAdapter after = *before;
  after.Find(1, engine::LoraTarget::kV)->b[5] = 0.25f;
  after.Find(0, engine::LoraTarget::kQ)->a[2] += 0.5f;
  auto delta = Difference(AdapterTensors(after, true), AdapterTensors(*before, true));
  ASSERT_TRUE(delta.ok());
  EXPECT_NEAR(L2Norm(*delta), std::sqrt(0.25 * 0.25 + 0.5 * 0.5), 1e-6);
  engine::LoraAdapter rebuilt = *before;
  ASSERT_TRUE(AddToAdapter(rebuilt, *delta).ok());
  EXPECT_EQ(AdapterTensors(rebuilt, true)[0].values, AdapterTensors(after, true)[0].values);
  // Names and shapes are checked before anything changes.
  TensorSet unknown = {{"layers.9.q_proj.lora_B", 64, 4, std::vector<float>(256)}};
  EXPECT_NE(AddToAdapter(rebuilt, unknown).message().find("not in the adapter"), std::string::npos);
  TensorSet wrong = {{"layers.0.q_proj.lora_B", 32, 4, std::vector<float>(128)}};
  EXPECT_NE(AddToAdapter(rebuilt, wrong).message().find("is 32x4"), std::string::npos);
  EXPECT_NE(CheckSameLayout(AdapterTensors(after, false), AdapterTensors(after, true)).message().find("tensors"),
            std::string::npos);
}

TEST(Sha256, MatchesTheStandardVectors) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(IsSha256Hex(Sha256Hex("")));
  EXPECT_FALSE(IsSha256Hex("ABC"));
}

}  // namespace
}  // namespace edgellm::federated
