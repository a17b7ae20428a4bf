#include "services/projects/slug.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace qai::projects {
namespace {

constexpr std::array<const char*, 48> kAdjectives = {
    "brave",  "calm",   "clever", "cosmic", "crisp",  "daring", "eager",  "fancy",
    "fierce", "gentle", "glad",   "golden", "happy",  "humble", "jolly",  "keen",
    "kind",   "lively", "lucky",  "merry",  "mighty", "nimble", "noble",  "plucky",
    "polite", "proud",  "quick",  "quiet",  "rapid",  "rosy",   "shiny",  "silent",
    "silver", "sleek",  "smart",  "snowy",  "sunny",  "swift",  "tidy",   "vivid",
    "warm",   "wise",   "witty",  "zany",   "zesty",  "bold",   "bright", "cheerful"};
constexpr std::array<const char*, 48> kAnimals = {
    "otter",   "falcon", "panda",  "tiger",   "koala",    "lynx",  "heron",   "badger",
    "beaver",  "bison",  "camel",  "cobra",   "crane",    "dingo", "dolphin", "eagle",
    "ferret",  "gecko",  "gibbon", "hare",    "hedgehog", "ibis",  "jaguar",  "lemur",
    "llama",   "marmot", "moose",  "narwhal", "ocelot",   "orca",  "owl",     "parrot",
    "pelican", "puffin", "quokka", "raven",   "salmon",   "seal",  "sloth",   "swan",
    "tapir",   "toucan", "walrus", "whale",   "wombat",   "yak",   "zebra",   "fox"};

template <size_t N>
bool Contains(const std::array<const char*, N>& words, std::string_view w) {
  for (const char* candidate : words) {
    if (w == candidate) return true;
  }
  return false;
}

}  // namespace

std::string GenerateSlug(absl::BitGenRef rng) {
  return absl::StrFormat("%s-%s-%04x",
                         kAdjectives[absl::Uniform<size_t>(rng, 0, kAdjectives.size())],
                         kAnimals[absl::Uniform<size_t>(rng, 0, kAnimals.size())],
                         absl::Uniform<unsigned>(rng, 0, 0x10000));
}

bool IsSlug(std::string_view name) {
  auto first = name.find('-');
  auto last = name.rfind('-');
  if (first == std::string_view::npos || first == last) return false;
  std::string_view hex = name.substr(last + 1);
  if (hex.size() != 4) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return Contains(kAdjectives, name.substr(0, first)) &&
         Contains(kAnimals, name.substr(first + 1, last - first - 1));
}

}  // namespace qai::projects
