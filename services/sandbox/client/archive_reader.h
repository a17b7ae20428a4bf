#pragma once
// ArchiveReader: a snapshot's archive as qai-sandbox streams it (ArchiveSnapshot), read one
// piece at a time, so a caller passing it on holds one piece (about 256 KiB) at a time. A reader
// dropped before the end cancels the stream.
//
//   ArchiveReader reader(*client.tier(), client.api_key, req, absl::Now() + absl::Minutes(15));
//   while (true) {
//     absl::StatusOr<std::optional<std::string>> piece = reader.Next();
//     if (!piece.ok()) ...;        // the archive is incomplete
//     if (!*piece) break;          // complete
//     send(**piece);
//   }

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "qai/sandbox/v1/sandbox.grpc.pb.h"

namespace qai::sandbox {

class ArchiveReader {
 public:
  ArchiveReader(v1::SandboxService::Stub& stub, const std::string& api_key,
                const v1::ArchiveSnapshotRequest& req, absl::Time deadline);
  ~ArchiveReader();
  ArchiveReader(const ArchiveReader&) = delete;
  ArchiveReader& operator=(const ArchiveReader&) = delete;

  // Next: the next piece; nullopt at the end; the stream's error (qai-sandbox's status).
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> Next();

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::ArchiveChunk>> reader_;
  bool finished_ = false;
};

}  // namespace qai::sandbox
