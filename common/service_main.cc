#include "common/service_main.h"

#include <cstdio>

#include "absl/synchronization/mutex.h"
#include "common/jwt_options.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "prometheus/gauge.h"

namespace qai::common {
namespace {

// ExportPoolGauges: the pool's counts, read at each scrape (a lock and four integers).
Metrics::Hook ExportPoolGauges(Metrics& metrics, DbPool& db) {
  auto& family = prometheus::BuildGauge()
                     .Name("qai_db_pool_connections")
                     .Help("Open database pool connections, lent out (in_use) or not (idle).")
                     .Register(metrics.registry());
  prometheus::Gauge& in_use = family.Add({{"state", "in_use"}});
  prometheus::Gauge& idle = family.Add({{"state", "idle"}});
  prometheus::Gauge& size = prometheus::BuildGauge()
                                .Name("qai_db_pool_size")
                                .Help("The most connections the database pool opens.")
                                .Register(metrics.registry())
                                .Add({});
  prometheus::Gauge& waiting = prometheus::BuildGauge()
                                   .Name("qai_db_pool_waiting")
                                   .Help("Callers waiting for a database connection.")
                                   .Register(metrics.registry())
                                   .Add({});
  return metrics.OnScrape([&db, &size, &in_use, &idle, &waiting] {
    const DbPool::Stats stats = db.stats();
    size.Set(stats.size);
    in_use.Set(stats.in_use);
    idle.Set(stats.open - stats.in_use);
    waiting.Set(stats.waiting);
  });
}

}  // namespace

std::vector<Option> ServiceOptions(std::vector<Option> extra,
                                   std::string_view default_listen_addr) {
  std::vector<Option> options = {
      {.name = "database-url",
       .help = "libpq connection string or URI",
       .secret = true,
       .required = true},
      {.name = "listen-addr",
       .default_value = std::string(default_listen_addr),
       .help = "gRPC listen address (port 0 picks one)",
       .validate = IsHostPort},
      {.name = "metrics-addr",
       .help = "Prometheus /metrics address (port 0 picks one; empty = off)",
       .validate = [](std::string_view v) -> std::string {
         return v.empty() ? "" : IsHostPort(v);
       }},
      {.name = "api-key", .help = "this service's key for calls to the others", .secret = true},
      {.name = "service-key-sha256",
       .help = "the accepted service keys: comma-separated <service>=<SHA-256 hex digest> entries"},
      {.name = "log-level",
       .default_value = "info",
       .help = "debug, info, warn or error",
       .validate = [](std::string_view v) -> std::string {
         return v == "debug" || v == "info" || v == "warn" || v == "error"
                    ? ""
                    : "must be debug, info, warn or error";
       }},
      {.name = "db-pool-size",
       .default_value = "16",
       .help = "database connections (and handler threads)",
       .validate = IsIntIn(1, 256)},
      {.name = "max-queued-calls",
       .default_value = "4096",
       .help = "calls waiting for a handler thread before RESOURCE_EXHAUSTED",
       .validate = IsIntIn(1, 1000000)},
      {.name = "drain-timeout",
       .default_value = "10s",
       .help = "how long in-flight calls may finish at shutdown",
       .validate = IsDuration},
      {.name = "outbox-max-backoff",
       .default_value = "60s",
       .help = "longest wait between an outbox row's delivery attempts",
       .validate = IsDuration},
      {.name = "outbox-prune-after",
       .default_value = "24h",
       .help = "delivered outbox rows are deleted this long after delivery",
       .validate = IsDuration},
      {.name = "outbox-stale-after",
       .default_value = "5m",
       .help = "an outbox row undelivered this long turns the `outbox` health check NOT_SERVING",
       .validate = IsDuration},
  };
  for (Option& o : JwtOptions()) options.push_back(std::move(o));
  // Limits (docs/operations.md, "Limits").
  options.push_back({.name = "rate-limit",
                     .default_value = "20",
                     .help = "calls per second each user may make on this replica (a token bucket "
                             "per principal; 0 = no limit)",
                     .validate = IsIntIn(0, 1000000)});
  options.push_back(
      {.name = "rate-burst",
       .default_value = "40",
       .help = "calls a user may make at once before rate-limit applies (the bucket's size)",
       .validate = IsIntIn(1, 1000000)});
  for (Option& o : GrpcLimitsOptions()) options.push_back(std::move(o));
  for (Option& o : extra) options.push_back(std::move(o));
  return options;
}

Option PageTokenKeyOption() {
  return {.name = "page-token-key",
          .help =
              "HMAC key of page tokens: at least 32 bytes, the same on every replica, not the JWT "
              "secret",
          .secret = true,
          .required = true,
          .validate = [](std::string_view v) -> std::string {
            return v.size() >= 32 ? "" : "must be at least 32 bytes (say, openssl rand -hex 32)";
          }};
}

absl::StatusOr<PageTokenCodec> PageTokensFrom(const Config& config) {
  const std::string& key = config.Get("page-token-key");
  absl::StatusOr<std::vector<HmacKey>> jwt_keys = ParseHmacKeys(config.Get("jwt-secret"));
  bool shared = key == config.Get("jwt-secret");
  for (const HmacKey& jwt_key : jwt_keys.value_or(std::vector<HmacKey>{}))
    shared = shared || key == jwt_key.secret;
  if (shared) {
    return absl::InvalidArgumentError(
        "QAI_PAGE_TOKEN_KEY must not be QAI_JWT_SECRET: page tokens have a key of their own");
  }
  return PageTokenCodec(key);
}

absl::StatusOr<std::unique_ptr<ServiceBase>> ServiceBase::Init(std::string service, int argc,
                                                               const char* const* argv,
                                                               std::vector<Option> extra,
                                                               std::string_view default_listen_addr,
                                                               UserTokens users) {
  // Debian's abseil is built with mutex deadlock detection on, a debugging aid that costs every
  // lock gRPC takes a graph update.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  QAI_ASSIGN_OR_RETURN(
      Config config,
      Config::Parse(ServiceOptions(std::move(extra), default_listen_addr), argc, argv));
  std::unique_ptr<ServiceBase> base(new ServiceBase(std::move(config)));
  const Config& c = base->config_;
  InitLogging(service, ParseLogLevel(c.Get("log-level")));
  Log(LogLevel::kInfo, "starting", {{"config", c.Describe()}});
  QAI_ASSIGN_OR_RETURN(std::unique_ptr<Metrics> metrics, Metrics::Create(c.Get("metrics-addr")));
  base->metrics_ = std::move(metrics);

  QAI_ASSIGN_OR_RETURN(std::shared_ptr<const JwtVerifier> tokens,
                       JwtVerifierFrom(c, users == UserTokens::kRequired));
  QAI_ASSIGN_OR_RETURN(Authenticator auth,
                       Authenticator::Create(std::move(tokens), c.GetList("service-key-sha256")));
  base->auth_ = std::make_unique<Authenticator>(std::move(auth));

  const int pool_size = static_cast<int>(c.GetInt("db-pool-size"));
  absl::StatusOr<std::unique_ptr<DbPool>> db =
      DbPool::Create({.url = c.Get("database-url"), .size = pool_size});
  if (!db.ok()) return db.status();
  base->db_ = std::move(*db);
  base->limiter_ = std::make_unique<RateLimiter>(
      RateLimitOptions{.rate = static_cast<double>(c.GetInt("rate-limit")),
                       .burst = static_cast<double>(c.GetInt("rate-burst"))});
  base->auth_failures_ = std::make_unique<RateLimiter>(kAuthFailures);
  base->grpc_limits_ = GrpcLimitsFrom(c);
  base->pool_gauges_ = ExportPoolGauges(*base->metrics_, *base->db_);
  base->executor_ = std::make_unique<Executor>("handlers", pool_size,
                                               static_cast<size_t>(c.GetInt("max-queued-calls")));
  return base;
}

int ExitCodeFor(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kNotFound) {  // --help
    std::fprintf(stdout, "%s", std::string(status.message()).c_str());
    return 0;
  }
  Log(LogLevel::kError, "cannot start", {{"error", std::string(status.message())}});
  return 2;
}

}  // namespace qai::common
