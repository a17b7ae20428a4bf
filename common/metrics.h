#pragma once
// Metrics: a service's Prometheus registry, and the HTTP server that exposes it on /metrics.
//
// Every service has one (ServiceBase::metrics()). With an address (QAI_METRICS_ADDR,
// host:port; port 0 picks a free one, logged as `metrics listening`) it serves the registry in
// Prometheus' text format; with none the registry still exists, so code updates its
// instruments unconditionally, but nothing is served and nothing is sampled periodically.
//
// Instruments are prometheus-cpp's: a component builds its families on the registry once and
// keeps references to the labelled metrics it updates. Labels take values from fixed sets
// only (methods of registered services, status codes, outbox tables, run states, providers),
// never from requests, so the series stay bounded.
//
//   auto metrics = Metrics::Create("0.0.0.0:9090");
//   prometheus::Counter& calls = prometheus::BuildCounter().Name("qai_calls_total")
//       .Help("...").Register((*metrics)->registry()).Add({});
//   Metrics::Hook hook = (*metrics)->OnScrape([&] { in_use.Set(pool.stats().in_use); });

#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}

namespace qai::common {

class Metrics {
 public:
  // Hook: a registered callback; it is removed when the Hook is destroyed (and a call in
  // progress has finished by then), so a hook never outlives what it reads. The Metrics must
  // outlive its hooks.
  class Hook {
   public:
    Hook() = default;
    Hook(Hook&& other) noexcept : remove_(std::move(other.remove_)) { other.remove_ = nullptr; }
    Hook& operator=(Hook&& other) noexcept;
    ~Hook();

   private:
    friend class Metrics;
    explicit Hook(std::function<void()> remove) : remove_(std::move(remove)) {}
    std::function<void()> remove_;
  };

  // Create: a registry; with a non-empty `addr` also the /metrics server listening on it
  // (UNAVAILABLE when it cannot listen there).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Metrics>> Create(const std::string& addr);
  ~Metrics();

  prometheus::Registry& registry() { return *registry_; }
  // serving: whether /metrics is served (an address was given).
  bool serving() const { return exposer_ != nullptr; }
  // port: the port /metrics is served on (0 when not serving).
  int port() const { return port_; }

  // OnScrape: `update` runs before every scrape, to copy a cheap in-memory figure (a pool's
  // counts, a hub's subscribers) into its gauges. It must not block.
  [[nodiscard]] Hook OnScrape(std::function<void()> update);
  // Every: `update` runs every `interval` on the metrics thread (and once at once), for
  // figures that cost a query: a scrape never waits for the database, and a busy scraper
  // never adds load. Only while serving; otherwise nothing runs.
  [[nodiscard]] Hook Every(absl::Duration interval, std::function<void()> update);

  // For tests only:
  // Render: the registry in Prometheus' text format, as a scrape would see it.
  std::string Render();

 private:
  struct Periodic {
    absl::Duration interval;
    std::function<void()> update;
    absl::Time next;
  };
  class Scraped;

  Metrics() = default;
  void RunScrapeHooks() ABSL_LOCKS_EXCLUDED(scrape_mu_);
  void RunPeriodic() ABSL_LOCKS_EXCLUDED(periodic_mu_);

  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::shared_ptr<Scraped> scraped_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;

  absl::Mutex scrape_mu_;  // held while the scrape hooks run, so removal waits for them
  std::list<std::function<void()>> scrape_hooks_ ABSL_GUARDED_BY(scrape_mu_);

  absl::Mutex periodic_mu_;  // held while a periodic update runs
  absl::CondVar periodic_cv_;
  std::list<Periodic> periodic_ ABSL_GUARDED_BY(periodic_mu_);
  bool stop_ ABSL_GUARDED_BY(periodic_mu_) = false;
  std::thread periodic_thread_ ABSL_GUARDED_BY(periodic_mu_);
};

// LatencyBuckets: the histogram buckets (seconds) of QAI's latencies, 0.5 ms to 60 s.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();

}  // namespace qai::common
