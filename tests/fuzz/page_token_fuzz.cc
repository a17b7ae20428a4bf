// Fuzzes page tokens, which every List call takes from its caller: a token the fuzzer made never
// decodes (it would need the key), and a cursor of any bytes survives its own round trip.
// The first byte picks the path, the rest is the input.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/page_token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const qai::common::PageTokenCodec codec(std::string(32, 'k'));
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string_view scope = "projects/owner:alice";
  if (data[0] % 2 == 0) {
    if (codec.Decode(input, scope).ok()) __builtin_trap();
    if (qai::common::DecodePosition(codec, input, scope).value_or(std::nullopt).has_value())
      __builtin_trap();
  } else if (input.size() <= 3000) {  // tokens longer than 4096 characters are refused
    const std::string token = codec.Encode(scope, input);
    auto cursor = codec.Decode(token, scope);
    if (!cursor.ok() || *cursor != input) __builtin_trap();
    if (codec.Decode(token, "projects/owner:bob").ok()) __builtin_trap();
  }
  return 0;
}
