#include "services/sandbox/client/archive_reader.h"

#include "common/client.h"
#include "common/log.h"
#include "common/status.h"

namespace qai::sandbox {

ArchiveReader::ArchiveReader(v1::SandboxService::Stub& stub, const std::string& api_key,
                             const v1::ArchiveSnapshotRequest& req, absl::Time deadline) {
  common::PrepareServiceCall(ctx_, api_key, common::CurrentRequestId(), deadline - absl::Now());
  reader_ = stub.ArchiveSnapshot(&ctx_, req);
}

ArchiveReader::~ArchiveReader() {
  if (finished_) return;
  ctx_.TryCancel();
  const grpc::Status ignored = reader_->Finish();  // cancelled: nothing to learn from it
  (void)ignored;
}

absl::StatusOr<std::optional<std::string>> ArchiveReader::Next() {
  if (finished_) return std::nullopt;
  v1::ArchiveChunk chunk;
  if (reader_->Read(&chunk)) return std::move(*chunk.mutable_data());
  finished_ = true;
  const grpc::Status status = reader_->Finish();
  if (!status.ok()) return common::FromGrpcStatus(status);
  return std::nullopt;
}

}  // namespace qai::sandbox
