#pragma once
// Peak: for the sandbox's tests, the highest value a count reached while the Peak lived,
// sampled every 2 ms on a thread of its own (how many processes a fork storm reached).
//
//   Peak peak([&] { return ProcessesOf(uid); });
//   ... run the command ...
//   EXPECT_LE(peak.Stop(), 32);

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace qai::sandbox {

class Peak {
 public:
  explicit Peak(std::function<int()> count)
      : thread_([this, count = std::move(count)] {
          while (!stop_) {
            peak_ = std::max(peak_.load(), count());
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
          }
        }) {}
  ~Peak() { Stop(); }
  // Stop: stops sampling; the peak.
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return peak_;
  }

 private:
  std::atomic<bool> stop_ = false;
  std::atomic<int> peak_ = 0;
  std::thread thread_;
};

}  // namespace qai::sandbox
