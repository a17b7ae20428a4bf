#include "services/projects/slug.h"

#include <gtest/gtest.h>

#include <set>

namespace qai::projects {
namespace {

TEST(SlugTest, HasAdjectiveAnimalHexShape) {
  absl::BitGen rng;
  for (int i = 0; i < 200; ++i) {
    const std::string slug = GenerateSlug(rng);
    EXPECT_TRUE(IsSlug(slug)) << slug;
    EXPECT_LE(slug.size(), 30u);
  }
}

TEST(SlugTest, VariesAcrossCalls) {
  absl::BitGen rng;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(GenerateSlug(rng));
  EXPECT_GT(seen.size(), 990u);
}

TEST(SlugTest, RejectsOtherShapes) {
  EXPECT_FALSE(IsSlug("brave-otter"));
  EXPECT_FALSE(IsSlug("brave-otter-4F2A"));
  EXPECT_FALSE(IsSlug("brave-otter-4f2"));
  EXPECT_FALSE(IsSlug("purple-otter-4f2a"));
  EXPECT_FALSE(IsSlug(""));
  EXPECT_TRUE(IsSlug("brave-otter-4f2a"));
}

}  // namespace
}  // namespace qai::projects
