// A download's name: the project's display name as a file name, else its generated name, with
// the version; and its URL next to the preview.

#include "services/orchestrator/api/download_name.h"

#include <gtest/gtest.h>

namespace qai::orchestrator {
namespace {

TEST(DownloadNameTest, TheDisplayNameBecomesAFileName) {
  EXPECT_EQ(DownloadBaseName("Bakery Site!", "brave-otter-4f2a", 3), "bakery-site-v3");
  EXPECT_EQ(DownloadBaseName("  ../Café  über\"x\"; rm -rf /", "n", 1), "caf-ber-x-rm-rf-v1");
  EXPECT_EQ(DownloadBaseName("", "brave-otter-4f2a", 12), "brave-otter-4f2a-v12");
  EXPECT_EQ(DownloadBaseName("ÄÖÜ", "brave-otter-4f2a", 2), "brave-otter-4f2a-v2")
      << "nothing of the display name left";
  EXPECT_EQ(DownloadBaseName(std::string(500, 'a'), "n", 7), std::string(60, 'a') + "-v7");
  EXPECT_EQ(DownloadBaseName("", "", 1), "project-v1");
}

TEST(DownloadNameTest, TheUrlSitsNextToThePreview) {
  const std::string id = "0b7c9a54-2f43-4f0e-9c55-1b2f1a9e8d10";
  EXPECT_EQ(DownloadUrl("https://p.example/" + id + "/", id, "bakery-v3.zip"),
            "https://p.example/download/" + id + "/bakery-v3.zip");
  EXPECT_EQ(DownloadUrl("http://localhost:8080/base/" + id + "/", id, "a-v1.tar.gz"),
            "http://localhost:8080/base/download/" + id + "/a-v1.tar.gz");
  EXPECT_EQ(DownloadUrl("https://p.example/other/", id, "a.zip"), "");
  EXPECT_EQ(DownloadUrl("https://p.example//", "", "a.zip"), "");
}

}  // namespace
}  // namespace qai::orchestrator
