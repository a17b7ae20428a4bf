#include "common/page_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace qai::common {
namespace {

constexpr size_t kMacBytes = 16;

absl::Status BadToken() { return InvalidField("page_token", "is not a token this list returned"); }

}  // namespace

PageTokenCodec::PageTokenCodec(std::string_view key)
    : key_(absl::StrCat("qai-page-token\x1f", ToAbsl(key))) {}

std::string PageTokenCodec::Mac(std::string_view scope, std::string_view cursor) const {
  const std::string message = absl::StrCat(scope.size(), ":", ToAbsl(scope), ToAbsl(cursor));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len);
  return std::string(reinterpret_cast<const char*>(mac), kMacBytes);
}

std::string PageTokenCodec::Encode(std::string_view scope, std::string_view cursor) const {
  return absl::WebSafeBase64Escape(absl::StrCat(Mac(scope, cursor), ToAbsl(cursor)));
}

absl::StatusOr<std::string> PageTokenCodec::Decode(std::string_view token,
                                                   std::string_view scope) const {
  std::string raw;
  // Only the canonical spelling is accepted: base64 decoders ignore a last character's
  // unused bits, so without this check a changed character could still decode.
  if (token.size() > 4096 || !absl::WebSafeBase64Unescape(ToAbsl(token), &raw) ||
      raw.size() < kMacBytes || absl::WebSafeBase64Escape(raw) != ToAbsl(token)) {
    return BadToken();
  }
  std::string cursor = raw.substr(kMacBytes);
  const std::string expected = Mac(scope, cursor);
  if (CRYPTO_memcmp(expected.data(), raw.data(), kMacBytes) != 0) return BadToken();
  return cursor;
}

absl::StatusOr<int> NormalizePageSize(int page_size) {
  if (page_size < 0) return InvalidField("page_size", "must not be negative");
  if (page_size == 0) return 20;
  return page_size > 100 ? 100 : page_size;
}

std::string EncodePosition(const PageTokenCodec& codec, std::string_view scope,
                           const KeysetPosition& position) {
  return codec.Encode(scope, absl::StrCat(position.micros, "/", position.id));
}

absl::StatusOr<std::optional<KeysetPosition>> DecodePosition(const PageTokenCodec& codec,
                                                             std::string_view token,
                                                             std::string_view scope) {
  if (token.empty()) return std::optional<KeysetPosition>();
  QAI_ASSIGN_OR_RETURN(std::string cursor, codec.Decode(token, scope));
  std::pair<std::string, std::string> parts = absl::StrSplit(cursor, absl::MaxSplits('/', 1));
  KeysetPosition position{.id = parts.second};
  if (!absl::SimpleAtoi(parts.first, &position.micros) || !IsUuid(position.id)) {
    return InvalidField("page_token", "is not a token this list returned");
  }
  return std::optional<KeysetPosition>(std::move(position));
}

}  // namespace qai::common
