#pragma once
// ReplicaStore: the sandbox tier's replicas and which one serves each project (sandbox.replicas,
// sandbox.assignments).
//
// Each start of a replica registers an incarnation, which is alive while a database session
// holds its lock (LockStatement, run by the replica's own listener connection): a replica killed
// with -9 is gone the moment its session ends. A project stays on its replica while that one
// lives; a project whose replica is gone (or new) goes to the live replica that ranks first for
// it (rendezvous hashing on the names), so projects spread evenly and a replica that restarts
// under its name gets its projects back, their workspaces still warm.
//
//   ReplicaStore replicas(pool);
//   absl::StatusOr<Replica> self = replicas.Register("qai-sandbox-0",
//   "qai-sandbox-0.qai-sandbox:50054"); listener options: .setup =
//   {ReplicaStore::LockStatement(self->id)} absl::StatusOr<Replica> owner =
//   replicas.Locate(project_id);   // any replica may answer absl::Status s =
//   replicas.Claim(project_id, self->id);         // before working on it

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/db_pool.h"
#include "common/pg_listener.h"

namespace qai::sandbox {

// Replica: one incarnation of a replica.
struct Replica {
  int id = 0;
  std::string name;
  std::string address;  // host:port; empty: reached at the tier's own address
};

class ReplicaStore {
 public:
  // The advisory lock class of replicas' liveness locks (the key is the incarnation's id).
  static constexpr int kLockClass = 1363233107;
  // Dead incarnations started this long ago are forgotten (rows, and their assignments); a
  // younger one may be one that has not taken its lock yet.
  static constexpr absl::Duration kForgetAfter = absl::Hours(1);

  explicit ReplicaStore(common::DbPool* db) : db_(db) {}

  // Register: a new incarnation of the replica `name` at `address`, alive once a session runs
  // LockStatements(id). Forgets dead incarnations started over kForgetAfter ago.
  [[nodiscard]] absl::StatusOr<Replica> Register(const std::string& name,
                                                 const std::string& address);
  // Reregister: the incarnation's row again, if it was forgotten while its session was down.
  [[nodiscard]] absl::Status Reregister(const Replica& self);
  // LockStatements: what keeps incarnation `id` alive while its session lasts (waits while an
  // older session of the same id still holds it). Server-side TCP keepalives on that session
  // let the database see a vanished host within about half a minute.
  static std::vector<common::PgListener::Statement> LockStatements(int id);
  // LiveOthers: the live incarnations but `self`.
  [[nodiscard]] absl::StatusOr<std::vector<Replica>> LiveOthers(int self);
  // Locate: the replica that serves the project: its own while alive, else the live replica
  // that ranks first for it, recorded. FAILED_PRECONDITION for a purged project; UNAVAILABLE
  // when no replica is alive.
  [[nodiscard]] absl::StatusOr<Replica> Locate(const std::string& project_id);
  // Claim: incarnation `self` serves the project, unless another live one does (ABORTED, naming
  // it). FAILED_PRECONDITION for a purged project.
  [[nodiscard]] absl::Status Claim(const std::string& project_id, int self);

  // For tests only:
  // Alive: whether a session holds incarnation `id`'s lock.
  [[nodiscard]] absl::StatusOr<bool> Alive(int id);

 private:
  common::DbPool* const db_;
};

}  // namespace qai::sandbox
