#include "services/sandbox/membership.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace qai::sandbox {

using common::Log;
using common::LogLevel;

absl::StatusOr<std::unique_ptr<Membership>> Membership::Start(Options options,
                                                              ReplicaStore* replicas,
                                                              Workspaces* workspaces, Hooks hooks) {
  QAI_ASSIGN_OR_RETURN(Replica self, replicas->Register(options.name, options.address));
  std::unique_ptr<Membership> m(
      new Membership(std::move(self), replicas, workspaces, std::move(hooks)));
  m->listener_ = std::make_unique<common::PgListener>(
      common::PgListener::Options{.url = options.db_url,
                                  .channels = {kSnapshotsPurgedChannel, kProjectPurgedChannel},
                                  .setup = ReplicaStore::LockStatements(m->self_.id)},
      [raw = m.get()](std::string_view channel, std::string_view payload) {
        raw->OnNotify(channel, payload);
      },
      [raw = m.get()] { raw->OnConnect(); });
  QAI_RETURN_IF_ERROR(m->listener_->Start());
  const absl::Time deadline = absl::Now() + options.start_timeout;
  while (!m->alive()) {
    if (absl::Now() > deadline) {
      return absl::UnavailableError(absl::StrCat(
          "sandbox replica ", m->self_.name, ": could not join the tier within ",
          absl::FormatDuration(options.start_timeout), " (its database session did not come up)"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // A replica without an address is reached at the tier's: it must be the tier's only one.
  QAI_ASSIGN_OR_RETURN(std::vector<Replica> others, replicas->LiveOthers(m->self_.id));
  for (const Replica& other : others) {
    // The same name: this replica's previous start, whose session the database has not ended yet.
    if (other.name == m->self_.name) continue;
    if (m->self_.address.empty() || other.address.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("sandbox replica ", m->self_.name, ": replica ", other.name,
                       " runs too, and a tier of several replicas needs QAI_REPLICA_ADDR on each (",
                       m->self_.name, ": \"", m->self_.address, "\", ", other.name, ": \"",
                       other.address, "\")"));
    }
  }
  Log(LogLevel::kInfo, "joined the sandbox tier",
      {{"replica", m->self_.name}, {"incarnation", m->self_.id}, {"address", m->self_.address}});
  return m;
}

Membership::~Membership() { Stop(); }

void Membership::Stop() {
  if (listener_ != nullptr) listener_->Stop();
}

void Membership::OnNotify(std::string_view channel, std::string_view payload) {
  if (channel == kProjectPurgedChannel) {
    if (absl::Status s = workspaces_->Discard(std::string(payload)); !s.ok()) {
      Log(LogLevel::kWarn, "could not discard a purged project's workspace",
          {{"project_id", std::string(payload)}, {"error", std::string(s.message())}});
    }
  } else if (channel == kSnapshotsPurgedChannel && hooks_.snapshots_purged) {
    hooks_.snapshots_purged(payload);
  }
}

void Membership::OnConnect() {
  if (absl::Status s = replicas_->Reregister(self_); !s.ok()) {
    Log(LogLevel::kWarn, "could not register the replica again",
        {{"error", std::string(s.message())}});
  }
  absl::StatusOr<int> discarded = workspaces_->DiscardPurged();
  if (!discarded.ok()) {
    Log(LogLevel::kWarn, "could not discard purged projects' workspaces",
        {{"error", std::string(discarded.status().message())}});
  } else if (*discarded > 0) {
    Log(LogLevel::kInfo, "discarded purged projects' workspaces", {{"count", *discarded}});
  }
  if (hooks_.reconnected) hooks_.reconnected();
}

}  // namespace qai::sandbox
