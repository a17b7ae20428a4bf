#include "tests/support/scrape.h"

#include <httplib.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace qai::testing {
namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// ParseLine: one sample line of the text format (comments and blank lines give nullopt).
std::optional<Sample> ParseLine(std::string_view line) {
  if (line.empty() || line[0] == '#') return std::nullopt;
  Sample sample;
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  sample.name = std::string(line.substr(0, i));
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const size_t eq = line.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"')
        return std::nullopt;
      std::string key(line.substr(i, eq - i));
      std::string value;
      size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) ++j;
        value.push_back(line[j]);
      }
      sample.labels[key] = value;
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    ++i;  // '}'
  }
  while (i < line.size() && line[i] == ' ') ++i;
  const std::string value(line.substr(i, line.find(' ', i) - i));
  sample.value = std::strtod(value.c_str(), nullptr);
  return sample;
}

std::vector<Sample> Samples(std::string_view text, std::string_view name) {
  std::vector<Sample> samples;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    std::optional<Sample> sample = ParseLine(std::string_view(line.data(), line.size()));
    if (sample && sample->name == name) samples.push_back(*std::move(sample));
  }
  return samples;
}

}  // namespace

absl::StatusOr<std::string> ScrapeMetrics(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10, 0);
  httplib::Result result = client.Get("/metrics");
  if (!result)
    return absl::UnavailableError(
        absl::StrCat("scrape failed: ", httplib::to_string(result.error())));
  if (result->status != 200)
    return absl::UnavailableError(absl::StrCat("scrape answered ", result->status));
  return result->body;
}

std::optional<double> SampleValue(std::string_view text, std::string_view name,
                                  const std::map<std::string, std::string>& labels) {
  for (const Sample& sample : Samples(text, name)) {
    if (sample.labels == labels) return sample.value;
  }
  return std::nullopt;
}

std::vector<std::map<std::string, std::string>> SampleLabels(std::string_view text,
                                                             std::string_view name) {
  std::vector<std::map<std::string, std::string>> labels;
  for (Sample& sample : Samples(text, name)) labels.push_back(std::move(sample.labels));
  return labels;
}

}  // namespace qai::testing
