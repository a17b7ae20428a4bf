// Fuzzes a streamed answer: the bytes as server-sent events, fed in pieces whose sizes the
// first bytes choose (a network splits a stream anywhere), then the reply they add up to.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "services/orchestrator/model/openai_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t step = 1 + (static_cast<size_t>(data[0]) << 8 | data[1]) % 4096;
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  qai::orchestrator::ChatStreamParser parser;
  std::string text;
  while (!stream.empty()) {
    const size_t n = std::min(step, stream.size());
    if (!parser.Feed(stream.substr(0, n), &text).ok()) return 0;
    stream.remove_prefix(n);
  }
  (void)parser.Finish();
  return 0;
}
