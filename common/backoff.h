#pragma once
// Exponential backoff with jitter, for everything that retries (outbox deliveries, runs).

#include "absl/random/random.h"
#include "absl/time/time.h"

namespace qai::common {

// BackoffDelay: the wait before attempt `attempts + 1`: base * 2^attempts capped at max, with
// "equal jitter" (between half and all of it), so failing rows spread out instead of marching.
absl::Duration BackoffDelay(int attempts, absl::Duration base, absl::Duration max,
                            absl::BitGen& rng);

}  // namespace qai::common
