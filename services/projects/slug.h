#pragma once
// Readable project names such as "brave-otter-4f2a": an adjective, an animal and four hex
// digits. About 8 million combinations; the store retries on the rare collision.

#include <string>

#include "absl/random/bit_gen_ref.h"
#include "absl/random/random.h"

namespace qai::projects {

std::string GenerateSlug(absl::BitGenRef rng);

// IsSlug: whether name has the adjective-animal-hex shape GenerateSlug produces.
bool IsSlug(std::string_view name);

}  // namespace qai::projects
