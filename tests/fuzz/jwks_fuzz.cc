// Fuzzes the parser of an identity provider's key set (QAI_JWT_JWKS: a file or an https URL, so
// the bytes come from outside QAI), then looks a key up in whatever it parsed.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/jwks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto set = qai::common::JwkSet::Parse(json);
  if (!set.ok()) return 0;
  if (set->keys().empty()) __builtin_trap();  // a set without a usable key is refused
  for (const auto& key : set->keys()) {
    if (key.key == nullptr) __builtin_trap();
    (void)set->Find(key.kid.empty() ? std::nullopt : std::optional<std::string>(key.kid), key.alg);
  }
  return 0;
}
