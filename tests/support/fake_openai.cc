#include "tests/support/fake_openai.h"

#include <httplib.h>

#include <cstdio>
#include <cstdlib>

#include "absl/time/clock.h"

namespace qai::testing {
namespace {

using nlohmann::json;

json UsageJson(FakeOpenAi::Usage u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

std::string Event(const json& chunk) { return "data: " + chunk.dump() + "\n\n"; }

json Chunk(json choices) {
  return {{"id", "chatcmpl-fake"},
          {"object", "chat.completion.chunk"},
          {"model", "fake"},
          {"choices", std::move(choices)}};
}

json Delta(json delta, json finish_reason = nullptr) {
  return Chunk(json::array(
      {{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", std::move(finish_reason)}}}));
}

}  // namespace

FakeOpenAi::Reply FakeOpenAi::Json(const std::string& text, const std::vector<ToolCall>& calls,
                                   Usage usage) {
  json message = {{"role", "assistant"},
                  {"content", text.empty() && !calls.empty() ? json(nullptr) : json(text)}};
  if (!calls.empty()) {
    message["tool_calls"] = json::array();
    for (const ToolCall& c : calls) {
      message["tool_calls"].push_back(
          {{"id", c.id},
           {"type", "function"},
           {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
  }
  json body = {
      {"id", "chatcmpl-fake"},
      {"object", "chat.completion"},
      {"model", "fake"},
      {"choices", json::array({{{"index", 0},
                                {"message", std::move(message)},
                                {"finish_reason", calls.empty() ? "stop" : "tool_calls"}}})},
      {"usage", UsageJson(usage)}};
  return Reply{.body = body.dump()};
}

FakeOpenAi::Reply FakeOpenAi::Streamed(const std::vector<std::string>& pieces,
                                       const std::vector<ToolCall>& calls, Usage usage) {
  Reply r{.content_type = "text/event-stream"};
  r.chunks.push_back(Event(Delta({{"role", "assistant"}, {"content", ""}})));
  for (const std::string& piece : pieces) r.chunks.push_back(Event(Delta({{"content", piece}})));
  for (size_t i = 0; i < calls.size(); ++i) {
    const ToolCall& c = calls[i];
    const int index = static_cast<int>(i);
    r.chunks.push_back(Event(Delta(
        {{"tool_calls", json::array({{{"index", index},
                                      {"id", c.id},
                                      {"type", "function"},
                                      {"function", {{"name", c.name}, {"arguments", ""}}}}})}})));
    const size_t half = c.arguments.size() / 2;
    for (const std::string& part : {c.arguments.substr(0, half), c.arguments.substr(half)}) {
      r.chunks.push_back(
          Event(Delta({{"tool_calls",
                        json::array({{{"index", index}, {"function", {{"arguments", part}}}}})}})));
    }
  }
  r.chunks.push_back(Event(Delta(json::object(), calls.empty() ? "stop" : "tool_calls")));
  json usage_chunk = Chunk(json::array());
  usage_chunk["usage"] = UsageJson(usage);
  r.chunks.push_back(Event(usage_chunk));
  r.chunks.push_back("data: [DONE]\n\n");
  return r;
}

FakeOpenAi::Reply FakeOpenAi::Error(int status, const std::string& message,
                                    std::optional<std::string> retry_after) {
  Reply r{.status = status};
  r.body =
      json({{"error", {{"message", message}, {"type", "fake_error"}, {"code", nullptr}}}}).dump();
  if (retry_after) r.headers["Retry-After"] = *retry_after;
  return r;
}

FakeOpenAi::Reply FakeOpenAi::Raw(int status, std::string body, std::string content_type) {
  return Reply{.status = status, .content_type = std::move(content_type), .body = std::move(body)};
}

FakeOpenAi::FakeOpenAi() : server_(std::make_unique<httplib::Server>()) {
  server_->Post("/v1/chat/completions",
                [this](const httplib::Request& req, httplib::Response& res) {
                  Request seen{.path = req.path, .body = req.body, .time = absl::Now()};
                  for (const auto& [name, value] : req.headers) seen.headers[name] = value;
                  seen.json = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
                  Reply reply = Next(seen);
                  if (!SleepUnlessStopping(reply.delay)) {
                    res.status = 503;
                    return;
                  }
                  res.status = reply.status;
                  for (const auto& [name, value] : reply.headers) res.set_header(name, value);
                  if (reply.chunks.empty()) {
                    res.set_content(reply.body, reply.content_type);
                    return;
                  }
                  auto r = std::make_shared<Reply>(std::move(reply));
                  // httplib tells the provider how many bytes went out, not how many chunks: the
                  // position is kept here. It calls the provider until done(); false drops the
                  // connection.
                  auto position = std::make_shared<size_t>(0);
                  res.set_chunked_content_provider(
                      r->content_type, [this, r, position](size_t, httplib::DataSink& sink) {
                        if (r->drop_after && *position >= *r->drop_after) return false;
                        if (*position >= r->chunks.size()) {
                          sink.done();
                          return true;
                        }
                        if (*position > 0 && !SleepUnlessStopping(r->chunk_delay)) return false;
                        const std::string& chunk = r->chunks[(*position)++];
                        return sink.write(chunk.data(), chunk.size());
                      });
                });
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) {
    std::fprintf(stderr, "FakeOpenAi: cannot listen on 127.0.0.1\n");
    std::abort();
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

FakeOpenAi::~FakeOpenAi() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  server_->stop();
  thread_.join();
}

std::string FakeOpenAi::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

void FakeOpenAi::Push(Reply reply) {
  std::lock_guard lock(mu_);
  script_.push_back(std::move(reply));
}

void FakeOpenAi::SetFallback(std::function<Reply(const Request&)> fallback) {
  std::lock_guard lock(mu_);
  fallback_ = std::move(fallback);
}

std::vector<FakeOpenAi::Request> FakeOpenAi::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

size_t FakeOpenAi::calls() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

FakeOpenAi::Reply FakeOpenAi::Next(const Request& request) {
  std::function<Reply(const Request&)> fallback;
  {
    std::lock_guard lock(mu_);
    requests_.push_back(request);
    if (!script_.empty()) {
      Reply r = std::move(script_.front());
      script_.pop_front();
      return r;
    }
    fallback = fallback_;
  }
  if (fallback) return fallback(request);
  return Error(500, "the fake endpoint's script ran out");
}

bool FakeOpenAi::SleepUnlessStopping(absl::Duration d) {
  std::unique_lock lock(mu_);
  return !stop_cv_.wait_for(lock, absl::ToChronoNanoseconds(d), [this] { return stopping_; });
}

}  // namespace qai::testing
