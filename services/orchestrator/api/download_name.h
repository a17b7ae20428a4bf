#pragma once
// What a version's download is called, and where it is served over HTTP.
//
//   DownloadBaseName("Bakery Site!", "brave-otter-4f2a", 3)  // "bakery-site-v3"
//   DownloadUrl("https://p.example/<id>/", "<id>", "bakery-site-v3.zip")
//     // "https://p.example/download/<id>/bakery-site-v3.zip"

#include <string>
#include <string_view>

namespace qai::orchestrator {

// DownloadBaseName: "<name>-v<number>", where name is the project's display name made a file
// name (lower-case letters and digits, other runs of characters a single '-', at most 60
// characters), or its generated name when nothing of the display name is left. Always a name
// qai-sandbox accepts for an archive and its folder.
[[nodiscard]] std::string DownloadBaseName(std::string_view display_name, std::string_view name,
                                           int number);

// DownloadUrl: the HTTP download of a snapshot next to its preview (`<base>/<id>/` becomes
// `<base>/download/<id>/<file_name>`); empty when the preview URL is not of that shape.
[[nodiscard]] std::string DownloadUrl(std::string_view preview_url, std::string_view snapshot_id,
                                      std::string_view file_name);

}  // namespace qai::orchestrator
