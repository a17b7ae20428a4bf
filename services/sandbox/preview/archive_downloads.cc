#include "services/sandbox/preview/archive_downloads.h"

#include "common/status.h"
#include "common/status_macros.h"
#include "services/sandbox/snapshot_archive.h"

namespace qai::sandbox {

DownloadOpener ArchiveDownloads(SandboxStore* store, common::StreamSlots* slots) {
  return [store, slots](const DownloadPath& download) -> absl::StatusOr<BodySource> {
    if (!slots->TryTake()) return absl::ResourceExhaustedError("too many downloads here");
    // The slot is given back when the last copy of the source goes (the response ended).
    std::shared_ptr<void> slot(nullptr, [slots](void*) { slots->Give(); });
    QAI_ASSIGN_OR_RETURN(std::shared_ptr<SnapshotArchive> archive,
                         SnapshotArchive::Open(store, download.snapshot_id, /*project_id=*/"",
                                               download.format, download.folder));
    return [archive, slot]() { return archive->Next(); };
  };
}

}  // namespace qai::sandbox
