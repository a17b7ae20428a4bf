#include "services/sandbox/manifest.h"

#include <gtest/gtest.h>

#include "common/auth.h"

namespace qai::sandbox {
namespace {

using common::Sha256Digest;

TEST(ManifestTest, EntriesRoundTripInAboutFiftyBytesAFile) {
  const ManifestEntries entries = {{"index.html", Sha256Digest("<h1>Hi</h1>")},
                                   {"src/app.js", Sha256Digest("")},
                                   {"a b/ü.css", Sha256Digest("x")}};
  absl::StatusOr<std::string> stored = EncodeManifest(entries);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->size(), 10 + 10 + 10 + 3 * (1 + kHashBytes));
  absl::StatusOr<ManifestEntries> back = DecodeManifest(*stored);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, entries);
  EXPECT_TRUE(DecodeManifest("")->empty());
}

TEST(ManifestTest, WhatIsNotAManifestIsRefused) {
  absl::StatusOr<std::string> stored = EncodeManifest({{"a", Sha256Digest("a")}});
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(DecodeManifest(stored->substr(0, stored->size() - 1)).ok()) << "a hash cut short";
  EXPECT_FALSE(DecodeManifest("no terminator").ok());
  EXPECT_FALSE(EncodeManifest({{std::string("a\0b", 3), Sha256Digest("a")}}).ok());
  EXPECT_FALSE(EncodeManifest({{"a", "short"}}).ok());
}

TEST(ManifestTest, Sha256IsTheStandardOne) {
  // FIPS 180-2's "abc" example.
  const std::string hash = Sha256Digest("abc");
  ASSERT_EQ(hash.size(), kHashBytes);
  EXPECT_EQ(static_cast<unsigned char>(hash[0]), 0xba);
  EXPECT_EQ(static_cast<unsigned char>(hash[31]), 0xad);
}

}  // namespace
}  // namespace qai::sandbox
