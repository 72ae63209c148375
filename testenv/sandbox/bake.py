#!/usr/bin/env python3
"""Sandbox harness for the bake's builder script (src/instance/bake.sh): runs
a rendered script, unmodified, as root in private mount and PID namespaces,
as cloud-init would run a user-data script, and checks what it did.

    bake.py settings --out DIR
        Prints (and writes to DIR/settings.json) what to render the script
        with: the fake runner's version, its SHA-256, and a download URL on
        a free 127.0.0.1 port.
    bake.py --script bake.sh --scenario NAME --out DIR [--timeout S]
        Runs one scenario; prints a JSON result; exit 0 when every check
        passed, 1 when one failed, 2 when the harness could not run.
    bake.py scenarios
        Lists the scenarios.

The sandbox is run.py's (its stubs, its fake runner served on 127.0.0.1, its
namespace init), with /root private too: the script removes root's shell
history. There is no systemd (the private /run has no /run/systemd/system)
and no cloud-init, so the script cleans and powers off by itself, as on an
image without either. The image's own state that the bake must clean is
planted first: a machine id, SSH host keys, shell histories.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True
import run  # noqa: E402  (same directory: the runner sandbox's parts)

SCENARIOS = {
    "bake-ok": "runner downloaded and verified into /opt/actions-runner, dependencies and the bake script run, "
               "runner user owns it, per-instance state cleaned, verdict `done`, power-off",
    "bake-bad-checksum": "wrong checksum: verdict FAILED with both hashes, nothing in /opt, power-off",
    "bake-script-fails": "the bake script exits 3: verdict FAILED naming it, nothing cleaned, power-off",
}
VERDICT = "ec2-spot-runner-bake: "
# The settings src/instance/bake.rs renders.
NAMES = ("RUNNER_VERSION", "RUNNER_SHA256_X64", "RUNNER_SHA256_ARM64", "RUNNER_DOWNLOAD_URL", "INSTALL_DOCKER",
         "BAKE_SCRIPT", "LOG_FILE")


def settings(out: Path) -> dict:
    tarball = run.fake_tarball()
    port = run.free_port()
    values = {
        "runner_version": run.FAKE_VERSION,
        "sha256": __import__("hashlib").sha256(tarball).hexdigest(),
        "download_url": f"http://127.0.0.1:{port}/v{{version}}/actions-runner-linux-{{arch}}-{{version}}.tar.gz",
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(values, indent=1))
    return values


def plant(root: Path) -> None:
    """What a used builder holds that no image may keep."""
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    ssh = root / "etc/ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
        (ssh / name).write_text("builder's key\n")
    (root / "root").mkdir(exist_ok=True)
    (root / "root/.bash_history").write_text("builder's history\n")
    (root / "home/admin").mkdir(parents=True, exist_ok=True)
    (root / "home/admin/.bash_history").write_text("builder's history\n")


def run_scenario(script: Path, name: str, out: Path, timeout: float) -> dict:
    if name not in SCENARIOS:
        raise run.HarnessError(f"unknown scenario {name!r}; see `bake.py scenarios`")
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise run.HarnessError("needs root and unshare (util-linux)")
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    text = script.read_text()
    values = run.parse_settings(text, NAMES)
    port = int(values["RUNNER_DOWNLOAD_URL"].split(":")[2].split("/")[0])
    if not values["RUNNER_DOWNLOAD_URL"].startswith("http://127.0.0.1:"):
        raise run.HarnessError("RUNNER_DOWNLOAD_URL must be on 127.0.0.1")
    tarball = run.fake_tarball()
    spec = dict(stubs=[], pkg_install="ok", environment=None, booted_before=False, runner={},
                home_modes={}, preinstall=[], preinstall_version=None)
    root = run.prepare_root(out, spec, values, script, tarball)
    plant(root)
    state = run.host_path(root, run.STATE)
    dl_state = {"requests": [], "tarball": tarball}
    server = run.Server(run.download_handler(dl_state), port)
    try:
        binds = [[str(root / d), "/" + d] for d in ("etc", "opt", "home", "var/log", "var/lib", "run", "tmp", "root")]
        binds.append([str(root / "console"), "/dev/console"])
        cfg = {
            "binds": binds,
            "state_dir": run.STATE,
            "signals_ignored": False,
            "script": f"{run.STATE}/user-data.sh",
            "env": {"PATH": f"{run.STATE}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG": "C.UTF-8"},
        }
        timed_out, leftovers, _ = run.run_namespace(out, cfg, timeout)
    finally:
        server.stop()
    return check(name, root, state, values, dl_state, timed_out, leftovers)


def verdict_of(console: str) -> str | None:
    lines = [line for line in console.splitlines() if line.startswith(VERDICT)]
    return lines[-1][len(VERDICT):] if lines else None


def check(name, root, state, values, dl_state, timed_out, leftovers) -> dict:
    failures = []

    def expect(ok, what):
        if not ok:
            failures.append(what)

    console = run.read(root / "console") or ""
    verdict = verdict_of(console)
    poweroffs = run.read(state / "poweroff-calls") or ""
    runner_dir = root / "opt/actions-runner"
    passwd = run.read(root / "etc/passwd") or ""
    expect(not timed_out, "timed out")
    expect(not leftovers, f"processes left: {leftovers}")
    expect(bool(poweroffs.strip()), "never powered off")
    expect(not list((root / "opt").glob(".ec2-spot-runner-bake.*")), "a download folder was left in /opt")
    log_lines = [line for line in console.splitlines() if " ec2-spot-runner-bake: " in line]
    expect(bool(log_lines), "nothing logged to the console")
    if name == "bake-ok":
        version = values["RUNNER_VERSION"]
        expect(verdict == f"done runner={version}", f"verdict {verdict!r}")
        expect((runner_dir / "run.sh").is_file(), "no /opt/actions-runner/run.sh")
        owner = next((line.split(":") for line in passwd.splitlines() if line.startswith("runner:")), None)
        expect(owner is not None, "no runner user")
        if owner is not None and (runner_dir / "run.sh").exists():
            expect((runner_dir / "run.sh").stat().st_uid == int(owner[2]), "run.sh is not the runner user's")
        expect((run.read(runner_dir / ".ec2-spot-runner-baked") or "").strip() == version, "no bake mark")
        expect((root / "opt/baked-by-script").exists(), "the bake script did not run")
        expect((root / "run/ec2sr-test/record/installdependencies").exists(),
               "bin/installdependencies.sh did not run")
        expect(run.read(root / "etc/machine-id") == "", "/etc/machine-id not emptied")
        expect(not list((root / "etc/ssh").glob("ssh_host_*")), "SSH host keys kept")
        expect(not (root / "root/.bash_history").exists(), "root's history kept")
        expect(not (root / "home/admin/.bash_history").exists(), "a user's history kept")
        expect(not (root / "var/log/ec2-spot-runner-bake.log").exists(), "the bake's log kept")
        expect(not (root / "etc/apt/apt.conf.d/90ec2-spot-runner-bake").exists(), "the apt lock wait kept")
        expect(len(dl_state["requests"]) == 1, f"downloads: {dl_state['requests']}")
    elif name == "bake-bad-checksum":
        expect(verdict is not None and verdict.startswith("FAILED runner checksum mismatch"), f"verdict {verdict!r}")
        expect(not runner_dir.exists(), "/opt/actions-runner exists after a mismatch")
    elif name == "bake-script-fails":
        expect(verdict == "FAILED the bake script exited with status 3 (see /var/log/ec2-spot-runner-bake.log)",
               f"verdict {verdict!r}")
        expect((root / "var/log/ec2-spot-runner-bake.log").exists(), "the log that names the failure is gone")
    return {"scenario": name, "passed": not failures, "failures": failures, "verdict": verdict,
            "console": console[-4000:], "poweroff_calls": poweroffs.splitlines()}


def main(argv) -> int:
    if argv[:1] == ["scenarios"]:
        for name, doc in SCENARIOS.items():
            print(f"{name}\t{doc}")
        return 0
    if argv[:1] == ["settings"]:
        p = argparse.ArgumentParser(prog="bake.py settings")
        p.add_argument("--out", type=Path, required=True)
        a = p.parse_args(argv[1:])
        print(json.dumps(settings(a.out)))
        return 0
    p = argparse.ArgumentParser(prog="bake.py")
    p.add_argument("--script", type=Path, required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args(argv)
    try:
        result = run_scenario(a.script, a.scenario, a.out, a.timeout)
    except run.HarnessError as e:
        print(json.dumps({"error": str(e)}))
        return 2
    (a.out / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
