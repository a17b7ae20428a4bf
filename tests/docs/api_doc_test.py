#!/usr/bin/env python3
"""docs/api.md names every service, rpc, message and enum of proto/qai/**/*.proto.

The protos are read with a small tokenizer (comments and string literals skipped), so nested
messages and enums count too. A name counts as documented when it appears in docs/api.md as a
backticked word, exactly as the proto spells it (`CreateProject`, `RunEvent`, `Queued`). The test
fails naming every declaration that is missing, with the file and line that declares it.

Run by ctest (label deploy) or by hand: python3 tests/docs/api_doc_test.py
"""

import os
import pathlib
import re
import sys
import tempfile
import unittest

SOURCE_DIR = pathlib.Path(os.environ.get("QAI_SOURCE_DIR") or pathlib.Path(__file__).resolve().parents[2])
API_DOC = SOURCE_DIR / "docs" / "api.md"
PROTO_ROOT = SOURCE_DIR / "proto" / "qai"

KINDS = ("service", "rpc", "message", "enum")
TOKEN = re.compile(
    r"""(?P<comment>//[^\n]*|/\*.*?\*/)
      | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[{};])
      | (?P<space>\s+)
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)


def declarations(path):
    """(kind, name, qualified name, line) of every service, rpc, message and enum in `path`.

    A keyword declares something only at the start of a statement (after `{`, `}`, `;` or the
    start of the file) and when an identifier follows, so a field named `message` or a type
    like `google.protobuf.Empty` is never taken for one.
    """
    text = path.read_text(encoding="utf-8")
    tokens = []  # (kind, value, line)
    line = 1
    for m in TOKEN.finditer(text):
        kind = m.lastgroup
        if kind in ("ident", "punct", "other", "string"):
            tokens.append((kind, m.group(), line))
        line += m.group().count("\n")
    found = []
    scopes = []  # names of the enclosing service/message/enum blocks, None for other blocks
    pending = None  # the name a declaration opens, until its `{`
    statement_start = True
    for i, (kind, value, line) in enumerate(tokens):
        if kind == "punct":
            if value == "{":
                scopes.append(pending)
                pending = None
            elif value == "}":
                if scopes:
                    scopes.pop()
            statement_start = True
            continue
        if statement_start and kind == "ident" and value in KINDS and i + 1 < len(tokens):
            next_kind, name, _ = tokens[i + 1]
            if next_kind == "ident":
                enclosing = [s for s in scopes if s]
                found.append((value, name, ".".join(enclosing + [name]), line))
                if value != "rpc":
                    pending = name
        statement_start = False
    return found


def documented_words(markdown):
    """Every backticked span of `markdown`, stripped, fenced code blocks left out."""
    without_fences = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    return {span.strip() for span in re.findall(r"`([^`\n]+)`", without_fences)}


class ApiDocTest(unittest.TestCase):
    def test_every_proto_name_is_documented(self):
        protos = sorted(PROTO_ROOT.rglob("*.proto"))
        self.assertTrue(protos, f"no .proto files under {PROTO_ROOT}")
        self.assertTrue(API_DOC.is_file(), f"{API_DOC} is missing")
        words = documented_words(API_DOC.read_text(encoding="utf-8"))
        missing = []
        count = 0
        for proto in protos:
            for kind, name, qualified, line in declarations(proto):
                count += 1
                if name not in words:
                    where = proto.relative_to(SOURCE_DIR)
                    missing.append(f"  {kind} {qualified} ({where}:{line}): `{name}` is not in docs/api.md")
        # A tokenizer that found nothing would pass vacuously.
        self.assertGreater(count, 50, "suspiciously few declarations found in the protos")
        if missing:
            self.fail(f"{len(missing)} of {count} proto names are not documented in docs/api.md as a backticked "
                      "word:\n" + "\n".join(missing))

    def test_the_tokenizer_sees_nested_names_and_ignores_lookalikes(self):
        text = """
        // message NotThis {}
        service S { rpc R(A) returns (B); }
        message Outer {
          string message = 1;        /* enum NorThis */
          string note = 2 [(x) = "message NorThat"];
          message Inner { enum E { E_UNSPECIFIED = 0; } }
          oneof kind { Inner inner = 3; }
        }
        """
        with tempfile.TemporaryDirectory() as tmp:
            sample = pathlib.Path(tmp) / "sample.proto"
            sample.write_text(text, encoding="utf-8")
            found = [(kind, qualified) for kind, _, qualified, _ in declarations(sample)]
        self.assertEqual(
            found,
            [("service", "S"), ("rpc", "S.R"), ("message", "Outer"), ("message", "Outer.Inner"),
             ("enum", "Outer.Inner.E")],
        )


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
