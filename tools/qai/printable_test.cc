// What `qai` prints of other people's text drives no terminal.

#include "tools/qai/printable.h"

#include <gtest/gtest.h>

#include "tools/qai/messages_commands.h"
#include "tools/qai/projects_commands.h"

namespace qai::cli {
namespace {

bool HasControl(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if ((u < 0x20 && text[i] != '\n') || u == 0x7f) return true;
    if (u == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0)
      return true;
  }
  return false;
}

TEST(PrintableTest, EscapesBecomeQuestionMarks) {
  EXPECT_EQ(Printable("a\x1b[2Jb\x07"
                      "c\xc2\x9b"
                      "d",
                      false),
            "a?[2Jb?c?d");
  EXPECT_EQ(Printable("one\ntwo\r\n\tthree", true), "one\ntwo\n three");
  EXPECT_EQ(Printable("one\ntwo", false), "one two");
  EXPECT_EQ(Printable("caf\xc3\xa9 \xe2\x9c\x93", false), "caf\xc3\xa9 \xe2\x9c\x93")
      << "other UTF-8 stays";
}

TEST(PrintableTest, ProjectsAndMessagesAsPrintedCarryNoControlCharacters) {
  projects::v1::Project project;
  project.set_id("p1");
  project.set_name("brave-otter");
  project.set_display_name("\x1b]0;owned\x07\x1b[31mred");
  project.set_owner("mallory\x1b[8m");
  EXPECT_FALSE(HasControl(FormatProject(project))) << FormatProject(project);
  EXPECT_FALSE(HasControl(FormatProjectRow(project))) << FormatProjectRow(project);
  EXPECT_NE(FormatProjectRow(project).find("?]0;owned??[31mred"), std::string::npos)
      << FormatProjectRow(project);

  messages::v1::Message message;
  message.set_content("hello\n\x1b[2J\x1b[Hcleared");
  message.mutable_fragment()->set_title(
      "\xc2\x9b"
      "title \x1b[5m");
  (*message.mutable_fragment()->mutable_files())["a\x1b.html"] = "x";
  const std::string printed = FormatMessage(message);
  EXPECT_FALSE(HasControl(printed)) << printed;
  EXPECT_NE(printed.find("content: hello\n  ?[2J?[Hcleared"), std::string::npos) << printed;
}

}  // namespace
}  // namespace qai::cli
