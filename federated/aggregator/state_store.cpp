#include "federated/aggregator/state_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>

#include <nlohmann/json.hpp>

#include "common/status_macros.h"
#include "common/str_cat.h"

namespace edgellm::federated {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS devices(
  device_id TEXT PRIMARY KEY, model_id TEXT NOT NULL, daemon_version TEXT NOT NULL,
  capabilities TEXT NOT NULL, registered_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rounds(
  model_id TEXT NOT NULL, round_id INTEGER NOT NULL, base_version INTEGER NOT NULL, state TEXT NOT NULL,
  opened_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL, closed_ms INTEGER NOT NULL,
  selected TEXT NOT NULL, outcome TEXT NOT NULL, noise_seed INTEGER NOT NULL DEFAULT 0,
  weight_cap INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(model_id, round_id));
CREATE TABLE IF NOT EXISTS updates(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, model_id TEXT NOT NULL, round_id INTEGER NOT NULL,
  device_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, sha256 TEXT NOT NULL, example_count INTEGER NOT NULL,
  metrics TEXT NOT NULL, bytes INTEGER NOT NULL, accepted_ms INTEGER NOT NULL,
  UNIQUE(model_id, round_id, device_id));
CREATE INDEX IF NOT EXISTS updates_by_sha ON updates(sha256);
CREATE TABLE IF NOT EXISTS versions(
  model_id TEXT NOT NULL, version INTEGER NOT NULL, parent INTEGER NOT NULL, round_id INTEGER NOT NULL,
  sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, created_ms INTEGER NOT NULL, metrics TEXT NOT NULL,
  optimizer_sha256 TEXT NOT NULL, PRIMARY KEY(model_id, version));
CREATE TABLE IF NOT EXISTS releases(
  model_id TEXT NOT NULL, release INTEGER NOT NULL, version INTEGER NOT NULL, rollback INTEGER NOT NULL,
  artifact_sha256 TEXT NOT NULL, signed_release TEXT NOT NULL, canary_fraction REAL NOT NULL,
  success_threshold REAL NOT NULL, soak_seconds INTEGER NOT NULL, stage TEXT NOT NULL, resume_stage TEXT NOT NULL,
  detail TEXT NOT NULL, published_ms INTEGER NOT NULL, stage_ms INTEGER NOT NULL, canaries TEXT NOT NULL DEFAULT '[]',
  failures_before_ms INTEGER NOT NULL DEFAULT 0, require_approval INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(model_id, release));
CREATE INDEX IF NOT EXISTS releases_by_artifact ON releases(artifact_sha256);
CREATE TABLE IF NOT EXISTS installs(
  model_id TEXT NOT NULL, device_id TEXT NOT NULL, release INTEGER NOT NULL, outcome TEXT NOT NULL,
  serving_version INTEGER NOT NULL, detail TEXT NOT NULL, reported_ms INTEGER NOT NULL,
  evaluation TEXT NOT NULL DEFAULT '', live TEXT NOT NULL DEFAULT '', PRIMARY KEY(model_id, device_id));
CREATE TABLE IF NOT EXISTS enrollments(
  device_id TEXT PRIMARY KEY, model_id TEXT NOT NULL, enrolled_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS offers(
  model_id TEXT NOT NULL, release INTEGER NOT NULL, device_id TEXT NOT NULL, offered_ms INTEGER NOT NULL,
  PRIMARY KEY(model_id, release, device_id));
)sql";

// Columns added since the first schema: (table, column, declaration).
constexpr std::array<std::array<const char*, 3>, 7> kAddedColumns = {{
    {"rounds", "noise_seed", "INTEGER NOT NULL DEFAULT 0"},
    {"rounds", "weight_cap", "INTEGER NOT NULL DEFAULT 0"},
    {"releases", "canaries", "TEXT NOT NULL DEFAULT '[]'"},
    {"releases", "failures_before_ms", "INTEGER NOT NULL DEFAULT 0"},
    {"releases", "require_approval", "INTEGER NOT NULL DEFAULT 0"},
    {"installs", "evaluation", "TEXT NOT NULL DEFAULT ''"},
    {"installs", "live", "TEXT NOT NULL DEFAULT ''"},
}};

// One prepared statement, finalized on scope exit; values bound by position from 1.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    status_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement& Bind(const std::string& v) {
    sqlite3_bind_text(stmt_, ++index_, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Bind(int64_t v) {
    sqlite3_bind_int64(stmt_, ++index_, v);
    return *this;
  }
  Statement& Bind(uint64_t v) { return Bind(static_cast<int64_t>(v)); }
  Statement& Bind(double v) {
    sqlite3_bind_double(stmt_, ++index_, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return status_ == SQLITE_OK ? sqlite3_step(stmt_) : status_; }
  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    return text == nullptr ? "" : reinterpret_cast<const char*>(text);
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  double Real(int column) const { return sqlite3_column_double(stmt_, column); }
  std::string Error() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int status_;
  int index_ = 0;
};

absl::Status Failed(const std::string& path, const std::string& what, const std::string& error) {
  return absl::InternalError(StrCat(path, ": ", what, ": ", error));
}

RoundState RoundStateFromName(const std::string& name) {
  if (name == "closed") return RoundState::kClosed;
  if (name == "failed") return RoundState::kFailed;
  return RoundState::kOpen;
}

UpdateRecord ReadUpdate(const Statement& s) {
  return {s.Text(0), static_cast<uint64_t>(s.Int(1)), s.Text(2), s.Text(3), s.Text(4), s.Int(5), s.Text(6),
          static_cast<uint64_t>(s.Int(7)), s.Int(8)};
}
constexpr const char* kReleaseColumns =
    "model_id, release, version, rollback, artifact_sha256, signed_release, canary_fraction, success_threshold, "
    "soak_seconds, stage, resume_stage, detail, published_ms, stage_ms, canaries, failures_before_ms, "
    "require_approval";
constexpr const char* kInstallColumns =
    "model_id, device_id, release, outcome, serving_version, detail, reported_ms, evaluation, live";

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr const char* kUpdateColumns =
    "model_id, round_id, device_id, idempotency_key, sha256, example_count, metrics, bytes, accepted_ms";

}  // namespace

std::string_view RoundStateName(RoundState state) {
  switch (state) {
    case RoundState::kOpen: return "open";
    case RoundState::kClosed: return "closed";
    case RoundState::kFailed: return "failed";
  }
  return "open";
}

StateStore::StateStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

StateStore::~StateStore() {
  MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    const std::string error = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::InternalError(StrCat(path, ": cannot open the state database: ", error));
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<StateStore> store(new StateStore(db, path));
  MutexLock lock(&store->mu_);
  if (absl::Status s = store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"); !s.ok()) return s;
  if (absl::Status s = store->Exec(kSchema); !s.ok()) return s;
  if (absl::Status s = store->Migrate(); !s.ok()) return s;
  return store;
}

absl::Status StateStore::Migrate() {
  for (const auto& [table, column, declaration] : kAddedColumns) {
    Statement s(db_, StrCat("SELECT 1 FROM pragma_table_info('", table, "') WHERE name = '", column, "'"));
    const int rc = s.Step();
    if (rc == SQLITE_ROW) continue;
    if (rc != SQLITE_DONE) return Failed(path_, "reading the schema", s.Error());
    EDGELLM_RETURN_IF_ERROR(Exec(StrCat("ALTER TABLE ", table, " ADD COLUMN ", column, " ", declaration)));
  }
  return absl::OkStatus();
}

absl::Status StateStore::Exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    return Failed(path_, sql.substr(0, 40), message);
  }
  return absl::OkStatus();
}

absl::Status StateStore::PutDevice(const DeviceRecord& d) {
  MutexLock lock(&mu_);
  Statement s(db_, "INSERT OR REPLACE INTO devices VALUES(?, ?, ?, ?, ?)");
  s.Bind(d.device_id).Bind(d.model_id).Bind(d.daemon_version).Bind(d.capabilities).Bind(d.registered_ms);
  if (s.Step() != SQLITE_DONE) return Failed(path_, "saving a device", s.Error());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DeviceRecord>> StateStore::Devices() {
  MutexLock lock(&mu_);
  Statement s(db_, "SELECT device_id, model_id, daemon_version, capabilities, registered_ms FROM devices");
  std::vector<DeviceRecord> devices;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) devices.push_back({s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4)});
  if (rc != SQLITE_DONE) return Failed(path_, "reading devices", s.Error());
  return devices;
}

absl::Status StateStore::PutRoundLocked(const RoundRecord& r) {
  Statement s(db_,
              "INSERT OR REPLACE INTO rounds(model_id, round_id, base_version, state, opened_ms, deadline_ms, "
              "closed_ms, selected, outcome, noise_seed, weight_cap) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.Bind(r.model_id).Bind(r.round_id).Bind(r.base_version).Bind(std::string(RoundStateName(r.state)))
      .Bind(r.opened_ms).Bind(r.deadline_ms).Bind(r.closed_ms).Bind(nlohmann::json(r.selected).dump()).Bind(r.outcome)
      .Bind(r.noise_seed).Bind(r.weight_cap);
  if (s.Step() != SQLITE_DONE) return Failed(path_, "saving a round", s.Error());
  return absl::OkStatus();
}

absl::Status StateStore::PutRound(const RoundRecord& round) {
  MutexLock lock(&mu_);
  return PutRoundLocked(round);
}

absl::StatusOr<std::optional<RoundRecord>> StateStore::LatestRound(const std::string& model_id) {
  EDGELLM_ASSIGN_OR_RETURN(std::vector<RoundRecord> rounds, LatestRounds(model_id, 1));
  if (rounds.empty()) return std::optional<RoundRecord>();
  return std::optional<RoundRecord>(std::move(rounds.back()));
}

absl::StatusOr<std::vector<RoundRecord>> StateStore::LatestRounds(const std::string& model_id, int64_t count) {
  MutexLock lock(&mu_);
  Statement s(db_,
              "SELECT model_id, round_id, base_version, state, opened_ms, deadline_ms, closed_ms, selected, outcome, "
              "noise_seed, weight_cap FROM rounds WHERE model_id = ? ORDER BY round_id DESC LIMIT ?");
  s.Bind(model_id).Bind(count);
  std::vector<RoundRecord> rounds;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    RoundRecord r{s.Text(0), static_cast<uint64_t>(s.Int(1)), static_cast<uint64_t>(s.Int(2)),
                  RoundStateFromName(s.Text(3)), s.Int(4), s.Int(5), s.Int(6), {}, s.Text(8),
                  static_cast<uint64_t>(s.Int(9)), s.Int(10)};
    const nlohmann::json selected = nlohmann::json::parse(s.Text(7), nullptr, false);
    if (selected.is_array()) {
      for (const nlohmann::json& id : selected) {
        if (id.is_string()) r.selected.push_back(id.get<std::string>());
      }
    }
    rounds.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return Failed(path_, "reading rounds", s.Error());
  std::reverse(rounds.begin(), rounds.end());
  return rounds;
}

absl::StatusOr<int64_t> StateStore::CountRounds(const std::string& model_id, RoundState state) {
  MutexLock lock(&mu_);
  Statement s(db_, "SELECT COUNT(*) FROM rounds WHERE model_id = ? AND state = ?");
  s.Bind(model_id).Bind(std::string(RoundStateName(state)));
  if (s.Step() != SQLITE_ROW) return Failed(path_, "counting rounds", s.Error());
  return s.Int(0);
}

absl::Status StateStore::AddUpdate(const UpdateRecord& u) {
  MutexLock lock(&mu_);
  Statement s(db_, StrCat("INSERT INTO updates(", kUpdateColumns, ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  s.Bind(u.model_id).Bind(u.round_id).Bind(u.device_id).Bind(u.idempotency_key).Bind(u.sha256).Bind(u.example_count)
      .Bind(u.metrics).Bind(u.bytes).Bind(u.accepted_ms);
  const int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) {
    return absl::AlreadyExistsError(StrCat("device ", u.device_id, " already has an update in round ", u.round_id));
  }
  if (rc != SQLITE_DONE) return Failed(path_, "saving an update", s.Error());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<UpdateRecord>> StateStore::Updates(const std::string& model_id, uint64_t round_id) {
  MutexLock lock(&mu_);
  Statement s(db_, StrCat("SELECT ", kUpdateColumns, " FROM updates WHERE model_id = ? AND round_id = ? ORDER BY seq"));
  s.Bind(model_id).Bind(round_id);
  std::vector<UpdateRecord> updates;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) updates.push_back(ReadUpdate(s));
  if (rc != SQLITE_DONE) return Failed(path_, "reading updates", s.Error());
  return updates;
}

absl::StatusOr<std::optional<UpdateRecord>> StateStore::UpdateBySha(const std::string& sha256) {
  MutexLock lock(&mu_);
  Statement s(db_, StrCat("SELECT ", kUpdateColumns, " FROM updates WHERE sha256 = ? ORDER BY seq LIMIT 1"));
  s.Bind(sha256);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<UpdateRecord>();
  if (rc != SQLITE_ROW) return Failed(path_, "reading updates", s.Error());
  return std::optional<UpdateRecord>(ReadUpdate(s));
}

absl::Status StateStore::PutVersionLocked(const VersionRecord& v) {
  Statement s(db_, "INSERT OR REPLACE INTO versions VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.Bind(v.model_id).Bind(v.version).Bind(v.parent).Bind(v.round_id).Bind(v.sha256).Bind(v.bytes).Bind(v.created_ms)
      .Bind(v.metrics).Bind(v.optimizer_sha256);
  if (s.Step() != SQLITE_DONE) return Failed(path_, "saving a version", s.Error());
  return absl::OkStatus();
}

absl::Status StateStore::PutVersion(const VersionRecord& version) {
  MutexLock lock(&mu_);
  return PutVersionLocked(version);
}

absl::StatusOr<std::vector<VersionRecord>> StateStore::QueryVersions(const std::string& where_sql,
                                                                     const std::string& model_id, int64_t number) {
  Statement s(db_, StrCat("SELECT model_id, version, parent, round_id, sha256, bytes, created_ms, metrics, "
                          "optimizer_sha256 FROM versions WHERE ", where_sql));
  s.Bind(model_id);
  if (number >= 0) s.Bind(number);
  std::vector<VersionRecord> versions;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    versions.push_back({s.Text(0), static_cast<uint64_t>(s.Int(1)), static_cast<uint64_t>(s.Int(2)),
                        static_cast<uint64_t>(s.Int(3)), s.Text(4), static_cast<uint64_t>(s.Int(5)), s.Int(6),
                        s.Text(7), s.Text(8)});
  }
  if (rc != SQLITE_DONE) return Failed(path_, "reading versions", s.Error());
  return versions;
}

absl::StatusOr<std::vector<VersionRecord>> StateStore::LatestVersions(const std::string& model_id, int64_t count) {
  MutexLock lock(&mu_);
  EDGELLM_ASSIGN_OR_RETURN(std::vector<VersionRecord> versions,
                           QueryVersions("model_id = ? ORDER BY version DESC LIMIT ?", model_id, count));
  std::reverse(versions.begin(), versions.end());
  return versions;
}

absl::StatusOr<std::optional<VersionRecord>> StateStore::LatestVersion(const std::string& model_id) {
  MutexLock lock(&mu_);
  auto versions = QueryVersions("model_id = ? ORDER BY version DESC LIMIT 1", model_id, -1);
  if (!versions.ok()) return versions.status();
  if (versions->empty()) return std::optional<VersionRecord>();
  return std::optional<VersionRecord>(versions->front());
}

absl::StatusOr<std::optional<VersionRecord>> StateStore::Version(const std::string& model_id, uint64_t version) {
  MutexLock lock(&mu_);
  auto versions = QueryVersions("model_id = ? AND version = ?", model_id, static_cast<int64_t>(version));
  if (!versions.ok()) return versions.status();
  if (versions->empty()) return std::optional<VersionRecord>();
  return std::optional<VersionRecord>(versions->front());
}

absl::StatusOr<std::vector<VersionRecord>> StateStore::Versions(const std::string& model_id) {
  MutexLock lock(&mu_);
  return QueryVersions("model_id = ? ORDER BY version", model_id, -1);
}

absl::Status StateStore::CloseRound(const RoundRecord& round, const std::optional<VersionRecord>& version) {
  MutexLock lock(&mu_);
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = PutRoundLocked(round);
  if (s.ok() && version) s = PutVersionLocked(*version);
  if (s.ok()) s = Exec("COMMIT");
  if (!s.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return s;
  }
  return absl::OkStatus();
}

absl::Status StateStore::PutRelease(const ReleaseRecord& r) {
  MutexLock lock(&mu_);
  Statement s(db_, StrCat("INSERT OR REPLACE INTO releases(", kReleaseColumns,
                          ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  s.Bind(r.model_id).Bind(r.release).Bind(r.version).Bind(int64_t{r.rollback}).Bind(r.artifact_sha256)
      .Bind(r.signed_release).Bind(r.canary_fraction).Bind(r.success_threshold).Bind(r.soak_seconds).Bind(r.stage)
      .Bind(r.resume_stage).Bind(r.detail).Bind(r.published_ms).Bind(r.stage_ms)
      .Bind(nlohmann::json(r.canaries).dump()).Bind(r.failures_before_ms).Bind(int64_t{r.require_approval});
  if (s.Step() != SQLITE_DONE) return Failed(path_, "saving a release", s.Error());
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ReleaseRecord>> StateStore::LatestRelease(const std::string& model_id) {
  MutexLock lock(&mu_);
  Statement s(db_, StrCat("SELECT ", kReleaseColumns, " FROM releases WHERE model_id = ? ORDER BY release DESC LIMIT 1"));
  s.Bind(model_id);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<ReleaseRecord>();
  if (rc != SQLITE_ROW) return Failed(path_, "reading releases", s.Error());
  ReleaseRecord r{s.Text(0), static_cast<uint64_t>(s.Int(1)), static_cast<uint64_t>(s.Int(2)), s.Int(3) != 0,
                  s.Text(4), s.Text(5), s.Real(6), s.Real(7), s.Int(8), s.Text(9), s.Text(10), s.Text(11), s.Int(12),
                  s.Int(13), {}, s.Int(15), s.Int(16) != 0};
  const nlohmann::json canaries = nlohmann::json::parse(s.Text(14), nullptr, false);
  if (canaries.is_array()) {
    for (const nlohmann::json& c : canaries) {
      if (c.is_string()) r.canaries.push_back(c.get<std::string>());
    }
  }
  return std::optional<ReleaseRecord>(std::move(r));
}

absl::StatusOr<bool> StateStore::IsReleasedArtifact(const std::string& model_id, const std::string& sha256) {
  MutexLock lock(&mu_);
  Statement s(db_, "SELECT 1 FROM releases WHERE artifact_sha256 = ? AND model_id = ? LIMIT 1");
  s.Bind(sha256).Bind(model_id);
  const int rc = s.Step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Failed(path_, "reading releases", s.Error());
  return rc == SQLITE_ROW;
}

absl::Status StateStore::PutOffer(const std::string& model_id, uint64_t release, const std::string& device_id) {
  MutexLock lock(&mu_);
  Statement s(db_, "INSERT OR IGNORE INTO offers VALUES(?, ?, ?, ?)");
  s.Bind(model_id).Bind(release).Bind(device_id).Bind(NowUnixMs());
  if (s.Step() != SQLITE_DONE) return Failed(path_, "saving an offer", s.Error());
  return absl::OkStatus();
}

absl::StatusOr<bool> StateStore::WasOffered(const std::string& model_id, uint64_t release,
                                            const std::string& device_id) {
  MutexLock lock(&mu_);
  Statement s(db_, "SELECT 1 FROM offers WHERE model_id = ? AND release = ? AND device_id = ?");
  s.Bind(model_id).Bind(release).Bind(device_id);
  const int rc = s.Step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Failed(path_, "reading offers", s.Error());
  return rc == SQLITE_ROW;
}

absl::Status StateStore::PutEnrollment(const std::string& device_id, const std::string& model_id) {
  MutexLock lock(&mu_);
  Statement s(db_, "INSERT OR REPLACE INTO enrollments VALUES(?, ?, ?)");
  s.Bind(device_id).Bind(model_id).Bind(NowUnixMs());
  if (s.Step() != SQLITE_DONE) return Failed(path_, "saving an enrollment", s.Error());
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, std::string>> StateStore::Enrollments() {
  MutexLock lock(&mu_);
  Statement s(db_, "SELECT device_id, model_id FROM enrollments");
  std::map<std::string, std::string> enrollments;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) enrollments[s.Text(0)] = s.Text(1);
  if (rc != SQLITE_DONE) return Failed(path_, "reading enrollments", s.Error());
  return enrollments;
}

absl::Status StateStore::PutInstall(const InstallRecord& i) {
  MutexLock lock(&mu_);
  Statement s(db_, StrCat("INSERT OR REPLACE INTO installs(", kInstallColumns, ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  s.Bind(i.model_id).Bind(i.device_id).Bind(i.release).Bind(i.outcome).Bind(i.serving_version).Bind(i.detail)
      .Bind(i.reported_ms).Bind(i.evaluation).Bind(i.live);
  if (s.Step() != SQLITE_DONE) return Failed(path_, "saving an install report", s.Error());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<InstallRecord>> StateStore::Installs(const std::string& model_id) {
  MutexLock lock(&mu_);
  Statement s(db_, StrCat("SELECT ", kInstallColumns, " FROM installs WHERE model_id = ? ORDER BY device_id"));
  s.Bind(model_id);
  std::vector<InstallRecord> installs;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    installs.push_back({s.Text(0), s.Text(1), static_cast<uint64_t>(s.Int(2)), s.Text(3),
                        static_cast<uint64_t>(s.Int(4)), s.Text(5), s.Int(6), s.Text(7), s.Text(8)});
  }
  if (rc != SQLITE_DONE) return Failed(path_, "reading install reports", s.Error());
  return installs;
}

}  // namespace edgellm::federated
