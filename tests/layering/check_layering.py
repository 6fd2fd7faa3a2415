#!/usr/bin/env python3
"""Checks every project #include against the layering the design allows.

Each library folder may include only the folders listed for it (its own
included); a folder not listed may include anything (tools/, the programs'
main.cpp, tests/). Libraries never include tools/ or tests/. Includes of
third-party headers are not checked.

Usage: check_layering.py SOURCE_DIR
First checks itself on a scratch tree with a known violation, then prints
every violation in SOURCE_DIR and exits 1 if there is one.
"""
import os
import re
import sys
import tempfile

PROJECT_ROOTS = ("common", "daemon", "federated", "tools", "tests", "edgellm")

ALLOWED = {
    "common": ["common"],
    "daemon/grammar": ["common", "daemon/grammar"],
    "daemon/engine": ["common", "daemon/grammar", "daemon/engine"],
    "daemon/chat": ["common", "daemon/grammar", "daemon/chat"],
    "daemon/ops": ["common", "daemon/ops"],
    "daemon/train": ["common", "daemon/engine", "daemon/train"],
    "daemon/serve": ["common", "daemon/grammar", "daemon/engine", "daemon/chat", "daemon/ops", "daemon/train",
                     "daemon/serve", "edgellm"],
    "daemon/ota": ["common", "daemon/ops", "daemon/ota", "federated/protocol", "federated/release",
                   "federated/channel", "edgellm"],
    "federated/protocol": ["common", "federated/protocol"],
    "federated/release": ["common", "federated/protocol", "federated/release", "edgellm"],
    "federated/adapter": ["common", "daemon/engine", "federated/protocol", "federated/adapter"],
    "federated/channel": ["common", "daemon/ops", "federated/protocol", "federated/channel"],
    "federated/client": ["common", "daemon/engine", "daemon/ops", "daemon/train", "federated/protocol",
                         "federated/adapter", "federated/channel", "federated/client", "edgellm"],
    "federated/aggregator": ["common", "daemon/engine", "daemon/ops", "daemon/train", "federated/protocol",
                             "federated/adapter", "federated/release", "federated/aggregator", "edgellm"],
}
# The programs' wiring may reach every library of their own tree.
PROGRAMS = {"daemon/main.cpp", "federated/aggregator/main.cpp"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def folder_of(path):
    """The ALLOWED key a file belongs to, or None."""
    for folder in sorted(ALLOWED, key=len, reverse=True):
        if path.startswith(folder + "/"):
            return folder
    return None


def violations(root):
    found = []
    for directory, _, files in os.walk(root):
        relative_dir = os.path.relpath(directory, root)
        if relative_dir.split(os.sep)[0] in ("build", ".git", "node_modules") or "node_modules" in relative_dir:
            continue
        for name in files:
            if not name.endswith((".h", ".cpp")):
                continue
            path = os.path.normpath(os.path.join(relative_dir, name)).replace(os.sep, "/")
            folder = folder_of(path)
            if folder is None or path in PROGRAMS:
                continue
            with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as f:
                text = f.read()
            for included in INCLUDE.findall(text):
                if included.split("/")[0] not in PROJECT_ROOTS:
                    continue
                if not any(included.startswith(allowed + "/") for allowed in ALLOWED[folder]):
                    found.append(f"{path}: includes {included}, but {folder}/ may include only "
                                 f"{', '.join(f + '/' for f in ALLOWED[folder])}")
    return found


def self_test():
    with tempfile.TemporaryDirectory() as scratch:
        for relative, text in {
            "federated/protocol/codec.cpp": '#include "federated/protocol/codec.h"\n#include "daemon/engine/fp16.h"\n',
            "daemon/engine/model.cpp": '#include "common/str_cat.h"\n#include "absl/status/status.h"\n',
            "daemon/main.cpp": '#include "federated/client/client.h"\n',
        }.items():
            os.makedirs(os.path.join(scratch, os.path.dirname(relative)), exist_ok=True)
            with open(os.path.join(scratch, relative), "w", encoding="utf-8") as f:
                f.write(text)
        found = violations(scratch)
        return len(found) == 1 and found[0].startswith("federated/protocol/codec.cpp: includes daemon/engine/fp16.h")


def main():
    if not self_test():
        print("the checker itself fails its self-test")
        return 1
    found = violations(sys.argv[1])
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} includes break the layering")
        return 1
    print("every include follows the layering")
    return 0


if __name__ == "__main__":
    sys.exit(main())
