#pragma once
// Database URLs as SOCI 4.0 can use them, and error messages that do not leak them.
//
// QAI_DATABASE_URL may be a libpq URI (`postgresql://user:pw@host:5432/db?sslmode=require`) or
// a keyword/value string (`host=... dbname=...`). SOCI 4.0's PostgreSQL backend re-tokenises the
// string on whitespace and "=" before libpq sees it, which breaks URIs, so convert first:
//
//   absl::StatusOr<std::string> connect = qai::common::ConnectString(url);
//   if (!connect.ok()) return connect.status();
//   soci::session sql(soci::postgresql, *connect);

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace qai::common {

// ConnectString: `database_url` (URI or keyword/value) as a keyword/value string that
// survives SOCI's parsing, with defaults for connect_timeout, TCP keepalives and
// tcp_user_timeout where the URL sets none (so a vanished server fails calls within seconds).
// InvalidArgument, without the password, when libpq cannot parse it or a value contains
// whitespace (which SOCI 4.0 cannot pass on).
[[nodiscard]] absl::StatusOr<std::string> ConnectString(std::string_view database_url);

// RedactSecrets: `message` with every password found in `database_url` (URI user info or a
// `password` parameter, raw and percent-decoded) replaced by "***", trailing newlines removed.
std::string RedactSecrets(std::string message, std::string_view database_url);

}  // namespace qai::common
