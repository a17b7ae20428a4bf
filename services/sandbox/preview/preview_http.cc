#include "services/sandbox/preview/preview_http.h"

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/strings.h"
#include "common/validation.h"

namespace qai::sandbox {
namespace {

using common::ToAbsl;

// IsTchar: a character of a token (RFC 9110 5.6.2): method names and field names.
bool IsTchar(unsigned char c) {
  if (absl::ascii_isalnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(ToAbsl(a), ToAbsl(b));
}

// Line: the line starting at `pos` without its terminator, and where the next one starts;
// nullopt when no LF follows yet.
struct Line {
  std::string_view text;
  size_t next;
};
std::optional<Line> NextLine(std::string_view in, size_t pos) {
  const size_t lf = in.find('\n', pos);
  if (lf == std::string_view::npos) return std::nullopt;
  std::string_view text = in.substr(pos, lf - pos);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return Line{text, lf + 1};
}

// ParseVersion: "HTTP/1.1" -> 1 (the minor version); the HeadParse refusal otherwise.
HeadParse ParseVersion(std::string_view v, int& minor) {
  if (v.size() != 8 || !absl::StartsWith(ToAbsl(v), "HTTP/") || !absl::ascii_isdigit(v[5]) ||
      v[6] != '.' || !absl::ascii_isdigit(v[7])) {
    return HeadParse::kBadRequest;
  }
  if (v[5] != '1') return HeadParse::kVersionNotSupported;
  // A later 1.x is answered as 1.1 (RFC 9110 6.2).
  minor = v[7] == '0' ? 0 : 1;
  return HeadParse::kComplete;
}

// ParseDigits: a run of decimal digits (saturating at the largest uint64_t, which is past any
// representation's end); nullopt for an empty run or anything else.
std::optional<uint64_t> ParseDigits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t n = 0;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (n > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      n = std::numeric_limits<uint64_t>::max();
    } else {
      n = n * 10 + digit;
    }
  }
  return n;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ParseQvalue: "0", "0.5", "1", "1.000" (RFC 9110 12.4.2) in thousandths; nullopt otherwise.
std::optional<int> ParseQvalue(std::string_view s) {
  if (s.empty() || (s[0] != '0' && s[0] != '1')) return std::nullopt;
  int whole = s[0] - '0';
  int thousandths = 0;
  if (s.size() > 1) {
    if (s[1] != '.' || s.size() > 5) return std::nullopt;
    int scale = 100;
    for (char c : s.substr(2)) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      thousandths += (c - '0') * scale;
      scale /= 10;
    }
  }
  if (whole == 1 && thousandths != 0) return std::nullopt;
  return whole * 1000 + thousandths;
}

// StripWeak: an entity tag without a W/ prefix ("\"x\""); nullopt unless it is one.
std::optional<std::string_view> StripWeak(std::string_view tag) {
  if (absl::StartsWith(ToAbsl(tag), "W/")) tag.remove_prefix(2);
  if (tag.size() < 2 || tag.front() != '"' || tag.back() != '"') return std::nullopt;
  return tag;
}

}  // namespace

std::optional<std::string_view> RequestHead::Field(std::string_view name) const {
  for (const auto& [n, v] : fields) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return std::nullopt;
}

size_t RequestHead::FieldCount(std::string_view name) const {
  size_t count = 0;
  for (const auto& field : fields) count += EqualsIgnoreCase(field.first, name) ? 1 : 0;
  return count;
}

HeadParse ParseRequestHead(std::string_view in, const HeadLimits& limits, RequestHead& head) {
  head.fields.clear();
  head.length = 0;
  // RFC 9112 2.2: an empty line or two before a request line (left over from a previous
  // message) is skipped.
  size_t pos = 0;
  for (int i = 0; i < 2 && pos < in.size() && (in[pos] == '\r' || in[pos] == '\n'); ++i) {
    if (in[pos] == '\r') {
      if (pos + 1 >= in.size()) return HeadParse::kIncomplete;
      if (in[pos + 1] != '\n') return HeadParse::kBadRequest;
      ++pos;
    }
    ++pos;
  }
  std::optional<Line> line = NextLine(in, pos);
  if (!line)
    return in.size() - pos > limits.max_request_line ? HeadParse::kUriTooLong
                                                     : HeadParse::kIncomplete;
  if (line->text.size() > limits.max_request_line) return HeadParse::kUriTooLong;

  const size_t sp1 = line->text.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line->text.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return HeadParse::kBadRequest;
  head.method = line->text.substr(0, sp1);
  head.target = line->text.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!IsToken(head.method) || head.target.empty()) return HeadParse::kBadRequest;
  for (unsigned char c : head.target) {
    if (c <= ' ' || c == 0x7f) return HeadParse::kBadRequest;
  }
  if (HeadParse v = ParseVersion(line->text.substr(sp2 + 1), head.minor_version);
      v != HeadParse::kComplete)
    return v;

  for (pos = line->next;;) {
    line = NextLine(in, pos);
    if (!line)
      return in.size() > limits.max_head ? HeadParse::kFieldsTooLarge : HeadParse::kIncomplete;
    if (line->next > limits.max_head) return HeadParse::kFieldsTooLarge;
    pos = line->next;
    if (line->text.empty()) break;
    const std::string_view text = line->text;
    // Obsolete line folding (a line starting with whitespace) is refused (RFC 9112 5.2).
    const size_t colon = text.find(':');
    if (colon == std::string_view::npos || !IsToken(text.substr(0, colon)))
      return HeadParse::kBadRequest;
    const std::string_view value = TrimOws(text.substr(colon + 1));
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return HeadParse::kBadRequest;
    }
    if (head.fields.size() >= limits.max_fields) return HeadParse::kFieldsTooLarge;
    head.fields.emplace_back(text.substr(0, colon), value);
  }
  head.length = pos;
  return HeadParse::kComplete;
}

int HeadParseStatus(HeadParse result) {
  switch (result) {
    case HeadParse::kUriTooLong:
      return 414;
    case HeadParse::kFieldsTooLarge:
      return 431;
    case HeadParse::kVersionNotSupported:
      return 505;
    default:
      return 400;
  }
}

std::optional<std::string> DecodeTargetPath(std::string_view target) {
  if (target.empty()) return std::nullopt;
  if (target.front() != '/') {
    // absolute-form, which a server must accept (RFC 9112 3.2.2); the authority is not ours
    // to check, the path is what names the file.
    size_t scheme = 0;
    if (absl::StartsWithIgnoreCase(ToAbsl(target), "http://")) {
      scheme = 7;
    } else if (absl::StartsWithIgnoreCase(ToAbsl(target), "https://")) {
      scheme = 8;
    } else {
      return std::nullopt;
    }
    const size_t end = target.find_first_of("/?#", scheme);
    if (end == std::string_view::npos || target[end] != '/') return std::string("/");
    target.remove_prefix(end);
  }
  target = target.substr(0, target.find_first_of("?#"));
  std::string path;
  path.reserve(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] != '%') {
      path.push_back(target[i]);
      continue;
    }
    if (i + 2 >= target.size()) return std::nullopt;
    const int hi = HexValue(target[i + 1]);
    const int lo = HexValue(target[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    path.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return path;
}

std::optional<SnapshotPath> ParseSnapshotPath(std::string_view path) {
  if (path.size() < 2 || path[0] != '/') return std::nullopt;
  const size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view id = path.substr(1, slash - 1);
  if (!common::IsUuid(id)) return std::nullopt;
  std::string file(path.substr(slash + 1));
  if (file.empty() || file.back() == '/') file += "index.html";
  if (common::Utf8Length(file) < 0) return std::nullopt;
  for (absl::string_view segment : absl::StrSplit(file, '/')) {
    if (segment.empty() || segment == "." || segment == "..") return std::nullopt;
    for (unsigned char c : segment) {
      if (c < 0x20 || c == 0x7f || c == '\\') return std::nullopt;
    }
  }
  return SnapshotPath{absl::AsciiStrToLower(ToAbsl(id)), std::move(file)};
}

std::optional<DownloadPath> ParseDownloadPath(std::string_view path) {
  constexpr std::string_view kPrefix = "/download/";
  if (!path.starts_with(kPrefix)) return std::nullopt;
  path.remove_prefix(kPrefix.size());
  const size_t slash = path.find('/');
  if (slash == std::string_view::npos || !common::IsUuid(path.substr(0, slash))) {
    return std::nullopt;
  }
  const std::string_view name = path.substr(slash + 1);
  const std::optional<ArchiveFormat> format = ArchiveFormatOfName(name);
  if (!format || !IsArchiveName(name)) return std::nullopt;
  const std::string_view folder = name.substr(0, name.size() - ArchiveExtension(*format).size());
  if (!IsArchiveName(folder)) return std::nullopt;
  return DownloadPath{.snapshot_id = absl::AsciiStrToLower(ToAbsl(path.substr(0, slash))),
                      .file_name = std::string(name),
                      .folder = std::string(folder),
                      .format = *format};
}

bool HasToken(std::string_view list, std::string_view token) {
  for (absl::string_view member : absl::StrSplit(ToAbsl(list), ',')) {
    if (EqualsIgnoreCase(TrimOws(std::string_view(member.data(), member.size())), token))
      return true;
  }
  return false;
}

ByteRangeRequest ParseByteRange(std::string_view value, uint64_t length) {
  const size_t eq = value.find('=');
  if (eq == std::string_view::npos || !EqualsIgnoreCase(TrimOws(value.substr(0, eq)), "bytes"))
    return {};
  std::string_view spec;
  int specs = 0;
  for (absl::string_view member : absl::StrSplit(ToAbsl(value.substr(eq + 1)), ',')) {
    const std::string_view m = TrimOws(std::string_view(member.data(), member.size()));
    if (m.empty()) continue;  // list syntax allows empty members
    spec = m;
    ++specs;
  }
  if (specs != 1) return {};  // nothing, or several ranges: the whole representation
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return {};
  const std::string_view first_text = spec.substr(0, dash);
  const std::string_view last_text = spec.substr(dash + 1);
  if (first_text.empty()) {
    const std::optional<uint64_t> suffix = ParseDigits(last_text);
    if (!suffix) return {};
    if (*suffix == 0 || length == 0) return {.kind = ByteRangeRequest::kUnsatisfiable};
    return {.kind = ByteRangeRequest::kSatisfiable,
            .first = length > *suffix ? length - *suffix : 0,
            .last = length - 1};
  }
  const std::optional<uint64_t> first = ParseDigits(first_text);
  if (!first) return {};
  uint64_t last = std::numeric_limits<uint64_t>::max();
  if (!last_text.empty()) {
    const std::optional<uint64_t> parsed = ParseDigits(last_text);
    // "5-1" is not a range at all (RFC 9110 14.1.1), so the header is ignored.
    if (!parsed || *parsed < *first) return {};
    last = *parsed;
  }
  if (*first >= length) return {.kind = ByteRangeRequest::kUnsatisfiable};
  return {
      .kind = ByteRangeRequest::kSatisfiable, .first = *first, .last = std::min(last, length - 1)};
}

std::string ContentRange(uint64_t first, uint64_t last, uint64_t length) {
  return absl::StrCat("bytes ", first, "-", last, "/", length);
}

bool IfNoneMatchMatches(std::string_view value, std::string_view etag) {
  value = TrimOws(value);
  if (value == "*") return true;
  const std::optional<std::string_view> ours = StripWeak(etag);
  if (!ours) return false;
  size_t pos = 0;
  while (pos < value.size()) {
    while (pos < value.size() && (value[pos] == ' ' || value[pos] == '\t' || value[pos] == ','))
      ++pos;
    if (pos >= value.size()) break;
    if (value.substr(pos, 2) == "W/") pos += 2;
    if (pos >= value.size() || value[pos] != '"') return false;
    const size_t close = value.find('"', pos + 1);
    if (close == std::string_view::npos) return false;
    if (value.substr(pos, close + 1 - pos) == *ours) return true;
    pos = close + 1;
    // After a tag: whitespace, then a comma or the end.
    while (pos < value.size() && (value[pos] == ' ' || value[pos] == '\t')) ++pos;
    if (pos < value.size() && value[pos] != ',') return false;
  }
  return false;
}

bool IfRangeMatches(std::string_view value, std::string_view etag,
                    std::optional<absl::Time> last_modified) {
  value = TrimOws(value);
  if (absl::StartsWith(ToAbsl(value), "W/")) return false;
  if (!value.empty() && value.front() == '"')
    return value == etag && !absl::StartsWith(ToAbsl(etag), "W/");
  const std::optional<absl::Time> date = ParseHttpDate(value);
  return date && last_modified && *date == *last_modified;
}

CodingWeights ParseAcceptEncoding(std::optional<std::string_view> value) {
  CodingWeights out{.brotli = 0, .gzip = 0, .identity = 1};
  if (!value) return out;
  int brotli = -1, gzip = -1, identity = -1, star = -1;
  for (absl::string_view member : absl::StrSplit(ToAbsl(*value), ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(member, ';');
    const std::string_view coding = TrimOws(std::string_view(parts[0].data(), parts[0].size()));
    if (coding.empty()) continue;
    int q = 1000;
    bool valid = true;
    for (size_t i = 1; i < parts.size(); ++i) {
      const std::string_view param = TrimOws(std::string_view(parts[i].data(), parts[i].size()));
      if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        const std::optional<int> parsed = ParseQvalue(TrimOws(param.substr(2)));
        if (!parsed)
          valid = false;
        else
          q = *parsed;
      }
    }
    if (!valid) continue;  // a member we cannot read says nothing
    int* slot = nullptr;
    if (EqualsIgnoreCase(coding, "br"))
      slot = &brotli;
    else if (EqualsIgnoreCase(coding, "gzip") || EqualsIgnoreCase(coding, "x-gzip"))
      slot = &gzip;
    else if (EqualsIgnoreCase(coding, "identity"))
      slot = &identity;
    else if (coding == "*")
      slot = &star;
    if (slot != nullptr) *slot = std::max(*slot, q);
  }
  out.brotli = brotli >= 0 ? brotli : std::max(star, 0);
  out.gzip = gzip >= 0 ? gzip : std::max(star, 0);
  out.identity = identity >= 0 ? identity : (star >= 0 ? star : 1);
  return out;
}

std::string FormatHttpDate(absl::Time time) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", time, absl::UTCTimeZone());
}

std::optional<absl::Time> ParseHttpDate(std::string_view value) {
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // IMF-fixdate
      "%A, %d-%b-%y %H:%M:%S GMT",  // RFC 850
      "%a %b %e %H:%M:%S %Y",       // asctime
  };
  const std::string text(TrimOws(value));
  if (text.empty() || text.size() > 64) return std::nullopt;
  for (const char* format : kFormats) {
    absl::Time t;
    std::string error;
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), &t, &error)) return t;
  }
  return std::nullopt;
}

}  // namespace qai::sandbox
