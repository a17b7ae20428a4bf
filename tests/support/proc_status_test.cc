#include "tests/support/proc_status.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace qai::testing {
namespace {

constexpr char kStatus[] =
    "Name:\tqai-orchestrato\n"
    "VmPeak:\t  812344 kB\n"
    "VmHWM:\t   61232 kB\n"
    "VmRSS:\t   60876 kB\n"
    "Threads:\t23\n";

TEST(ProcStatusTest, ReadsKiBFields) {
  EXPECT_EQ(StatusKiB(kStatus, "VmRSS"), 60876);
  EXPECT_EQ(StatusKiB(kStatus, "VmHWM"), 61232);
  EXPECT_EQ(StatusKiB(kStatus, "VmSwap"), std::nullopt);
  EXPECT_EQ(StatusKiB(kStatus, "Threads"), std::nullopt) << "not a kB field";
  EXPECT_EQ(StatusKiB(kStatus, "VmRS"), std::nullopt) << "whole names only";
}

TEST(ProcStatusTest, ReadsALiveProcess) {
  absl::StatusOr<int64_t> rss = ProcessStatusKiB(getpid(), "VmRSS");
  ASSERT_TRUE(rss.ok()) << rss.status();
  EXPECT_GT(*rss, 0);
  EXPECT_EQ(ProcessStatusKiB(-1, "VmRSS").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace qai::testing
