#pragma once
// Authentication: who is calling a QAI service.
//
// End users send `authorization: Bearer <JWT>` (common/jwt_verifier.h); services calling each other
// send `x-api-key: <key>`, of which the server knows only SHA-256 digests, each under the name of
// the service that holds the key ("orchestrator=<digest>"), so a call says which service made it
// and each internal RPC can name the services that may call it (common/rpc.h, ServiceCallers). A
// server builds one Authenticator at start-up and asks it about each call; exemptions (health
// checks) and authorization (who may touch what) are the caller's business.
//
//   absl::StatusOr<qai::common::Authenticator> auth =
//       qai::common::Authenticator::Create(verifier, {"orchestrator=" + Sha256Hex(key)});
//   if (!auth.ok()) { ... configuration error, exit ... }
//   absl::StatusOr<qai::common::Principal> who =
//       qai::common::AuthenticateCall(*auth, context->client_metadata());
//   if (!who.ok()) { ... finish with UNAUTHENTICATED ... }

#include <grpcpp/support/string_ref.h>

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/jwt_verifier.h"

namespace qai::common {

// Role: what kind of caller a principal is. kService is reserved for api-key callers, so a
// user token can never claim it.
enum class Role { kUser, kAdmin, kService };

// Principal: an authenticated caller. `id` is the JWT subject for users and admins, and
// "service:<name>" for services, `service` then being the name its key was given.
struct Principal {
  std::string id;
  Role role;
  std::string service = "";
};

// RoleName: the upper-case name used in logs and protos: "USER", "ADMIN" or "SERVICE".
[[nodiscard]] std::string_view RoleName(Role role);

// Sha256Hex: lowercase hex SHA-256 of `data`; how operators derive QAI_SERVICE_KEY_SHA256
// entries from keys. Sha256Digest: the same 32 bytes, raw (content-addressed storage).
[[nodiscard]] std::string Sha256Hex(std::string_view data);
[[nodiscard]] std::string Sha256Digest(std::string_view data);

// Authenticator: decides who is calling from the `authorization` and `x-api-key` headers.
// Immutable after Create and cheap to share between threads.
class Authenticator {
 public:
  // Create: validates the configuration. A null `tokens` means bearer tokens are refused.
  // Each `service_key_sha256` entry is `<service>=<digest>`: the name of the service holding
  // the key (lower-case letters, digits and '-', at most 32; a name may have several keys, for
  // rotation) and its 64-digit hex SHA-256 digest (either case, surrounding whitespace ignored,
  // empty entries skipped so a split of an empty variable is fine); anything else, a digest
  // without a name included, is INVALID_ARGUMENT naming QAI_SERVICE_KEY_SHA256, so a typo fails
  // at start-up rather than locking every service out, and no key is anonymous.
  [[nodiscard]] static absl::StatusOr<Authenticator> Create(
      std::shared_ptr<const JwtVerifier> tokens, std::vector<std::string> service_key_sha256);

  // Authenticate: `authorization` and `api_key` are the header values when present. An api key,
  // when present, decides alone: its digest is compared with every accepted digest in constant
  // time, giving a kService principal of the name the digest was given. Otherwise a "Bearer <jwt>"
  // value (scheme in any case) is verified at `now`, giving kAdmin when `roles` contains "admin"
  // and kUser otherwise. No credentials, or bad ones, give UNAUTHENTICATED with a message that
  // never repeats them.
  [[nodiscard]] absl::StatusOr<Principal> Authenticate(
      std::optional<std::string_view> authorization, std::optional<std::string_view> api_key,
      absl::Time now) const;

 private:
  using Digest = std::array<unsigned char, 32>;
  struct ServiceKey {
    Digest digest;
    std::string service;
  };

  class TokenCache;

  Authenticator(std::shared_ptr<const JwtVerifier> tokens, std::vector<ServiceKey> service_keys);

  absl::StatusOr<Principal> AuthenticateApiKey(std::string_view api_key) const;
  absl::StatusOr<Principal> AuthenticateBearer(std::string_view authorization,
                                               absl::Time now) const;

  std::shared_ptr<const JwtVerifier> tokens_;
  std::vector<ServiceKey> service_keys_;
  // Tokens already verified: a client sends the same token on every call, and checking its
  // signature and parsing its JSON each time costs more than the rest of a cheap RPC.
  std::shared_ptr<TokenCache> verified_;
};

// AuthenticateCall: Authenticate over a gRPC server call's metadata at absl::Now(). A header
// sent more than once is refused, since which copy a proxy or another check would read is
// unclear.
[[nodiscard]] absl::StatusOr<Principal> AuthenticateCall(
    const Authenticator& authenticator,
    const std::multimap<grpc::string_ref, grpc::string_ref>& client_metadata);

}  // namespace qai::common
