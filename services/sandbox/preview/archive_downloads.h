#pragma once
// ArchiveDownloads: how the preview server answers a download: the snapshot's archive made
// from the store as it is sent (SnapshotArchive), at most as many at once as `slots` allows
// (RESOURCE_EXHAUSTED beyond, which the server answers 503 with Retry-After). A preview URL's
// download is as public as its preview: any snapshot, by its unguessable id.
//
//   common::StreamSlots slots(4);
//   PreviewServer::Start(addr, loader, {.downloads = ArchiveDownloads(&store, &slots)});

#include "common/pull_stream.h"
#include "services/sandbox/preview/preview_response.h"
#include "services/sandbox/store.h"

namespace qai::sandbox {

[[nodiscard]] DownloadOpener ArchiveDownloads(SandboxStore* store, common::StreamSlots* slots);

}  // namespace qai::sandbox
