#include "services/orchestrator/utf8.h"

#include "common/validation.h"

namespace qai::orchestrator {

std::string ToValidUtf8(std::string_view in) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    const auto c = static_cast<unsigned char>(in[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (c != 0 && len > 0 && i + len <= in.size() && common::Utf8Length(in.substr(i, len)) == 1) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out.append(kReplacement);
      ++i;
    }
  }
  return out;
}

std::string TruncateUtf8(std::string_view text, size_t max_bytes, bool* truncated) {
  if (truncated != nullptr) *truncated = text.size() > max_bytes;
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

}  // namespace qai::orchestrator
