#include "common/backoff.h"

#include <algorithm>
#include <cmath>

namespace qai::common {

absl::Duration BackoffDelay(int attempts, absl::Duration base, absl::Duration max,
                            absl::BitGen& rng) {
  const double factor = std::ldexp(1.0, std::min(attempts, 30));
  absl::Duration full = std::min(base * factor, max);
  return full / 2 + absl::Uniform(rng, 0.0, 1.0) * (full / 2);
}

}  // namespace qai::common
