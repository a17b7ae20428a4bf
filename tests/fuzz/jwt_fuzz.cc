// Fuzzes what a bearer token's sender controls, through JwtVerifier::Verify: the first byte picks
// the path, the rest is the input.
//   0: the bytes are the whole token. Nobody without the key can mint a good token, so a token
//      the fuzzer made is never accepted (a trap if it is).
//   1: the bytes are the claims (the JSON payload) of a token signed with the verifier's key, so
//      the claims reader sees anything a key holder's tooling could put there.
//   2: the bytes are a token's header, with a payload and signature that would otherwise pass.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/base64url.h"
#include "common/jwt_signature.h"
#include "common/jwt_verifier.h"

namespace {

using qai::common::Base64UrlEncode;
using qai::common::JwtVerifier;

const std::string kSecret(32, 'n');
const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

// A verifier of HS256 tokens under two keys, as during a rotation.
const JwtVerifier& Verifier() {
  static const auto* verifier = [] {
    auto created = JwtVerifier::Create(
        {{.kid = "old", .secret = std::string(32, 'o')}, {.kid = "new", .secret = kSecret}},
        {.issuer = "https://issuer.example", .audiences = {"qai"}});
    if (!created.ok()) __builtin_trap();
    return new std::shared_ptr<const JwtVerifier>(*std::move(created));
  }();
  return **verifier;
}

// Signed: a token of `header` and `payload` (both JSON text) signed with the verifier's key.
std::string Signed(std::string_view header, std::string_view payload) {
  const std::string input = absl::StrCat(Base64UrlEncode(header), ".", Base64UrlEncode(payload));
  return absl::StrCat(input, ".", Base64UrlEncode(qai::common::HmacSha256(kSecret, input)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      if (Verifier().Verify(input, kNow).ok()) __builtin_trap();
      break;
    case 1:
      (void)Verifier().Verify(Signed(R"({"alg":"HS256","kid":"new"})", input), kNow);
      break;
    default:
      (void)Verifier().Verify(
          Signed(
              input,
              R"({"sub":"u","exp":1700000600,"iat":1700000000,"iss":"https://issuer.example","aud":"qai"})"),
          kNow);
      break;
  }
  return 0;
}
