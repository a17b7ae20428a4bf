#include "tools/orchbench/latency.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tools/orchbench/stamp.h"

namespace qai::orchbench {
namespace {

// HasIndex: whether a stream received the event stamped `index`.
bool HasIndex(const std::vector<EventStream::Received>& got, int64_t index) {
  for (auto it = got.rbegin(); it != got.rend(); ++it) {
    std::optional<Stamp> stamp = ParseStamp(it->text);
    if (stamp && stamp->index >= index) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<LatencyResult> MeasureLatency(ProbeRun& probe,
                                             const std::vector<EventStream*>& streams,
                                             const LatencyOptions& options) {
  LatencyResult result;
  // Warm-up: one event at a time until every stream has one, which proves each is subscribed
  // (a replica that has just started may still be connecting its listener), then the rest.
  int64_t index = 0;
  const absl::Time until = absl::Now() + options.wait;
  for (;; ++index) {
    if (absl::StatusOr<ProbeRun::Sent> s = probe.Append(index); !s.ok()) return s.status();
    bool all = true;
    for (EventStream* stream : streams) {
      all = all && stream->WaitUntil([&](const auto& got) { return HasIndex(got, index); },
                                     absl::Milliseconds(500));
    }
    if (all) break;
    if (absl::Now() > until)
      return absl::DeadlineExceededError("a stream did not receive the warm-up events");
  }
  for (int i = 1; i < options.warmup; ++i) {
    if (absl::StatusOr<ProbeRun::Sent> s = probe.Append(++index); !s.ok()) return s.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const int64_t first = index + 1;

  std::vector<ProbeRun::Sent> sent(static_cast<size_t>(options.events));
  const int64_t period_ns = static_cast<int64_t>(1e9 / options.rate);
  const int64_t start_ns = SteadyNanos();
  for (int i = 0; i < options.events; ++i) {
    const int64_t due = start_ns + i * period_ns;
    if (const int64_t wait = due - SteadyNanos(); wait > 0)
      std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
    QAI_ASSIGN_OR_RETURN(ProbeRun::Sent s, probe.Append(first + i));
    sent[static_cast<size_t>(i)] = s;
  }
  result.seconds = static_cast<double>(sent.back().committed_ns - sent.front().sent_ns) / 1e9;
  std::vector<int64_t> append;
  for (const ProbeRun::Sent& s : sent) append.push_back(s.committed_ns - s.sent_ns);
  result.append = chainbench::Summarize(std::move(append));

  const int64_t last = first + options.events - 1;
  for (EventStream* stream : streams) {
    (void)stream->WaitUntil([&](const auto& got) { return HasIndex(got, last); }, options.wait);
    std::vector<int64_t> from_commit, from_send;
    std::vector<bool> seen(sent.size(), false);
    for (const EventStream::Received& r : stream->received()) {
      std::optional<Stamp> stamp = ParseStamp(r.text);
      if (!stamp || stamp->index < first || stamp->index > last) continue;
      const size_t i = static_cast<size_t>(stamp->index - first);
      if (seen[i]) continue;
      seen[i] = true;
      from_commit.push_back(r.arrival_ns - sent[i].committed_ns);
      from_send.push_back(r.arrival_ns - stamp->sent_ns);
    }
    StreamLatency s;
    s.missing = static_cast<int>(std::count(seen.begin(), seen.end(), false));
    s.from_commit = chainbench::Summarize(std::move(from_commit));
    s.from_send = chainbench::Summarize(std::move(from_send));
    result.streams.push_back(s);
  }
  return result;
}

}  // namespace qai::orchbench
