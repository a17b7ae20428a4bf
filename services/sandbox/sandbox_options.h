#pragma once
// Sandbox options: qai-sandbox's isolation flags (how commands are confined, the projects'
// cgroups, the workspaces' disk quota), their defaults and checks, and the settings read from
// them. What the service makes of them at start-up is sandbox_setup.h's.
//
//   ... ServiceBase::Init("sandbox", argc, argv, WithSandboxOptions({...the others...})) ...
//   SandboxOptions limits = SandboxOptionsFrom(config);
//   CgroupRequest cgroups = CgroupRequestFrom(config);

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "services/sandbox/cgroups.h"
#include "services/sandbox/sandbox.h"

namespace qai::sandbox {

// The values of --sandbox and --sandbox-disk that the start-up choice tells apart.
inline constexpr char kSandboxUnsafeNone[] = "unsafe-none";
inline constexpr char kSandboxDiskOff[] = "off";

// WithSandboxOptions: options and --sandbox (QAI_SANDBOX: bwrap or unsafe-none),
// --sandbox-cpu-time, --sandbox-memory-mb, --sandbox-processes, --sandbox-file-size-mb,
// --sandbox-uids, for the projects' cgroups --sandbox-cgroups (required or off),
// --sandbox-project-memory-mb, --sandbox-project-pids, --sandbox-cpu-weight and --sandbox-cpus,
// and for the workspaces' disk quota --sandbox-disk (tmpfs or off), --sandbox-disk-mb and
// --sandbox-disk-files.
std::vector<common::Option> WithSandboxOptions(std::vector<common::Option> options);

// SandboxOptionsFrom: the limits and uids of a configuration that declared those options
// (the mode and the cgroups are ChooseSandbox's).
SandboxOptions SandboxOptionsFrom(const common::Config& config);

// CgroupRequest: whether the projects' cgroups are required, and how to set them up.
struct CgroupRequest {
  bool required = true;  // false: QAI_SANDBOX_CGROUPS=off
  CgroupOptions options;
};

// CgroupRequestFrom: --sandbox-cgroups and the project limits of a configuration that
// declared them.
CgroupRequest CgroupRequestFrom(const common::Config& config);

// ParseUidRange: "FIRST-LAST" with LAST > FIRST (projects get all but the last, which the
// start-up probe runs as); false otherwise, or when not within 1..4294967294.
bool ParseUidRange(std::string_view text, uint32_t* first, uint32_t* count);

}  // namespace qai::sandbox
