#include "common/metrics.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/text_serializer.h"

namespace qai::common {

// Scraped: what the exposer collects: the registry, after the scrape hooks have run.
class Metrics::Scraped : public prometheus::Collectable {
 public:
  explicit Scraped(Metrics* owner) : owner_(owner) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    owner_->RunScrapeHooks();
    return owner_->registry_->Collect();
  }

 private:
  Metrics* const owner_;
};

Metrics::Hook& Metrics::Hook::operator=(Hook&& other) noexcept {
  if (this != &other) {
    if (remove_) remove_();
    remove_ = std::move(other.remove_);
    other.remove_ = nullptr;
  }
  return *this;
}

Metrics::Hook::~Hook() {
  if (remove_) remove_();
}

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(const std::string& addr) {
  std::unique_ptr<Metrics> self(new Metrics());
  self->scraped_ = std::make_shared<Scraped>(self.get());
  if (addr.empty()) return self;
  try {
    self->exposer_ = std::make_unique<prometheus::Exposer>(addr, /*num_threads=*/1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", addr, ": ", e.what()));
  }
  const std::vector<int> ports = self->exposer_->GetListeningPorts();
  self->port_ = ports.empty() ? 0 : ports.front();
  self->exposer_->RegisterCollectable(self->scraped_);
  Log(LogLevel::kInfo, "metrics listening",
      {{"addr", addr}, {"port", self->port_}, {"path", "/metrics"}});
  return self;
}

Metrics::~Metrics() {
  exposer_.reset();  // no scrape runs from here on
  {
    absl::MutexLock lock(&periodic_mu_);
    stop_ = true;
  }
  periodic_cv_.SignalAll();
  if (periodic_thread_.joinable()) periodic_thread_.join();
}

Metrics::Hook Metrics::OnScrape(std::function<void()> update) {
  absl::MutexLock lock(&scrape_mu_);
  auto it = scrape_hooks_.insert(scrape_hooks_.end(), std::move(update));
  return Hook([this, it] {
    absl::MutexLock lock(&scrape_mu_);
    scrape_hooks_.erase(it);
  });
}

Metrics::Hook Metrics::Every(absl::Duration interval, std::function<void()> update) {
  if (!serving()) return Hook();
  absl::MutexLock lock(&periodic_mu_);
  auto it = periodic_.insert(periodic_.end(),
                             Periodic{interval, std::move(update), absl::InfinitePast()});
  if (!periodic_thread_.joinable()) periodic_thread_ = std::thread([this] { RunPeriodic(); });
  periodic_cv_.SignalAll();
  return Hook([this, it] {
    absl::MutexLock lock(&periodic_mu_);
    periodic_.erase(it);
  });
}

void Metrics::RunScrapeHooks() {
  absl::MutexLock lock(&scrape_mu_);
  for (const auto& update : scrape_hooks_) update();
}

void Metrics::RunPeriodic() {
  absl::MutexLock lock(&periodic_mu_);
  while (!stop_) {
    absl::Time next = absl::InfiniteFuture();
    for (Periodic& p : periodic_) {
      const absl::Time now = absl::Now();
      if (p.next <= now) {
        // Under the lock, so that a Hook being destroyed waits until its update is done.
        p.update();
        p.next = absl::Now() + p.interval;
      }
      next = std::min(next, p.next);
    }
    if (next == absl::InfiniteFuture()) {
      periodic_cv_.Wait(&periodic_mu_);
    } else {
      periodic_cv_.WaitWithDeadline(&periodic_mu_, next);
    }
  }
}

std::string Metrics::Render() {
  return prometheus::TextSerializer().Serialize(scraped_->Collect());
}

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return buckets;
}

}  // namespace qai::common
