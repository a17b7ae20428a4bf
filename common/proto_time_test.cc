#include "common/proto_time.h"

#include <gtest/gtest.h>

namespace qai::common {
namespace {

TEST(ProtoTimeTest, TimestampsKeepMicroseconds) {
  google::protobuf::Timestamp ts;
  SetTimestamp(absl::FromUnixMicros(1795331533123456), &ts);
  EXPECT_EQ(ts.seconds(), 1795331533);
  EXPECT_EQ(ts.nanos(), 123456000);
  SetTimestamp(absl::FromUnixMicros(-1), &ts);  // before 1970: nanos stay positive
  EXPECT_EQ(ts.seconds(), -1);
  EXPECT_EQ(ts.nanos(), 999999000);
}

TEST(ProtoTimeTest, DurationsShareTheSign) {
  google::protobuf::Duration d;
  SetDuration(absl::Milliseconds(1500), &d);
  EXPECT_EQ(d.seconds(), 1);
  EXPECT_EQ(d.nanos(), 500000000);
  SetDuration(absl::Milliseconds(-1500), &d);
  EXPECT_EQ(d.seconds(), -1);
  EXPECT_EQ(d.nanos(), -500000000);
}

}  // namespace
}  // namespace qai::common
