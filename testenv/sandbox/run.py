#!/usr/bin/env python3
"""Sandbox harness: runs a rendered user-data script, unmodified, as root in
private mount and PID namespaces, and checks what it did.

    run.py --script rendered.sh --scenario NAME --out DIR [--timeout S]
        Runs one scenario; prints a JSON result; exit 0 if every check passed,
        1 if one failed, 2 if the harness itself could not run.
    run.py settings --scenario NAME --out DIR
        Writes the settings a scenario needs (DIR/settings.json, and
        DIR/settings.nul as NAME=VALUE pairs ended by NUL bytes) plus the
        script rendered from them by render.py (DIR/reference.sh); prints the
        JSON. Render with these, then `run.py --script`.
    run.py all --out DIR [--jobs N]
        settings + render.py + run for every scenario; prints a summary.
    run.py scenarios
        Lists the scenarios, one per line: name, a tab, what it checks.

Only what cannot exist here is stubbed: shutdown/poweroff/systemctl (record
the call, then "cut the power": PID 1 of the namespace exits, which kills
every process in it), the IMDSv2 metadata service (HTTP on 127.0.0.1, passed
to the script as EC2SR_IMDS_ENDPOINT) and the runner release (a fake runner
tarball served on the 127.0.0.1 port named in RUNNER_DOWNLOAD_URL). /etc (a
copy: useradd writes to it), /opt, /home, /var/log, /var/mail, /run, /tmp and
/dev/console are private directories under DIR/root. Needs root, unshare
(util-linux) and python3; standard library only.
"""

import argparse
import concurrent.futures
import gzip
import hashlib
import http.server
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the work tree
import render  # noqa: E402  (same directory)

FAKE_RUNNER = HERE / "fake-runner"
STUBS = HERE / "stubs"
NSINIT = HERE / "nsinit.py"
FAKE_VERSION = "2.999.0"
STATE = "/run/ec2sr-test"  # the harness's own corner of the sandbox, as seen inside
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ec2-spot-runner: .*$")
INSTANCE_ID = "i-0123456789abcdef0"
SPOT_ACTION = {"action": "terminate", "time": "2026-11-28T12:34:56Z"}
HOSTILE = "'\"$(touch /tmp/pwned)`touch /tmp/pwned` \\ ünïcødé ✓ -x --flag $HOME ${PATH} ;|&<>*?~ \\'\n# not a comment\n"


class HarnessError(Exception):
    """The harness could not run the scenario (as opposed to a failed check)."""


# ---------------------------------------------------------------- scenarios

def scenario(doc, settings=None, runner=None, preinstall=(), stubs=(), hide=(), spot_after=None,
             home_modes=None, preinstall_version=None, hide_icu=False, pkg_install="fail", environment=None,
             booted_before=False, signals_ignored=False):
    return {
        "signals_ignored": signals_ignored,
        "environment": environment,
        "booted_before": booted_before,
        "preinstall_version": preinstall_version,
        "hide_icu": hide_icu,
        "pkg_install": pkg_install,
        "doc": doc,
        "settings": settings or {},
        "runner": {"job": "diag", "seconds": "0.5", "exit_code": "0", **(runner or {})},
        "preinstall": list(preinstall),
        "stubs": list(stubs),
        "hide": list(hide),
        "spot_after": spot_after,
        "home_modes": home_modes or {},
    }


PRE_OK = (
    "#!/bin/bash\n# a comment line, kept: it is data\n"
    "env > /run/ec2sr-test/record/pre-env\n"
    "date +%s.%N > /run/ec2sr-test/record/pre-ran\n"
)

SCENARIOS = {
    "job-runs": scenario(
        "download, verify and start the runner; it takes a job and exits 0; power-off follows"),
    "idle-timeout": scenario(
        "the runner never gets a job: the idle watchdog powers off after IDLE_TIMEOUT_SECONDS",
        settings={"IDLE_TIMEOUT_SECONDS": "3"}, runner={"job": "none", "seconds": "inf"}),
    "max-lifetime": scenario(
        "a job runs forever: the idle watchdog stands down, the max-lifetime one powers off",
        settings={"IDLE_TIMEOUT_SECONDS": "3", "MAX_LIFETIME_SECONDS": "6"},
        runner={"job": "diag", "seconds": "inf"}),
    "bad-checksum": scenario(
        "the download does not match its checksum: both hashes logged, power-off, no runner",
        settings={"RUNNER_SHA256_X64": "0" * 64, "RUNNER_SHA256_ARM64": "0" * 64}),
    "preinstalled": scenario(
        "a runner is already in /opt/actions-runner: no download, it runs from there",
        preinstall=["/opt/actions-runner"]),
    "runner-dir": scenario(
        "RUNNER_DIR (with a space) wins over /opt/actions-runner; no download",
        settings={"RUNNER_DIR": "/opt/custom runner"},
        preinstall=["/opt/custom runner", "/opt/actions-runner"]),
    "preinstalled-home": scenario(
        "a runner in a 0750 home of another user is made reachable and runs",
        preinstall=["/home/ubuntu/actions-runner"], home_modes={"/home/ubuntu": 0o750}),
    "pre-script-ok": scenario(
        "the pre-runner script runs as root before the runner, without the JIT config",
        settings={"PRE_RUNNER_SCRIPT": PRE_OK}),
    "pre-script-fails": scenario(
        "the pre-runner script exits 3: its output and status are logged, power-off, no runner",
        settings={"PRE_RUNNER_SCRIPT": "echo about to fail\nexit 3"}),
    "spot-notice": scenario(
        "IMDS serves a spot instance-action after 3 s: a loud WARNING line names action and time",
        runner={"job": "diag", "seconds": "8"}, spot_after=3.0),
    "hostile-values": scenario(
        "quotes, $(...), backticks, newlines, unicode in every free-text setting: all stay data",
        settings={
            "JIT_CONFIG": "@JIT@" + HOSTILE,
            "RUNNER_NAME": "-name" + HOSTILE,
            "RUNNER_LABEL": "label" + HOSTILE,
            "LOG_FILE": "/var/log/ec2 spot $(touch /tmp/pwned)/`id` runner.log",
        }),
    "bad-arch": scenario(
        "uname -m says riscv64: logged, power-off, nothing downloaded", stubs=["uname"]),
    "long-job": scenario(
        "a Runner.Worker process outlives the idle timeout: no idle power-off, the job finishes",
        settings={"IDLE_TIMEOUT_SECONDS": "3"}, runner={"job": "process", "seconds": "6"}),
    "wget-fallback": scenario(
        "no curl on the machine: the runner comes down with wget", hide=["curl"]),
    "runner-update": scenario(
        "the pre-installed runner is 2.300.0, older than RUNNER_VERSION: the verified download replaces "
        "it in place, its .env carries over",
        preinstall=["/opt/actions-runner"], preinstall_version="2.300.0"),
    "runner-update-off": scenario(
        "the same old runner with RUNNER_UPDATE off: no download, it runs as it is",
        settings={"RUNNER_UPDATE": ""}, preinstall=["/opt/actions-runner"], preinstall_version="2.300.0"),
    "libicu-absent": scenario(
        "no libicu on the machine: no package manager runs, the runner starts at once with invariant "
        "globalization and one line says so",
        hide_icu=True, pkg_install="ok", stubs=["dnf"]),
    "libicu-installed": scenario(
        "no libicu, INSTALL_LIBICU: apt-get installs it, the runner runs with full globalization",
        settings={"INSTALL_LIBICU": "1"}, hide_icu=True, pkg_install="ok"),
    "libicu-missing": scenario(
        "no libicu, INSTALL_LIBICU, and dnf fails: the runner runs with invariant globalization and a "
        "WARNING says so",
        settings={"INSTALL_LIBICU": "1"}, hide_icu=True, stubs=["dnf"]),
    "libicu-zypper": scenario(
        "no libicu, INSTALL_LIBICU, on openSUSE: zypper has no plain libicu, so the newest libicuNN_N it "
        "lists is installed",
        settings={"INSTALL_LIBICU": "1"}, hide_icu=True, pkg_install="ok", stubs=["zypper"]),
    "image-environment": scenario(
        "the image's /etc/environment (quoted PATH with /snap/bin, AGENT_TOOLSDIRECTORY, JAVA_HOME_17_X64) "
        "is the runner's environment, as a login would make it",
        preinstall=["/opt/actions-runner"],
        environment='# the image\'s\nPATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin"\n'
                    "AGENT_TOOLSDIRECTORY=/opt/hostedtoolcache\n  JAVA_HOME_17_X64='/usr/lib/jvm/temurin-17 jdk'\n"
                    "export EDITOR=vi\nHOME=/root\nnot a setting\n"),
    "outdated-runner": scenario(
        "GitHub refuses the runner as too old: with ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1 it "
        "exits 7; the log names the cause and the fix, and the machine powers off at once",
        preinstall=["/opt/actions-runner"], runner={"job": "none", "exit_code": "7"}),
    "signals-ignored": scenario(
        "the script itself starts with SIGINT and SIGQUIT ignored (as `cmd &` of a non-interactive shell "
        "starts it): the runner still starts with both at their defaults",
        preinstall=["/opt/actions-runner"], signals_ignored=True),
    "boots-again": scenario(
        "the instance booted before (its mark is on the disk) and cloud-init runs the boothook again: "
        "power-off at once, no runner, no download",
        booted_before=True),
    "no-sudo": scenario(
        "RUNNER_SUDO off: no sudoers entry for the runner user", settings={"RUNNER_SUDO": ""}),
}

ICU_LIBS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib64")


def host_icu_files():
    """The host's libicuuc files, as the script's glob finds them (the
    sandbox shares the host's /usr)."""
    found = set()
    for d in ICU_LIBS:
        for p in Path(d).glob("libicuuc.so.*"):
            found.add(os.path.realpath(p))
    return sorted(found)


def jit_for(name: str) -> str:
    # Looks like a JIT config (base64) and carries a marker that no log may show.
    return f"jit-secret-{secrets.token_hex(8)}-" + "eyJydW5uZXIiOiJmYWtlIn0=" * 40


def scenario_settings(name: str, port: int, sha: str) -> dict:
    spec = SCENARIOS[name]
    jit = jit_for(name)
    settings = {
        "JIT_CONFIG": jit,
        "RUNNER_NAME": f"sandbox-{name}",
        "RUNNER_LABEL": "ec2-spot-runner-sandbox",
        "RUNNER_USER": "runner",
        "RUNNER_DIR": "",
        "RUNNER_VERSION": FAKE_VERSION,
        "RUNNER_SHA256_X64": sha,
        "RUNNER_SHA256_ARM64": sha,
        "RUNNER_UPDATE": "1",
        "RUNNER_SUDO": "1",
        "INSTANCE_STORE": "1",
        "INSTALL_LIBICU": "",
        "RUNNER_DOWNLOAD_URL": f"http://127.0.0.1:{port}/actions/runner/releases/download/"
        "v{version}/actions-runner-linux-{arch}-{version}.tar.gz",
        "MAX_LIFETIME_SECONDS": "120",
        "IDLE_TIMEOUT_SECONDS": "60",
        "PRE_RUNNER_SCRIPT": "",
        "LOG_FILE": "/var/log/ec2-spot-runner.log",
    }
    for key, value in spec["settings"].items():
        settings[key] = value.replace("@JIT@", jit)
    return settings


# ---------------------------------------------------------------- fixtures

def fake_tarball(pad_mb: int = 0) -> bytes:
    """The fake runner release, byte-for-byte reproducible (so its checksum
    can be rendered into a script before the run). Cached per content."""
    files = sorted(p for p in FAKE_RUNNER.rglob("*") if p.is_file())
    key = hashlib.sha256()
    for p in files:
        key.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    key.update(f"pad={pad_mb}".encode())
    cache = Path(tempfile.gettempdir()) / "ec2sr-sandbox-cache" / f"runner-{key.hexdigest()[:16]}.tar.gz"
    if cache.exists():
        return cache.read_bytes()
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1 if pad_mb else 6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
            def add(name, data=None, mode=0o755):
                info = tarfile.TarInfo(name)
                info.mtime = 0
                info.uid = info.gid = 1001
                info.mode = mode
                if data is None:
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                else:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            add("bin")
            for p in files:
                add(p.relative_to(FAKE_RUNNER).as_posix(), p.read_bytes(), 0o755)
            if pad_mb:
                # Incompressible filler, so a benchmark can move a runner-sized archive.
                add("bin/padding", random.Random(0).randbytes(pad_mb << 20), 0o644)
    data = raw.getvalue()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(cache)
    return data


_handed_out = set()


def free_port() -> int:
    """A port free now for the download server; never the same one twice in
    one process, so scenarios run side by side do not collide."""
    import socket
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def parse_settings(script: str, names=None) -> dict:
    """Reads the `readonly NAME='...'` lines back, strictly: only the
    renderer's own quoting ('...' pieces joined by \\') is accepted, and no
    shell ever evaluates them here."""
    settings = {}
    for match in re.finditer(r"^readonly ([A-Z0-9_]+)=", script, re.M):
        name, i, value = match.group(1), match.end(), []
        while i < len(script) and script[i] != "\n":
            if script[i] == "'":
                end = script.index("'", i + 1)
                value.append(script[i + 1:end])
                i = end + 1
            elif script.startswith("\\'", i):
                value.append("'")
                i += 2
            else:
                raise HarnessError(f"setting {name}: unexpected {script[i]!r} outside quotes")
        settings[name] = "".join(value)
    missing = set(render.NAMES if names is None else names) - set(settings)
    if missing:
        raise HarnessError(f"script lacks settings {sorted(missing)}")
    return settings


# ---------------------------------------------------------------- servers

class Server:
    def __init__(self, handler, port: int):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def imds_handler(state: dict):
    """IMDSv2 only: a token from PUT /latest/api/token (with its TTL header)
    is required on every metadata GET; a GET without one is answered 401 and
    remembered as an IMDSv1 read."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, body=b"", ctype="text/plain"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self):
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            ok = self.path == "/latest/api/token" and ttl.isdigit() and 1 <= int(ttl) <= 21600
            state["requests"].append({"method": "PUT", "path": self.path, "ttl": ttl, "ok": ok})
            if not ok:
                return self.reply(400)
            token = secrets.token_urlsafe(24)
            state["tokens"].add(token)
            self.reply(200, token.encode())

        def do_GET(self):
            token = self.headers.get("X-aws-ec2-metadata-token")
            valid = token in state["tokens"]
            state["requests"].append({"method": "GET", "path": self.path, "token": valid})
            if not valid:
                return self.reply(401)
            item = self.path.removeprefix("/latest/meta-data/")
            if item == "spot/instance-action":
                after = state["spot_after"]
                if after is not None and time.time() - state["start"] >= after:
                    return self.reply(200, json.dumps(SPOT_ACTION).encode(), "application/json")
                return self.reply(404)
            known = {"instance-id": "i-0123456789abcdef0", "instance-type": "t4g.nano",
                     "instance-life-cycle": "spot", "placement/availability-zone": "us-east-1a"}
            if item in known:
                return self.reply(200, known[item].encode())
            self.reply(404)

    return Handler


def download_handler(state: dict):
    pattern = re.compile(r"^/.*/actions-runner-linux-(x64|arm64)-(\d+\.\d+\.\d+)\.tar\.gz$")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            ok = bool(pattern.match(self.path))
            state["requests"].append({"path": self.path, "status": 200 if ok else 404,
                                      "user_agent": self.headers.get("User-Agent", "")})
            body = state["tarball"] if ok else b"not found\n"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


# ---------------------------------------------------------------- the run

def host_path(root: Path, inside: str) -> Path:
    """Where a path of the sandbox lives on the host (only the private trees)."""
    for private in ("/etc", "/opt", "/home", "/var/log", "/var/mail", "/run", "/tmp"):
        if inside == private or inside.startswith(private + "/"):
            return root / inside.lstrip("/")
    raise HarnessError(f"{inside} is outside the sandbox's private directories")


def prepare_root(out: Path, spec: dict, settings: dict, script: Path, tarball: bytes) -> Path:
    root = out / "root"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    subprocess.run(["cp", "-a", "/etc", str(root / "etc")], check=True)
    for d in ("opt", "home", "var/log", "var/mail", "var/lib", "run", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    (root / "console").write_bytes(b"")
    os.chmod(root / "console", 0o600)
    state = host_path(root, STATE)
    (state / "bin").mkdir(parents=True)
    (state / "record").mkdir()
    os.chmod(state / "record", 0o1777)
    for name in ("shutdown", "poweroff", "systemctl"):
        shutil.copy(STUBS / "poweroff", state / "bin" / name)
    # No real package manager may run: the sandbox shares the host's /usr.
    for name in ("apt-get", "apt-cache", *[s for s in spec["stubs"] if s in ("dnf", "yum", "zypper")]):
        shutil.copy(STUBS / "pkg", state / "bin" / name)
    (state / "pkg.conf").write_text(f"install={spec['pkg_install']}\n")
    for name in spec["stubs"]:
        if name not in ("dnf", "yum", "zypper"):
            shutil.copy(STUBS / name, state / "bin" / name)
    # A machine with sudo installed has this directory.
    (root / "etc/sudoers.d").mkdir(exist_ok=True)
    env_file = root / "etc/environment"
    if spec["environment"] is not None:
        env_file.write_text(spec["environment"])
    elif env_file.exists():
        env_file.unlink()
    if spec["booted_before"]:
        (root / "var/lib/ec2-spot-runner").mkdir(parents=True)
        (root / "var/lib/ec2-spot-runner" / INSTANCE_ID).write_text("")
    shutil.copy(script, state / "user-data.sh")
    conf = "".join(f"{k}={v}\n" for k, v in spec["runner"].items())
    (state / "fake-runner.conf").write_text(conf)
    for parent, mode in spec["home_modes"].items():
        p = host_path(root, parent)
        p.mkdir(parents=True, exist_ok=True)
        os.chmod(p, mode)
    for where in spec["preinstall"]:
        target = host_path(root, where)
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            tar.extractall(target, filter="tar")
        if spec["preinstall_version"]:
            deps = target / "bin/Runner.Listener.deps.json"
            deps.write_text(deps.read_text().replace(FAKE_VERSION, spec["preinstall_version"]))
            (target / ".env").write_text("LANG=C.UTF-8\nIMAGE_SETTING=kept\n")
        for p in [target, *target.rglob("*")]:
            os.lchown(p, 0, 0)
    return root


def pin_namespace(unshare_pid: int, deadline: float):
    """The sandbox's PID namespace, as its name ("pid:[INODE]") and an open
    fd. The fd keeps the namespace object alive, so its inode number cannot
    pass to a namespace created later (another scenario's) while the
    cleanup looks for processes by that number."""
    while time.time() < deadline:
        try:
            children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
        except OSError:  # no /proc/PID/task/TID/children: look for the parent link
            children = [e.name for e in Path("/proc").iterdir() if e.name.isdigit()
                        and f"\nPPid:\t{unshare_pid}\n" in (read(e / "status") or "")]
        if children:
            try:
                fd = os.open(f"/proc/{int(children[0])}/ns/pid", os.O_RDONLY)
            except OSError:
                return None, None
            return os.readlink(f"/proc/self/fd/{fd}"), fd
        time.sleep(0.01)
    return None, None


def processes_in(ns: str):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns/pid") == ns:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def read(path: Path, binary=False):
    try:
        return path.read_bytes() if binary else path.read_text(errors="replace")
    except OSError:
        return None


def run_scenario(script: Path, name: str, out: Path, timeout: float, pad_mb: int = 0) -> dict:
    if name not in SCENARIOS:
        raise HarnessError(f"unknown scenario {name!r}; see `run.py scenarios`")
    if os.geteuid() != 0:
        raise HarnessError("needs root (unshare of mount and PID namespaces)")
    if not shutil.which("unshare"):
        raise HarnessError("needs unshare (util-linux)")
    spec = SCENARIOS[name]
    if spec["hide_icu"] and not host_icu_files():
        raise HarnessError(f"{name} hides this machine's libicuuc and the package manager stand-in brings it "
                           "back, but there is none here: install libicu (Debian: libicu72)")
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    text = script.read_text()
    settings = parse_settings(text)
    url = settings["RUNNER_DOWNLOAD_URL"]
    m = re.match(r"^http://127\.0\.0\.1:(\d+)/", url)
    if not m:
        # Never let a test download from anywhere but this machine.
        raise HarnessError(f"RUNNER_DOWNLOAD_URL must be http://127.0.0.1:PORT/...; got {url!r}")
    tarball = fake_tarball(pad_mb)
    root = prepare_root(out, spec, settings, script, tarball)
    state_dir = host_path(root, STATE)

    pwned_before = {p: (p.stat().st_mtime if p.exists() else None) for p in [Path("/tmp/pwned")]}
    imds_state = {"tokens": set(), "requests": [], "spot_after": spec["spot_after"], "start": time.time()}
    dl_state = {"requests": [], "tarball": tarball}
    servers = []
    try:
        servers.append(Server(download_handler(dl_state), int(m.group(1))))
        imds = Server(imds_handler(imds_state), 0)
        servers.append(imds)

        binds = [[str(root / "etc"), "/etc"], [str(root / "opt"), "/opt"], [str(root / "home"), "/home"],
                 [str(root / "var/log"), "/var/log"], [str(root / "var/lib"), "/var/lib"],
                 [str(root / "run"), "/run"],
                 [str(root / "tmp"), "/tmp"], [str(root / "console"), "/dev/console"]]
        for mail in ("/var/mail", "/var/spool/mail"):
            if os.path.isdir(mail) and not os.path.islink(mail):
                binds.append([str(root / "var/mail"), mail])
        for command in spec["hide"]:
            for path in sorted({os.path.realpath(p) for p in _which_all(command)}):
                binds.append(["/dev/null", path])
        if spec["hide_icu"]:
            for path in host_icu_files():
                binds.append(["/dev/null", path])
        cfg = {
            "binds": binds,
            "state_dir": STATE,
            "signals_ignored": spec["signals_ignored"],
            "script": f"{STATE}/user-data.sh",
            "env": {
                "PATH": f"{STATE}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "EC2SR_IMDS_ENDPOINT": f"http://127.0.0.1:{imds.port}",
                # What cloud-init gives a boothook.
                "INSTANCE_ID": INSTANCE_ID,
                "LANG": "C.UTF-8",
            },
        }
        imds_state["start"] = time.time()
        timed_out, leftovers, ns_found = run_namespace(out, cfg, timeout)
    finally:
        for server in servers:
            server.stop()

    result = collect(name, spec, settings, root, state_dir, imds_state, dl_state, timed_out,
                     leftovers, pwned_before, ns_found)
    (out / "result.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return result


def run_namespace(out: Path, cfg: dict, timeout: float):
    """Runs nsinit.py with `cfg` as PID 1 of new mount and PID namespaces,
    up to `timeout` seconds; then ends the namespace (its PID 1 takes every
    process with it) and makes sure nothing of it is left. Returns
    (timed out, pids that had to be killed, whether the namespace was seen)."""
    (out / "nsinit.json").write_text(json.dumps(cfg, indent=1))
    proc = None
    ns = ns_fd = None
    timed_out = False
    leftovers = []
    try:
        with open(out / "nsinit.log", "wb") as log:
            proc = subprocess.Popen(
                ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
                 sys.executable, str(NSINIT), str(out / "nsinit.json")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_die_with_parent)
        ns, ns_fd = pin_namespace(proc.pid, time.time() + 5)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
    finally:
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        if ns:
            for _ in range(50):
                leftovers = processes_in(ns)
                if not leftovers:
                    break
                for pid in leftovers:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)
        if ns_fd is not None:
            os.close(ns_fd)
    return timed_out, leftovers, ns is not None


def _die_with_parent():
    # Should the harness itself be killed outright, unshare goes too, and its
    # --kill-child takes the namespace with it.
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _which_all(command: str):
    found = []
    for d in os.environ.get("PATH", "").split(":") + ["/usr/local/bin", "/usr/bin", "/bin"]:
        p = os.path.join(d, command)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            found.append(p)
    return found


def collect(name, spec, settings, root, state_dir, imds_state, dl_state, timed_out, leftovers,
            pwned_before, ns_seen) -> dict:
    log_path = host_path(root, settings["LOG_FILE"])
    log = read(log_path) or ""
    console = read(root / "console") or ""
    output = read(state_dir / "script-output.log") or ""
    pre_log_path = settings["LOG_FILE"]
    pre_log_path = (pre_log_path[:-4] if pre_log_path.endswith(".log") else pre_log_path) + ".pre-runner.log"
    pre_log = read(host_path(root, pre_log_path)) or ""
    calls = (read(state_dir / "poweroff-calls") or "").splitlines()
    t0 = read(state_dir / "t0")
    t0 = float(t0) if t0 else None
    rec = state_dir / "record"
    exec_time = read(rec / "exec-time")
    runner = None
    if exec_time:
        argv = (read(rec / "argv", True) or b"").split(b"\0")[:-1]
        env = (read(rec / "env", True) or b"").split(b"\0")[:-1]
        runner = {
            "argv": [a.decode(errors="surrogateescape") for a in argv],
            "user": (read(rec / "user") or "").strip(),
            "uid": int((read(rec / "uid") or "-1").strip()),
            "groups": (read(rec / "groups") or "").split(),
            "cwd": (read(rec / "cwd") or "").rstrip("\n"),
            "env": sorted(e.decode(errors="replace").split("=", 1)[0] for e in env),
            "_env_raw": b"\0".join(env),
            "exit_code": (read(rec / "exit-code") or "").strip() or None,
            "sigign": int((read(rec / "sigign") or "-1").strip() or "-1", 16),
        }
    reasons = [line.split("ec2-spot-runner: powering off: ", 1)[1]
               for line in log.splitlines() if "ec2-spot-runner: powering off: " in line]
    script_exit = read(state_dir / "script-exit")
    poweroff_at = None
    if calls:
        poweroff_at = float(calls[0].split(" ", 1)[0])
    result = {
        "scenario": name,
        "doc": spec["doc"],
        "passed": False,
        "failures": [],
        "timed_out": timed_out,
        "poweroff_called": bool(calls),
        "poweroff_calls": [c.split(" ", 1)[1] for c in calls],
        "reason": reasons[0] if reasons else None,
        "runner": None if runner is None else {k: v for k, v in runner.items() if not k.startswith("_")},
        "elapsed_to_exec": round(float(exec_time) - t0, 4) if exec_time and t0 else None,
        "elapsed_to_poweroff": round(poweroff_at - t0, 4) if poweroff_at and t0 else None,
        "script_exit_status": int(script_exit) if script_exit else None,
        "download_requests": dl_state["requests"],
        "imds_requests": len(imds_state["requests"]),
        "imds_v1_requests": [r for r in imds_state["requests"] if r["method"] == "GET" and not r["token"]],
        "leftover_processes": leftovers,
        "log": log,
        "console": console,
        "script_output": output,
        "pre_runner_log": pre_log,
    }
    checks = Checks(result, settings, runner, root, state_dir, pwned_before, ns_seen,
                    hashlib.sha256(dl_state["tarball"]).hexdigest())
    checks.common()
    getattr(checks, "check_" + name.replace("-", "_"))()
    result["failures"] = checks.failures
    result["passed"] = not checks.failures
    return result


class Checks:
    def __init__(self, r, settings, runner, root, state_dir, pwned_before, ns_seen, served_sha):
        self.r, self.s, self.runner, self.root, self.state = r, settings, runner, root, state_dir
        self.pwned_before, self.ns_seen, self.served_sha = pwned_before, ns_seen, served_sha
        self.failures = []
        jit = settings["JIT_CONFIG"]
        m = re.search(r"jit-secret-[0-9a-f]{8,}", jit)
        self.marker = m.group(0) if m else jit

    def expect(self, ok, what):
        if not ok:
            self.failures.append(what)

    def common(self):
        r = self.r
        self.expect(self.ns_seen, "the sandbox never started")
        self.expect(not r["timed_out"], "timed out before the machine powered off")
        self.expect(r["poweroff_called"], "power-off was never called")
        self.expect(r["reason"] is not None, "no 'powering off: <reason>' line in the log")
        self.expect(not r["leftover_processes"], f"processes left behind: {r['leftover_processes']}")
        lines = r["log"].splitlines()
        self.expect(bool(lines), "the log file is empty or missing")
        bad = [line for line in lines if not LOG_LINE.match(line)]
        self.expect(not bad, f"log lines not in the 'TIMESTAMP ec2-spot-runner: message' form: {bad[:3]}")
        self.expect(any(line in r["console"] for line in lines[:1]), "the log does not reach the console")
        self.expect(lines[:1] and lines[0] in r["script_output"], "the log does not reach stderr")
        leaks = {
            "log": r["log"], "console": r["console"], "script output": r["script_output"],
            "pre-runner log": r["pre_runner_log"],
            "watchdog file": read(self.state.parent / "ec2-spot-runner" / "watchdog.sh") or "",
        }
        for where, text in leaks.items():
            self.expect(self.marker not in text, f"the JIT config shows in the {where}")
        self.expect(not r["imds_v1_requests"], "metadata read without an IMDSv2 token")
        # On a later boot the unit is the first boot's; this boot only powers off.
        if not SCENARIOS[r["scenario"]]["booted_before"]:
            self.reboot_unit()
        self.expect(not (self.state / "record" / "config-called").exists(), "config.sh was called")
        self.expect(not (self.root / "tmp" / "pwned").exists(), "something ran $(touch /tmp/pwned) in the sandbox")
        for p, mtime in self.pwned_before.items():
            now = p.stat().st_mtime if p.exists() else None
            self.expect(now == mtime, f"{p} was created or touched on the host")
        if self.runner:
            self.expect(self.runner["user"] == self.s["RUNNER_USER"],
                        f"run.sh ran as {self.runner['user']!r}, not {self.s['RUNNER_USER']!r}")
            self.expect(self.runner["uid"] not in (0, -1), "run.sh ran as root")
            self.expect(self.runner["argv"] == [], f"run.sh got arguments: {len(self.runner['argv'])}")
            env = self.runner["_env_raw"].split(b"\0")
            want = b"ACTIONS_RUNNER_INPUT_JITCONFIG=" + self.s["JIT_CONFIG"].encode()
            self.expect(want in env, "run.sh's ACTIONS_RUNNER_INPUT_JITCONFIG is not exactly the JIT config")
            self.expect(not [e for e in env if self.marker.encode() in e and e != want],
                        "the JIT config is in another variable of the runner's environment")
            self.expect("EC2SR_IMDS_ENDPOINT" not in self.runner["env"],
                        "the bootstrap's environment leaked into the runner's")
            invariant = "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT" in self.runner["env"]
            self.expect(invariant == (self.r["scenario"] in ("libicu-missing", "libicu-absent")),
                        f"DOTNET_SYSTEM_GLOBALIZATION_INVARIANT {'set' if invariant else 'not set'} for run.sh")
            self.expect(b"ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1" in env,
                        "run.sh was not asked to exit with 7 when GitHub refuses it as outdated")
            # A runner started in the background of a non-interactive shell
            # ignores SIGINT and SIGQUIT, and so would every step (.NET keeps
            # an ignored signal ignored for its children).
            ignored = self.runner["sigign"] & ((1 << (signal.SIGINT - 1)) | (1 << (signal.SIGQUIT - 1)))
            self.expect(self.runner["sigign"] >= 0 and not ignored,
                        f"run.sh started with SIGINT or SIGQUIT ignored (SigIgn {self.runner['sigign']:#x})")
            sudoers = self.root / "etc/sudoers.d/90-ec2-spot-runner"
            if self.s["RUNNER_SUDO"]:
                self.expect((read(sudoers) or "") == f"{self.s['RUNNER_USER']} ALL=(ALL) NOPASSWD:ALL\n",
                            f"no passwordless sudo for {self.s['RUNNER_USER']} in {sudoers.name}")
                self.expect(sudoers.exists() and (sudoers.stat().st_mode & 0o777) == 0o440,
                            "the sudoers file is not mode 0440 (sudo ignores it otherwise)")
            else:
                self.expect(not sudoers.exists(), "a sudoers file was written although RUNNER_SUDO is off")
        calls = (read(self.state / "record" / "pkg-calls") or "").splitlines()
        if self.s.get("INSTALL_LIBICU") != "1":
            self.expect(not calls, f"a package manager ran although INSTALL_LIBICU is off: {calls}")

    def reboot_unit(self):
        unit = self.root / "etc/systemd/system/ec2-spot-runner-rebooted.service"
        text = read(unit) or ""
        self.expect("ConditionPathExists=!/run/ec2-spot-runner\n" in text and "ExecStart=-/bin/bash /run/ec2sr-test/user-data.sh --rebooted\n" in text
                    and "ExecStart=/bin/systemctl --no-block poweroff\n" in text,
                    "the reboot unit is missing or wrong")
        link = self.root / "etc/systemd/system/sysinit.target.wants/ec2-spot-runner-rebooted.service"
        self.expect(link.is_symlink() and os.readlink(link) == "/etc/systemd/system/ec2-spot-runner-rebooted.service",
                    "the reboot unit is not wanted by sysinit.target")
        self.expect(self.marker not in text, "the JIT config shows in the reboot unit")

    # -- per scenario

    def runner_finished(self):
        self.expect(self.runner is not None, "run.sh never started")
        self.expect((self.r["reason"] or "").startswith("runner finished (run.sh exit status 0)"),
                    f"power-off reason is {self.r['reason']!r}, not the runner finishing")
        self.expect(self.r["script_exit_status"] == 0, f"script exit status {self.r['script_exit_status']}")
        self.expect(self.r["poweroff_calls"][:1] == ["shutdown -h now"],
                    f"power-off went through {self.r['poweroff_calls']}, not `shutdown -h now`")

    def downloads(self, n):
        got = [d for d in self.r["download_requests"] if d["status"] == 200]
        self.expect(len(got) == n, f"{len(got)} runner downloads, expected {n}")

    def runs_in(self, path):
        if self.runner:
            self.expect(self.runner["cwd"] == path, f"run.sh ran in {self.runner['cwd']!r}, not {path!r}")

    def check_job_runs(self):
        self.runner_finished()
        self.downloads(1)
        self.runs_in("/opt/actions-runner")
        self.expect("runner checksum verified" in self.r["log"], "no checksum verification logged")

    def check_idle_timeout(self):
        idle = int(self.s["IDLE_TIMEOUT_SECONDS"])
        self.expect(self.runner is not None, "run.sh never started")
        self.expect("idle timeout" in (self.r["reason"] or ""), f"reason {self.r['reason']!r} is not the idle timeout")
        t = self.r["elapsed_to_poweroff"]
        self.expect(t is not None and idle - 1 <= t <= idle + 5, f"idle power-off after {t}s, expected ~{idle}s")

    def check_max_lifetime(self):
        most = int(self.s["MAX_LIFETIME_SECONDS"])
        self.expect(self.runner is not None, "run.sh never started")
        self.expect("max lifetime" in (self.r["reason"] or ""), f"reason {self.r['reason']!r} is not the max lifetime")
        self.expect("idle watchdog stands down" in self.r["log"], "the idle watchdog did not see the job")
        t = self.r["elapsed_to_poweroff"]
        self.expect(t is not None and most - 1 <= t <= most + 5, f"max-lifetime power-off after {t}s, expected ~{most}s")

    def check_bad_checksum(self):
        self.expect(self.runner is None, "run.sh ran although the download failed verification")
        self.expect("checksum mismatch" in (self.r["reason"] or ""), f"reason {self.r['reason']!r}")
        self.expect(self.s["RUNNER_SHA256_X64"] in self.r["log"] and self.served_sha in self.r["log"],
                    "the log does not show both the expected and the actual hash")
        self.expect(self.r["script_exit_status"] not in (None, 0),
                    f"script exit status {self.r['script_exit_status']}, expected non-zero")
        self.expect(not (self.root / "opt" / "actions-runner").exists(), "the unverified runner was installed")
        left = sorted(p.name for p in (self.root / "opt").glob(".ec2-spot-runner.*"))
        self.expect(not left, f"the unverified download was left behind: {left}")

    def check_preinstalled(self):
        self.runner_finished()
        self.downloads(0)
        self.runs_in("/opt/actions-runner")
        self.expect(f"is {FAKE_VERSION}, not older than {FAKE_VERSION}" in self.r["log"],
                    "the pre-installed runner's version was not read from its deps.json")

    def installed_version(self):
        deps = read(self.root / "opt/actions-runner/bin/Runner.Listener.deps.json") or ""
        m = re.search(r'"Runner\.Listener/([0-9.]+)"', deps)
        return m.group(1) if m else None

    def check_runner_update(self):
        self.runner_finished()
        self.downloads(1)
        self.runs_in("/opt/actions-runner")
        self.expect(f"is 2.300.0, older than {FAKE_VERSION}: updating it" in self.r["log"],
                    "the update was not announced with both versions")
        self.expect("runner checksum verified" in self.r["log"], "the update was not verified")
        self.expect(self.installed_version() == FAKE_VERSION,
                    f"/opt/actions-runner holds {self.installed_version()} after the update")
        self.expect("IMAGE_SETTING=kept" in (read(self.root / "opt/actions-runner/.env") or ""),
                    "the old runner's .env did not carry over")

    def check_runner_update_off(self):
        self.runner_finished()
        self.downloads(0)
        self.expect(self.installed_version() == "2.300.0", "the old runner was replaced although RUNNER_UPDATE is off")
        self.expect("updating it" not in self.r["log"], "an update was announced although RUNNER_UPDATE is off")

    def pkg_calls(self):
        return (read(self.state / "record" / "pkg-calls") or "").splitlines()

    def check_libicu_installed(self):
        self.runner_finished()
        calls = self.pkg_calls()
        self.expect(calls[:1] == ["apt-get update"] and "apt-get install -y --no-install-recommends libicu72" in calls,
                    f"apt-get was not asked for the newest libicuNN: {calls}")
        self.expect("libicu installed" in self.r["log"], "the install was not logged")

    def check_libicu_missing(self):
        self.runner_finished()
        calls = self.pkg_calls()
        self.expect(calls == ["dnf install -y libicu"], f"package manager calls {calls}, expected dnf once")
        warn = [line for line in self.r["log"].splitlines() if "WARNING: could not install libicu" in line]
        self.expect(len(warn) == 1 and "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1" in warn[0],
                    f"no WARNING naming invariant globalization: {warn}")
        self.expect(any("WARNING: could not install libicu" in line for line in self.r["console"].splitlines()),
                    "the WARNING does not reach the console")

    def check_libicu_absent(self):
        self.runner_finished()
        lines = [line for line in self.r["log"].splitlines()
                 if "libicu" in line and "bootstrap started" not in line]
        self.expect(len(lines) == 1 and "invariant globalization" in lines[0] and "install-libicu: true" in lines[0],
                    f"not one line naming invariant globalization and install-libicu: {lines}")
        self.expect(any("install-libicu: true" in line for line in self.r["console"].splitlines()),
                    "the line does not reach the console")

    def check_libicu_zypper(self):
        self.runner_finished()
        calls = self.pkg_calls()
        self.expect(calls[-1:] == ["zypper --non-interactive install libicu73_2"],
                    f"zypper was not asked for the newest libicuNN_N it lists: {calls}")
        self.expect("libicu installed" in self.r["log"], "the install was not logged")

    def check_image_environment(self):
        self.runner_finished()
        env = dict(e.split(b"=", 1) for e in self.runner["_env_raw"].split(b"\0") if b"=" in e) if self.runner else {}
        want = {b"PATH": b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin",
                b"AGENT_TOOLSDIRECTORY": b"/opt/hostedtoolcache", b"JAVA_HOME_17_X64": b"/usr/lib/jvm/temurin-17 jdk",
                b"EDITOR": b"vi", b"HOME": b"/home/runner", b"USER": b"runner"}
        got = {k: env.get(k) for k in want}
        self.expect(got == want, f"the runner's environment is not the image's: {got}")

    def check_outdated_runner(self):
        self.expect(self.runner is not None, "run.sh never started")
        self.expect((self.r["reason"] or "").startswith("GitHub refused the runner as outdated (run.sh exit status 7)"),
                    f"power-off reason {self.r['reason']!r}")
        err = [line for line in self.r["log"].splitlines() if "ERROR: GitHub refused runner" in line]
        self.expect(len(err) == 1 and FAKE_VERSION in err[0] and "runner-update" in err[0]
                    and "runner-version" in err[0], f"no line naming the version and the fix: {err}")
        t = self.r["elapsed_to_poweroff"]
        self.expect(t is not None and t < int(self.s["IDLE_TIMEOUT_SECONDS"]) / 2,
                    f"power-off {t}s after the start: not at once")

    def check_boots_again(self):
        self.expect(self.runner is None, "a runner started on a second boot")
        self.expect("booted again" in (self.r["reason"] or "") and INSTANCE_ID in (self.r["reason"] or ""),
                    f"reason {self.r['reason']!r}")
        self.downloads(0)
        self.expect("bootstrap started" not in self.r["log"], "the bootstrap went on after noticing the reboot")

    def check_signals_ignored(self):
        self.runner_finished()

    def check_no_sudo(self):
        self.runner_finished()

    def check_runner_dir(self):
        self.runner_finished()
        self.downloads(0)
        self.runs_in(self.s["RUNNER_DIR"])

    def check_preinstalled_home(self):
        self.runner_finished()
        self.downloads(0)
        self.runs_in("/home/ubuntu/actions-runner")

    def check_pre_script_ok(self):
        self.runner_finished()
        rec = self.state / "record"
        ran = read(rec / "pre-ran")
        self.expect(ran is not None, "the pre-runner script did not run")
        env = read(rec / "pre-env") or ""
        self.expect("EC2SR_RUNNER_USER=runner" in env, "the pre-runner script lacks EC2SR_RUNNER_USER")
        self.expect(self.marker not in env, "the pre-runner script sees the JIT config")
        exec_time = read(rec / "exec-time")
        if ran and exec_time:
            self.expect(float(ran) < float(exec_time), "the runner started before the pre-runner script ran")

    def check_pre_script_fails(self):
        self.expect(self.runner is None, "run.sh ran although the pre-runner script failed")
        self.expect("pre-runner script failed with exit status 3" in (self.r["reason"] or ""),
                    f"reason {self.r['reason']!r}")
        self.expect("pre-runner: about to fail" in self.r["log"], "the pre-runner script's output is not in the log")

    def check_spot_notice(self):
        self.runner_finished()
        warn = [line for line in self.r["log"].splitlines() if "WARNING: SPOT INTERRUPTION NOTICE" in line]
        self.expect(len(warn) == 1, f"{len(warn)} spot warning lines, expected 1")
        if warn:
            self.expect(f"action={SPOT_ACTION['action']}" in warn[0] and SPOT_ACTION["time"] in warn[0],
                        f"the spot warning does not name action and time: {warn[0]!r}")
        self.expect(self.r["imds_requests"] >= 3, "the metadata service was hardly polled")

    def check_hostile_values(self):
        self.runner_finished()
        started = [line for line in self.r["log"].splitlines() if "bootstrap started for runner" in line]
        self.expect(len(started) == 1 and "-name'" in started[0] and "\\n" in started[0],
                    f"the runner name is not logged as data on one line: {started!r}")

    def check_bad_arch(self):
        self.expect(self.runner is None, "run.sh ran on an unsupported architecture")
        self.expect("unsupported architecture riscv64" in (self.r["reason"] or ""), f"reason {self.r['reason']!r}")
        self.downloads(0)

    def check_long_job(self):
        self.runner_finished()
        self.expect("idle watchdog stands down" in self.r["log"], "the idle watchdog did not see the Runner.Worker")

    def check_wget_fallback(self):
        self.runner_finished()
        self.downloads(1)
        agents = [d["user_agent"] for d in self.r["download_requests"]]
        self.expect(all(a.lower().startswith("wget") for a in agents), f"downloaded with {agents}, not wget")


# ---------------------------------------------------------------- commands

def write_settings(name: str, out: Path, pad_mb: int = 0) -> dict:
    if name not in SCENARIOS:
        raise HarnessError(f"unknown scenario {name!r}; see `run.py scenarios`")
    sha = hashlib.sha256(fake_tarball(pad_mb)).hexdigest()
    settings = scenario_settings(name, free_port(), sha)
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(settings, indent=1, ensure_ascii=False))
    (out / "settings.nul").write_bytes(b"".join(f"{k}={v}".encode() + b"\0" for k, v in settings.items()))
    (out / "reference.sh").write_text(render.render(settings, render.TEMPLATE.read_text()))
    return settings


def public(result: dict) -> str:
    return json.dumps(result, indent=1, ensure_ascii=False)


def cmd_all(out: Path, jobs: int, timeout: float) -> int:
    def one(name):
        d = out / name
        write_settings(name, d)
        try:
            return run_scenario(d / "reference.sh", name, d, timeout)
        except HarnessError as e:
            return {"scenario": name, "passed": False, "failures": [f"harness: {e}"]}

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, SCENARIOS))
    summary = [{"scenario": r["scenario"], "passed": r["passed"], "failures": r["failures"],
                "reason": r.get("reason"), "elapsed_to_exec": r.get("elapsed_to_exec")} for r in results]
    print(public(summary))
    passed = sum(r["passed"] for r in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


def main(argv) -> int:
    # SIGTERM unwinds like Ctrl-C, through the cleanup in run_scenario.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if argv[:1] == ["scenarios"]:
        for name, spec in SCENARIOS.items():
            print(f"{name}\t{spec['doc']}")
        return 0
    if argv[:1] in (["settings"], ["all"]):
        p = argparse.ArgumentParser(prog=f"run.py {argv[0]}")
        if argv[0] == "settings":
            p.add_argument("--scenario", required=True)
        else:
            p.add_argument("--jobs", type=int, default=4)
            p.add_argument("--timeout", type=float, default=60)
        p.add_argument("--out", required=True, type=Path)
        p.add_argument("--pad-mb", type=int, default=0, help="pad the fake runner archive (benchmarks)")
        a = p.parse_args(argv[1:])
        try:
            if argv[0] == "settings":
                print(public(write_settings(a.scenario, a.out, a.pad_mb)))
                return 0
            return cmd_all(a.out.resolve(), a.jobs, a.timeout)
        except HarnessError as e:
            print(f"run.py: {e}", file=sys.stderr)
            return 2
    p = argparse.ArgumentParser(prog="run.py", description="Runs a rendered user-data script in a sandbox.",
                                epilog="Other commands: settings, all, scenarios (see the module docstring).")
    p.add_argument("--script", required=True, type=Path)
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--timeout", type=float, default=60, help="seconds before the run is killed (default 60)")
    p.add_argument("--pad-mb", type=int, default=0,
                   help="make the fake runner archive this many MiB bigger (benchmarks)")
    a = p.parse_args(argv)
    try:
        result = run_scenario(a.script, a.scenario, a.out, a.timeout, a.pad_mb)
    except HarnessError as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 2
    print(public(result))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
