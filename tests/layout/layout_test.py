#!/usr/bin/env python3
"""The code's layout rules, checked on what each file includes (docs/architecture.md, "Code layout").

1. The orchestrator's rooms keep their dependency rule. services/orchestrator/CMakeLists.txt
   declares each room and the rooms it may use (`qai_orchestrator_room(agent DEPENDS model
   store)`); the linker enforces what a room's library links, and this test what its code
   includes: a source of a room (tests aside) includes headers of its own room and of the rooms
   it declares, nothing else of services/orchestrator/. Every folder there must be a declared room.
2. Services meet through their clients. Code of one service includes another service's headers
   only from its `client/` folder, and a `client/` folder includes nothing else of its own
   service, so a caller never links a service's insides.
3. `common/` knows no service: nothing in it (its tests included) includes a header of
   services/ or a service's generated proto header (qai/<service>/...).
4. Short functions: no function in services/ or common/ (tests included) is longer than 80
   lines (function_length.py measures them).
"""
import pathlib
import re
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import function_length  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
ORCHESTRATOR = ROOT / "services" / "orchestrator"
INCLUDE = re.compile(r'^\s*#\s*include\s+"services/orchestrator/([^/"]+)/', re.M)


def declared_rooms(cmake_text):
    """{room: set of rooms it may use} from qai_orchestrator_room(...) calls."""
    rooms = {}
    for name, deps in re.findall(r"^qai_orchestrator_room\((\w+)(?:\s+DEPENDS\s+([\w\s]+))?\)", cmake_text, re.M):
        rooms[name] = set(deps.split()) if deps else set()
    return rooms


def violations(rooms, orchestrator):
    """What breaks the rule: (file, message) pairs."""
    found = []
    for folder in sorted(p for p in orchestrator.iterdir() if p.is_dir()):
        if folder.name not in rooms:
            found.append((folder, "is not a room declared in services/orchestrator/CMakeLists.txt"))
            continue
        may_use = rooms[folder.name] | {folder.name}
        for source in sorted(folder.rglob("*")):
            if source.suffix not in (".h", ".cc") or source.name.endswith("_test.cc") or source.name.startswith("test_"):
                continue
            for used in INCLUDE.findall(source.read_text()):
                if used not in may_use:
                    found.append((source, f"includes room {used}, which room {folder.name} may not use "
                                          f"(it may use: {', '.join(sorted(rooms[folder.name])) or 'none'})"))
    return found


ANY_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def includes(path):
    return ANY_INCLUDE.findall(path.read_text())


def sources(folder):
    return sorted(p for p in folder.rglob("*") if p.suffix in (".h", ".cc"))


def service_violations(services):
    """Includes across services that bypass a client/ folder, and clients that reach inside."""
    found = []
    for service in sorted(p for p in services.iterdir() if p.is_dir()):
        for source in sources(service):
            in_client = (service / "client") in source.parents
            for header in includes(source):
                parts = header.split("/")
                if parts[0] != "services" or len(parts) < 3:
                    continue
                if parts[1] != service.name and parts[2] != "client":
                    found.append((source, f"includes {header}: another service is reached through its client/ only"))
                if parts[1] == service.name and in_client and parts[2] != "client":
                    found.append((source, f"includes {header}: a client/ includes nothing else of its service"))
    return found


def common_violations(common):
    """Includes in common/ of a service's code or generated protos."""
    return [(source, f"includes {header}: common/ knows no service")
            for source in sources(common) for header in includes(source)
            if header.startswith("services/") or re.match(r"qai/\w+/v\d+/", header)]


class ServicesMeetThroughClientsTest(unittest.TestCase):
    def test_services_include_each_other_only_through_client_folders(self):
        found = service_violations(ROOT / "services")
        self.assertEqual([], [f"{path.relative_to(ROOT)}: {why}" for path, why in found])

    def test_common_includes_no_service(self):
        found = common_violations(ROOT / "common")
        self.assertEqual([], [f"{path.relative_to(ROOT)}: {why}" for path, why in found])

    def test_a_forbidden_include_is_found(self):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            base = pathlib.Path(tmp)
            for folder in ("services/a/client", "services/b", "common"):
                (base / folder).mkdir(parents=True)
            (base / "services/b/ok.cc").write_text('#include "services/a/client/a_client.h"\n')
            (base / "services/b/bad.cc").write_text('#include "services/a/store.h"\n')
            (base / "services/a/client/leaky.h").write_text('#include "services/a/store.h"\n')
            (base / "common/util.cc").write_text('#include "qai/projects/v1/projects.pb.h"\n')
            (base / "common/util_test.cc").write_text('#include "services/b/ok.h"\n')
            (base / "common/fine.cc").write_text('#include "google/rpc/status.pb.h"\n')
            self.assertEqual(["bad.cc", "leaky.h"],
                             sorted(path.name for path, _ in service_violations(base / "services")))
            self.assertEqual(["util.cc", "util_test.cc"],
                             sorted(path.name for path, _ in common_violations(base / "common")))


class ShortFunctionsTest(unittest.TestCase):
    def test_no_function_is_longer_than_80_lines(self):
        found = function_length.too_long(function_length.sources(ROOT, ["services", "common"]))
        self.assertEqual([], [f"{path.relative_to(ROOT)}:{line}: {length} lines: {signature}"
                              for path, line, length, signature in found])

    def test_the_scanner_measures_functions_and_only_functions(self):
        text = """namespace a {
// a comment { with a brace
struct S {
  int Inline() const { return 1; }
};
const char* kText = "} not a brace {";
const char* kRaw = R"x(
  } nor this {
)x";
int Long(int x) {
  if (x) {
    auto f = [&] { return x; };
    return f();
  }
  return 0;
}
}  // namespace a
"""
        found = function_length.functions(text)
        self.assertEqual([(4, 4), (10, 16)], [(start, end) for start, end, _ in found])
        self.assertTrue(found[1][2].startswith("int Long(int x)"))


class OrchestratorLayoutTest(unittest.TestCase):
    def test_every_room_includes_only_the_rooms_it_declares(self):
        rooms = declared_rooms((ORCHESTRATOR / "CMakeLists.txt").read_text())
        self.assertGreaterEqual(len(rooms), 5, rooms)
        found = violations(rooms, ORCHESTRATOR)
        self.assertEqual([], [f"{path.relative_to(ROOT)}: {why}" for path, why in found])

    def test_a_forbidden_include_is_found(self):
        # The check itself: a store that includes the agent, and an undeclared folder.
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            base = pathlib.Path(tmp)
            (base / "store").mkdir()
            (base / "store" / "run_store.cc").write_text('#include "services/orchestrator/agent/agent.h"\n')
            (base / "store" / "run_store_test.cc").write_text('#include "services/orchestrator/agent/agent.h"\n')
            (base / "extra").mkdir()
            rooms = declared_rooms("qai_orchestrator_room(store)\nqai_orchestrator_room(agent DEPENDS store)\n")
            found = violations(rooms, base)
            self.assertEqual(["extra", "run_store.cc"], sorted(path.name for path, _ in found))


if __name__ == "__main__":
    sys.exit(unittest.main())
