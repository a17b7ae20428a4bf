#include "common/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace qai::common {
namespace {

constexpr absl::string_view kMissingCredentials =
    "missing credentials: send authorization: Bearer <token> or x-api-key";

bool IsHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::array<unsigned char, 32> Sha256(std::string_view data) {
  std::array<unsigned char, 32> digest{};
  unsigned int length = 0;
  // EVP_Digest only fails on allocation failure; a zero digest then simply matches nothing
  // real, which is the safe direction.
  EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

std::string ToHex(const std::array<unsigned char, 32>& digest) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

// Looks up a header that must appear at most once.
absl::StatusOr<std::optional<std::string_view>> SingleHeader(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata, std::string_view name) {
  auto [first, last] = metadata.equal_range(grpc::string_ref(name.data(), name.size()));
  if (first == last) return std::optional<std::string_view>();
  if (std::next(first) != last) {
    return absl::UnauthenticatedError(absl::StrCat("duplicate ", ToAbsl(name), " header"));
  }
  return std::optional<std::string_view>(
      std::string_view(first->second.data(), first->second.size()));
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kUser:
      return "USER";
    case Role::kAdmin:
      return "ADMIN";
    case Role::kService:
      return "SERVICE";
  }
  return "UNKNOWN";
}

std::string Sha256Hex(std::string_view data) { return ToHex(Sha256(data)); }

std::string Sha256Digest(std::string_view data) {
  const std::array<unsigned char, 32> digest = Sha256(data);
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

// ValidServiceName: lower-case letters, digits and '-', starting with a letter, at most 32.
bool ValidServiceName(absl::string_view name) {
  if (name.empty() || name.size() > 32 || !absl::ascii_islower(static_cast<unsigned char>(name[0])))
    return false;
  for (char c : name) {
    if (!absl::ascii_islower(static_cast<unsigned char>(c)) &&
        !absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '-') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<Authenticator> Authenticator::Create(std::shared_ptr<const JwtVerifier> tokens,
                                                    std::vector<std::string> service_key_sha256) {
  std::vector<ServiceKey> keys;
  for (size_t i = 0; i < service_key_sha256.size(); ++i) {
    absl::string_view entry = absl::StripAsciiWhitespace(service_key_sha256[i]);
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    absl::string_view name =
        eq == absl::string_view::npos ? "" : absl::StripAsciiWhitespace(entry.substr(0, eq));
    absl::string_view hex =
        eq == absl::string_view::npos ? entry : absl::StripAsciiWhitespace(entry.substr(eq + 1));
    if (!ValidServiceName(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "QAI_SERVICE_KEY_SHA256 entry ", i + 1,
          " must be <service>=<digest>, the service's name in lower-case letters, digits and '-'"));
    }
    if (hex.size() != 64 || !IsHex(hex)) {
      return absl::InvalidArgumentError(absl::StrCat("QAI_SERVICE_KEY_SHA256 entry ", i + 1,
                                                     " is not a 64-digit hex SHA-256 digest"));
    }
    std::string bytes = absl::HexStringToBytes(hex);
    ServiceKey key{.service = std::string(name)};
    std::copy(bytes.begin(), bytes.end(), key.digest.begin());
    for (const ServiceKey& other : keys) {
      if (other.digest == key.digest && other.service != key.service) {
        return absl::InvalidArgumentError(absl::StrCat("QAI_SERVICE_KEY_SHA256 entry ", i + 1,
                                                       " gives the key of ", other.service, " to ",
                                                       key.service, " too"));
      }
    }
    keys.push_back(std::move(key));
  }
  return Authenticator(std::move(tokens), std::move(keys));
}

// TokenCache: verified tokens and how long they stay valid. Bounded: when full it starts over,
// which costs a re-verification per token and nothing else.
class Authenticator::TokenCache {
 public:
  static constexpr size_t kMaxEntries = 10000;
  struct Entry {
    Principal principal;
    absl::Time valid_from;
    absl::Time valid_until;
    // The verifier's keys when the token was verified: a key withdrawn since is not trusted.
    uint64_t keys_version;
  };

  std::optional<Principal> Find(absl::string_view token, absl::Time now, uint64_t keys_version) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(token);
    if (it == entries_.end() || now < it->second.valid_from || now >= it->second.valid_until ||
        it->second.keys_version != keys_version) {
      return std::nullopt;
    }
    return it->second.principal;
  }
  void Put(absl::string_view token, Entry entry) {
    absl::MutexLock lock(&mu_);
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_.insert_or_assign(std::string(token), std::move(entry));
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

Authenticator::Authenticator(std::shared_ptr<const JwtVerifier> tokens,
                             std::vector<ServiceKey> service_keys)
    : tokens_(std::move(tokens)),
      service_keys_(std::move(service_keys)),
      verified_(std::make_shared<TokenCache>()) {}

absl::StatusOr<Principal> Authenticator::Authenticate(std::optional<std::string_view> authorization,
                                                      std::optional<std::string_view> api_key,
                                                      absl::Time now) const {
  if (api_key.has_value()) return AuthenticateApiKey(*api_key);
  if (authorization.has_value()) return AuthenticateBearer(*authorization, now);
  return absl::UnauthenticatedError(kMissingCredentials);
}

absl::StatusOr<Principal> Authenticator::AuthenticateApiKey(std::string_view api_key) const {
  if (api_key.empty()) return absl::UnauthenticatedError("invalid api key");
  Digest presented = Sha256(api_key);
  // Every digest is compared, and the match is selected without branching, so timing does not
  // reveal which (or whether an early) entry matched.
  size_t matched = 0;
  unsigned char found = 0;
  for (size_t i = 0; i < service_keys_.size(); ++i) {
    const unsigned char equal = static_cast<unsigned char>(
        CRYPTO_memcmp(presented.data(), service_keys_[i].digest.data(), presented.size()) == 0);
    matched |= i & (size_t{0} - equal);
    found |= equal;
  }
  if (!found) return absl::UnauthenticatedError("invalid api key");
  const std::string& service = service_keys_[matched].service;
  return Principal{
      .id = absl::StrCat("service:", service), .role = Role::kService, .service = service};
}

absl::StatusOr<Principal> Authenticator::AuthenticateBearer(std::string_view authorization,
                                                            absl::Time now) const {
  constexpr absl::string_view kScheme = "bearer";
  absl::string_view value = absl::StripAsciiWhitespace(ToAbsl(authorization));
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme) ||
      !absl::ascii_isspace(static_cast<unsigned char>(value[kScheme.size()]))) {
    return absl::UnauthenticatedError("unsupported authorization scheme: expected Bearer <token>");
  }
  if (tokens_ == nullptr) {
    return absl::UnauthenticatedError("bearer tokens are not accepted by this server");
  }
  absl::string_view token = absl::StripLeadingAsciiWhitespace(value.substr(kScheme.size()));
  const uint64_t keys_version = tokens_->keys_version();
  if (std::optional<Principal> known = verified_->Find(token, now, keys_version))
    return *std::move(known);
  QAI_ASSIGN_OR_RETURN(JwtClaims claims, tokens_->Verify(ToStd(token), now));

  Role role = Role::kUser;
  for (const std::string& name : claims.roles) {
    if (name == "admin") role = Role::kAdmin;
  }
  Principal principal{.id = std::move(claims.subject), .role = role};
  // The window Verify applies: from nbf (or iat) - leeway until exp + leeway.
  const absl::Duration leeway = tokens_->policy().leeway;
  absl::Time from = claims.not_before ? *claims.not_before : absl::InfinitePast();
  from = std::max(from, claims.issued_at);
  verified_->Put(token, {principal, from == absl::InfinitePast() ? from : from - leeway,
                         claims.expires + leeway, keys_version});
  return principal;
}

absl::StatusOr<Principal> AuthenticateCall(
    const Authenticator& authenticator,
    const std::multimap<grpc::string_ref, grpc::string_ref>& client_metadata) {
  QAI_ASSIGN_OR_RETURN(std::optional<std::string_view> authorization,
                       SingleHeader(client_metadata, "authorization"));
  QAI_ASSIGN_OR_RETURN(std::optional<std::string_view> api_key,
                       SingleHeader(client_metadata, "x-api-key"));
  return authenticator.Authenticate(authorization, api_key, absl::Now());
}

}  // namespace qai::common
