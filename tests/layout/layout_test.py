#!/usr/bin/env python3
"""The orchestrator's rooms keep their dependency rule.

services/orchestrator/CMakeLists.txt declares each room and the rooms it may use
(`qai_orchestrator_room(agent DEPENDS model store)`); the linker enforces what a room's library
links, and this test what its code includes: a source of a room (tests aside) includes headers
of its own room and of the rooms it declares, nothing else of services/orchestrator/. Every
folder there must be a declared room.
"""
import pathlib
import re
import sys
import unittest

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
