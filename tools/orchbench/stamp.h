#pragma once
// Stamps: the text of the events qai-orchbench appends itself, which carry their own number and
// the steady-clock instant they were sent, so a watcher in the same process can tell how long
// each took to reach it without a second clock.
//
//   std::string text = StampText(17, SteadyNanos());     // "qai-orchbench 17 123456789"
//   std::optional<Stamp> stamp = ParseStamp(text);        // {17, 123456789}

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qai::orchbench {

// SteadyNanos: now on the process's steady clock, in nanoseconds.
int64_t SteadyNanos();

struct Stamp {
  int64_t index = 0;
  int64_t sent_ns = 0;
};

// StampText: the model_output text of probe event `index` sent at `sent_ns`.
std::string StampText(int64_t index, int64_t sent_ns);

// ParseStamp: the stamp in a StampText, or nullopt for any other text.
std::optional<Stamp> ParseStamp(std::string_view text);

}  // namespace qai::orchbench
