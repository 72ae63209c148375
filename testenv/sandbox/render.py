#!/usr/bin/env python3
"""Renders src/instance/runner.sh the way src/instance/userdata.rs does.

The sandbox harness and the benchmark use it, so they need no cargo build.
It must stay byte-for-byte identical to the Rust renderer: the Rust tests
compare the two on the same settings.

    python3 testenv/sandbox/render.py SETTINGS.json [--template PATH] > script.sh

SETTINGS.json maps the script's setting names (JIT_CONFIG, RUNNER_NAME, ...)
to strings; missing names render as empty strings, except those with a
default below.
"""

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "src" / "instance" / "runner.sh"
MARKER = "# @@SETTINGS@@"

# Order and names of the settings, as written into the script.
NAMES = [
    "JIT_CONFIG",
    "RUNNER_NAME",
    "RUNNER_LABEL",
    "RUNNER_USER",
    "RUNNER_DIR",
    "RUNNER_VERSION",
    "RUNNER_SHA256_X64",
    "RUNNER_SHA256_ARM64",
    "RUNNER_UPDATE",
    "RUNNER_SUDO",
    "INSTANCE_STORE",
    "INSTALL_LIBICU",
    "RUNNER_DOWNLOAD_URL",
    "MAX_LIFETIME_SECONDS",
    "IDLE_TIMEOUT_SECONDS",
    "PRE_RUNNER_SCRIPT",
    "LOG_FILE",
]

DEFAULTS = {
    "RUNNER_USER": "runner",
    "RUNNER_UPDATE": "1",
    "RUNNER_SUDO": "1",
    "INSTANCE_STORE": "1",
    "RUNNER_DOWNLOAD_URL": "https://github.com/actions/runner/releases/download/"
    "v{version}/actions-runner-linux-{arch}-{version}.tar.gz",
    "MAX_LIFETIME_SECONDS": "21600",
    "IDLE_TIMEOUT_SECONDS": "900",
    "LOG_FILE": "/var/log/ec2-spot-runner.log",
}


def shell_quote(value: str) -> str:
    """Single-quotes a value for bash: ' becomes '\\'' and nothing else is special."""
    if "\0" in value:
        raise ValueError("a shell value cannot hold a NUL byte")
    return "'" + value.replace("'", "'\\''") + "'"


# Shellcheck takes `$(...)`, quotes or a trailing backslash inside the quoted
# values for mistakes; the braces carry the directive over the whole block.
BLOCK_HEAD = "# shellcheck disable=SC1003,SC2016,SC2089 # the values are data\n{\n"
BLOCK_TAIL = "}\n"


def settings_block(settings: dict) -> str:
    unknown = set(settings) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown settings: {sorted(unknown)}")
    lines = [BLOCK_HEAD]
    for name in NAMES:
        value = settings.get(name, DEFAULTS.get(name, ""))
        lines.append(f"readonly {name}={shell_quote(str(value))}\n")
    lines.append(BLOCK_TAIL)
    return "".join(lines)


def is_dropped(line: str) -> bool:
    """Blank lines and comment lines go; shellcheck directives stay.

    Kept lines lose their indentation. Both are safe because the template
    has no heredocs and no multi-line strings.
    """
    stripped = line.strip(" \t")
    if not stripped:
        return True
    return stripped.startswith("#") and not stripped.startswith("# shellcheck")


def render(settings: dict, template: str) -> str:
    out = []
    replaced = False
    # An empty last piece (the template's final newline) is a blank line: dropped.
    for index, line in enumerate(template.split("\n")):
        if index == 0:
            out.append(line + "\n")
        elif line == MARKER and not replaced:
            out.append(settings_block(settings))
            replaced = True
        elif not is_dropped(line):
            out.append(line.lstrip(" \t") + "\n")
    if not replaced:
        raise ValueError(f"template has no {MARKER!r} line")
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("settings", help="JSON file of settings, or - for stdin")
    parser.add_argument("--template", default=str(TEMPLATE))
    args = parser.parse_args()
    raw = sys.stdin.read() if args.settings == "-" else Path(args.settings).read_text()
    script = render(json.loads(raw), Path(args.template).read_text())
    sys.stdout.write(script)
    return 0


if __name__ == "__main__":
    sys.exit(main())
