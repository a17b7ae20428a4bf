// Fuzzes what a model endpoint answers to an unstreamed call: the chat completion's JSON, and
// the error text read from a failed call's body.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "services/orchestrator/model/openai_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)qai::orchestrator::ParseChatCompletion(body);
  (void)qai::orchestrator::ErrorMessage(body);
  return 0;
}
