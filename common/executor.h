#pragma once
// Executor: a fixed set of threads working through a bounded queue.
//
// gRPC's callback threads must not block; handlers hand their blocking database work to an
// Executor sized like the database pool. A full queue refuses new work at once (the caller
// answers RESOURCE_EXHAUSTED) instead of letting memory grow with the load.
//
//   Executor executor("db", 16, 1024);
//   if (!executor.TrySubmit([] { ... })) { ... overloaded ... }

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace qai::common {

class Executor {
 public:
  Executor(std::string name, int threads, size_t max_queue);
  // The destructor finishes queued work, then joins the threads.
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // TrySubmit: queues fn; false when the queue is full or the executor is shutting down.
  [[nodiscard]] bool TrySubmit(std::function<void()> fn);
  // Shutdown: refuses new work, finishes what is queued, joins. Idempotent.
  void Shutdown();
  // QueuedForTest: the work waiting for a thread now.
  size_t QueuedForTest() const;

 private:
  void Work();

  const std::string name_;
  const size_t max_queue_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Written by the constructor and Shutdown only, which the owner calls from one thread.
  std::vector<std::thread> threads_;
};

}  // namespace qai::common
