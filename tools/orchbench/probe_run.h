#pragma once
// ProbeRun: a run this process works on itself, through RunStore, as a worker would: it queues
// the run, claims it (holding its lease), and appends stamped model_output events to it, each
// in its own transaction announced by NOTIFY, exactly as a worker's Append. Watchers of the run
// on any orchestrator replica then see those events, and the stamp says when each was sent.
//
// The run belongs to a project of its own with no messages: nothing but this process may work
// on it. So it must be claimed while no other run is queued and no worker could claim first:
// before the replicas start, or while all their workers are busy.
//
//   auto probe = ProbeRun::Claim(&store, absl::Hours(1));
//   absl::StatusOr<ProbeRun::Sent> sent = (*probe)->Append(0);
//   (*probe)->End();

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/orchestrator/store/run_store.h"

namespace qai::orchbench {

class ProbeRun {
 public:
  // Claim: FAILED_PRECONDITION when the claim found another run first (that run is put back
  // in the queue at once) or none.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ProbeRun>> Claim(
      orchestrator::RunStore* store, absl::Duration lease);

  const std::string& run_id() const { return lease_.run_id; }
  int64_t last_sequence() const { return last_sequence_; }

  struct Sent {
    int64_t sequence = 0;
    int64_t sent_ns = 0;       // SteadyNanos() just before the append (the stamp)
    int64_t committed_ns = 0;  // SteadyNanos() when the append had committed
  };
  // Append: one model_output event holding StampText(index, sent_ns).
  [[nodiscard]] absl::StatusOr<Sent> Append(int64_t index);
  // Heartbeat: renews the lease.
  [[nodiscard]] absl::Status Heartbeat();
  // End: the run ends CANCELLED, which ends its watchers' streams.
  [[nodiscard]] absl::Status End();

 private:
  ProbeRun(orchestrator::RunStore* store, orchestrator::Lease lease, absl::Duration lease_for,
           int64_t last)
      : store_(store), lease_(std::move(lease)), lease_for_(lease_for), last_sequence_(last) {}

  orchestrator::RunStore* const store_;
  const orchestrator::Lease lease_;
  const absl::Duration lease_for_;
  int64_t last_sequence_ = 0;
};

}  // namespace qai::orchbench
