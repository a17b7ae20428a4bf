#include "services/sandbox/preview/preview_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "services/sandbox/preview/preview_test_decoders.h"

namespace qai::sandbox {
namespace {

using testing::Gunzip;
using testing::Unbrotli;

// Text that compresses about as well as a page does.
std::string Page(size_t bytes) {
  std::string out;
  for (int i = 0; out.size() < bytes; ++i) {
    absl::StrAppend(&out, "<li class=\"item\"><a href=\"#s", i, "\">Section ", i,
                    "</a> of the page</li>\n");
  }
  out.resize(bytes);
  return out;
}

std::string Noise(size_t bytes) {
  std::mt19937 rng(7);
  std::string out(bytes, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

// FakeStore: snapshots a test can add, fail and delete, counting the loads.
class FakeStore {
 public:
  void Put(const std::string& id, std::map<std::string, std::string> files,
           absl::Time created = absl::Now()) {
    std::lock_guard lock(mu_);
    snapshots_[id] =
        std::make_shared<const PreviewSnapshot>(PreviewSnapshot{std::move(files), created});
  }
  void Delete(const std::string& id) {
    std::lock_guard lock(mu_);
    snapshots_.erase(id);
  }
  void SetDown(bool down) { down_ = down; }
  void SetDelay(std::chrono::milliseconds delay) { delay_ = delay; }
  int loads() const { return loads_.load(); }

  PreviewLoader Loader() {
    return [this](const std::string& id) -> absl::StatusOr<std::shared_ptr<const PreviewSnapshot>> {
      ++loads_;
      std::this_thread::sleep_for(delay_.load());
      if (down_) return absl::UnavailableError("database down");
      std::lock_guard lock(mu_);
      auto it = snapshots_.find(id);
      if (it == snapshots_.end()) return absl::NotFoundError("no such snapshot");
      return it->second;
    };
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const PreviewSnapshot>> snapshots_;
  std::atomic<bool> down_{false};
  std::atomic<std::chrono::milliseconds> delay_{std::chrono::milliseconds(0)};
  std::atomic<int> loads_{0};
};

TEST(PreviewCacheTest, ASnapshotIsLoadedOnceAndItsFilesDescribed) {
  FakeStore store;
  const std::string id = common::NewUuid();
  store.Put(id, {{"index.html", "<h1>hi</h1>"}, {"img/a.PNG", "png"}, {"Makefile", "all:"}},
            absl::FromUnixMicros(784111777123456));
  PreviewCache cache(store.Loader(), {});
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::shared_ptr<const CachedSnapshot>> s = cache.Get(id);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)->FileCountForTest(), 3u);
  }
  EXPECT_EQ(store.loads(), 1);
  EXPECT_EQ(cache.stats().loads, 1u);
  std::shared_ptr<const CachedSnapshot> s = *cache.Get(id);
  const PreviewFile* index = s->Find("index.html");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->content(), "<h1>hi</h1>");
  EXPECT_EQ(index->content_type(), "text/html; charset=utf-8");
  EXPECT_EQ(s->Find("img/a.PNG")->content_type(), "image/png");
  EXPECT_EQ(s->Find("Makefile")->content_type(), "application/octet-stream");
  EXPECT_EQ(s->Find("missing.css"), nullptr);
  // A strong tag from the content: the same for the same bytes on any replica.
  EXPECT_EQ(index->etag().size(), 34u);
  EXPECT_EQ(index->etag().front(), '"');
  PreviewCache other(store.Loader(), {});
  EXPECT_EQ((*other.Get(id))->Find("index.html")->etag(), index->etag());
  EXPECT_NE(s->Find("Makefile")->etag(), index->etag());
  // Last-Modified has whole seconds.
  EXPECT_EQ(s->last_modified(), absl::FromUnixSeconds(784111777));
  EXPECT_EQ(s->last_modified_text(), "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(PreviewCacheTest, ConcurrentMissesShareOneLoad) {
  FakeStore store;
  const std::string id = common::NewUuid();
  store.Put(id, {{"index.html", "x"}});
  store.SetDelay(std::chrono::milliseconds(200));
  PreviewCache cache(store.Loader(), {});
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (cache.Get(id).ok()) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(store.loads(), 1);

  // Misses of different snapshots do not wait for each other.
  const std::string a = common::NewUuid(), b = common::NewUuid();
  store.Put(a, {{"index.html", "a"}});
  store.Put(b, {{"index.html", "b"}});
  const auto start = std::chrono::steady_clock::now();
  std::thread ta([&] { EXPECT_TRUE(cache.Get(a).ok()); });
  std::thread tb([&] { EXPECT_TRUE(cache.Get(b).ok()); });
  ta.join();
  tb.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(390));
}

TEST(PreviewCacheTest, FailuresAreNotRemembered) {
  FakeStore store;
  const std::string id = common::NewUuid();
  PreviewCache cache(store.Loader(), {});
  EXPECT_EQ(cache.Get(id).status().code(), absl::StatusCode::kNotFound);
  store.Put(id, {{"index.html", "x"}});  // written just after the miss
  EXPECT_TRUE(cache.Get(id).ok());
  const std::string other = common::NewUuid();
  store.Put(other, {{"index.html", "y"}});
  store.SetDown(true);
  EXPECT_EQ(cache.Get(other).status().code(), absl::StatusCode::kUnavailable);
  store.SetDown(false);
  EXPECT_TRUE(cache.Get(other).ok());
  EXPECT_EQ(store.loads(), 4);
}

TEST(PreviewCacheTest, AFailingLoaderNeverLeavesWaitersHanging) {
  PreviewCache cache(
      [](const std::string&) -> absl::StatusOr<std::shared_ptr<const PreviewSnapshot>> {
        throw std::runtime_error("boom");
      },
      {});
  EXPECT_EQ(cache.Get(common::NewUuid()).status().code(), absl::StatusCode::kInternal);
  PreviewCache null_cache(
      [](const std::string&) -> absl::StatusOr<std::shared_ptr<const PreviewSnapshot>> {
        return nullptr;
      },
      {});
  EXPECT_EQ(null_cache.Get(common::NewUuid()).status().code(), absl::StatusCode::kInternal);
}

TEST(PreviewCacheTest, EvictsTheLeastRecentlyUsedToStayWithinItsBytes) {
  FakeStore store;
  const std::string a = common::NewUuid(), b = common::NewUuid(), c = common::NewUuid();
  for (const std::string& id : {a, b, c})
    store.Put(id, {{"index.html", std::string(40 << 10, 'x')}});
  // Room for two of them.
  PreviewCache cache(store.Loader(), {.max_bytes = 100 << 10});
  ASSERT_TRUE(cache.Get(a).ok());
  ASSERT_TRUE(cache.Get(b).ok());
  ASSERT_TRUE(cache.Get(a).ok());  // a is now more recent than b
  ASSERT_TRUE(cache.Get(c).ok());  // so b goes
  EXPECT_EQ(cache.stats().snapshots, 2u);
  EXPECT_LE(cache.stats().bytes, 100u << 10);
  EXPECT_GT(cache.stats().bytes, 80u << 10);
  EXPECT_EQ(store.loads(), 3);
  ASSERT_TRUE(cache.Get(a).ok());
  ASSERT_TRUE(cache.Get(c).ok());
  EXPECT_EQ(store.loads(), 3);
  ASSERT_TRUE(cache.Get(b).ok());
  EXPECT_EQ(store.loads(), 4);

  // A snapshot larger than the whole cache is served, not kept.
  const std::string huge = common::NewUuid();
  store.Put(huge, {{"index.html", std::string(200 << 10, 'y')}});
  EXPECT_TRUE(cache.Get(huge).ok());
  EXPECT_TRUE(cache.Get(huge).ok());
  EXPECT_EQ(store.loads(), 6);
  EXPECT_LE(cache.stats().bytes, 100u << 10);
}

TEST(PreviewCacheTest, CompressesOncePerFileAndCodingAndCountsTheBytes) {
  FakeStore store;
  const std::string id = common::NewUuid();
  const std::string page = Page(60 << 10);
  store.Put(id, {{"index.html", page},
                 {"small.css", "body{}"},
                 {"photo.png", Page(8 << 10)},
                 {"noise.txt", Noise(8 << 10)}});
  PreviewCache cache(store.Loader(), {});
  std::shared_ptr<const CachedSnapshot> s = *cache.Get(id);
  const size_t before = cache.stats().bytes;
  const PreviewFile& index = *s->Find("index.html");
  EXPECT_TRUE(index.compressible());

  std::optional<EncodedBody> gz = cache.Encoded(*s, index, Coding::kGzip);
  ASSERT_TRUE(gz);
  EXPECT_EQ(Gunzip(gz->body), page);
  EXPECT_LT(gz->body.size(), page.size() / 4);
  std::optional<EncodedBody> br = cache.Encoded(*s, index, Coding::kBrotli);
  ASSERT_TRUE(br);
  EXPECT_EQ(Unbrotli(br->body), page);
  EXPECT_LT(br->body.size(), gz->body.size());
  // A tag per coding, each naming this content.
  EXPECT_NE(gz->etag, index.etag());
  EXPECT_NE(br->etag, gz->etag);
  EXPECT_EQ(gz->etag.substr(0, 33), index.etag().substr(0, 33));
  EXPECT_EQ(cache.stats().bytes,
            before + gz->body.size() + gz->etag.size() + br->body.size() + br->etag.size());
  // The second time is the same body, not a new compression.
  EXPECT_EQ(cache.Encoded(*s, index, Coding::kGzip)->body.data(), gz->body.data());

  // Not worth it: a small file, an image, bytes that do not get smaller.
  EXPECT_FALSE(s->Find("small.css")->compressible());
  EXPECT_FALSE(cache.Encoded(*s, *s->Find("small.css"), Coding::kGzip));
  EXPECT_FALSE(s->Find("photo.png")->compressible());
  EXPECT_FALSE(cache.Encoded(*s, *s->Find("photo.png"), Coding::kBrotli));
  EXPECT_TRUE(s->Find("noise.txt")->compressible());
  EXPECT_FALSE(cache.Encoded(*s, *s->Find("noise.txt"), Coding::kGzip));
  EXPECT_FALSE(cache.Encoded(*s, index, Coding::kIdentity));
}

TEST(PreviewCacheTest, ConcurrentRequestsForACodingCompressOnce) {
  FakeStore store;
  const std::string id = common::NewUuid();
  store.Put(id, {{"index.html", Page(60 << 10)}});
  PreviewCache cache(store.Loader(), {});
  std::shared_ptr<const CachedSnapshot> s = *cache.Get(id);
  const size_t before = cache.stats().bytes;
  std::vector<std::thread> threads;
  std::vector<const char*> bodies(6);
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      bodies[i] = cache.Encoded(*s, *s->Find("index.html"), Coding::kBrotli)->body.data();
    });
  }
  for (std::thread& t : threads) t.join();
  for (const char* body : bodies) EXPECT_EQ(body, bodies[0]);
  const std::optional<EncodedBody> br = cache.Encoded(*s, *s->Find("index.html"), Coding::kBrotli);
  EXPECT_EQ(cache.stats().bytes, before + br->body.size() + br->etag.size()) << "counted once";
}

TEST(PreviewCacheTest, CompressedBodiesCountTowardsEviction) {
  FakeStore store;
  const std::string a = common::NewUuid(), b = common::NewUuid();
  store.Put(a, {{"index.html", Noise(30 << 10) + Page(30 << 10)}});
  store.Put(b, {{"index.html", Noise(30 << 10) + Page(30 << 10)}});
  // Room for both snapshots' content, not for their compressed bodies as well.
  PreviewCache cache(store.Loader(), {.max_bytes = 150 << 10});
  std::shared_ptr<const CachedSnapshot> sa = *cache.Get(a);
  std::shared_ptr<const CachedSnapshot> sb = *cache.Get(b);
  EXPECT_EQ(cache.stats().snapshots, 2u);
  ASSERT_TRUE(cache.Encoded(*sa, *sa->Find("index.html"), Coding::kGzip));
  ASSERT_TRUE(cache.Encoded(*sb, *sb->Find("index.html"), Coding::kGzip));
  EXPECT_EQ(cache.stats().snapshots, 1u) << "a, the least recently used, made room";
  EXPECT_LE(cache.stats().bytes, 150u << 10);
  // What a response still holds stays valid.
  EXPECT_EQ(sa->Find("index.html")->content().size(), 60u << 10);
}

TEST(PreviewCacheTest, ReloadsAfterMaxAgeSoDeletedSnapshotsStop) {
  FakeStore store;
  const std::string id = common::NewUuid();
  store.Put(id, {{"index.html", "x"}});
  PreviewCache cache(store.Loader(), {.max_age = absl::Milliseconds(100)});
  ASSERT_TRUE(cache.Get(id).ok());
  ASSERT_TRUE(cache.Get(id).ok());
  EXPECT_EQ(store.loads(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_TRUE(cache.Get(id).ok());
  EXPECT_EQ(store.loads(), 2);

  // The database is down when it is due: the copy in memory is served on.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  store.SetDown(true);
  EXPECT_TRUE(cache.Get(id).ok());
  EXPECT_EQ(store.loads(), 3);
  EXPECT_TRUE(cache.Get(id).ok());
  EXPECT_EQ(store.loads(), 3) << "not retried on every request";
  store.SetDown(false);

  // Deleted (the project was purged): gone once due.
  store.Delete(id);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(cache.Get(id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cache.stats().snapshots, 0u);
}

TEST(PreviewCacheTest, ForgottenSnapshotsAreLoadedAgain) {
  FakeStore store;
  const std::string a = common::NewUuid(), b = common::NewUuid();
  store.Put(a, {{"index.html", "a"}});
  store.Put(b, {{"index.html", "b"}});
  PreviewCache cache(store.Loader(), {});
  ASSERT_TRUE(cache.Get(a).ok());
  ASSERT_TRUE(cache.Get(b).ok());
  store.Delete(a);
  cache.Forget(a);
  EXPECT_EQ(cache.Get(a).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(cache.Get(b).ok());
  EXPECT_EQ(store.loads(), 3);
  cache.ForgetAll();
  EXPECT_EQ(cache.stats().bytes, 0u);
  EXPECT_TRUE(cache.Get(b).ok());
  EXPECT_EQ(store.loads(), 4);

  // Forgotten while being loaded: what the load read may predate the deletion, so it is
  // served to those waiting for it but not kept.
  const std::string c = common::NewUuid();
  store.Put(c, {{"index.html", "c"}});
  store.SetDelay(std::chrono::milliseconds(200));
  std::thread loading([&] { EXPECT_TRUE(cache.Get(c).ok()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  cache.Forget(c);
  loading.join();
  store.SetDelay(std::chrono::milliseconds(0));
  EXPECT_TRUE(cache.Get(c).ok());
  EXPECT_EQ(store.loads(), 6);
}

TEST(PreviewCacheTest, ContentTypes) {
  EXPECT_EQ(ContentTypeFor("a/b.JS"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("x.svg"), "image/svg+xml");
  EXPECT_EQ(ContentTypeFor(".htaccess"), "application/octet-stream");
  EXPECT_EQ(ContentTypeFor("dir.d/file"), "application/octet-stream");
  EXPECT_EQ(CodingName(Coding::kBrotli), "br");
  EXPECT_EQ(CodingName(Coding::kGzip), "gzip");
}

}  // namespace
}  // namespace qai::sandbox
