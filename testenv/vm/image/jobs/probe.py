#!/usr/bin/env python3
"""A job's step in the boot tests: what can a job on this machine see?

Runs as the runner user, a child of the (fake) Runner.Worker, like any step.
Prints one line per finding, `ec2sr-probe: <json>`, to stdout (the console):

  * cloud-init: `cloud-init status --wait` must return (cloud-init is done
    while the job runs), with its answer and how long it took;
  * processes: for every process, whether its /proc/PID/cmdline (what `ps`
    shows, readable by everyone) and /proc/PID/environ (readable by the same
    user) are readable by this job, and whether they hold the JIT config.
    The JIT config is recognised by its SHA-256, given on the kernel command
    line as ec2sr.jit_sha256 (the probe never sees the secret itself): an
    argument, an environment value, or the part after an `=` matches;
  * `ps -eo args`: the same check on what ps prints;
  * the job's own environment;
  * files in the runner's directory a job can read (the runner writes the
    JIT config's contents there).
"""

import hashlib
import json
import os
import subprocess
import sys
import time


def say(kind, **fields):
    print("ec2sr-probe: " + json.dumps({"kind": kind, **fields}, sort_keys=True), flush=True)


def param(name, default=""):
    for arg in open("/proc/cmdline").read().split():
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


JIT_SHA = param("ec2sr.jit_sha256")
VAR = b"ACTIONS_RUNNER_INPUT_JITCONFIG"


def holds_jit(entries):
    for e in entries:
        for piece in (e, e.split(b"=", 1)[-1], e.strip()):
            if piece and hashlib.sha256(piece).hexdigest() == JIT_SHA:
                return True
    return False


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "/opt/actions-runner"
    say("probe-start", uid=os.getuid(), user=os.environ.get("USER"), jit_sha256_known=bool(JIT_SHA))

    began = time.monotonic()
    try:
        p = subprocess.run(["cloud-init", "status", "--wait"], capture_output=True, text=True, timeout=90)
        rc, out = p.returncode, (p.stdout + p.stderr).strip().splitlines()
    except subprocess.TimeoutExpired:
        rc, out = "timeout", ["(still waiting after 90 s)"]
    say("cloud-init-status-wait", rc=rc, seconds=round(time.monotonic() - began, 2),
        answer=out[-1] if out else "")

    me = os.getpid()
    for pid in sorted(int(d) for d in os.listdir("/proc") if d.isdigit()):
        if pid == me:
            continue
        row = {"pid": pid}
        try:
            row["comm"] = open(f"/proc/{pid}/comm").read().strip()
            status = open(f"/proc/{pid}/status").read()
            row["uid"] = int(status.split("\nUid:\t", 1)[1].split()[0])
            row["ppid"] = int(status.split("\nPPid:\t", 1)[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue
        for what in ("cmdline", "environ"):
            try:
                data = open(f"/proc/{pid}/{what}", "rb").read()
            except OSError as e:
                row[what] = "denied" if isinstance(e, PermissionError) else "gone"
                continue
            entries = data.split(b"\0")
            row[what] = "readable"
            row[f"jit_in_{what}"] = holds_jit(entries)
            if what == "environ":
                row["jit_var_in_environ"] = any(e.startswith(VAR + b"=") for e in entries)
            if what == "cmdline":
                row["jitconfig_flag"] = b"--jitconfig" in entries
        say("process", **row)

    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True).stdout
    say("ps", lines=len(ps.splitlines()),
        jit_in_ps=holds_jit([w for line in ps.splitlines() for w in line.split()]),
        jitconfig_flag=b"--jitconfig" in ps)

    env = [f"{k}={v}".encode() for k, v in os.environ.items()]
    say("job-environment", names=sorted(os.environ), jit_in_environment=holds_jit(env),
        jit_var_in_environment=VAR.decode() in os.environ)

    files = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if name.startswith(".") and os.path.isfile(path):
            st = os.stat(path)
            files.append({"name": name, "mode": oct(st.st_mode & 0o777), "readable": os.access(path, os.R_OK)})
    say("runner-files", root=root, files=files)

    # The work folder, on the instance store when there is one.
    work = os.path.join(root, "_work")
    p = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE,SIZE", "--target", work], capture_output=True, text=True)
    written = False
    try:
        with open(os.path.join(work, "probe-was-here"), "w") as f:
            f.write("ok")
        written = True
    except OSError:
        pass
    # Where that write landed: the instance store, as root sees it.
    landed = subprocess.run(["sudo", "-n", "sh", "-c", "findmnt -no SOURCE,FSTYPE --target /mnt/ec2-spot-runner; "
                             "ls /mnt/ec2-spot-runner/work"], capture_output=True, text=True, timeout=30).stdout
    say("work-folder", path=work, mount=p.stdout.strip(), writable=written,
        store=landed.splitlines()[:1], on_store="probe-was-here" in landed.split())

    # Most jobs install packages: passwordless sudo, as on GitHub-hosted runners.
    p = subprocess.run(["sudo", "-n", "id", "-u"], capture_output=True, text=True, timeout=60)
    say("sudo", rc=p.returncode, uid=p.stdout.strip(), error=p.stderr.strip()[-200:])
    # Docker (the image's stand-in): its data root on the instance store,
    # the service running again after the move, the runner user in its group.
    if os.path.isdir("/var/lib/docker"):
        p = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE", "--target", "/var/lib/docker"],
                           capture_output=True, text=True, timeout=30)
        # As root (the image has no D-Bus for a user's systemctl, and the
        # data root is 0710 root): the stand-in writes a line each time it
        # starts, so a line in the moved (new, empty) root means it restarted.
        active = subprocess.run(["sudo", "-n", "systemctl", "is-active", "docker.service"], capture_output=True,
                                text=True, timeout=30).stdout.strip()
        log = subprocess.run(["sudo", "-n", "cat", "/var/lib/docker/ec2sr-fake-docker.log"], capture_output=True,
                             text=True, timeout=30).stdout.strip().splitlines()
        p2 = subprocess.run(["id", "-nG"], capture_output=True, text=True, timeout=30)
        say("docker", mount=p.stdout.strip(), active=active, starts_in_data_root=len(log), groups=p2.stdout.split())
    # Containerd's image store (Docker 29's default for fresh installs): it
    # holds the images, so it belongs on the instance store too.
    if os.path.isdir("/var/lib/containerd"):
        p = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE", "--target", "/var/lib/containerd"],
                           capture_output=True, text=True, timeout=30)
        active = subprocess.run(["sudo", "-n", "systemctl", "is-active", "containerd.service"], capture_output=True,
                                text=True, timeout=30).stdout.strip()
        say("containerd", mount=p.stdout.strip(), active=active)

    # What the image kept in the work folder (its tool cache) is still there.
    tool = os.path.join(work, "_tool", "ec2sr-probe", "1.0.0", "x64.complete")
    say("tool-cache", path=tool, present=os.path.exists(tool))

    # Signal dispositions: a step must start with SIGINT and SIGQUIT at their
    # defaults, or the runner's SIGINT on a cancel does nothing; so must the
    # runner's own processes, from which the steps inherit them.
    chain = {}
    pid = os.getpid()
    while pid > 1:
        try:
            status = open(f"/proc/{pid}/status").read()
        except OSError:
            break
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        chain[fields["Name"].strip()] = int(fields["SigIgn"].strip(), 16)
        pid = int(fields["PPid"].strip())
    say("signals", ignored={name: mask & 0b110 for name, mask in chain.items()}, chain=sorted(chain))

    # The image's environment (its /etc/environment, as a login reads it).
    say("image-environment", path=os.environ.get("PATH", ""),
        agent_toolsdirectory=os.environ.get("AGENT_TOOLSDIRECTORY"),
        java_home=os.environ.get("JAVA_HOME_17_X64"))

    # A job's first step installs a package: the image's apt-daily, which
    # takes the dpkg lock at boot, must not be holding it.
    began = time.monotonic()
    p = subprocess.run(["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
                        "/usr/local/lib/ec2sr-test/ec2sr-hello_1.0_all.deb"],
                       capture_output=True, text=True, timeout=300)
    hello = subprocess.run(["sh", "-c", "command -v ec2sr-hello && ec2sr-hello"], capture_output=True, text=True)
    say("package-install", rc=p.returncode, seconds=round(time.monotonic() - began, 2),
        tail=(p.stdout + p.stderr).strip().splitlines()[-3:], hello=hello.stdout.strip())
    say("probe-end")


if __name__ == "__main__":
    main()
