#include "common/executor.h"

namespace qai::common {

Executor::Executor(std::string name, int threads, size_t max_queue)
    : name_(std::move(name)), max_queue_(max_queue) {
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

Executor::~Executor() { Shutdown(); }

bool Executor::TrySubmit(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || queue_.size() >= max_queue_) return false;
    queue_.push_back(std::move(fn));
  }
  cv_.Signal();
  return true;
}

void Executor::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.SignalAll();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  absl::MutexLock lock(&mu_);
  threads_.clear();
}

size_t Executor::QueuedForTest() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void Executor::Work() {
  for (;;) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait(&mu_);
      if (queue_.empty()) return;
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

}  // namespace qai::common
