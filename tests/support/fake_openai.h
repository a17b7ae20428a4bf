#pragma once
// FakeOpenAi: a scripted OpenAI-compatible chat-completions endpoint on 127.0.0.1, for tests of
// the `openai` model provider, in-process or as the endpoint of a real qai-orchestrator.
//
//   FakeOpenAi fake;                                   // listening on a free port
//   fake.Push(FakeOpenAi::Error(500, "overloaded"));   // the first request gets a 500
//   fake.Push(FakeOpenAi::Streamed({"Hel", "lo"}, {{"call_1", "terminal",
//   R"({"command":"ls"})"}})); OpenAiModel model({.base_url = fake.base_url(), .model = "fake"});
//   ... fake.requests() holds every request it got, in order ...
//
// Each POST /v1/chat/completions takes the next reply of the script; when the script is empty,
// the fallback (SetFallback) answers, or else a 500 saying the script ran out. Replies can be
// whole JSON answers, server-sent-event streams (optionally cut short, or paced), error
// statuses with Retry-After, anything raw (bad JSON), and slow (a delay before the answer).

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace httplib {
class Server;
}

namespace qai::testing {

class FakeOpenAi {
 public:
  struct ToolCall {
    std::string id;
    std::string name;
    std::string arguments;
  };
  struct Usage {
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
  };

  // Reply: one scripted answer.
  struct Reply {
    int status = 200;
    std::string content_type = "application/json";
    std::map<std::string, std::string> headers;
    // The body: sent whole when `chunks` is empty, else each chunk as it is, one at a time.
    std::string body;
    std::vector<std::string> chunks;
    absl::Duration delay;        // before the answer starts (a slow server)
    absl::Duration chunk_delay;  // between chunks (a server that streams as it thinks)
    // Stop after this many chunks by dropping the connection (a stream cut short).
    std::optional<size_t> drop_after;
  };

  // Json: a whole chat.completion answer.
  static Reply Json(const std::string& text, const std::vector<ToolCall>& calls = {},
                    Usage usage = {10, 5});
  // Streamed: the same answer as a stream: a role chunk, one chunk per text piece, each tool call
  // in three chunks (id and name, then its arguments in two halves), a finish chunk, a usage
  // chunk and [DONE].
  static Reply Streamed(const std::vector<std::string>& pieces,
                        const std::vector<ToolCall>& calls = {}, Usage usage = {10, 5});
  // Error: an error status with an OpenAI-shaped error body and, when given, Retry-After.
  static Reply Error(int status, const std::string& message,
                     std::optional<std::string> retry_after = std::nullopt);
  // Raw: any status and body (e.g. a 200 that is not JSON).
  static Reply Raw(int status, std::string body, std::string content_type = "application/json");

  // Request: what the endpoint got.
  struct Request {
    std::string path;
    std::map<std::string, std::string> headers;  // names as sent
    std::string body;
    nlohmann::json json;  // the body parsed (discarded when it was not JSON)
    absl::Time time;
  };

  FakeOpenAi();   // listens at once; aborts the test binary if it cannot
  ~FakeOpenAi();  // stops, cutting short any delay in progress

  FakeOpenAi(const FakeOpenAi&) = delete;
  FakeOpenAi& operator=(const FakeOpenAi&) = delete;

  int port() const { return port_; }
  // base_url: http://127.0.0.1:<port>/v1, what QAI_OPENAI_BASE_URL would be.
  std::string base_url() const;

  void Push(Reply reply);
  // SetFallback: answers requests once the script is empty.
  void SetFallback(std::function<Reply(const Request&)> fallback);
  std::vector<Request> requests() const;
  size_t calls() const;

 private:
  Reply Next(const Request& request);
  // SleepUnlessStopping: false when the fake is stopping.
  bool SleepUnlessStopping(absl::Duration d);

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::deque<Reply> script_;
  std::function<Reply(const Request&)> fallback_;
  std::vector<Request> requests_;
};

}  // namespace qai::testing
