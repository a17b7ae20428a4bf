#include "common/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <thread>

namespace qai::common {
namespace {

using namespace std::chrono_literals;

TEST(ExecutorTest, RunsEverythingSubmitted) {
  std::atomic<int> ran{0};
  {
    Executor executor("test", 4, 1000);
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(executor.TrySubmit([&] { ran.fetch_add(1); }));
    executor.Shutdown();
    EXPECT_EQ(ran.load(), 500);
  }
  EXPECT_EQ(ran.load(), 500);
}

TEST(ExecutorTest, UsesSeveralThreads) {
  Executor executor("test", 3, 10);
  std::latch all_running(3);
  std::atomic<int> done{0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(executor.TrySubmit([&] {
      all_running.arrive_and_wait();  // deadlocks unless three threads run at once
      done.fetch_add(1);
    }));
  }
  executor.Shutdown();
  EXPECT_EQ(done.load(), 3);
}

TEST(ExecutorTest, DestructorFinishesQueuedWork) {
  std::atomic<int> ran{0};
  {
    Executor executor("test", 1, 100);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(executor.TrySubmit([&] {
        std::this_thread::sleep_for(100us);
        ran.fetch_add(1);
      }));
    }
  }
  EXPECT_EQ(ran.load(), 50);
}

TEST(ExecutorTest, TrySubmitRefusesWhenQueueFull) {
  constexpr size_t kMaxQueue = 3;
  Executor executor("test", 1, kMaxQueue);
  std::latch started(1);
  std::latch release(1);
  std::atomic<int> ran{0};
  ASSERT_TRUE(executor.TrySubmit([&] {
    started.count_down();
    release.wait();
    ran.fetch_add(1);
  }));
  started.wait();  // the single worker is busy; the queue is empty
  EXPECT_EQ(executor.QueuedForTest(), 0u);
  for (size_t i = 0; i < kMaxQueue; ++i) {
    EXPECT_TRUE(executor.TrySubmit([&] { ran.fetch_add(1); })) << i;
  }
  EXPECT_EQ(executor.QueuedForTest(), kMaxQueue);
  EXPECT_FALSE(executor.TrySubmit([&] { ran.fetch_add(100); }));
  EXPECT_FALSE(executor.TrySubmit([&] { ran.fetch_add(100); }));
  EXPECT_EQ(executor.QueuedForTest(), kMaxQueue);
  release.count_down();
  executor.Shutdown();
  EXPECT_EQ(ran.load(), 1 + static_cast<int>(kMaxQueue));
}

TEST(ExecutorTest, SpaceFreesUpAfterWorkIsTaken) {
  Executor executor("test", 1, 1);
  std::latch started(1);
  std::latch release(1);
  ASSERT_TRUE(executor.TrySubmit([&] {
    started.count_down();
    release.wait();
  }));
  started.wait();
  ASSERT_TRUE(executor.TrySubmit([] {}));
  EXPECT_FALSE(executor.TrySubmit([] {}));
  release.count_down();
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (executor.QueuedForTest() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(executor.TrySubmit([] {}));
}

TEST(ExecutorTest, ShutdownFinishesQueuedWorkThenRefuses) {
  Executor executor("test", 1, 100);
  std::latch started(1);
  std::latch release(1);
  std::atomic<int> ran{0};
  ASSERT_TRUE(executor.TrySubmit([&] {
    started.count_down();
    release.wait();
  }));
  started.wait();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(executor.TrySubmit([&] { ran.fetch_add(1); }));

  auto shutdown = std::async(std::launch::async, [&] { executor.Shutdown(); });
  // Once shutdown has begun (the worker is still blocked), new work is refused.
  int accepted_late = 0;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (executor.TrySubmit([&] { ran.fetch_add(1); })) {
    ++accepted_late;  // submitted before Shutdown took the lock; must still run
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "Shutdown never started refusing";
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(shutdown.wait_for(50ms), std::future_status::timeout)
      << "Shutdown must wait for queued work";
  release.count_down();
  ASSERT_EQ(shutdown.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(ran.load(), 5 + accepted_late);
  EXPECT_EQ(executor.QueuedForTest(), 0u);
  EXPECT_FALSE(executor.TrySubmit([&] { ran.fetch_add(1); }));
  executor.Shutdown();  // idempotent
  EXPECT_EQ(ran.load(), 5 + accepted_late);
}

}  // namespace
}  // namespace qai::common
