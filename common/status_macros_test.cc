#include "common/status_macros.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace qai::common {
namespace {

absl::Status Check(bool ok, int& calls) {
  ++calls;
  return ok ? absl::OkStatus() : absl::NotFoundError("gone");
}

absl::StatusOr<std::unique_ptr<std::string>> Load(bool ok, int& calls) {
  ++calls;
  if (!ok) return absl::UnavailableError("down");
  return std::make_unique<std::string>("value");
}

absl::StatusOr<int> Twice(bool check_ok, bool load_ok, int& calls) {
  QAI_RETURN_IF_ERROR(Check(check_ok, calls));
  QAI_RETURN_IF_ERROR(Load(true, calls));  // a StatusOr's status
  QAI_ASSIGN_OR_RETURN(std::unique_ptr<std::string> loaded, Load(load_ok, calls));
  int size = 0;
  QAI_ASSIGN_OR_RETURN(size, absl::StatusOr<int>(static_cast<int>(loaded->size())));
  return 2 * size;
}

TEST(StatusMacrosTest, TheFirstErrorIsReturnedAndEachExpressionRunsOnce) {
  int calls = 0;
  EXPECT_EQ(absl::NotFoundError("gone"), Twice(false, true, calls).status());
  EXPECT_EQ(1, calls);

  calls = 0;
  EXPECT_EQ(absl::UnavailableError("down"), Twice(true, false, calls).status());
  EXPECT_EQ(3, calls);

  calls = 0;
  absl::StatusOr<int> value = Twice(true, true, calls);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(10, *value);  // the move-only value was moved out, not copied
  EXPECT_EQ(3, calls);
}

}  // namespace
}  // namespace qai::common
