// Signed releases: Ed25519 keys, the manifest and its envelope, k-of-n trust,
// expiry, the rules for what may replace an installed version, and the
// evaluation a release is judged by.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "federated/release/evaluation.h"
#include "federated/release/manifest.h"
#include "federated/release/signing_key.h"
#include "federated/release/trust_policy.h"

namespace edgellm::release {
namespace {

constexpr int64_t kNow = 1'800'000'000;

ReleaseManifest Sample() {
  ReleaseManifest m;
  m.model_id = "stories260K";
  m.release = 3;
  m.version = 5;
  m.parent_version = 4;
  m.artifact_sha256 = std::string(64, 'a');
  m.artifact_bytes = 1234;
  m.base_model_sha256 = std::string(64, 'b');
  m.adapter_config = R"({"r": 8})";
  m.created_at = kNow - 10;
  m.expires_at = kNow + 3600;
  return m;
}

SigningKey NewKey() {
  absl::StatusOr<SigningKey> key = SigningKey::Generate();
  EXPECT_TRUE(key.ok()) << key.status();
  return *std::move(key);
}

PublicKey PublicOf(const SigningKey& key) {
  absl::StatusOr<PublicKey> pub = PublicKey::FromPem(key.PublicPem());
  EXPECT_TRUE(pub.ok()) << pub.status();
  return *std::move(pub);
}

SignedRelease SignedBy(const ReleaseManifest& m, std::initializer_list<const SigningKey*> keys) {
  SignedRelease release{m.ToJson(), {}};
  for (const SigningKey* key : keys) AddSignature(release, *key);
  return release;
}

TEST(SigningKey, SignaturesVerifyOnlyForTheirKeyAndMessage) {
  const SigningKey key = NewKey();
  const SigningKey other = NewKey();
  const std::string signature = key.Sign("hello");
  ASSERT_EQ(signature.size(), 64u);
  EXPECT_TRUE(PublicOf(key).Verify("hello", signature));
  EXPECT_FALSE(PublicOf(key).Verify("hellO", signature));
  EXPECT_FALSE(PublicOf(other).Verify("hello", signature));
  EXPECT_NE(key.key_id(), other.key_id());
  EXPECT_EQ(key.key_id(), PublicOf(key).key_id());
  EXPECT_EQ(key.key_id().size(), 16u);
}

TEST(SigningKey, PrivateKeysSurviveAPemRoundTripAndOtherPemIsRefused) {
  const SigningKey key = NewKey();
  absl::StatusOr<SigningKey> again = SigningKey::FromPem(key.PrivatePem());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->key_id(), key.key_id());
  EXPECT_TRUE(PublicOf(key).Verify("x", again->Sign("x")));
  EXPECT_FALSE(SigningKey::FromPem(key.PublicPem()).ok());
  EXPECT_FALSE(PublicKey::FromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").ok());
  EXPECT_FALSE(PublicKey::FromPem("").ok());
}

TEST(Base64, RoundTripsEveryLengthAndRefusesGarbage) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    absl::StatusOr<std::string> back = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(back.ok()) << n;
    EXPECT_EQ(*back, bytes);
    bytes.push_back(static_cast<char>(n * 37));
  }
  EXPECT_FALSE(Base64Decode("abc").ok());
  EXPECT_FALSE(Base64Decode("ab!=").ok());
}

TEST(ReleaseManifest, RoundTripsThroughJson) {
  ReleaseManifest m = Sample();
  m.kind = ArtifactKind::kAdapter;
  m.rollback = true;
  absl::StatusOr<ReleaseManifest> back = ReleaseManifest::FromJson(m.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), m.ToJson());
  EXPECT_TRUE(back->rollback);
  EXPECT_EQ(back->version, 5u);
}

TEST(ReleaseManifest, MalformedManifestsSayWhatIsWrong) {
  EXPECT_FALSE(ReleaseManifest::FromJson("not json").ok());
  EXPECT_FALSE(ReleaseManifest::FromJson("[]").ok());
  auto without = [](const char* field) {
    nlohmann::json j = nlohmann::json::parse(Sample().ToJson());
    j.erase(field);
    return ReleaseManifest::FromJson(j.dump()).status();
  };
  EXPECT_NE(without("artifact_sha256").message().find("artifact_sha256"), std::string::npos);
  EXPECT_NE(without("expires_at").message().find("expires_at"), std::string::npos);
  ReleaseManifest m = Sample();
  m.artifact_sha256 = "abc";
  EXPECT_FALSE(ReleaseManifest::FromJson(m.ToJson()).ok());
  m = Sample();
  m.model_id = "../etc";
  EXPECT_FALSE(ReleaseManifest::FromJson(m.ToJson()).ok());
  m = Sample();
  m.expires_at = m.created_at;
  EXPECT_FALSE(ReleaseManifest::FromJson(m.ToJson()).ok());
  nlohmann::json j = nlohmann::json::parse(Sample().ToJson());
  j["kind"] = "firmware";
  EXPECT_NE(ReleaseManifest::FromJson(j.dump()).status().message().find("firmware"), std::string::npos);
  j = nlohmann::json::parse(Sample().ToJson());
  j["version"] = "five";
  EXPECT_NE(ReleaseManifest::FromJson(j.dump()).status().message().find("version"), std::string::npos);
}

EvaluationSpec SampleSpec() {
  EvaluationSpec spec;
  spec.examples_jsonl = "{\"text\": \"Once upon a time\"}\n";
  spec.max_length = 64;
  spec.max_loss_ratio = 1.05;
  spec.exact_match = {{"Lily had", " a cat", 0}, {"Tom saw", " a dog", 4}};
  spec.max_exact_match_drop = 0.5;
  return spec;
}

TEST(ReleaseManifest, AnEvaluationIsSignedWithItAndAbsentOneLeavesTheTextAsItWas) {
  ReleaseManifest m = Sample();
  const std::string without = m.ToJson();
  EXPECT_EQ(without.find("evaluation"), std::string::npos);
  m.evaluation = SampleSpec();
  absl::StatusOr<ReleaseManifest> back = ReleaseManifest::FromJson(m.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->evaluation.has_value());
  EXPECT_EQ(back->evaluation->ToJson(), SampleSpec().ToJson());
  EXPECT_EQ(back->ToJson(), m.ToJson());
  // Changing the thresholds changes the signed text.
  const SigningKey key = NewKey();
  SignedRelease envelope{m.ToJson(), {}};
  AddSignature(envelope, key);
  absl::StatusOr<TrustPolicy> policy = TrustPolicy::Create({PublicOf(key)}, 1);
  ASSERT_TRUE(policy.ok());
  nlohmann::json tampered = nlohmann::json::parse(envelope.manifest_json);
  tampered["evaluation"]["max_loss_ratio"] = 100.0;
  envelope.manifest_json = tampered.dump();
  EXPECT_FALSE(policy->Verify(envelope, kNow).ok());
}

TEST(EvaluationSpec, RefusesWhatIsOverItsBoundsOrMalformed) {
  const auto refused = [](const std::function<void(nlohmann::json&)>& edit, const std::string& words) {
    nlohmann::json j = nlohmann::json::parse(SampleSpec().ToJson());
    edit(j);
    absl::StatusOr<EvaluationSpec> spec = EvaluationSpec::FromJson(j.dump());
    ASSERT_FALSE(spec.ok()) << j.dump();
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(spec.status().message().find(words), std::string_view::npos) << spec.status();
  };
  refused([](auto& j) { j["examples_jsonl"] = std::string((256 << 10) + 1, 'x'); }, "over 256 KiB");
  refused([](auto& j) { j["exact_match"] = nlohmann::json::array(); for (int i = 0; i < 65; ++i) j["exact_match"].push_back({{"prompt", "a"}, {"expected", "b"}}); }, "more than 64");
  refused([](auto& j) { j["exact_match"][0]["prompt"] = std::string(4097, 'p'); }, "prompt");
  refused([](auto& j) { j["exact_match"][0]["expected"] = ""; }, "expected text");
  refused([](auto& j) { j["exact_match"][0].erase("expected"); }, "lacks");
  refused([](auto& j) { j["exact_match"][1]["max_tokens"] = 100000; }, "max_tokens");
  refused([](auto& j) { j["max_loss_ratio"] = -1; }, "max_loss_ratio");
  refused([](auto& j) { j["max_loss_ratio"] = "high"; }, "wrong type");
  refused([](auto& j) { j["max_exact_match_drop"] = 1.5; }, "max_exact_match_drop");
  refused([](auto& j) { j["max_length"] = 100000; }, "max_length");
  refused([](auto& j) { j["examples_jsonl"] = ""; }, "without held-out examples");
  EXPECT_FALSE(EvaluationSpec::FromJson("[1]").ok());
}

TEST(Judge, ALossOverTheRatioOrFewerExactMatchesFailWithTheFigures) {
  const EvaluationSpec spec = SampleSpec();
  EvaluationFigures f;
  f.examples = 4;
  f.baseline_loss = 2.0;
  f.loss = 2.09;  // under 1.05x
  f.cases = 2;
  f.baseline_exact_matches = 2;
  f.exact_matches = 1;  // a drop of 0.5: allowed
  EXPECT_TRUE(Judge(spec, f).ok()) << Judge(spec, f);
  f.loss = 2.2;
  absl::Status s = Judge(spec, f);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("eval loss 2.2000 is 1.100x the replaced version's 2.0000 (at most 1.050x allowed)"),
            std::string_view::npos)
      << s;
  f.loss = 1.0;
  f.exact_matches = 0;
  s = Judge(spec, f);
  EXPECT_NE(s.message().find("exact match 0/2 fell below the replaced version's 2/2"), std::string_view::npos) << s;
  f.exact_matches = 2;
  f.loss = std::nan("");
  EXPECT_NE(Judge(spec, f).message().find("not finite"), std::string_view::npos);
  f.loss = 1.0;
  f.examples = 0;
  EXPECT_NE(Judge(spec, f).message().find("no eval loss"), std::string_view::npos);
  f.examples = 4;
  f.cases = 1;
  EXPECT_NE(Judge(spec, f).message().find("measured on 1 prompts"), std::string_view::npos);
}

TEST(EvaluationFigures, RoundTripANonFiniteLossAsNotANumber) {
  EvaluationFigures f;
  f.loss = std::numeric_limits<double>::infinity();
  f.baseline_loss = 1.5;
  f.examples = 3;
  f.cases = 2;
  f.exact_matches = 1;
  f.baseline_exact_matches = 2;
  f.seconds = 0.25;
  absl::StatusOr<EvaluationFigures> back = EvaluationFigures::FromJson(f.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(std::isnan(back->loss));
  EXPECT_EQ(back->baseline_loss, 1.5);
  EXPECT_EQ(back->examples, 3);
  EXPECT_EQ(back->exact_matches, 1);
  EXPECT_EQ(back->baseline_exact_matches, 2);
  EXPECT_EQ(back->seconds, 0.25);
  EXPECT_NE(DescribeFigures(*back).find("exact match 1/2 vs 2/2"), std::string::npos) << DescribeFigures(*back);
}

TEST(SignedRelease, EnvelopeRoundTripsAndRefusesMalformedOnes) {
  const SigningKey key = NewKey();
  const SignedRelease release = SignedBy(Sample(), {&key});
  absl::StatusOr<SignedRelease> back = SignedRelease::FromJson(release.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->manifest_json, release.manifest_json);
  ASSERT_EQ(back->signatures.size(), 1u);
  EXPECT_EQ(back->signatures[0].signature, release.signatures[0].signature);
  EXPECT_FALSE(SignedRelease::FromJson("{}").ok());
  EXPECT_FALSE(SignedRelease::FromJson(R"({"manifest": "{}", "signatures": [{"keyid": 1}]})").ok());
  EXPECT_FALSE(SignedRelease::FromJson(R"({"manifest": "{}", "signatures": [{"keyid": "a", "sig": "@@@@"}]})").ok());
}

TEST(TrustPolicy, OneOfOneAcceptsItsKeyAndRefusesOthers) {
  const SigningKey trusted = NewKey();
  const SigningKey stranger = NewKey();
  auto policy = TrustPolicy::Create({PublicOf(trusted)}, 1);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->Verify(SignedBy(Sample(), {&trusted}), kNow).ok());
  const absl::Status refused = policy->Verify(SignedBy(Sample(), {&stranger}), kNow).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(refused.message().find("0 of the 1"), std::string::npos) << refused;
  EXPECT_FALSE(policy->Verify(SignedBy(Sample(), {}), kNow).ok());
}

TEST(TrustPolicy, ATamperedManifestNoLongerVerifies) {
  const SigningKey key = NewKey();
  auto policy = TrustPolicy::Create({PublicOf(key)}, 1);
  ASSERT_TRUE(policy.ok());
  SignedRelease release = SignedBy(Sample(), {&key});
  const size_t at = release.manifest_json.find("\"version\":5");
  ASSERT_NE(at, std::string::npos);
  release.manifest_json.replace(at, 11, "\"version\":9");
  EXPECT_EQ(policy->Verify(release, kNow).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(TrustPolicy, TwoOfThreeNeedsTwoDistinctTrustedKeys) {
  const SigningKey a = NewKey(), b = NewKey(), c = NewKey(), stranger = NewKey();
  auto policy = TrustPolicy::Create({PublicOf(a), PublicOf(b), PublicOf(c)}, 2);
  ASSERT_TRUE(policy.ok());
  EXPECT_FALSE(policy->Verify(SignedBy(Sample(), {&a}), kNow).ok());
  EXPECT_FALSE(policy->Verify(SignedBy(Sample(), {&a, &stranger}), kNow).ok());
  // The same key twice counts once.
  SignedRelease twice = SignedBy(Sample(), {&a});
  twice.signatures.push_back(twice.signatures[0]);
  EXPECT_FALSE(policy->Verify(twice, kNow).ok());
  EXPECT_TRUE(policy->Verify(SignedBy(Sample(), {&a, &c}), kNow).ok());
  EXPECT_TRUE(policy->Verify(SignedBy(Sample(), {&stranger, &b, &c}), kNow).ok());
}

TEST(TrustPolicy, ARotatedOutKeyNoLongerCounts) {
  const SigningKey old_key = NewKey(), new_key = NewKey();
  // During the rotation devices trust both; releases carry both signatures.
  auto both = TrustPolicy::Create({PublicOf(old_key), PublicOf(new_key)}, 1);
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(both->Verify(SignedBy(Sample(), {&old_key, &new_key}), kNow).ok());
  // Afterwards, the old key is revoked by dropping it from the set.
  auto after = TrustPolicy::Create({PublicOf(new_key)}, 1);
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->Verify(SignedBy(Sample(), {&old_key}), kNow).ok());
  EXPECT_TRUE(after->Verify(SignedBy(Sample(), {&old_key, &new_key}), kNow).ok());
}

TEST(TrustPolicy, AnExpiredManifestIsRefusedButStillVerifiesAsInstalled) {
  const SigningKey key = NewKey();
  auto policy = TrustPolicy::Create({PublicOf(key)}, 1);
  ASSERT_TRUE(policy.ok());
  const SignedRelease release = SignedBy(Sample(), {&key});
  const absl::Status expired = policy->Verify(release, kNow + 3600).status();
  EXPECT_EQ(expired.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(expired.message().find("expired"), std::string::npos);
  EXPECT_TRUE(policy->VerifySignatures(release).ok());
}

TEST(TrustPolicy, BadPoliciesAreRefused) {
  const SigningKey key = NewKey();
  EXPECT_FALSE(TrustPolicy::Create({}, 1).ok());
  EXPECT_FALSE(TrustPolicy::Create({PublicOf(key)}, 2).ok());
  EXPECT_FALSE(TrustPolicy::Create({PublicOf(key)}, 0).ok());
  EXPECT_FALSE(TrustPolicy::Create({PublicOf(key), PublicOf(key)}, 1).ok());
}

TEST(CheckInstallable, OnlyNewerVersionsOrSignedRollbacksOfUnseenReleases) {
  const ReleaseManifest m = Sample();  // release 3, version 5
  EXPECT_TRUE(CheckInstallable(m, "stories260K", {4, 2}).ok());
  EXPECT_FALSE(CheckInstallable(m, "other", {4, 2}).ok());
  EXPECT_NE(CheckInstallable(m, "stories260K", {4, 3}).message().find("replay"), std::string::npos);
  EXPECT_NE(CheckInstallable(m, "stories260K", {5, 2}).message().find("not newer"), std::string::npos);
  EXPECT_FALSE(CheckInstallable(m, "stories260K", {7, 2}).ok());
  ReleaseManifest rollback = m;
  rollback.rollback = true;
  EXPECT_TRUE(CheckInstallable(rollback, "stories260K", {7, 2}).ok());
  EXPECT_FALSE(CheckInstallable(rollback, "stories260K", {7, 3}).ok());
}

}  // namespace
}  // namespace edgellm::release
