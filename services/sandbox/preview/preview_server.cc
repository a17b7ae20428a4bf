#include "services/sandbox/preview/preview_server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "services/sandbox/preview/preview_response.h"

namespace qai::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

// epoll data of the server's own descriptors; connections are numbered from kFirstConnection.
constexpr uint64_t kListener = 1;
constexpr uint64_t kWake = 2;
constexpr uint64_t kTimer = 3;
constexpr uint64_t kFirstConnection = 16;

constexpr int kListenBacklog = 512;
// Connections accepted per turn of the listener, so one thread does not accept while the
// others' requests wait.
constexpr int kAcceptBatch = 64;
constexpr size_t kReadChunk = 16 << 10;
// How often deadlines are checked; a deadline is kept to within this.
constexpr auto kSweepInterval = std::chrono::milliseconds(250);
// After a response that closes its connection: how long, and how many bytes, the rest of the
// request (a body never read) is read and dropped before the socket is closed. Closing with
// unread bytes makes the kernel send a reset, which can destroy the response in flight.
constexpr auto kDrainTime = std::chrono::seconds(2);
constexpr size_t kMaxDrainBytes = 1 << 20;

Clock::duration ToChrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

// Connection: one client connection. It is either parked in the epoll set (waiting for its
// socket, until `deadline`) or active on exactly one thread (EPOLLONESHOT hands it to one);
// `mu` guards that handover, and everything else is only touched by the active thread.
struct Connection {
  enum class State { kParked, kActive, kClosed };

  Connection(int fd_in, uint64_t id_in, Clock::time_point deadline_in)
      : fd(fd_in), id(id_in), deadline(deadline_in) {}

  const int fd;
  const uint64_t id;
  absl::Mutex mu;
  State state ABSL_GUARDED_BY(mu) = State::kParked;
  Clock::time_point deadline ABSL_GUARDED_BY(mu);

  std::string in;      // received, not yet answered
  size_t scanned = 0;  // in[0, scanned) holds no end of a head
  Clock::time_point head_started;
  PreviewResponse out;
  size_t out_sent = 0;  // of out.head then out.body
  bool has_output = false;
  bool draining = false;
  Clock::time_point drain_deadline;
  size_t drained = 0;
  int served = 0;
};

enum class Io { kDone, kBlocked, kFailed };

// FlushBuffered: writes what is left of the response's head and body, in one call where they
// fit.
Io FlushBuffered(Connection& c) {
  const std::string_view head = c.out.head;
  const std::string_view body = c.out.body;
  while (c.out_sent < head.size() + body.size()) {
    iovec iov[2];
    int count = 0;
    if (c.out_sent < head.size()) {
      iov[count++] = {const_cast<char*>(head.data() + c.out_sent), head.size() - c.out_sent};
      if (!body.empty()) iov[count++] = {const_cast<char*>(body.data()), body.size()};
    } else {
      const size_t offset = c.out_sent - head.size();
      iov[count++] = {const_cast<char*>(body.data() + offset), body.size() - offset};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    const ssize_t n = ::sendmsg(c.fd, &msg, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Io::kBlocked;
    } else {
      return Io::kFailed;
    }
  }
  return Io::kDone;
}

// Flush: writes what is left of the response, and of a streamed body the pieces that follow
// while the socket takes them.
Io Flush(Connection& c) {
  for (;;) {
    const Io io = FlushBuffered(c);
    if (io != Io::kDone) return io;
    bool failed = false;
    if (!NextPiece(c.out, &failed)) return failed ? Io::kFailed : Io::kDone;
    c.out_sent = 0;
  }
}

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(std::string_view addr) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("preview address \"", common::ToAbsl(addr), "\" is not host:port"));
  }
  std::string host(addr.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  const std::string_view port_text = addr.substr(colon + 1);
  int port = -1;
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(common::ToAbsl(port_text), &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("preview address \"", common::ToAbsl(addr), "\" has no valid port"));
  }
  return std::make_pair(std::move(host), port);
}

// Listen: a non-blocking listening socket on the first of host's addresses that binds.
absl::StatusOr<int> Listen(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("preview server: cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  int error = 0;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    // Not SO_REUSEPORT: a second server on a busy port must fail, not share its requests.
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, kListenBacklog) != 0) {
      error = errno;
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("preview server: cannot listen on ", host, ":", port,
                                               ": ", std::strerror(error)));
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return -1;
}

}  // namespace

struct PreviewServer::Impl {
  Impl(Loader loader, const PreviewServerOptions& o)
      : options(o),
        cache(std::move(loader), {.max_bytes = o.cache_bytes, .max_age = o.cache_max_age}) {}

  void Work();
  void Accept();
  void Sweep();
  // Drive: serves c on this thread until it waits in the epoll set again or is closed.
  void Drive(Connection& c);
  // SendResponse: writes c.out; then c waits for its next request, or, when the response
  // closes it, is to be drained here. False when c left this thread (parked or closed).
  bool SendResponse(Connection& c);
  // AwaitNextRequest: parks c, its response sent, for the request that follows.
  void AwaitNextRequest(Connection& c);
  // Drain: reads and drops what the client still sends, then closes c (see kDrainTime).
  void Drain(Connection& c);
  // ReadRequest: reads more of a request head; false when c left this thread instead.
  bool ReadRequest(Connection& c);
  // Answer: the response to a parsed (or refused) head, to be sent.
  void Answer(Connection& c, HeadParse parsed, const RequestHead& request);
  // HeadMayBeComplete: whether c.in is worth parsing (see the definition).
  bool HeadMayBeComplete(Connection& c) const;
  // ReadMore: appends what the socket has to c.in.
  Io ReadMore(Connection& c);
  bool Park(Connection& c, uint32_t events, Clock::time_point deadline);
  void Close(Connection& c);
  // ArmListenerLocked: lets the listener's next connection be accepted again.
  void ArmListenerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  const PreviewServerOptions options;
  PreviewCache cache;
  int listen_fd = -1;
  int epoll_fd = -1;
  int wake_fd = -1;
  int timer_fd = -1;
  std::atomic<bool> stopping{false};
  std::vector<std::thread> threads;

  absl::Mutex mu;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Connection>> connections ABSL_GUARDED_BY(mu);
  uint64_t next_id ABSL_GUARDED_BY(mu) = kFirstConnection;
  uint64_t accepted ABSL_GUARDED_BY(mu) = 0;
  // False while max_connections are open (or accept() failed for want of descriptors): the
  // listener is not re-armed, and new connections wait in the kernel's backlog.
  bool listener_armed ABSL_GUARDED_BY(mu) = true;
};

void PreviewServer::Impl::Work() {
  epoll_event event{};
  while (!stopping.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(epoll_fd, &event, 1, 1000);
    if (n <= 0) continue;  // EINTR, or the timeout that rechecks `stopping`
    const uint64_t id = event.data.u64;
    if (id == kWake) break;
    if (id == kListener) {
      Accept();
      continue;
    }
    if (id == kTimer) {
      uint64_t expirations;
      (void)!::read(timer_fd, &expirations, sizeof(expirations));
      Sweep();
      epoll_event again{.events = EPOLLIN | EPOLLONESHOT, .data = {.u64 = kTimer}};
      ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, timer_fd, &again);
      continue;
    }
    std::shared_ptr<Connection> c;
    {
      absl::MutexLock lock(&mu);
      auto it = connections.find(id);
      if (it == connections.end()) continue;  // closed since the event was queued
      c = it->second;
    }
    {
      absl::MutexLock lock(&c->mu);
      if (c->state != Connection::State::kParked) continue;
      c->state = Connection::State::kActive;
    }
    Drive(*c);
  }
}

void PreviewServer::Impl::Accept() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    {
      absl::MutexLock lock(&mu);
      if (connections.size() >= options.max_connections) {
        listener_armed = false;  // Close() re-arms it
        return;
      }
    }
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      // Out of descriptors or memory: the sweep tries again in a moment.
      common::Log(common::LogLevel::kWarn, "preview server: accept failed",
                  {{"error", std::strerror(errno)}});
      absl::MutexLock lock(&mu);
      listener_armed = false;
      return;
    }
    // Responses go out in one write each, so Nagle's algorithm would only delay their last
    // segment.
    int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    std::shared_ptr<Connection> c;
    {
      absl::MutexLock lock(&mu);
      c = std::make_shared<Connection>(fd, next_id++,
                                       Clock::now() + ToChrono(options.read_timeout));
      ++accepted;
      connections.emplace(c->id, c);
    }
    epoll_event event{.events = EPOLLIN | EPOLLONESHOT, .data = {.u64 = c->id}};
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
      {
        absl::MutexLock lock(&c->mu);
        c->state = Connection::State::kActive;
      }
      Close(*c);
    }
  }
  absl::MutexLock lock(&mu);
  ArmListenerLocked();
}

void PreviewServer::Impl::ArmListenerLocked() {
  if (stopping.load() || connections.size() >= options.max_connections) {
    listener_armed = false;
    return;
  }
  listener_armed = true;
  epoll_event event{.events = EPOLLIN | EPOLLONESHOT, .data = {.u64 = kListener}};
  ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, listen_fd, &event);
}

void PreviewServer::Impl::Sweep() {
  std::vector<std::shared_ptr<Connection>> all;
  {
    absl::MutexLock lock(&mu);
    all.reserve(connections.size());
    for (const auto& [id, c] : connections) all.push_back(c);
    if (!listener_armed) ArmListenerLocked();
  }
  const Clock::time_point now = Clock::now();
  for (const std::shared_ptr<Connection>& c : all) {
    {
      absl::MutexLock lock(&c->mu);
      if (c->state != Connection::State::kParked || c->deadline > now) continue;
      c->state = Connection::State::kActive;  // taken from the epoll set, to be closed
    }
    Close(*c);
  }
}

bool PreviewServer::Impl::Park(Connection& c, uint32_t events, Clock::time_point deadline) {
  absl::MutexLock lock(&c.mu);
  c.state = Connection::State::kParked;
  c.deadline = deadline;
  epoll_event event{.events = events | EPOLLONESHOT, .data = {.u64 = c.id}};
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &event) == 0) return true;
  c.state = Connection::State::kActive;
  return false;
}

void PreviewServer::Impl::Close(Connection& c) {
  {
    absl::MutexLock lock(&c.mu);
    if (c.state == Connection::State::kClosed) return;
    c.state = Connection::State::kClosed;
  }
  {
    absl::MutexLock lock(&mu);
    connections.erase(c.id);
    if (!listener_armed) ArmListenerLocked();
  }
  // Last, so a client that sees the connection end no longer finds it counted. Closing also
  // takes it out of the epoll set.
  ::close(c.fd);
}

Io PreviewServer::Impl::ReadMore(Connection& c) {
  char buf[kReadChunk];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      if (c.in.empty()) c.head_started = Clock::now();
      c.in.append(buf, static_cast<size_t>(n));
      return Io::kDone;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Io::kBlocked;
    return Io::kFailed;  // the peer closed (n == 0), or an error
  }
}

bool PreviewServer::Impl::HeadMayBeComplete(Connection& c) const {
  // A head ends with an empty line, so "\n\n" or "\n\r\n" is in it; until one is, a head that
  // trickles in is not parsed again on every read. Past the request line's limit the parser
  // decides, since it refuses a head before its end.
  const size_t from = c.scanned > 2 ? c.scanned - 2 : 0;
  const bool end = c.in.find("\n\n", from) != std::string::npos ||
                   c.in.find("\n\r\n", from) != std::string::npos;
  c.scanned = c.in.size();
  return end || c.in.size() > options.head_limits.max_request_line;
}

void PreviewServer::Impl::Drive(Connection& c) {
  thread_local RequestHead request;
  for (;;) {
    if (c.has_output && !SendResponse(c)) return;
    if (c.draining) {
      Drain(c);
      return;
    }
    const HeadParse parsed = HeadMayBeComplete(c)
                                 ? ParseRequestHead(c.in, options.head_limits, request)
                                 : HeadParse::kIncomplete;
    if (parsed == HeadParse::kIncomplete) {
      if (!ReadRequest(c)) return;
      continue;
    }
    Answer(c, parsed, request);
  }
}

bool PreviewServer::Impl::SendResponse(Connection& c) {
  switch (Flush(c)) {
    case Io::kBlocked:
      if (!Park(c, EPOLLOUT, Clock::now() + ToChrono(options.write_timeout))) Close(c);
      return false;
    case Io::kFailed:
      Close(c);
      return false;
    case Io::kDone:
      break;
  }
  c.has_output = false;
  const bool close = c.out.close;
  c.out = PreviewResponse();  // drops the snapshot it held
  if (!close) {
    AwaitNextRequest(c);
    return false;
  }
  ::shutdown(c.fd, SHUT_WR);
  c.in.clear();
  c.draining = true;
  c.drain_deadline = Clock::now() + kDrainTime;
  return true;
}

void PreviewServer::Impl::AwaitNextRequest(Connection& c) {
  // One request per turn: the connection goes back to the end of the epoll queue. A client
  // that sends its next request as soon as it has an answer would otherwise keep this thread
  // to itself while the other connections wait (and checking for that next request now would
  // mostly cost a read that finds nothing). A pipelined request already read is picked up
  // through EPOLLOUT, which is ready at once.
  const bool pipelined = !c.in.empty();
  const Clock::time_point deadline = pipelined
                                         ? c.head_started + ToChrono(options.read_timeout)
                                         : Clock::now() + ToChrono(options.keep_alive_timeout);
  if (!Park(c, pipelined ? EPOLLIN | EPOLLOUT : EPOLLIN, deadline)) Close(c);
}

void PreviewServer::Impl::Drain(Connection& c) {
  for (;;) {
    c.in.clear();
    const Io io = ReadMore(c);
    if (io == Io::kDone) {
      c.drained += c.in.size();
      if (c.drained <= kMaxDrainBytes) continue;
    } else if (io == Io::kBlocked && Park(c, EPOLLIN, c.drain_deadline)) {
      return;
    }
    Close(c);
    return;
  }
}

bool PreviewServer::Impl::ReadRequest(Connection& c) {
  switch (ReadMore(c)) {
    case Io::kDone:
      return true;
    case Io::kBlocked: {
      // Between requests the idle timeout applies; within one, the time since its first byte.
      const Clock::time_point deadline = c.in.empty()
                                             ? Clock::now() + ToChrono(options.keep_alive_timeout)
                                             : c.head_started + ToChrono(options.read_timeout);
      if (!Park(c, EPOLLIN, deadline)) Close(c);
      return false;
    }
    case Io::kFailed:
      break;
  }
  Close(c);
  return false;
}

void PreviewServer::Impl::Answer(Connection& c, HeadParse parsed, const RequestHead& request) {
  if (parsed == HeadParse::kComplete) {
    const bool may_keep_alive =
        ++c.served < options.keep_alive_requests && !stopping.load(std::memory_order_relaxed);
    c.out = RespondToRequest(cache, request, may_keep_alive,
                             options.downloads ? &options.downloads : nullptr);
    c.in.erase(0, request.length);
    c.scanned = 0;
    if (!c.in.empty()) c.head_started = Clock::now();  // a pipelined request
  } else {
    c.out = RespondToRefusedHead(parsed);
  }
  c.out_sent = 0;
  c.has_output = true;
}

absl::StatusOr<std::unique_ptr<PreviewServer>> PreviewServer::Start(const std::string& listen_addr,
                                                                    Loader loader,
                                                                    PreviewServerOptions options) {
  QAI_ASSIGN_OR_RETURN(auto addr, SplitHostPort(listen_addr));
  if (!loader) return absl::InvalidArgumentError("preview server: no loader");
  if (options.threads < 1 || options.max_connections < 1 || options.keep_alive_requests < 1) {
    return absl::InvalidArgumentError(
        "preview server: threads, max_connections and keep_alive_requests must be >= 1");
  }

  std::unique_ptr<PreviewServer> preview(new PreviewServer());
  preview->impl_ = std::make_unique<Impl>(std::move(loader), options);
  Impl& impl = *preview->impl_;
  QAI_ASSIGN_OR_RETURN(int listen_fd, Listen(addr.first, addr.second));
  impl.listen_fd = listen_fd;
  impl.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  impl.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  impl.timer_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  const auto fail = [&](std::string_view what) {
    const int error = errno;
    for (int fd : {impl.listen_fd, impl.epoll_fd, impl.wake_fd, impl.timer_fd}) {
      if (fd >= 0) ::close(fd);
    }
    impl.listen_fd = impl.epoll_fd = impl.wake_fd = impl.timer_fd = -1;
    return absl::InternalError(
        absl::StrCat("preview server: ", common::ToAbsl(what), ": ", std::strerror(error)));
  };
  if (impl.epoll_fd < 0 || impl.wake_fd < 0 || impl.timer_fd < 0)
    return fail("cannot create its descriptors");
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(kSweepInterval).count();
  itimerspec every{.it_interval = {.tv_sec = 0, .tv_nsec = nanos},
                   .it_value = {.tv_sec = 0, .tv_nsec = nanos}};
  // The wake descriptor stays readable once written, so it wakes every thread in turn.
  epoll_event wake{.events = EPOLLIN, .data = {.u64 = kWake}};
  epoll_event timer{.events = EPOLLIN | EPOLLONESHOT, .data = {.u64 = kTimer}};
  epoll_event listener{.events = EPOLLIN | EPOLLONESHOT, .data = {.u64 = kListener}};
  if (::timerfd_settime(impl.timer_fd, 0, &every, nullptr) != 0 ||
      ::epoll_ctl(impl.epoll_fd, EPOLL_CTL_ADD, impl.wake_fd, &wake) != 0 ||
      ::epoll_ctl(impl.epoll_fd, EPOLL_CTL_ADD, impl.timer_fd, &timer) != 0 ||
      ::epoll_ctl(impl.epoll_fd, EPOLL_CTL_ADD, impl.listen_fd, &listener) != 0) {
    return fail("cannot set up epoll");
  }
  preview->port_ = BoundPort(impl.listen_fd);
  for (int i = 0; i < options.threads; ++i) impl.threads.emplace_back([&impl] { impl.Work(); });
  common::Log(common::LogLevel::kInfo, "preview server listening",
              {{"addr", absl::StrCat(addr.first, ":", preview->port_)},
               {"threads", options.threads},
               {"cache_bytes", options.cache_bytes}});
  return preview;
}

PreviewServer::~PreviewServer() { Stop(); }

void PreviewServer::Stop() {
  if (impl_ == nullptr || impl_->epoll_fd < 0) return;
  Impl& impl = *impl_;
  impl.stopping = true;
  const uint64_t one = 1;
  (void)!::write(impl.wake_fd, &one, sizeof(one));
  for (std::thread& t : impl.threads) t.join();
  impl.threads.clear();
  absl::MutexLock lock(&impl.mu);  // the threads are gone: uncontended
  for (auto& [id, c] : impl.connections) ::close(c->fd);
  impl.connections.clear();
  for (int* fd : {&impl.listen_fd, &impl.epoll_fd, &impl.wake_fd, &impl.timer_fd}) {
    ::close(*fd);
    *fd = -1;
  }
}

void PreviewServer::ForgetSnapshot(const std::string& snapshot_id) {
  impl_->cache.Forget(snapshot_id);
}

void PreviewServer::ForgetAll() { impl_->cache.ForgetAll(); }

PreviewServer::Stats PreviewServer::stats() const {
  Stats out{.cache = impl_->cache.stats()};
  absl::MutexLock lock(&impl_->mu);
  out.connections_accepted = impl_->accepted;
  out.connections_open = impl_->connections.size();
  return out;
}

}  // namespace qai::sandbox
