#include "tools/qai/printable.h"

namespace qai::cli {

std::string Printable(absl::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    if (u == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0 &&
        static_cast<unsigned char>(text[i + 1]) >= 0x80) {
      out += '?';  // U+0080..U+009F in UTF-8, e.g. the one-character CSI
      ++i;
    } else if (c == '\n') {
      out += keep_newlines ? '\n' : ' ';
    } else if (c == '\t') {
      out += ' ';
    } else if (c == '\r') {
      continue;
    } else if (u < 0x20 || u == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace qai::cli
