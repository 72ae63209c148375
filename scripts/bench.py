#!/usr/bin/env python3
"""Benchmark of the control plane against the local stand-ins.

Prints figures (median and p95 over repeated runs); it never passes or fails
on absolute times. Run it with the test venv's python:

    python scripts/bench.py [--runs 20] [--binary PATH] [--quick]

What it measures, and how:
* start wall time (wait-for: running), and the binary's own CPU time (user +
  system, from wait4): the time it spends working rather than waiting on a
  response;
* EC2 and GitHub requests per start, best case and with every spot candidate
  failing for capacity (the full fallback walk), from the stand-ins' call logs;
* detection latency: how long after the API starts reporting `running` the
  binary's poll sees it (the shim keeps a new instance `pending` for a set
  time, so the moment it flips is known);
* stop and cleanup wall time and request counts with 1, 10 and 100 managed
  instances;
* process start to the first log line, peak memory (max RSS), binary size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/ec2-spot-runner/target"))
AMI = "ami-1e749f67"
REPO = "acme/widgets"
BENCH_TOKEN = "ghp_BenchmarkTokenBenchmarkToken000000"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def fmt_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.1f} ms median, {pct(values, 95) * 1000:8.1f} ms p95"


class Stand:
    """The stand-ins, started once for the whole benchmark."""

    def __init__(self, workdir: str) -> None:
        self.dir = workdir
        ready = os.path.join(workdir, "ready.json")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "testenv", "serve.py"), "--ready-file", ready],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(workdir, "serve.log"), "w"),
        )
        deadline = time.monotonic() + 60
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench: the stand-ins did not start; see " + os.path.join(workdir, "serve.log"))
            time.sleep(0.05)
        info = json.load(open(ready))
        self.ec2, self.github, self.moto = info["ec2"], info["github"], info["moto"]
        key = os.path.join(workdir, "app.pem")
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
            check=True,
            capture_output=True,
        )
        pub = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"], check=True, capture_output=True, text=True)
        self.private_key = open(key).read()
        self.public_key = pub.stdout
        for name in ("aws-config", "aws-credentials"):
            open(os.path.join(workdir, name), "w").close()

    def post(self, url: str, body) -> None:
        req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()

    def delete(self, url: str) -> None:
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE")).read()

    def get(self, url: str):
        return json.load(urllib.request.urlopen(url))

    def reset(self, pending: float = 0.0) -> None:
        self.post(f"{self.ec2}/_shim/reset", {})
        self.post(
            f"{self.github}/_standin/config",
            {
                "apps": [
                    {
                        "id": 1234,
                        "client_id": "Iv23liBench",
                        "public_key_pem": self.public_key,
                        "installations": [
                            {"id": 55, "account": "acme", "account_type": "Organization", "repositories": [REPO]}
                        ],
                    }
                ],
                "tokens": [{"token": BENCH_TOKEN, "repositories": [REPO], "organizations": []}],
                "auto_online_after": None,
            },
        )
        self.post(
            f"{self.ec2}/_shim/spot-prices",
            [
                {"instance_type": "c7i.large", "availability_zone": "us-east-1a", "price": "0.0412"},
                {"instance_type": "c7i.large", "availability_zone": "us-east-1b", "price": "0.0335"},
                {"instance_type": "c6i.large", "availability_zone": "us-east-1a", "price": "0.0371"},
                {"instance_type": "c6i.large", "availability_zone": "us-east-1c", "price": "0.0398"},
            ],
        )
        self.post(f"{self.ec2}/_shim/config", {"pending_seconds": pending})
        self.clear()

    def clear(self) -> None:
        self.delete(f"{self.ec2}/_shim/calls")
        self.delete(f"{self.github}/_standin/calls")

    def calls(self) -> tuple[list, list]:
        return self.get(f"{self.ec2}/_shim/calls"), self.get(f"{self.github}/_standin/calls")

    def env(self, run_id: int) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.dir,
            "AWS_ENDPOINT_URL_EC2": self.ec2,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.path.join(self.dir, "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.dir, "aws-credentials"),
            "GITHUB_API_URL": self.github,
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_RUN_ID": str(run_id),
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_JOB": "bench",
            "INPUT_GITHUB_APP_ID": "1234",
            "INPUT_GITHUB_APP_PRIVATE_KEY": self.private_key,
        }

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)

    def create_instances(self, n: int, label: str, age_minutes: int) -> None:
        """Managed instances straight in moto (boto3 from the venv)."""
        import boto3

        ec2 = boto3.client(
            "ec2",
            region_name="us-east-1",
            endpoint_url=self.moto,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        created = (datetime.now(timezone.utc) - timedelta(minutes=age_minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for i in range(n):
            name = f"{label}-{i + 1}"
            ec2.run_instances(
                ImageId=AMI,
                InstanceType="c7i.large",
                MinCount=1,
                MaxCount=1,
                TagSpecifications=[
                    {
                        "ResourceType": "instance",
                        "Tags": [
                            {"Key": "ec2-spot-runner:managed", "Value": "true"},
                            {"Key": "ec2-spot-runner:label", "Value": label},
                            {"Key": "ec2-spot-runner:runner-name", "Value": name},
                            {"Key": "ec2-spot-runner:scope", "Value": REPO},
                            {"Key": "ec2-spot-runner:created-at", "Value": created},
                            {"Key": "ec2-spot-runner:max-lifetime", "Value": "21600"},
                        ],
                    }
                ],
            )


def measure(binary: str, args: list[str], env: dict[str, str]) -> dict:
    """Runs the binary and returns wall time, time to its first log line,
    CPU time (user + system) and peak RSS."""
    r, w = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(w, 2)
            os.execve(binary, [binary, *args], env)
        finally:
            os._exit(127)
    os.close(w)
    first = float("nan")
    chunks = []
    with os.fdopen(r, "rb") as pipe:
        data = pipe.read(1)
        if data:
            first = time.perf_counter() - started
            chunks.append(data)
            chunks.append(pipe.read())
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "first": first,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "code": os.waitstatus_to_exitcode(status),
        "stderr": b"".join(chunks).decode(errors="replace"),
    }


def start_args() -> list[str]:
    return ["start", "--image-id", AMI, "--instance-types", "c7i.large,c6i.large", "--boot-boost", "false"]


def bench_start(stand: Stand, binary: str, runs: int) -> None:
    walls, cpus, firsts, rss, ec2_counts, gh_counts = [], [], [], [], [], []
    for i in range(runs):
        stand.reset()
        m = measure(binary, start_args(), stand.env(5000 + i))
        if m["code"] != 0:
            raise SystemExit(f"bench: start failed:\n{m['stderr']}")
        ec2, gh = stand.calls()
        walls.append(m["wall"])
        cpus.append(m["cpu"])
        firsts.append(m["first"])
        rss.append(m["rss_mb"])
        ec2_counts.append(len(ec2))
        gh_counts.append(len(gh))
    token_cpus, token_walls = [], []
    for i in range(runs):
        stand.reset()
        env = stand.env(5500 + i)
        del env["INPUT_GITHUB_APP_ID"], env["INPUT_GITHUB_APP_PRIVATE_KEY"]
        env["INPUT_GITHUB_TOKEN"] = BENCH_TOKEN
        m = measure(binary, start_args(), env)
        if m["code"] != 0:
            raise SystemExit(f"bench: start with a token failed:\n{m['stderr']}")
        token_cpus.append(m["cpu"])
        token_walls.append(m["wall"])
    print(f"start, wait-for running ({runs} runs)")
    print(f"  wall time                    {fmt_ms(walls)}")
    print(f"  binary CPU time (user+sys)   {fmt_ms(cpus)}")
    print(f"  the same with a token        {fmt_ms(token_cpus)} CPU; wall {fmt_ms(token_walls)}")
    print(f"  process start to first log   {fmt_ms(firsts)}")
    print(f"  peak memory (max RSS)        {statistics.median(rss):8.1f} MB median, {max(rss):8.1f} MB max")
    print(f"  requests per start           EC2 {statistics.median(ec2_counts):.0f}, GitHub {statistics.median(gh_counts):.0f}")

    # The full fallback walk: every spot candidate fails for capacity.
    stand.reset()
    stand.post(
        f"{stand.ec2}/_shim/faults",
        [
            {
                "action": "RunInstances",
                "match": {"InstanceMarketOptions.MarketType": "spot"},
                "status": 500,
                "code": "InsufficientInstanceCapacity",
                "message": "no capacity",
            }
        ],
    )
    m = measure(binary, start_args(), stand.env(6000))
    ec2, gh = stand.calls()
    launches = sum(1 for c in ec2 if c["action"] == "RunInstances")
    print(
        f"  full fallback walk           EC2 {len(ec2)} ({launches} RunInstances: 4 spot candidates, then on-demand), "
        f"GitHub {len(gh)}; wall {m['wall'] * 1000:.0f} ms, exit {m['code']}"
    )


def bench_detection(stand: Stand, binary: str, runs: int) -> None:
    print("detection of `running` (shim flips the instance after a set pending time)")
    for pending in (2.0, 10.0, 35.0):
        lags, polls = [], []
        for i in range(runs if pending < 30 else 1):
            stand.reset(pending=pending)
            m = measure(binary, start_args(), stand.env(7000 + i))
            if m["code"] != 0:
                raise SystemExit(f"bench: start failed:\n{m['stderr']}")
            ec2, _ = stand.calls()
            launch = next(c for c in ec2 if c["action"] == "RunInstances")
            flip = launch["ts"] + launch.get("duration_ms", 0) / 1000 + pending
            describes = [c for c in ec2 if c["action"] == "DescribeInstances"]
            after = [c["ts"] for c in describes if c["ts"] >= flip]
            if after:
                lags.append(min(after) - flip)
            polls.append(len(describes))
        lag = f"{statistics.median(lags) * 1000:6.0f} ms median, {max(lags) * 1000:6.0f} ms max" if lags else "n/a"
        print(f"  pending {pending:4.0f} s: noticed {lag} after the flip; {statistics.median(polls):.0f} DescribeInstances")


def bench_stop_cleanup(stand: Stand, binary: str) -> None:
    print("stop and cleanup with N managed instances")
    for n in (1, 10, 100):
        stand.reset()
        stand.create_instances(n, f"ec2-bench-{n}", age_minutes=30)
        stand.clear()
        m = measure(binary, ["stop", "--label", f"ec2-bench-{n}"], stand.env(8000))
        ec2, gh = stand.calls()
        print(
            f"  stop    N={n:3}: {m['wall'] * 1000:7.0f} ms, EC2 {len(ec2)} requests "
            f"({sum(1 for c in ec2 if c['action'] == 'TerminateInstances')} TerminateInstances), GitHub {len(gh)}, exit {m['code']}"
        )
        stand.reset()
        stand.create_instances(n, f"ec2-bench-{n}", age_minutes=30)
        stand.clear()
        env = stand.env(8001)
        env["INPUT_SETTLE"] = "0s"
        m = measure(binary, ["cleanup"], env)
        ec2, gh = stand.calls()
        print(
            f"  cleanup N={n:3}: {m['wall'] * 1000:7.0f} ms, EC2 {len(ec2)} requests "
            f"({sum(1 for c in ec2 if c['action'] == 'TerminateInstances')} TerminateInstances), GitHub {len(gh)}, exit {m['code']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--binary", help="binary to measure (default: release build if present, else debug)")
    parser.add_argument("--quick", action="store_true", help="fewer runs, for CI")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    binary = args.binary
    release = os.path.join(os.environ.get("CARGO_TARGET_DIR_RELEASE", TARGET + "-release"), "release", "ec2-spot-runner")
    if not binary:
        binary = release if os.path.exists(release) else os.path.join(TARGET, "debug", "ec2-spot-runner")
    if not os.path.exists(binary):
        raise SystemExit(f"bench: no binary at {binary}; run cargo build first")
    print(f"binary: {binary} ({os.path.getsize(binary) / 1e6:.1f} MB)")
    if os.path.exists(release):
        print(f"release binary (stripped, size-optimised profile): {os.path.getsize(release) / 1e6:.2f} MB")
    print(f"machine: {os.cpu_count()} cores; stand-ins: moto + shim + GitHub stand-in on 127.0.0.1")
    work = tempfile.mkdtemp(prefix="ec2sr-bench-")
    stand = Stand(work)
    try:
        # Warm moto's EC2 backend so the first measured run is not an outlier.
        stand.reset()
        measure(binary, start_args(), stand.env(4999))
        bench_start(stand, binary, runs)
        bench_detection(stand, binary, max(2, runs // 4))
        bench_stop_cleanup(stand, binary)
    finally:
        stand.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
