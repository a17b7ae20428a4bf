#!/usr/bin/env python3
"""Checks the Dockerfile without a Docker engine.

- every binary a stage copies from the build stage exists in a `cmake --install` of the build;
- every package the runtime stages install exists in Debian (`apt-cache show`);
- every shared library each copied binary loads (`ldd`) belongs to a package (`dpkg -S`) that
  its image has: one the stage (or a stage it builds on) installs, a dependency of one, or
  part of debian:bookworm-slim (Essential packages and apt's dependencies);
- the images run as a non-root user.
"""
import json
import os
import re
import shlex
import subprocess
import tempfile
import unittest

SOURCE = os.environ.get("QAI_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("QAI_BUILD_DIR", os.path.join(SOURCE, "build"))
PREFIX = "/opt/qai"


def parse_dockerfile(path):
    """Stages in order: {name, base, packages, copies [(src, dest)], user, entrypoint}."""
    with open(path) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages, stage = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.IGNORECASE)
            stage = {"name": m.group(2), "base": m.group(1), "packages": [], "copies": [], "user": None,
                     "entrypoint": None}
            stages.append(stage)
        elif word == "RUN":
            for command in re.split(r"&&|;", rest):
                args = shlex.split(command)
                if args[:2] == ["apt-get", "install"]:
                    stage["packages"] += [a for a in args[2:] if not a.startswith("-")]
        elif word == "COPY" and "--from=build" in rest:
            args = [a for a in shlex.split(rest) if not a.startswith("--")]
            stage["copies"] += [(src, args[-1]) for src in args[:-1]]
        elif word == "USER":
            stage["user"] = rest.strip()
        elif word == "ENTRYPOINT":
            stage["entrypoint"] = json.loads(rest)
    return stages


def lineage(stages, stage):
    """The stage and the stages it is built FROM, nearest first."""
    by_name = {s["name"]: s for s in stages if s["name"]}
    chain = [stage]
    while chain[-1]["base"] in by_name:
        chain.append(by_name[chain[-1]["base"]])
    return chain


def depends_closure(packages):
    out = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                          "--no-breaks", "--no-replaces", "--no-enhances", *packages],
                         capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        name = line.split(":", 1)[1] if ":" in line and line.startswith(" ") else line
        names.add(name.strip().strip("<>").split(":")[0])
    return names


def essential_packages():
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Essential}\n"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.endswith(" yes")}


def library_owners(paths):
    """path -> set of packages owning it, trying the /usr-merged variants of each path."""
    candidates = {}
    for p in paths:
        variants = {p, os.path.realpath(p)}
        variants |= {"/usr" + v for v in variants if v.startswith("/lib")}
        variants |= {v[4:] for v in variants if v.startswith("/usr/lib")}
        candidates[p] = variants
    every = sorted(set().union(*candidates.values())) if candidates else []
    out = subprocess.run(["dpkg", "-S", *every], capture_output=True, text=True).stdout
    owners = {}
    for line in out.splitlines():
        if line.startswith("diversion"):
            continue
        pkgs, _, path = line.rpartition(": ")
        owners.setdefault(path, set()).update(p.strip().split(":")[0] for p in pkgs.split(","))
    return {p: set().union(*(owners.get(v, set()) for v in variants)) for p, variants in candidates.items()}


def ldd(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"=>\s*(\S+)", line)
        if m and m.group(1) != "not":
            libs.append(m.group(1))
        if "not found" in line:
            raise AssertionError(f"{binary}: {line.strip()}")
    return libs


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stages = parse_dockerfile(os.path.join(SOURCE, "Dockerfile"))
        cls.images = [s for s in cls.stages if s["name"] != "build" and s["base"] != "debian:bookworm-slim"]
        cls.install = tempfile.TemporaryDirectory()
        subprocess.run(["cmake", "--install", BUILD, "--prefix", cls.install.name], check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        cls.install.cleanup()

    def test_stages(self):
        self.assertEqual({s["base"] for s in self.stages if s["base"].startswith("debian")}, {"debian:bookworm-slim"})
        self.assertEqual({s["name"] for s in self.images}, {"projects", "messages", "orchestrator", "sandbox", "migrate"})
        self.assertTrue(all(s["copies"] for s in self.images))

    def test_copied_binaries_are_installed(self):
        for stage in self.images:
            for src, _ in stage["copies"]:
                self.assertTrue(src.startswith(PREFIX + "/"), src)
                path = os.path.join(self.install.name, src[len(PREFIX) + 1:])
                self.assertTrue(os.access(path, os.X_OK), f"{stage['name']}: {src} is not in the install")

    def test_packages_exist_in_debian(self):
        wanted = {p for s in self.stages if s["name"] != "build" for p in s["packages"]}
        # One call for all: apt-cache is slow to start, and prints every package it knows.
        out = subprocess.run(["apt-cache", "show", "--no-all-versions", *sorted(wanted)], capture_output=True, text=True)
        known = set(re.findall(r"^Package: (\S+)$", out.stdout, re.MULTILINE))
        self.assertFalse(wanted - known, "not Debian packages")

    def test_packages_cover_shared_libraries(self):
        base = essential_packages() | depends_closure(["apt"])
        libs = {}
        for stage in self.images:
            for src, _ in stage["copies"]:
                libs[src] = ldd(os.path.join(self.install.name, src[len(PREFIX) + 1:]))
        owners_of = library_owners(sorted(set().union(*libs.values())))
        for stage in self.images:
            named = [p for s in lineage(self.stages, stage) for p in s["packages"]]
            have = base | depends_closure(named)
            for src, _ in stage["copies"]:
                for lib in libs[src]:
                    owners = owners_of[lib]
                    self.assertTrue(owners, f"{stage['name']}: {lib} ({src}) belongs to no Debian package")
                    self.assertTrue(owners & have, f"{stage['name']}: {src} loads {lib} from {owners}, not in the image")

    def test_only_the_sandbox_has_sandbox_tools(self):
        images = {s["name"]: s for s in self.images}
        self.assertLessEqual({"bubblewrap", "util-linux", "tini"}, set(images["sandbox"]["packages"]))
        self.assertEqual(images["sandbox"]["entrypoint"][:2], ["/usr/bin/tini", "--"], "tini reaps orphans as PID 1")
        self.assertNotIn("bubblewrap", images["orchestrator"]["packages"], "the orchestrator runs no commands")

    def test_images_run_as_non_root(self):
        for stage in self.images:
            user = next(s["user"] for s in lineage(self.stages, stage) if s["user"])
            self.assertNotIn(user.split(":")[0], ("0", "root"), stage["name"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
