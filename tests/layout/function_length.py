#!/usr/bin/env python3
"""Function lengths in C++ sources, for the layout test (no function in services/ or common/ is
longer than 80 lines; issue 16).

A small scanner, not a compiler: it drops comments, string and character literals (raw strings
too), then follows braces. A `{` opened at namespace or class scope whose header (the text since
the last `;`, `{` or `}` there) has a parameter list and is not a namespace, class, struct, union
or enum opens a function; its length counts the lines from its signature's first line to its
closing brace. Lambdas and local classes count in the function that holds them. The code is
clang-formatted, which keeps it within what this understands.

    python3 tests/layout/function_length.py services common    # prints every function > 80 lines
"""
import pathlib
import re
import sys

LIMIT = 80
_SCOPES = re.compile(r"^(?:template\s*<.*>\s*)?(namespace|class|struct|union|enum|extern\s+\"C\")\b", re.S)
_RAW = re.compile(r'R"([^()\\ ]{0,16})\(')


def _blank(text):
    """`text` with comments and literals replaced by spaces (newlines kept, so lines stay)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c == "R" and _RAW.match(text, i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = _RAW.match(text, i)
            end = text.find(")" + m.group(1) + '"', m.end())
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:j])); i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():  # a digit separator: 1'000
                out.append(c); i += 1; continue
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (min(j, n) - i - 1) + c); i = j + 1
        elif c == "#" and (i == 0 or text[i - 1] == "\n"):  # a preprocessor line (and its continuations)
            j = i
            while True:
                j = text.find("\n", j)
                if j < 0 or text[j - 1] != "\\":
                    break
                j += 1
            j = n if j < 0 else j
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        else:
            out.append(c); i += 1
    return "".join(out)


def functions(text):
    """[(first line, last line, signature)] of every function defined at namespace or class scope."""
    code = _blank(text)
    found, stack, header_start = [], [], 0  # stack of (kind, start line, signature)
    line = 1
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        if c not in "{};":
            continue
        in_function = any(kind == "function" for kind, _, _ in stack)
        if c == "{":
            if in_function:
                stack.append(("block", line, ""))
            else:
                header = code[header_start:i].strip()
                first = line - code[header_start:i].lstrip().count("\n")
                if _SCOPES.match(header) or "(" not in header or header.endswith("="):
                    stack.append(("scope", line, ""))
                else:
                    stack.append(("function", first, " ".join(header.split())[:100]))
            header_start = i + 1
        elif c == "}":
            kind, start, signature = stack.pop() if stack else ("scope", line, "")
            if kind == "function":
                found.append((start, line, signature))
            header_start = i + 1
        elif not in_function:
            header_start = i + 1
    return found


def too_long(paths, limit=LIMIT):
    """[(path, first line, length, signature)] of the functions in `paths` over `limit` lines."""
    out = []
    for path in paths:
        for start, end, signature in functions(path.read_text()):
            if end - start + 1 > limit:
                out.append((path, start, end - start + 1, signature))
    return out


def sources(root, folders):
    return sorted(p for f in folders for p in (root / f).rglob("*") if p.suffix in (".cc", ".h"))


if __name__ == "__main__":
    root = pathlib.Path.cwd()
    for path, start, length, signature in too_long(sources(root, sys.argv[1:] or ["services", "common"])):
        print(f"{path.relative_to(root)}:{start}: {length} lines: {signature}")
