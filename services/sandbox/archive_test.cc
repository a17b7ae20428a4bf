// ArchiveWriter: what it writes is unpacked by Debian's own unzip and tar (not by libarchive),
// byte for byte, whatever slices the contents came in; the same files make the same bytes; and
// contents that do not match their announced sizes are refused.

#include "services/sandbox/archive.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "tests/support/unpack.h"

namespace qai::sandbox {
namespace {

using Files = std::map<std::string, std::string>;

std::map<std::string, std::string> SampleFiles() {
  std::mt19937 random(7);
  std::string noise(3 << 20, '\0');
  for (char& c : noise) c = static_cast<char>(random());
  return {{"index.html", "<h1>Bakery</h1>\n"},
          {"assets/logo.bin", noise},
          {"empty.txt", ""},
          {"src/components/Café menu.tsx", "export const Menu = () => null;\n"}};
}

// Archive: the files under `folder/`, each written in slices of `slice` bytes, with the
// output taken after every call.
std::string Archive(ArchiveFormat format, const std::map<std::string, std::string>& files,
                    size_t slice) {
  auto writer = ArchiveWriter::Create(format);
  EXPECT_TRUE(writer.ok()) << writer.status();
  std::string out;
  const absl::Time mtime = absl::FromUnixSeconds(1765000000);
  for (const auto& [path, content] : files) {
    EXPECT_TRUE((*writer)->BeginFile("site-v3/" + path, content.size(), mtime).ok());
    for (size_t at = 0; at < content.size(); at += slice) {
      EXPECT_TRUE((*writer)->Write(std::string_view(content).substr(at, slice)).ok());
      out += (*writer)->TakeOutput();
    }
  }
  EXPECT_TRUE((*writer)->Close().ok());
  return out + (*writer)->TakeOutput();
}

std::map<std::string, std::string> UnderFolder(const std::map<std::string, std::string>& files) {
  std::map<std::string, std::string> out;
  for (const auto& [path, content] : files) out["site-v3/" + path] = content;
  return out;
}

TEST(ArchiveWriterTest, UnzipUnpacksEveryFileByteForByte) {
  const auto files = SampleFiles();
  const std::string zip = Archive(ArchiveFormat::kZip, files, 64 << 10);
  EXPECT_EQ(zip.substr(0, 4), std::string("PK\3\4", 4));
  EXPECT_EQ(testing::Unpack(zip, ".zip").value_or(Files()), UnderFolder(files));
}

TEST(ArchiveWriterTest, TarUnpacksEveryFileByteForByte) {
  const auto files = SampleFiles();
  const std::string tgz = Archive(ArchiveFormat::kTarGz, files, 1000);
  EXPECT_EQ(tgz.substr(0, 2), "\x1f\x8b");
  EXPECT_EQ(testing::Unpack(tgz, ".tar.gz").value_or(Files()), UnderFolder(files));
}

TEST(ArchiveWriterTest, TheSameFilesMakeTheSameBytesWhateverTheSlices) {
  const auto files = SampleFiles();
  for (ArchiveFormat f : {ArchiveFormat::kZip, ArchiveFormat::kTarGz}) {
    EXPECT_EQ(Archive(f, files, 4096), Archive(f, files, 1 << 20)) << ArchiveExtension(f);
  }
}

TEST(ArchiveWriterTest, ContentMustMatchItsAnnouncedSize) {
  auto writer = ArchiveWriter::Create(ArchiveFormat::kZip);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->BeginFile("a.txt", 3, absl::UnixEpoch()).ok());
  EXPECT_FALSE((*writer)->Write("four").ok()) << "more than announced";
  ASSERT_TRUE((*writer)->Write("ab").ok());
  EXPECT_FALSE((*writer)->BeginFile("b.txt", 1, absl::UnixEpoch()).ok()) << "a.txt is short";
  EXPECT_FALSE((*writer)->Close().ok());
}

TEST(ArchiveWriterTest, FormatsAreNamedByTheirExtensions) {
  EXPECT_EQ(ArchiveFormatOfName("site-v3.zip"), ArchiveFormat::kZip);
  EXPECT_EQ(ArchiveFormatOfName("site-v3.tar.gz"), ArchiveFormat::kTarGz);
  EXPECT_EQ(ArchiveFormatOfName(".zip"), std::nullopt);
  EXPECT_EQ(ArchiveFormatOfName("site-v3.tar"), std::nullopt);
  EXPECT_EQ(ArchiveContentType(ArchiveFormat::kZip), "application/zip");
}

}  // namespace
}  // namespace qai::sandbox
