// Where the service sits in each cgroup hierarchy, from other machines' /proc/self/mountinfo
// and /proc/self/cgroup: a v1 host (this project's CI machines), a v2 Kubernetes node, a
// container that sees only its own subtree, and the texts' odd corners.

#include "services/sandbox/cgroup_discovery.h"

#include <gtest/gtest.h>

namespace qai::sandbox {

// Where ADL finds them for a vector of places.
bool operator==(const CgroupPlace& a, const CgroupPlace& b) {
  return a.dir == b.dir && a.controllers == b.controllers && a.unified == b.unified;
}

void PrintTo(const CgroupPlace& p, std::ostream* os) {
  *os << "{" << p.dir << (p.unified ? " v2" : " v1");
  for (const std::string& c : p.controllers) *os << " " << c;
  *os << "}";
}

namespace {

TEST(OwnCgroupsTest, AV1HostWithEachControllerMountedApartAndAnEmptyUnifiedHierarchy) {
  const char mountinfo[] =
      "23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
  const char self[] =
      "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/72b0f2d2\n2:cpuacct:/\n1:cpu:/\n0::/\n"
      "7:blkio:/\n";  // mounted nowhere: left out
  EXPECT_EQ(OwnCgroups(mountinfo, self),
            (std::vector<CgroupPlace>{
                {.dir = "/sys/fs/cgroup/systemd", .controllers = {"name=systemd"}},
                {.dir = "/sys/fs/cgroup/pids", .controllers = {"pids"}},
                {.dir = "/sys/fs/cgroup/memory/process_api/72b0f2d2", .controllers = {"memory"}},
                {.dir = "/sys/fs/cgroup/cpuacct", .controllers = {"cpuacct"}},
                {.dir = "/sys/fs/cgroup/cpu", .controllers = {"cpu"}},
                {.dir = "/sys/fs/cgroup/unified", .unified = true}}));
}

TEST(OwnCgroupsTest, AV2KubernetesNodeAndAPodWithACgroupNamespace) {
  const char node[] =
      "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
      "rw,nsdelegate,memory_recursiveprot\n";
  EXPECT_EQ(
      OwnCgroups(node, "0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-ab12.scope\n"),
      (std::vector<CgroupPlace>{
          {.dir = "/sys/fs/cgroup/kubepods.slice/kubepods-pod1.slice/cri-containerd-ab12.scope",
           .unified = true}}));
  // In the pod's own cgroup namespace its cgroup is the root, mounted as /sys/fs/cgroup.
  const char pod[] =
      "1201 1190 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n";
  EXPECT_EQ(OwnCgroups(pod, "0::/\n"),
            (std::vector<CgroupPlace>{{.dir = "/sys/fs/cgroup", .unified = true}}));
}

TEST(OwnCgroupsTest, AContainerThatSeesOnlyItsSubtree) {
  // Docker with the host's cgroup namespace: the container's own cgroup is mounted as the
  // hierarchy; /proc/self/cgroup shows the host's full path.
  const char mountinfo[] =
      "700 690 0:32 /docker/ab12 /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n"
      "701 690 0:29 /docker/ab12 /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup "
      "rw,cpu,cpuacct\n"
      "702 690 0:36 /docker/ab12 /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids\n";
  EXPECT_EQ(
      OwnCgroups(mountinfo,
                 "4:memory:/docker/ab12/app\n2:cpu,cpuacct:/docker/ab12\n8:pids:/elsewhere\n"),
      (std::vector<CgroupPlace>{
          {.dir = "/sys/fs/cgroup/memory/app", .controllers = {"memory"}},
          {.dir = "/sys/fs/cgroup/cpu,cpuacct", .controllers = {"cpu", "cpuacct"}}}));
}

TEST(OwnCgroupsTest, EscapedPathsOptionalFieldsAndRepeatedMounts) {
  const char mountinfo[] =
      "50 31 0:40 / /mnt/cg\\040v2 rw,relatime shared:9 master:2 - cgroup2 none rw\n"
      "51 31 0:40 / /mnt/second rw,relatime - cgroup2 none rw\n"  // the same hierarchy again
      "52 31 0:41 / /mnt/x rw - cgroup\n"                         // cut short: ignored
      "garbage\n";
  EXPECT_EQ(OwnCgroups(mountinfo, "0::/a:b/c\n"),
            (std::vector<CgroupPlace>{{.dir = "/mnt/cg v2/a:b/c", .unified = true}}));
  EXPECT_TRUE(OwnCgroups("", "0::/\n").empty());
  EXPECT_TRUE(OwnCgroups(mountinfo, "").empty());
}

}  // namespace
}  // namespace qai::sandbox
