#!/usr/bin/env python3
"""Real-boot tests of the instance side: the product's own user data, from a
real `ec2-spot-runner start` against the stand-ins, booted on a real Debian
kernel with systemd and cloud-init (EC2 datasource, IMDSv2) under QEMU.

    python3 testenv/vm/boot_tests.py                 # every scenario
    python3 testenv/vm/boot_tests.py --scenario reboot [--scenario ...]
    python3 testenv/vm/boot_tests.py --list
    python3 testenv/vm/boot_tests.py --benchmark [-n 3]   # the boot timeline, figures only

Prints one line per scenario (PASS/FAIL, its timings), then `N passed, N
failed`; exits 0 only if every scenario passed. Each scenario's console, the
stand-ins' logs and a result.json are kept under --out (default
/tmp/ec2sr-boot-tests). Needs root (the image build) and this machine's
Python 3; everything else is installed by build-image.sh, get-qemu.sh and
testenv/setup.sh. See README.md beside this file.

Every server listens on 127.0.0.1 and is started here; QEMU, the servers and
the stand-ins are ended on exit, on a timeout, on an error and on SIGTERM.
"""

import argparse
import base64
import concurrent.futures
import gzip
import hashlib
import http.server
import io
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True
import imds as imds_mod  # noqa: E402

sys.path.insert(0, str(REPO / "testenv/sandbox"))
import render  # noqa: E402  (the sandbox's copy of the Rust renderer)

BIN = Path(os.environ.get("EC2SR_BIN", Path.home() / ".cache/ec2-spot-runner/target/debug/ec2-spot-runner"))
IMDS_ADDR = "169.254.169.254"
# The download stand-in's address as the guest sees it (the image's
# /etc/hosts maps github.com to it). Inside QEMU's user network only: the
# host side of every forward is 127.0.0.1.
DOWNLOAD_ADDR = "169.254.170.2"
MAC = "0e:c2:5b:00:00:01"
APP_ID = 1234
REPO_NAME = "acme/widgets"
FAKE_VERSION = "2.999.0"
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ec2-spot-runner: (.*)$")

_children = []  # every process started here, ended in cleanup()
_children_lock = threading.Lock()


def note(msg):
    print(f"boot_tests: {msg}", file=sys.stderr, flush=True)


def spawn(cmd, **kw):
    kw.setdefault("start_new_session", True)
    p = subprocess.Popen(cmd, **kw)
    with _children_lock:
        _children.append(p)
    return p


def end(p, grace=3.0):
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def cleanup():
    with _children_lock:
        procs = list(_children)
    for p in procs:
        end(p, 2.0)


# ---------------------------------------------------------------- set-up

def last_line(cmd, what, env=None):
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"boot_tests: {what} failed ({out.returncode})")
    return out.stdout.strip().splitlines()[-1]


class Qemu:
    """The qemu-system-x86_64 unpacked by get-qemu.sh."""

    def __init__(self):
        d = Path(last_line(["bash", str(HERE / "get-qemu.sh")], "get-qemu.sh"))
        self.binary = d / "root/usr/bin/qemu-system-x86_64"
        self.env = dict(os.environ, LD_LIBRARY_PATH=f"{d}/root/usr/lib/x86_64-linux-gnu:{d}/root/lib/x86_64-linux-gnu")
        self.data = [str(d / "root/usr/share/qemu"), str(d / "root/usr/share/seabios")]
        self.accel = None

    def base_args(self, accel):
        args = [str(self.binary)]
        for d in self.data:
            args += ["-L", d]
        return args + ["-accel", accel, "-nodefaults", "-display", "none", "-rtc", "base=utc"]

    def probe_kvm(self, image):
        """KVM only if a guest kernel actually starts on it: /dev/kvm can be
        there on a machine whose CPU cannot run a guest."""
        if self.accel:
            return self.accel
        self.accel = "tcg"
        if os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK):
            cmd = self.base_args("kvm") + ["-m", "512", "-kernel", str(image / "vmlinuz"),
                                           "-append", "console=ttyS0 panic=-1", "-serial", "stdio", "-no-reboot"]
            p = spawn(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            seen = threading.Event()

            def reader():
                for line in p.stdout:
                    if b"Linux version" in line:
                        seen.set()
                        return

            threading.Thread(target=reader, daemon=True).start()
            seen.wait(10)
            end(p, 1)
            if seen.is_set():
                self.accel = "kvm"
        note(f"accelerator: {self.accel}")
        return self.accel


class Standins:
    """testenv/serve.py (moto behind the EC2 shim, the GitHub stand-in) with
    the test App configured, and `ec2-spot-runner start` against them."""

    def __init__(self, work: Path):
        self.work = work
        venv = last_line(["bash", str(REPO / "testenv/setup.sh")], "testenv/setup.sh")
        self.python = str(Path(venv) / "bin/python")
        ready = work / "standins.json"
        self.proc = spawn([self.python, str(REPO / "testenv/serve.py"), "--ready-file", str(ready),
                           "--exit-on-stdin-eof"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          stderr=open(work / "standins.log", "wb"))
        began = time.monotonic()
        while not ready.exists():
            if self.proc.poll() is not None:
                raise SystemExit(f"boot_tests: serve.py exited: see {work / 'standins.log'}")
            if time.monotonic() - began > 90:
                raise SystemExit("boot_tests: the stand-ins did not start within 90 s")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.ec2, self.github = info["ec2"], info["github"]
        key = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                             capture_output=True, check=True).stdout
        pub = subprocess.run(["openssl", "pkey", "-pubout"], input=key, capture_output=True, check=True).stdout
        self.private_key = key.decode()
        self.post(f"{self.github}/_standin/config", {
            "apps": [{"id": APP_ID, "client_id": "Iv23liBootTest0001", "public_key_pem": pub.decode(),
                      "installations": [{"id": 55, "account": "acme", "account_type": "Organization",
                                         "repositories": [REPO_NAME]}]}],
            "tokens": [], "auto_online_after": None})
        (work / "aws-config").write_text("")
        self.lock = threading.Lock()
        self.run_id = 7000

    def post(self, url, body):
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=30).read() or b"null")

    def get(self, url):
        return json.loads(urllib.request.urlopen(url, timeout=30).read())

    def start(self, name, inputs: dict, out: Path):
        """Runs the real binary's start; returns (outputs, the RunInstances
        call that carried this start's user data)."""
        with self.lock:  # one start at a time: its RunInstances is the newest call
            self.run_id += 1
            home = out / "home"
            home.mkdir(parents=True, exist_ok=True)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                "AWS_ENDPOINT_URL_EC2": self.ec2, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(self.work / "aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(self.work / "aws-config"),
                "GITHUB_API_URL": self.github, "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": REPO_NAME,
                "GITHUB_RUN_ID": str(self.run_id), "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": name.replace("-", "_"),
                "GITHUB_OUTPUT": str(out / "start-outputs"), "GITHUB_STEP_SUMMARY": str(out / "start-summary.md"),
                "INPUT_GITHUB_APP_ID": str(APP_ID), "INPUT_GITHUB_APP_PRIVATE_KEY": self.private_key,
                "INPUT_IMAGE_ID": "ami-760aaa0f", "INPUT_INSTANCE_TYPES": "c7i.large,c6i.large",
                **inputs,
            }
            binary = wait_for_binary()
            r = subprocess.run([str(binary), "start"], env=env, capture_output=True, text=True, timeout=300,
                               stdin=subprocess.DEVNULL)
            (out / "start.log").write_text(r.stdout + "\n--- stderr\n" + r.stderr)
            if r.returncode != 0:
                raise RuntimeError(f"ec2-spot-runner start failed ({r.returncode}); see {out / 'start.log'}")
            calls = self.get(f"{self.ec2}/_shim/calls")
            runs = [c for c in calls if c.get("action") == "RunInstances" and (c.get("params") or {}).get("UserData")]
            if not runs:
                raise RuntimeError("no RunInstances call with UserData in the shim's call log")
            outputs = parse_outputs((out / "start-outputs").read_text() if (out / "start-outputs").exists() else "")
            return outputs, runs[-1]


def parse_outputs(text):
    out, lines, i = {}, text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and "=" not in line.split("<<", 1)[0]:
            name, delim = line.split("<<", 1)
            i += 1
            value = []
            while i < len(lines) and lines[i] != delim:
                value.append(lines[i])
                i += 1
            out[name] = "\n".join(value)
        elif "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
        i += 1
    return out


def wait_for_binary(limit=900):
    """The binary may be rebuilt under us: wait for it to be there."""
    began = time.monotonic()
    while True:
        if BIN.exists() and os.access(BIN, os.X_OK):
            try:
                if subprocess.run([str(BIN), "--version"], capture_output=True, timeout=30).returncode == 0:
                    return BIN
            except (OSError, subprocess.TimeoutExpired):
                pass
        if time.monotonic() - began > limit:
            raise RuntimeError(f"{BIN} is missing (build it with cargo build)")
        time.sleep(5)


def settings_of(script: str) -> dict:
    """The `readonly NAME='...'` lines of a rendered script, read back
    without a shell."""
    settings = {}
    for m in re.finditer(r"^readonly ([A-Z0-9_]+)=", script, re.M):
        name, i, value = m.group(1), m.end(), []
        while i < len(script) and script[i] != "\n":
            if script[i] == "'":
                j = script.index("'", i + 1)
                value.append(script[i + 1:j])
                i = j + 1
            elif script.startswith("\\'", i):
                value.append("'")
                i += 2
            else:
                raise ValueError(f"setting {name}: unexpected {script[i]!r}")
        settings[name] = "".join(value)
    return settings


# ---------------------------------------------------------------- download stand-in

_tarballs = {}


def fake_runner_tarball(pad_mb=0) -> bytes:
    """The fake runner as a release archive; pad_mb of incompressible filler
    makes it the size of a real one (actions-runner-linux-x64 is ~200 MB)."""
    if pad_mb in _tarballs:
        return _tarballs[pad_mb]
    src = HERE / "image/fake-runner"
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1 if pad_mb else 9) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        if pad_mb:
            import random
            data = random.Random(0).randbytes(pad_mb << 20)
            info = tarfile.TarInfo("externals/padding")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for p in sorted(src.rglob("*")):
            if p.relative_to(src).parts[0] == "_work":
                continue  # the image's work folder, not part of a release
            info = tar.gettarinfo(str(p), p.relative_to(src).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            tar.addfile(info, p.open("rb") if p.is_file() else None)
    _tarballs[pad_mb] = raw.getvalue()
    return _tarballs[pad_mb]


class LocalServer:
    """An HTTP server on 127.0.0.1 (a free port) whose answers come from
    `answer(handler) -> (status, content type, body)`; every request is kept
    in `requests` (what `answer` returns as its record)."""

    def __init__(self, answer, tls=None):
        self.requests = []
        parent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                status, ctype, body, record = answer(self)
                parent.requests.append(record)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.1,), daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Download(LocalServer):
    """github.com's release downloads, over TLS with the image's test CA."""

    def __init__(self, image: Path, tarball: bytes = None):
        self.tarball = tarball or fake_runner_tarball()
        pattern = re.compile(r"^/actions/runner/releases/download/v[^/]+/actions-runner-linux-(x64|arm64)-[^/]+\.tar\.gz$")

        def answer(h):
            ok = bool(pattern.match(h.path))
            record = {"path": h.path, "status": 200 if ok else 404, "host": h.headers.get("Host"),
                      "user_agent": h.headers.get("User-Agent")}
            return (200 if ok else 404), "application/octet-stream", (self.tarball if ok else b"Not Found"), record

        super().__init__(answer, tls=(image / "github.pem", image / "github.key"))


class ReleaseMirror(LocalServer):
    """A mirror of GET /repos/actions/runner/releases/latest (the
    runner-releases-url input, as for GitHub Enterprise Server or an
    air-gapped mirror): the release of the fake runner tarball, its SHA-256
    between the markers actions/runner puts in every release's notes."""

    def __init__(self, tarball: bytes, version: str):
        sha = hashlib.sha256(tarball).hexdigest()
        body = json.dumps({
            "tag_name": f"v{version}", "name": f"v{version}", "draft": False, "prerelease": False,
            "published_at": "2026-12-01T00:00:00Z",
            "body": f"## SHA-256 Checksums\n- actions-runner-linux-x64-{version}.tar.gz "
                    f"<!-- BEGIN SHA linux-x64 -->{sha}<!-- END SHA linux-x64 -->\n",
        }).encode()

        def answer(h):
            ok = h.path == "/repos/actions/runner/releases/latest"
            out = body if ok else b'{"message":"Not Found"}'
            return (200 if ok else 404), "application/json", out, {"path": h.path, "status": 200 if ok else 404}

        super().__init__(answer)
        self.url = f"http://127.0.0.1:{self.port}/repos/actions/runner/releases/latest"


# ---------------------------------------------------------------- one boot

class Boot:
    """One QEMU run: a throw-away overlay of the image, the IMDS stand-in,
    the serial console read line by line with host arrival times."""

    def __init__(self, qemu: Qemu, image: Path, out: Path, user_data: bytes, instance_type: str, zone: str,
                 kernel_args: str, reboot=False, download: Download = None, nvme=0):
        self.out, self.reboot, self.nvme = out, reboot, nvme
        self.imds = imds_mod.Imds(user_data=user_data, instance_type=instance_type, zone=zone, mac=MAC,
                                  local_ipv4="169.254.0.15").start()
        self.lines = []  # (seconds since power-on, text)
        self.cond = threading.Condition()
        self.exited_at = None
        overlay = out / "overlay.qcow2"
        if overlay.exists():
            overlay.unlink()
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                        str(image / "disk.qcow2"), str(overlay)], check=True)
        relay = f"{sys.executable} -S -I {HERE / 'relay.py'} 127.0.0.1"
        # QEMU's user network forwards only addresses inside its virtual
        # network (libslirp's slirp_add_exec), so that network is the
        # link-local 169.254.0.0/16, which holds the metadata address; the
        # guest gets 169.254.0.15 by DHCP.
        netdev = (f"user,id=n0,restrict=on,net=169.254.0.0/16,host=169.254.0.2,dhcpstart=169.254.0.15,"
                  f"guestfwd=tcp:{IMDS_ADDR}:80-cmd:{relay} {self.imds.port}")
        if download:
            netdev += f",guestfwd=tcp:{DOWNLOAD_ADDR}:443-cmd:{relay} {download.port}"
        # cloud-init's EC2 test (DataSourceEc2.identify_aws, ds-identify's
        # ec2_identify_platform): the SMBIOS system uuid and serial both start
        # with "ec2" and are equal; the vendor is "Amazon EC2" as on Nitro.
        uuid = "ec2" + hashlib.sha256(str(out).encode()).hexdigest()[:5] + "-0000-4000-8000-000000000001"
        self.qmp_path = out / "qmp.sock"
        if self.qmp_path.exists():
            self.qmp_path.unlink()
        accel = qemu.accel or "tcg"
        cmd = qemu.base_args(accel) + [
            "-m", "1024", "-smp", str(SMP),
            "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
            "-append", f"root=/dev/vda rw console=ttyS0 panic=-1 {kernel_args}",
            "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
            "-netdev", netdev, "-device", f"virtio-net-pci,netdev=n0,mac={MAC},romfile=",
            "-smbios", f"type=1,manufacturer=Amazon EC2,product={instance_type},serial={uuid},uuid={uuid}",
            "-smbios", "type=3,manufacturer=Amazon EC2,asset=Amazon EC2",
            "-serial", "stdio", "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
        ]
        # Instance store: empty NVMe disks that are not EBS volumes (QEMU's
        # controller names its model "QEMU NVMe Ctrl"; EC2's says "Amazon EC2
        # NVMe Instance Storage", EBS "Amazon Elastic Block Store").
        for i in range(nvme):
            disk = out / f"store{i}.qcow2"
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "2G"], check=True)
            cmd += ["-drive", f"file={disk},if=none,id=store{i},format=qcow2,cache=unsafe",
                    "-device", f"nvme,drive=store{i},serial=AWS{i:017d}"]
        if accel == "kvm":
            cmd += ["-cpu", "host"]
        if not reboot:
            cmd.append("-no-reboot")
        (out / "qemu-cmd.txt").write_text(" ".join(cmd) + "\n")
        self.console = open(out / "console.log", "wb")
        self.t0 = time.monotonic()
        self.proc = spawn(cmd, env=qemu.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=open(out / "qemu-stderr.log", "wb"))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                break
            now = time.monotonic() - self.t0
            self.console.write(chunk)
            self.console.flush()
            buf += chunk
            *done, buf = buf.split(b"\n")
            with self.cond:
                for raw in done:
                    self.lines.append((now, raw.decode("utf-8", "replace").rstrip("\r")))
                self.cond.notify_all()
        self.proc.wait()
        with self.cond:
            if buf:
                self.lines.append((time.monotonic() - self.t0, buf.decode("utf-8", "replace")))
            self.exited_at = time.monotonic() - self.t0
            self.cond.notify_all()

    def wait_for(self, pattern, timeout, after=0.0):
        """The first console line matching `pattern` that arrived at or after
        `after` s; None on timeout or when the machine is gone."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, line in self.lines:
                    if t >= after and rx.search(line):
                        return t, line
                if self.exited_at is not None:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 1.0))

    def wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.exited_at is None and time.monotonic() < deadline:
                self.cond.wait(1.0)
            return self.exited_at

    def qmp(self, command):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(str(self.qmp_path))
        f = s.makefile("rwb")
        f.readline()
        for c in ({"execute": "qmp_capabilities"}, {"execute": command}):
            f.write(json.dumps(c).encode() + b"\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
        s.close()
        return reply

    def text(self):
        with self.cond:
            return "\n".join(line for _, line in self.lines)

    def finish(self):
        end(self.proc, 2)
        self.imds.stop()
        self.console.close()
        calls = self.imds.snapshot_calls()
        (self.out / "imds-calls.json").write_text(json.dumps(calls, indent=1))
        with self.cond:
            stamped = "".join(f"{t:9.3f} {line}\n" for t, line in self.lines)
        (self.out / "console.tlog").write_text(stamped)
        for disk in [self.out / "overlay.qcow2", *(self.out / f"store{i}.qcow2" for i in range(self.nvme))]:
            try:
                disk.unlink()
            except OSError:
                pass
        return calls


# ---------------------------------------------------------------- scenarios

ALLOW_STALE = False
BEFORE = False
SMP = 1


class StaleTemplate(Exception):
    pass


class Result:
    def __init__(self, name):
        self.name, self.failures, self.timings, self.findings = name, [], {}, {}

    def expect(self, ok, what):
        if not ok:
            self.failures.append(what)
        return ok


def find(lines, pattern, after=0.0):
    rx = re.compile(pattern)
    return [(t, l) for t, l in lines if t >= after and rx.search(l)]


def script_log(lines):
    """The bootstrap's own lines, once each (its stderr reaches the console
    through cloud-init's output too, behind the kernel's prefix)."""
    seen, out = set(), []
    for t, l in lines:
        m = LOG_LINE.search(l)
        if m and m.group(0) not in seen:
            seen.add(m.group(0))
            out.append((t, m.group(1)))
    return out


def common_checks(r: Result, exited, calls, lines, run_call, user_data, settings):
    """What every boot must show."""
    text = "\n".join(l for _, l in lines)
    r.expect(exited is not None, "QEMU did not exit by itself (the machine never powered off)")
    r.expect(bool(find(lines, r"reboot: Power down")), "no 'reboot: Power down' from the kernel")
    # cloud-init names its datasource when its final stage finishes; the
    # metadata crawl shows it before that (a script that never returns keeps
    # the final stage from finishing).
    r.expect(any(c["path"].endswith("/meta-data/instance-id") and c["token"] for c in calls),
             "cloud-init's EC2 datasource never read the metadata with a token")
    for _, l in find(lines, r"Cloud-init v\. .* finished at"):
        r.expect("Datasource DataSourceEc2Local" in l, f"cloud-init used another datasource: {l}")
    r.expect("NoCloud" not in text, "cloud-init mentions NoCloud")
    v1 = [c for c in calls if c["method"] == "GET" and not c["token"]]
    r.expect(not v1, f"{len(v1)} metadata GETs without a valid IMDSv2 token: {v1[:3]}")
    r.expect(all(c["status"] != 400 for c in calls), "a token PUT without a valid TTL header")
    ud = [c for c in calls if c["path"].endswith("/user-data") and c["status"] == 200]
    r.expect(bool(ud), "cloud-init never read /user-data")
    r.expect(user_data[:2] == b"\x1f\x8b", "RunInstances' user data is not gzip")
    r.expect(run_call["params"].get("MetadataOptions.HttpTokens") == "required",
             "RunInstances did not require IMDSv2 tokens")
    jit = settings.get("JIT_CONFIG", "")
    r.expect(len(jit) > 100, "no JIT config in the rendered user data")
    r.expect(jit not in text and jit[:60] not in text, "the JIT config shows on the console")
    power = [m for _, m in script_log(lines) if m.startswith("powering off: ")]
    r.expect(len(power) >= 1, "no 'powering off: <reason>' line on the console")
    r.findings["reason"] = power[0][len("powering off: "):] if power else None
    for t, l in find(lines, r"ec2sr-fake-runner: run\.sh started"):
        r.expect("uid=0 " not in l and "user=root" not in l, f"run.sh ran as root: {l}")
        r.expect("argc=0 " in l, f"run.sh got arguments: {l}")
        want = hashlib.sha256(jit.encode()).hexdigest()
        r.expect(f"jit_env_sha256={want}" in l, "run.sh's ACTIONS_RUNNER_INPUT_JITCONFIG is not the JIT config")
        r.expect(f"user={settings.get('RUNNER_USER', 'runner')} " in l, f"run.sh ran as another user: {l}")
    for _, l in find(lines, r"ec2sr-fake-runner: environment names:"):
        names = l.split(":", 2)[2].split()
        r.expect(not any(n.startswith("EC2SR_") for n in names), f"the bootstrap's environment leaked: {names}")
    r.expect(not find(lines, r"config\.sh was called"), "config.sh was called")


def timeline(exited, lines):
    def first(p, after=0.0):
        got = find(lines, p, after)
        return round(got[0][0], 2) if got else None
    t = {
        "power_on": 0.0,
        "kernel": first(r"Linux version \d"),
        "systemd": first(r"systemd\[1\]: |Welcome to "),
        "cloud_init_init": first(r"Cloud-init v\. .* running 'init' at"),
        "cloud_init_final": first(r"running 'modules:final'"),
        "script_start": first(r"ec2-spot-runner: bootstrap started|ec2sr-peer: script started"),
        "cloud_init_done": first(r"Cloud-init v\. .* finished at"),
        "run_sh_exec": first(r"ec2sr-fake-runner: run\.sh exec$"),
        "listening": first(r"ec2sr-fake-runner: listener connected"),
        "power_off": round(exited, 2) if exited is not None else None,
    }
    if t["script_start"] is not None and t["run_sh_exec"] is not None and t["run_sh_exec"] > 0:
        t["script_share"] = round((t["run_sh_exec"] - t["script_start"]) / t["run_sh_exec"], 4)
    return t


class Scenario:
    def __init__(self, name, doc, inputs, job="sleep", seconds="5", runner="installed", reboot=False,
                 download=False, timeout=600, mirror=False, libicu=True, nvme=0, docker=False, outdated=False):
        self.name, self.doc, self.inputs, self.job, self.seconds = name, doc, inputs, job, seconds
        self.runner, self.reboot, self.download, self.timeout = runner, reboot, download, timeout
        self.mirror, self.libicu, self.nvme, self.docker = mirror, libicu, nvme, docker
        self.outdated = outdated


# What a pre-runner script may rely on: it prints to the console when it
# starts and what `cloud-init status --wait` answered.
PRE_RUNNER_PROBE = """echo "ec2sr-pre-runner: started, docker $(systemctl is-active docker.service)" >/dev/console
answer=$(cloud-init status --wait 2>&1 | tail -n 1)
echo "ec2sr-pre-runner: cloud-init status --wait: $answer" >/dev/console
"""

SCENARIOS = {
    "job-runs": Scenario(
        "job-runs",
        "pre-installed runner as the runner user with the JIT config in its environment, a job that "
        "waits for cloud-init, looks for the JIT config and uses sudo, a spot notice meanwhile; two NVMe disks "
        "(instance store) in RAID 0 as the work folder and, Docker being installed (a stand-in), Docker's "
        "data root, the runner user in the docker group; power-off when the runner exits",
        {}, job="probe", seconds="30", nvme=2, docker=True),
    "idle-timeout": Scenario(
        "idle-timeout", "no job comes: the idle watchdog powers off after idle-timeout (60s)",
        {"INPUT_IDLE_TIMEOUT": "60s"}, job="none"),
    "max-lifetime": Scenario(
        "max-lifetime", "a job outlives max-lifetime (5m): the idle watchdog stands down, max lifetime powers off",
        {"INPUT_IDLE_TIMEOUT": "60s", "INPUT_MAX_LIFETIME": "5m"}, job="sleep", seconds="inf", timeout=900),
    "bad-checksum": Scenario(
        "bad-checksum", "no runner in the image; the download (github.com, forwarded) does not match "
        "runner-sha256: both hashes on the console, power-off, no runner",
        {"INPUT_RUNNER_VERSION": FAKE_VERSION, "INPUT_RUNNER_SHA256": "x64=" + "0" * 64 + ",arm64=" + "1" * 64},
        runner="none", download=True),
    "outdated": Scenario(
        "outdated", "GitHub refuses the runner as too old: it exits with 7 (the bootstrap asks for that code), "
        "one line names the cause and the fix, and the machine powers off at once",
        {}, job="none", outdated=True),
    "pre-runner": Scenario(
        "pre-runner", "a pre-runner script that waits for cloud-init (`cloud-init status --wait`) and for the "
        "image's Docker: it runs once the boot has finished, the runner after it",
        {"INPUT_PRE_RUNNER_SCRIPT": PRE_RUNNER_PROBE}, job="sleep", seconds="1", docker=True),
    "reboot": Scenario(
        "reboot", "the machine is reset while the job runs: the next boot powers off at once",
        {}, job="sleep", seconds="inf", reboot=True),
    "update-no-libicu": Scenario(
        "update-no-libicu", "start reads the newest release from a runner-releases-url mirror; the image's "
        "runner is older, so the machine downloads (github.com, forwarded), verifies and runs that release; "
        "the image has no libicu: no package manager runs, the runner starts at once with invariant "
        "globalization and one console line says so",
        {}, runner="old", download=True, mirror=True, libicu=False),
}


def run_scenario(sc: Scenario, qemu: Qemu, image: Path, standins: Standins, out: Path, spot=None) -> Result:
    r = Result(sc.name)
    out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    boot = download = mirror = None
    try:
        inputs = dict(sc.inputs)
        if sc.mirror:
            mirror = ReleaseMirror(fake_runner_tarball(), FAKE_VERSION)
            inputs["INPUT_RUNNER_RELEASES_URL"] = mirror.url
        outputs, call = standins.start(sc.name, inputs, out)
        r.timings["start_s"] = round(time.monotonic() - began, 1)
        user_data = base64.b64decode(call["params"]["UserData"])
        (out / "user-data.gz").write_bytes(user_data)
        text = gzip.decompress(user_data).decode()
        # A boothook: cloud-init strips the mark and runs the rest.
        r.expect(text.startswith("#cloud-boothook\n"), "the user data is not a boothook")
        script = text[len("#cloud-boothook\n"):]
        settings = settings_of(script)
        # The binary embeds the template when it is built: a binary older
        # than src/instance/runner.sh would boot yesterday's script.
        if BEFORE:
            # The same start's settings in the script as it was before the
            # boothook: what the checks say of it.
            user_data = gzip.compress(render.render(settings, before_template()).encode(), mtime=0)
            r.findings["template"] = f"src/instance/runner.sh as of {BEFORE_REF}"
        elif script != render.render(settings, render.TEMPLATE.read_text()):
            r.findings["stale_template"] = True
            r.failures.append(f"the user data {BIN} sent is not src/instance/runner.sh as it is now: "
                              "rebuild the binary (cargo build)")
            if not ALLOW_STALE:
                raise StaleTemplate()
        instance_type = call["params"].get("InstanceType", "c7i.large")
        zone = call["params"].get("Placement.AvailabilityZone", "us-east-1a")
        jit_sha = hashlib.sha256(settings.get("JIT_CONFIG", "").encode()).hexdigest()
        args = f"ec2sr.job={sc.job} ec2sr.job_seconds={sc.seconds} ec2sr.jit_sha256={jit_sha}"
        if sc.runner in ("none", "old"):
            args += f" ec2sr.runner={sc.runner}"
        if not sc.libicu:
            args += " ec2sr.libicu=none"
        if sc.docker:
            args += " ec2sr.docker=fake"
        if sc.outdated:
            args += " ec2sr.outdated=1"
        if sc.download:
            download = Download(image)
        boot = Boot(qemu, image, out, user_data, instance_type, zone, args, reboot=sc.reboot, download=download,
                    nvme=sc.nvme)
        act = getattr(sys.modules[__name__], "during_" + sc.name.replace("-", "_"), None)
        if act:
            act(sc, boot, r)
        exited = boot.wait_exit(sc.timeout)
        if exited is None:
            r.failures.append(f"the machine was still up after {sc.timeout} s")
        lines = list(boot.lines)
        calls = boot.finish()
        boot = None
        if mirror is not None:
            r.findings["mirror_requests"] = len(mirror.requests)
        r.timings.update(timeline(exited, lines))
        common_checks(r, exited, calls, lines, call, user_data, settings)
        check = getattr(sys.modules[__name__], "check_" + sc.name.replace("-", "_"))
        check(sc, r, lines, calls, settings, standins, download, outputs)
    except StaleTemplate:
        pass
    except Exception as e:  # a harness problem is a failed scenario too
        r.failures.append(f"harness: {type(e).__name__}: {e}")
    finally:
        if boot is not None:
            boot.finish()
        if download is not None:
            (out / "download-requests.json").write_text(json.dumps(download.requests, indent=1))
            download.stop()
        if mirror is not None:
            mirror.stop()
    r.timings["total_s"] = round(time.monotonic() - began, 1)
    (out / "result.json").write_text(json.dumps({"scenario": r.name, "passed": not r.failures,
                                                 "failures": r.failures, "timings": r.timings,
                                                 "findings": r.findings}, indent=1))
    return r


# -- per-scenario actions while the machine runs, and checks afterwards

def during_job_runs(sc, boot, r):
    got = boot.wait_for(r"ec2sr-job: started", sc.timeout)
    if got:
        r.findings["spot_notice"] = boot.imds.schedule_interruption(after_seconds=0)
        r.timings["spot_notice_at"] = round(got[0], 2)
    _record_exit(boot, sc.timeout)


def during_idle_timeout(sc, boot, r):
    _record_exit(boot, sc.timeout)


def during_max_lifetime(sc, boot, r):
    _record_exit(boot, sc.timeout)


def during_bad_checksum(sc, boot, r):
    _record_exit(boot, sc.timeout)


def during_reboot(sc, boot, r):
    # Reset the moment the job starts: everything the next boot relies on
    # (the instance's mark, the reboot unit) was synced before the runner.
    got = boot.wait_for(r"ec2sr-job: started", sc.timeout)
    if got:
        r.timings["reset_at"] = round(time.monotonic() - boot.t0, 2)
        boot.qmp("system_reset")
    _record_exit(boot, sc.timeout)


def during_outdated(sc, boot, r):
    _record_exit(boot, sc.timeout)


def check_outdated(sc, r, lines, calls, settings, standins, download, outputs):
    _reason_check(r, "GitHub refused the runner as outdated (run.sh exit status 7)")
    msgs = [m for _, m in script_log(lines)]
    err = [m for m in msgs if m.startswith("ERROR: GitHub refused runner")]
    r.expect(len(err) == 1 and FAKE_VERSION in err[0] and "runner-update" in err[0] and "runner-version" in err[0],
             f"no line naming the runner's version and the fix: {err}")
    t = _elapsed(lines, r"ec2sr-fake-runner: run\.sh exec$", r"ec2-spot-runner: powering off")
    r.timings["run_sh_to_poweroff_s"] = t
    r.expect(t is not None and t < 30, f"power-off {t} s after run.sh started: not at once")


def during_pre_runner(sc, boot, r):
    _record_exit(boot, sc.timeout)


def check_pre_runner(sc, r, lines, calls, settings, standins, download, outputs):
    _reason_check(r, "runner finished (run.sh exit status 0)")
    started = find(lines, r"ec2sr-pre-runner: started, docker active")
    waited = find(lines, r"ec2sr-pre-runner: cloud-init status --wait: .*done")
    done = find(lines, r"Cloud-init v\. .* finished at")
    runsh = find(lines, r"ec2sr-fake-runner: run\.sh exec$")
    r.expect(bool(started), "the pre-runner script did not run, or ran before the image's Docker had started")
    r.expect(bool(waited), "`cloud-init status --wait` in the pre-runner script did not answer done")
    r.expect(bool(done) and bool(started) and done[0][0] <= started[0][0] + 1,
             "the pre-runner script ran before cloud-init had finished")
    r.expect(bool(runsh) and bool(waited) and waited[0][0] < runsh[0][0], "run.sh started before the pre-runner script ended")


def during_update_no_libicu(sc, boot, r):
    _record_exit(boot, sc.timeout)


def _record_exit(boot, timeout):
    boot.wait_exit(timeout)


def check_job_runs(sc, r, lines, calls, settings, standins, download, outputs):
    log = script_log(lines)
    msgs = [m for _, m in log]
    r.expect(any("goes on in ec2-spot-runner.service" in m for m in msgs),
             "the bootstrap did not hand over to its systemd unit")
    r.expect(r.findings.get("reason", "") and r.findings["reason"].startswith("runner finished (run.sh exit status 0)"),
             f"power-off reason {r.findings.get('reason')!r}, not the runner finishing")
    started = find(lines, r"ec2sr-fake-runner: run\.sh started")
    r.expect(len(started) == 1, f"run.sh started {len(started)} times")
    probe = [json.loads(l.split("ec2sr-probe: ", 1)[1]) for _, l in lines if "ec2sr-probe: {" in l]
    kinds = {p["kind"] for p in probe}
    r.expect("probe-end" in kinds, "the probe job did not finish")
    wait = next((p for p in probe if p["kind"] == "cloud-init-status-wait"), None)
    # 0: done; 2 (cloud-init 24 and later): done, with recoverable errors
    # (the trimmed trixie image has no ssh-keygen for cloud-init's ssh module).
    r.expect(wait is not None and wait["rc"] in (0, 2) and wait["answer"].endswith("done"),
             f"`cloud-init status --wait` in the job: {wait}")
    if wait:
        r.timings["cloud_init_wait_s"] = wait["seconds"]
    procs = [p for p in probe if p["kind"] == "process"]
    r.expect(len(procs) > 10, f"the probe saw only {len(procs)} processes")
    r.expect(not [p for p in procs if p.get("jit_in_cmdline") or p.get("jitconfig_flag")],
             "the JIT config is on a command line: "
             + str([p["comm"] for p in procs if p.get("jit_in_cmdline") or p.get("jitconfig_flag")]))
    store = [m for m in msgs if m.startswith("instance store: ")]
    r.expect(len(store) == 1 and store[0].startswith("instance store: 2 NVMe disk(s), 4 GiB, is the work folder "
                                                     "/opt/actions-runner/_work, over what the image keeps there"),
             f"the two NVMe disks did not become the work folder: {store}")
    work = next((p for p in probe if p["kind"] == "work-folder"), {})
    r.expect(work.get("writable") and work.get("on_store") and "/dev/md" in " ".join(work.get("store", []))
             and " ext4" in " ".join(work.get("store", [])),
             f"what the job writes in its work folder does not land on the RAID 0 of the instance store: {work}")
    tool = next((p for p in probe if p["kind"] == "tool-cache"), {})
    r.expect(tool.get("present") is True, f"the image's _work/_tool is hidden by the instance store: {tool}")
    containerd = next((p for p in probe if p["kind"] == "containerd"), {})
    r.expect("/dev/md" in containerd.get("mount", "") and containerd.get("active") == "active",
             f"containerd's image store (Docker 29's default) is not on the instance store: {containerd}")
    r.expect(any(m == "containerd's image store /var/lib/containerd is on the instance store" for m in msgs),
             "the script did not say it moved containerd's image store")
    # SigIgn bit 1 is SIGINT, bit 2 SIGQUIT. Every bash ignores SIGQUIT for
    # itself and gives its children the disposition it started with (the
    # fake runner's processes are bash scripts; the real ones are .NET): the
    # step, which is not a shell, shows what the runner's chain handed down.
    sig = next((p for p in probe if p["kind"] == "signals"), {})
    masks = sig.get("ignored", {})
    r.expect(bool(sig) and {"run.sh", "Runner.Listener", "Runner.Worker", "python3"} <= set(sig.get("chain", []))
             and not any(m & 0b10 for m in masks.values()) and masks.get("python3") == 0,
             f"the job or the runner starts with SIGINT or SIGQUIT ignored: {sig}")
    env = next((p for p in probe if p["kind"] == "image-environment"), {})
    r.expect(env.get("agent_toolsdirectory") == "/opt/hostedtoolcache" and env.get("path", "").endswith(":/snap/bin")
             and env.get("java_home") == "/usr/lib/jvm/temurin-17-jdk-amd64",
             f"the job's environment is not the image's /etc/environment: {env}")
    pkg = next((p for p in probe if p["kind"] == "package-install"), {})
    r.expect(pkg.get("rc") == 0 and pkg.get("hello", "").endswith("\nhello from a package"),
             f"the job's apt-get install did not go through: {pkg}")
    r.timings["job_package_install_s"] = pkg.get("seconds")
    quiet = [m for m in msgs if m.startswith("stopped and masked for this machine's life: ")]
    r.expect(len(quiet) == 1 and "apt-daily.timer" in quiet[0], f"the image's package timers were not stopped: {quiet}")
    # The early start: run.sh before cloud-init's final stage began.
    t = timeline(None, lines)
    r.expect(t.get("run_sh_exec") is not None and t.get("cloud_init_final") is not None
             and t["run_sh_exec"] < t["cloud_init_final"],
             f"run.sh did not start before cloud-init's final stage: {t}")
    docker = next((p for p in probe if p["kind"] == "docker"), {})
    r.expect("/dev/md" in docker.get("mount", "") and docker.get("active") == "active"
             and docker.get("starts_in_data_root") == 1 and "docker" in docker.get("groups", []),
             f"Docker's data root is not on the instance store, Docker is not running again, or the runner "
             f"user is not in the docker group: {docker}")
    r.expect(any(m == "Docker's data root /var/lib/docker is on the instance store" for m in msgs),
             f"the script did not say it moved Docker's data root: {[m for m in msgs if 'Docker' in m]}")
    sudo = next((p for p in probe if p["kind"] == "sudo"), {})
    r.expect(sudo.get("rc") == 0 and sudo.get("uid") == "0", f"passwordless sudo in the job: {sudo}")
    ps = next((p for p in probe if p["kind"] == "ps"), {})
    r.expect(ps.get("jit_in_ps") is False and ps.get("jitconfig_flag") is False, f"`ps` shows the JIT config: {ps}")
    env = next((p for p in probe if p["kind"] == "job-environment"), {})
    r.expect(env.get("jit_in_environment") is False and env.get("jit_var_in_environment") is False,
             "the job's own environment holds the JIT config")
    holders = sorted({p["comm"] for p in procs if p.get("jit_in_environ")})
    readable = [p for p in procs if p.get("environ") == "readable"]
    r.findings["environ_readable_by_job"] = sorted({p["comm"] for p in readable})
    r.findings["jit_in_environ_readable_by_job"] = holders
    # The runner's own processes keep the variable they were started with
    # (the kernel shows a process's initial environment; the runner removes
    # it only from its managed copy). Any other holder is a leak.
    chain = {"run.sh", "run-helper.sh", "Runner.Listener"}
    r.expect(set(holders) <= chain, f"the JIT config is in the environment of {sorted(set(holders) - chain)}")
    worker = [p for p in procs if p["comm"] == "Runner.Worker"]
    r.expect(bool(worker) and not any(p.get("jit_in_environ") or p.get("jit_var_in_environ") for p in worker),
             "Runner.Worker (and so the job) inherited ACTIONS_RUNNER_INPUT_JITCONFIG")
    files = next((p for p in probe if p["kind"] == "runner-files"), {})
    r.findings["runner_files_readable_by_job"] = [f["name"] for f in files.get("files", []) if f["readable"]]
    warn = [m for m in msgs if m.startswith("WARNING: SPOT INTERRUPTION NOTICE")]
    r.expect(len(warn) == 1, f"{len(warn)} spot interruption warnings on the console, expected 1")
    notice = r.findings.get("spot_notice") or {}
    if warn and notice:
        r.expect(f"action={notice['action']}" in warn[0] and notice["time"] in warn[0],
                 f"the warning does not name the notice: {warn[0]}")
    spot_reads = [c for c in calls if c["path"].endswith("/spot/instance-action")]
    r.expect(len(spot_reads) >= 2 and all(c["token"] for c in spot_reads), "the spot watch did not poll IMDSv2")
    done = find(lines, r"Cloud-init v\. .* finished at")
    runsh = find(lines, r"ec2sr-fake-runner: run\.sh exits")
    r.expect(bool(done) and bool(runsh) and done[0][0] < runsh[0][0],
             "cloud-init did not finish before the runner exited")
    state = standins.get(f"{standins.github}/_standin/state")
    names = [x["name"] for rs in state.get("runners", {}).values() for x in rs]
    r.expect(settings.get("RUNNER_NAME") in names, "the runner was not registered by JIT at the GitHub stand-in")
    r.expect(state.get("registration_tokens_issued", 0) == 0, "a registration token was used")


def check_benchmark(sc, r, lines, calls, settings, standins, download, outputs):
    _reason_check(r, "runner finished (run.sh exit status 0)")


def _reason_check(r, text):
    reason = r.findings.get("reason") or ""
    r.expect(text in reason, f"power-off reason {reason!r}, expected {text!r}")


def _elapsed(lines, from_pattern, to_pattern):
    a, b = find(lines, from_pattern), find(lines, to_pattern)
    return round(b[0][0] - a[0][0], 1) if a and b else None


def check_idle_timeout(sc, r, lines, calls, settings, standins, download, outputs):
    _reason_check(r, "no job started within the idle timeout of 60s")
    r.expect(bool(find(lines, r"ec2sr-fake-runner: listener connected, .*job=none")), "the runner did not start")
    t = _elapsed(lines, r"ec2-spot-runner: bootstrap started", r"ec2-spot-runner: powering off")
    r.timings["script_to_poweroff_s"] = t
    r.expect(t is not None and 58 <= t <= 75, f"idle power-off {t} s after the script started, expected ~60")
    # The watchdogs outlive cloud-init's final stage: shown here when
    # cloud-init finished within the idle timeout (a busy host can stretch
    # the boot past 60 s); max-lifetime shows it on every boot.
    done = find(lines, r"Cloud-init v\. .* finished at")
    off = find(lines, r"ec2-spot-runner: powering off")
    r.expect(bool(off), "the idle watchdog never powered off")
    if done and off:
        r.timings["cloud_init_done_before_idle_off"] = done[0][0] < off[0][0]


def check_max_lifetime(sc, r, lines, calls, settings, standins, download, outputs):
    _reason_check(r, "max lifetime of 300s reached")
    msgs = [m for _, m in script_log(lines)]
    r.expect(any("idle watchdog stands down" in m for m in msgs), "the idle watchdog did not see the job")
    t = _elapsed(lines, r"ec2-spot-runner: bootstrap started", r"ec2-spot-runner: powering off")
    r.timings["script_to_poweroff_s"] = t
    r.expect(t is not None and 298 <= t <= 320, f"max-lifetime power-off {t} s after the script started, expected ~300")
    done = find(lines, r"Cloud-init v\. .* finished at")
    off = find(lines, r"ec2-spot-runner: powering off")
    r.expect(bool(done) and bool(off) and done[0][0] < off[0][0],
             "cloud-init was not done before the lifetime watchdog fired (watchdogs outlive cloud-final)")


def check_bad_checksum(sc, r, lines, calls, settings, standins, download, outputs):
    served = hashlib.sha256(download.tarball).hexdigest() if download else "?"
    _reason_check(r, f"runner checksum mismatch: expected {'0' * 64}, got {served}")
    r.expect(bool(find(lines, r"ec2sr-test: no pre-installed runner")), "the image's runner was not removed")
    r.expect(not find(lines, r"ec2sr-fake-runner: run\.sh started"), "run.sh ran although the checksum did not match")
    got = [q for q in (download.requests if download else []) if q["status"] == 200]
    r.expect(len(got) == 1 and got[0]["path"].endswith(f"/v{FAKE_VERSION}/actions-runner-linux-x64-{FAKE_VERSION}.tar.gz"),
             f"downloads: {download.requests if download else None}")
    r.expect(bool(got) and got[0]["host"] == "github.com", "the download did not go to github.com")


def check_update_no_libicu(sc, r, lines, calls, settings, standins, download, outputs):
    _reason_check(r, "runner finished (run.sh exit status 0)")
    r.expect(settings.get("RUNNER_VERSION") == FAKE_VERSION,
             f"start handed the instance runner {settings.get('RUNNER_VERSION')}, not the mirror's {FAKE_VERSION}")
    r.expect(r.findings.get("mirror_requests") == 1, f"{r.findings.get('mirror_requests')} requests to the mirror")
    msgs = [m for _, m in script_log(lines)]
    r.expect(bool(find(lines, r"ec2sr-test: the pre-installed runner is 2\.300\.0")), "the image's runner was not made old")
    r.expect(any(f"is 2.300.0, older than {FAKE_VERSION}: updating it" in m for m in msgs),
             "the bootstrap did not announce the update")
    got = [q for q in (download.requests if download else []) if q["status"] == 200]
    r.expect(len(got) == 1 and got[0]["host"] == "github.com"
             and got[0]["path"].endswith(f"/v{FAKE_VERSION}/actions-runner-linux-x64-{FAKE_VERSION}.tar.gz"),
             f"downloads: {download.requests if download else None}")
    r.expect(any(m == "runner checksum verified" for m in msgs), "the update was not verified")
    listener = find(lines, r"ec2sr-fake-runner: listener connected, ")
    r.expect(bool(listener) and f"version={FAKE_VERSION} " in listener[0][1],
             f"the runner that ran is not {FAKE_VERSION}: {listener[:1]}")
    r.expect(bool(find(lines, r"ec2sr-test: no libicu on this boot")), "libicu was not removed")
    note = [m for m in msgs if "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1" in m]
    r.expect(len(note) == 1 and note[0].startswith("no libicu on this image") and "install-libicu" in note[0],
             f"not one console line about invariant globalization: {note}")
    r.expect(not any("installing it" in m for m in msgs), "a package manager ran before the runner")
    r.expect(bool(listener) and "globalization=invariant" in listener[0][1],
             "the runner did not run with invariant globalization")
    r.expect(not find(lines, r"Couldn't find a valid ICU package"), "the runner stopped for want of ICU")


def check_reboot(sc, r, lines, calls, settings, standins, download, outputs):
    reset = r.timings.get("reset_at")
    r.expect(reset is not None, "the job never started, so the machine was never reset")
    if reset is None:
        return
    again = find(lines, r"Linux version \d", after=reset)
    r.expect(bool(again), "the machine did not boot again after the reset")
    after = [(t, m) for t, m in script_log(lines) if t >= reset]
    off = [(t, m) for t, m in after if m.startswith("powering off: ")]
    r.expect(bool(off) and "booted again" in off[0][1], f"no power-off for the second boot: {after[:3]}")
    r.expect(not find(lines, r"ec2sr-fake-runner: run\.sh started", after=reset), "a runner started after the reboot")
    r.expect(not find(lines, r"running 'modules:final'", after=reset), "cloud-init's final stage ran after the reboot")
    if again and r.timings.get("power_off"):
        r.timings["reset_to_poweroff_s"] = round(r.timings["power_off"] - reset, 1)
        r.timings["kernel2_to_poweroff_s"] = round(r.timings["power_off"] - again[0][0], 1)


# ---------------------------------------------------------------- main

def prepare(out: Path, flavor="trimmed"):
    if os.geteuid() != 0:
        raise SystemExit("boot_tests: needs root (the image build)")
    image = Path(last_line(["bash", str(HERE / "build-image.sh")], "build-image.sh",
                           env=dict(os.environ, EC2SR_IMAGE_FLAVOR=flavor)))
    qemu = Qemu()
    qemu.probe_kvm(image)
    out.mkdir(parents=True, exist_ok=True)
    standins = Standins(out)
    return image, qemu, standins


def fmt_timings(t):
    keys = ["start_s", "kernel", "cloud_init_final", "script_start", "run_sh_exec", "cloud_init_done",
            "power_off", "script_to_poweroff_s", "reset_to_poweroff_s", "cloud_init_wait_s", "total_s"]
    return " ".join(f"{k}={t[k]}" for k in keys if t.get(k) is not None)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", action="append", help="run only this one (repeatable)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "ec2sr-boot-tests")
    ap.add_argument("--jobs", type=int, default=2, help="machines booted side by side (default 2)")
    ap.add_argument("--benchmark", action="store_true", help="print the boot timeline of a plain job; figures only")
    ap.add_argument("-n", type=int, default=1, help="benchmark boots a side")
    ap.add_argument("--config", action="append", choices=sorted(BENCH_CONFIGS),
                    help="benchmark configuration (repeatable; default preinstalled)")
    ap.add_argument("--sides", default="ours,before,peer",
                    help="benchmark sides: ours (the user data start sends), before (the script as of "
                         f"{BEFORE_REF}), peer (machulav/ec2-github-runner v2.6.1's way); default all three")
    ap.add_argument("--before", action="store_true",
                    help=f"boot the script as of {BEFORE_REF} (before the boothook) with each start's settings, "
                         "to see which checks it fails")
    ap.add_argument("--image", choices=["trimmed", "stock", "trixie"], default="trimmed",
                    help="the image: trimmed (Debian 12, cloud-init 22.4: the tests' default), stock (the same "
                         "with Debian's cloud-init modules, OpenSSH, getty, timers: close to a stock cloud image), "
                         "or trixie (Debian 13, cloud-init 25.x, trimmed)")
    ap.add_argument("--pad-mb", type=int, default=200, help="size the downloaded runner archive is padded to")
    ap.add_argument("--smp", type=int, default=1, help="vCPUs per machine (default 1)")
    ap.add_argument("--allow-stale-template", action="store_true",
                    help="boot even when the binary's user data is not today's runner.sh (to see an old build's behaviour)")
    a = ap.parse_args(argv)
    global ALLOW_STALE, BEFORE, SMP
    ALLOW_STALE = a.allow_stale_template
    BEFORE = a.before
    SMP = a.smp
    if a.list:
        for s in SCENARIOS.values():
            print(f"{s.name}\t{s.doc}")
        return 0
    names = a.scenario or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; see --list")

    def on_signal(signum, frame):
        cleanup()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        image, qemu, standins = prepare(a.out, a.image)
        if a.benchmark:
            return benchmark(a, image, qemu, standins)
        began = time.monotonic()
        # The longest first, so that side by side they end together.
        order = sorted(names, key=lambda n: -SCENARIOS[n].timeout)
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
            futures = {n: pool.submit(run_scenario, SCENARIOS[n], qemu, image, standins, a.out / n) for n in order}
            results = [futures[n].result() for n in names]
        for r in results:
            status = "PASS" if not r.failures else "FAIL"
            print(f"{status} {r.name} [{qemu.accel}] {fmt_timings(r.timings)}", flush=True)
            for f in r.failures:
                print(f"     - {f}")
            for k, v in r.findings.items():
                if k not in ("spot_notice",):
                    print(f"     {k}: {v}")
        passed = sum(not r.failures for r in results)
        print(f"boot tests: {passed} passed, {len(results) - passed} failed "
              f"({qemu.accel}, {round(time.monotonic() - began)} s; details in {a.out})")
        return 0 if passed == len(results) else 1
    finally:
        cleanup()


# ---------------------------------------------------------------- benchmark

# The script before the boothook (the template as of that commit), to
# measure the change on the same boots.
BEFORE_REF = "0454a0f"


def before_template():
    return subprocess.run(["git", "-C", str(REPO), "show", f"{BEFORE_REF}:src/instance/runner.sh"],
                          capture_output=True, text=True, check=True).stdout


def peer_user_data(jit: str) -> bytes:
    """What machulav/ec2-github-runner v2.6.1 has a machine with a
    pre-installed runner do, with use-jit and runner-home-dir (src/aws.js,
    read at that tag), said in our own words: cloud-init writes a setup
    script and starts it in the background from its final stage (runcmd,
    run by scripts_user); the setup script changes to the runner's
    directory, allows the runner to run as root, removes a previous
    registration's files and execs run.sh with the JIT config as its
    argument. Here it is one shell-script part, which scripts_user runs at
    the same point of the boot; its output also goes to the console, where
    the harness reads the timeline (the peer writes it to a log file)."""
    setup = ("#!/bin/bash\n"
             "exec > >(tee -a /tmp/runner-setup.log /dev/console) 2>&1\n"
             "cd /opt/actions-runner\n"
             "export RUNNER_ALLOW_RUNASROOT=1\n"
             "rm -f .runner .credentials .credentials_rsaparams\n"
             f"./run.sh --jitconfig '{jit}'\n")
    script = ("#!/bin/bash\n"
              "echo 'ec2sr-peer: script started' >/dev/console\n"
              "base64 -d >/opt/runner-setup.sh <<'B64'\n"
              + base64.b64encode(setup.encode()).decode() + "\nB64\n"
              "chmod 755 /opt/runner-setup.sh\n"
              "nohup /opt/runner-setup.sh >/dev/null 2>&1 &\n")
    return gzip.compress(script.encode(), mtime=0)


BENCH_CONFIGS = {
    "preinstalled": ("a pre-installed runner, libicu in the image", {}, dict(runner="installed")),
    "no-libicu": ("a pre-installed runner, no libicu in the image", {}, dict(runner="installed", libicu=False)),
    "download": ("no runner in the image: a ~200 MB runner archive downloaded and verified", {},
                 dict(runner="none", download=True, mirror=True)),
}
BENCH_KEYS = ["kernel", "cloud_init_init", "script_start", "run_sh_exec", "listening", "cloud_init_final", "power_off"]


def bench_boot(side, config, qemu, image, standins, out, tarball):
    """One boot of one side; its timeline (seconds from power-on)."""
    doc, inputs, opts = BENCH_CONFIGS[config]
    out.mkdir(parents=True, exist_ok=True)
    inputs = dict(inputs)
    mirror = download = boot = None
    try:
        if opts.get("mirror"):
            mirror = ReleaseMirror(tarball, FAKE_VERSION)
            inputs["INPUT_RUNNER_RELEASES_URL"] = mirror.url
        _, call = standins.start(f"bench-{config}", inputs, out)
        ours = base64.b64decode(call["params"]["UserData"])
        settings = settings_of(gzip.decompress(ours).decode())
        if side == "ours":
            user_data = ours
        elif side == "before":
            user_data = gzip.compress(render.render(settings, before_template()).encode(), mtime=0)
        else:
            user_data = peer_user_data(settings["JIT_CONFIG"])
        args = f"ec2sr.job=sleep ec2sr.job_seconds=1 ec2sr.jit_sha256=0"
        if opts.get("runner") == "none":
            args += " ec2sr.runner=none"
        if opts.get("libicu") is False:
            args += " ec2sr.libicu=none"
        if opts.get("download"):
            download = Download(image, tarball)
        boot = Boot(qemu, image, out, user_data, call["params"].get("InstanceType", "c7i.large"),
                    call["params"].get("Placement.AvailabilityZone", "us-east-1a"), args, download=download)
        if side == "peer":
            # The peer's machine stays up after its job (its stop job ends it):
            # the boot ends when the runner has exited.
            if boot.wait_for(r"ec2sr-fake-runner: run\.sh exits", 900):
                boot.qmp("quit")
        exited = boot.wait_exit(900)
        lines = list(boot.lines)
        boot.finish()
        boot = None
        t = timeline(exited if side != "peer" else None, lines)
        t["failed"] = t.get("run_sh_exec") is None
        return t
    finally:
        if boot is not None:
            boot.finish()
        if download is not None:
            download.stop()
        if mirror is not None:
            mirror.stop()


def benchmark(a, image, qemu, standins):
    import statistics
    configs = a.config or ["preinstalled"]
    sides = a.sides.split(",")
    tarball = fake_runner_tarball(pad_mb=a.pad_mb)
    print(f"boot timeline, seconds from power-on ({qemu.accel.upper()}, QEMU 7.2, {SMP} vCPU, 1 GiB, "
          f"image {image.name}; console line arrival times on the host; {a.n} boots a side, sides alternating)")
    for config in configs:
        rows = {side: [] for side in sides}
        for i in range(a.n):
            for side in (sides if i % 2 == 0 else list(reversed(sides))):
                if side == "peer" and config != "preinstalled":
                    continue  # the peer's JIT path takes a pre-installed runner only
                t = bench_boot(side, config, qemu, image, standins, a.out / f"bench-{config}-{side}-{i + 1}", tarball)
                rows[side].append(t)
                print(f"  {config:>12} {side:>6} boot {i + 1}: " + " ".join(
                    f"{k}={t.get(k)}" for k in BENCH_KEYS if t.get(k) is not None), flush=True)
        print(f"\n{config}: {BENCH_CONFIGS[config][0]}")
        print("side    " + " ".join(f"{k:>20}" for k in BENCH_KEYS))
        medians = {}
        for side, ts in rows.items():
            if not ts:
                continue
            cells = []
            for k in BENCH_KEYS:
                vals = [t[k] for t in ts if t.get(k) is not None]
                if not vals:
                    cells.append(f"{'-':>20}")
                    continue
                med = statistics.median(vals)
                medians[(side, k)] = med
                cells.append(f"{med:>8.1f} ({min(vals):.1f}-{max(vals):.1f})".rjust(20))
            print(f"{side:<7} " + " ".join(cells))
        for other in ("peer", "before"):
            if ("ours", "run_sh_exec") in medians and (other, "run_sh_exec") in medians:
                print(f"ratio ours/{other}, power-on -> run.sh exec (medians): "
                      f"{medians[('ours', 'run_sh_exec')] / medians[(other, 'run_sh_exec')]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
