#include "common/database_url.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <regex>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace qai::common {
namespace {

// Secrets that a connection string may carry: the password of a URI's user info and any
// `password=` parameter, both as written and percent-decoded.
std::vector<std::string> SecretsOf(std::string_view url) {
  std::vector<std::string> secrets;
  std::string text(url);
  static const std::regex kUserInfo(R"(^[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?]*:([^@/?]*)@)");
  static const std::regex kPasswordParam(R"(password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+))",
                                         std::regex::icase);
  std::smatch match;
  if (std::regex_search(text, match, kUserInfo)) secrets.push_back(match[1].str());
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kPasswordParam);
       it != std::sregex_iterator(); ++it) {
    std::string value = (*it)[1].str();
    secrets.push_back(value);
    if (value.size() >= 2 && value.front() == '\'')
      secrets.push_back(value.substr(1, value.size() - 2));
  }
  std::vector<std::string> decoded;
  for (const std::string& secret : secrets) {
    std::string plain;
    for (size_t i = 0; i < secret.size(); ++i) {
      if (secret[i] == '%' && i + 2 < secret.size() + 0 && isxdigit(secret[i + 1]) &&
          isxdigit(secret[i + 2])) {
        plain.push_back(static_cast<char>(std::stoi(secret.substr(i + 1, 2), nullptr, 16)));
        i += 2;
      } else {
        plain.push_back(secret[i]);
      }
    }
    if (plain != secret) decoded.push_back(plain);
  }
  secrets.insert(secrets.end(), decoded.begin(), decoded.end());
  secrets.erase(std::remove(secrets.begin(), secrets.end(), std::string()), secrets.end());
  // Longest first, so that a secret containing another is replaced whole.
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return secrets;
}

}  // namespace

std::string RedactSecrets(std::string message, std::string_view url) {
  for (const std::string& secret : SecretsOf(url)) {
    message = absl::StrReplaceAll(message, {{secret, "***"}});
  }
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

absl::StatusOr<std::string> ConnectString(std::string_view database_url) {
  std::string url(database_url);
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
      PQconninfoParse(url.c_str(), &error), &PQconninfoFree);
  if (options == nullptr) {
    std::string message = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    return absl::InvalidArgumentError(
        absl::StrCat("bad database URL: ", RedactSecrets(message, database_url)));
  }
  // Defaults that bound how long a dead or unreachable server can hold a caller: a connect
  // attempt, and an established connection whose peer vanished without closing it. The URL's
  // own values win.
  static constexpr std::pair<const char*, const char*> kDefaults[] = {
      {"connect_timeout", "5"},      {"keepalives", "1"},       {"keepalives_idle", "30"},
      {"keepalives_interval", "10"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "30000"},
  };
  for (PQconninfoOption* option = options.get(); option->keyword != nullptr; ++option) {
    for (const auto& [keyword, value] : kDefaults) {
      if (option->val == nullptr && std::string_view(option->keyword) == keyword)
        option->val = strdup(value);
    }
  }
  std::string result;
  for (PQconninfoOption* option = options.get(); option->keyword != nullptr; ++option) {
    if (option->val == nullptr) continue;
    std::string value = option->val;
    if (std::any_of(value.begin(), value.end(), [](unsigned char c) { return std::isspace(c); })) {
      return absl::InvalidArgumentError(absl::StrCat(
          "database URL: the value of \"", option->keyword,
          "\" contains whitespace, which the database library (SOCI 4.0) cannot pass on"));
    }
    absl::StrAppend(&result, result.empty() ? "" : " ", option->keyword, "='",
                    absl::StrReplaceAll(value, {{"\\", "\\\\"}, {"'", "\\'"}}), "'");
  }
  return result;
}

}  // namespace qai::common
