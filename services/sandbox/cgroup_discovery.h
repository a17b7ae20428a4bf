#pragma once
// Cgroup discovery: where the service itself sits in each mounted cgroup hierarchy, from what
// the kernel says in /proc/self/mountinfo and /proc/self/cgroup. Cgroups::SetUp (cgroups.h)
// reads both files; this is the parsing alone, so that any machine's texts can be tested on
// this one (a v1 host, a v2 Kubernetes node, a container that sees a subtree mounted as /).
//
//   std::vector<CgroupPlace> places = OwnCgroups(mountinfo_text, self_cgroup_text);
//   // v1: {.dir = "/sys/fs/cgroup/memory/process_api/72b0…", .controllers = {"memory"}}, ...
//   // v2: {.dir = "/sys/fs/cgroup/kubepods.slice/…", .unified = true}

#include <string>
#include <string_view>
#include <vector>

namespace qai::sandbox {

// CgroupPlace: the service's own cgroup in one mounted hierarchy.
struct CgroupPlace {
  // Its directory: the mount point, then the service's path below the mount's root.
  std::string dir;
  // v1: what the hierarchy carries ("cpu", "cpuacct", "name=systemd", ...). v2: empty; which
  // controllers the service's cgroup may use is in its cgroup.controllers.
  std::vector<std::string> controllers;
  bool unified = false;  // the cgroup v2 hierarchy
};

// OwnCgroups: a place per hierarchy that is mounted and holds the service (the first mount of
// each, when it is mounted more than once). A hierarchy whose mounts do not reach the service's
// cgroup (a container that sees only a subtree without it) is left out.
std::vector<CgroupPlace> OwnCgroups(std::string_view mountinfo, std::string_view self_cgroup);

}  // namespace qai::sandbox
