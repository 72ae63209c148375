"""Quick end-to-end check of the local test environment.

    "$(bash testenv/setup.sh)/bin/python" testenv/selftest.py

Starts serve.py, exercises every shim and stand-in feature once and asserts the
results.  Exit status 0 on success.  Prints "N passed, 0 failed" at the end.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
from http.client import HTTPConnection
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
AMI = "ami-1e749f67"  # ships with moto (ubuntu trusty, x86_64, us-east-1)
REGION = "us-east-1"

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def deco(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            t = time.perf_counter()
            try:
                fn()
            except Exception:
                RESULTS.append((name, False, traceback.format_exc()))
                print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
            else:
                RESULTS.append((name, True, ""))
                print(f"ok   {name} ({(time.perf_counter() - t) * 1000:.0f} ms)", flush=True)

        run.__name__ = fn.__name__
        CHECKS.append(run)
        return run

    return deco


CHECKS: list[Callable[[], None]] = []


def http(method: str, url: str, body: Any = None, headers: dict[str, str | None] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Plain HTTP without urllib's implicit User-Agent. A header given as
    None is left out."""
    parts = urllib.parse.urlsplit(url)
    hdrs: dict[str, str | None] = {"User-Agent": "ec2-spot-runner-selftest"}
    hdrs.update(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn = HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=data, headers={k: v for k, v in hdrs.items() if v is not None})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def jbody(raw: bytes) -> Any:
    return json.loads(raw.decode()) if raw else None


# --------------------------------------------------------------- fixtures
class Env:
    proc: subprocess.Popen
    urls: dict[str, Any]
    ready_file: str


ENV = Env()


def start_server() -> None:
    tmp = tempfile.mkdtemp(prefix="ec2sr-selftest-")
    ENV.ready_file = os.path.join(tmp, "ready.json")
    t = time.perf_counter()
    ENV.proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "serve.py"), "--ready-file", ENV.ready_file, "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not os.path.exists(ENV.ready_file):
        if ENV.proc.poll() is not None:
            raise SystemExit(f"serve.py exited early with {ENV.proc.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit("serve.py did not become ready in 30 s")
        time.sleep(0.02)
    with open(ENV.ready_file) as fh:
        ENV.urls = json.load(fh)
    print(f"serve.py ready after {(time.perf_counter() - t) * 1000:.0f} ms: {ENV.urls}", flush=True)


def ec2_client(key: str = "AKIAIOSFODNN7EXAMPLE", secret: str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=ENV.urls["ec2"],
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def client_error(fn: Callable[[], Any]) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        fn()
    except ClientError as err:
        return {"code": err.response["Error"]["Code"], "message": err.response["Error"].get("Message", ""), "status": err.response["ResponseMetadata"]["HTTPStatusCode"]}
    raise AssertionError("expected a ClientError")


def shim(method: str, path: str, body: Any = None) -> Any:
    status, _, raw = http(method, ENV.urls["ec2"] + path, body)
    assert status < 300, (status, raw)
    return jbody(raw)


def standin(method: str, path: str, body: Any = None) -> Any:
    status, _, raw = http(method, ENV.urls["github"] + path, body)
    assert status < 300, (status, raw)
    return jbody(raw)


def subnet_and_sg(ec2: Any) -> tuple[str, str]:
    subnet = next(
        s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if s["AvailabilityZone"] == "us-east-1a"
    )
    sg = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    return subnet, sg


def launch_kwargs(ec2: Any, **over: Any) -> dict[str, Any]:
    subnet, sg = subnet_and_sg(ec2)
    kw: dict[str, Any] = dict(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        InstanceType="c7i.large",
        Placement={"AvailabilityZone": "us-east-1a"},
        SubnetId=subnet,
        SecurityGroupIds=[sg],
        UserData="#!/bin/bash\necho runner\n",  # boto3 base64-encodes it
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
        InstanceInitiatedShutdownBehavior="terminate",
        InstanceMarketOptions={"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}},
        BlockDeviceMappings=[
            {
                "DeviceName": "/dev/sda1",  # the image's root device: EC2 resizes the root volume
                "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "Iops": 4000, "Throughput": 250, "Encrypted": True, "DeleteOnTermination": True},
            }
        ],
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "runner-1"}, {"Key": "ec2-spot-runner", "Value": "job-1"}]},
            {"ResourceType": "volume", "Tags": [{"Key": "ec2-spot-runner", "Value": "job-1"}]},
        ],
    )
    kw.update(over)
    return kw


def all_instances(ec2: Any) -> list[dict[str, Any]]:
    return [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]


# ------------------------------------------------------------------ EC2
@check("moto accepts the full RunInstances parameter set; DescribeInstances/Volumes report it")
def t_run_instances() -> None:
    shim("POST", "/_shim/reset")
    ec2 = ec2_client()
    inst = ec2.run_instances(**launch_kwargs(ec2))["Instances"][0]
    d = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert {t["Key"]: t["Value"] for t in d["Tags"]} == {"Name": "runner-1", "ec2-spot-runner": "job-1"}, d["Tags"]
    assert d["MetadataOptions"]["HttpTokens"] == "required"
    assert d["Placement"]["AvailabilityZone"] == "us-east-1a"
    assert d["InstanceLifecycle"] == "spot"
    assert d["InstanceType"] == "c7i.large"
    vol_id = d["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert d["BlockDeviceMappings"][0]["DeviceName"] == "/dev/sda1" and d["RootDeviceName"] == "/dev/sda1"
    assert len(d["BlockDeviceMappings"]) == 1, d["BlockDeviceMappings"]
    vol = ec2.describe_volumes(VolumeIds=[vol_id])["Volumes"][0]
    assert vol["VolumeType"] == "gp3" and vol["Encrypted"] and vol["Size"] == 30, vol
    assert vol["Iops"] == 4000 and vol.get("Throughput") == 250, vol  # patched by the shim
    assert {t["Key"]: t["Value"] for t in vol["Tags"]} == {"ec2-spot-runner": "job-1"}
    mod = ec2.modify_volume(VolumeId=vol_id, Iops=6000, Throughput=500)["VolumeModification"]
    assert mod["TargetIops"] == 6000 and mod["TargetThroughput"] == 500, mod
    calls = shim("GET", "/_shim/calls")
    run = [c for c in calls if c["action"] == "RunInstances"][-1]
    assert run["params"]["UserData"] == base64.b64encode(b"#!/bin/bash\necho runner\n").decode()
    assert run["params"]["InstanceMarketOptions.MarketType"] == "spot"
    assert run["status"] == 200 and run["answered_by"] == "moto" and run["service"] == "ec2"


@check("DryRun gives DryRunOperation (412)")
def t_dry_run() -> None:
    ec2 = ec2_client()
    err = client_error(lambda: ec2.run_instances(DryRun=True, **launch_kwargs(ec2)))
    assert err["code"] == "DryRunOperation" and err["status"] == 412, err
    iid = all_instances(ec2)[0]["InstanceId"]
    err = client_error(lambda: ec2.terminate_instances(InstanceIds=[iid], DryRun=True))
    assert err["code"] == "DryRunOperation", err
    err = client_error(lambda: ec2.describe_spot_price_history(DryRun=True, InstanceTypes=["c7i.large"]))
    assert err["code"] == "DryRunOperation" and err["status"] == 412, err  # moto alone answers 200


@check("ClientToken idempotency: replay and IdempotentParameterMismatch")
def t_idempotency() -> None:
    ec2 = ec2_client()
    before = len(all_instances(ec2))
    kw = launch_kwargs(ec2, ClientToken="tok-idem-1")
    a = ec2.run_instances(**kw)["Instances"][0]["InstanceId"]
    b = ec2.run_instances(**kw)["Instances"][0]["InstanceId"]
    assert a == b
    assert len(all_instances(ec2)) == before + 1
    err = client_error(lambda: ec2.run_instances(**dict(kw, InstanceType="m7i.large")))
    assert err["code"] == "IdempotentParameterMismatch" and err["status"] == 400, err
    answered = [c["answered_by"] for c in shim("GET", "/_shim/calls") if c["action"] == "RunInstances"][-3:]
    assert answered == ["moto", "shim-idempotency", "shim-idempotency"], answered


@check("fault injection: error with match, null = absent, times, delay")
def t_faults() -> None:
    ec2 = ec2_client()
    shim("DELETE", "/_shim/faults")
    shim(
        "POST",
        "/_shim/faults",
        [
            {
                "action": "RunInstances",
                "match": {"InstanceType": "c7i.large", "Placement.AvailabilityZone": "us-east-1a", "InstanceMarketOptions.MarketType": "spot", "KeyName": None},
                "status": 500,
                "code": "InsufficientInstanceCapacity",
                "message": "We currently do not have sufficient c7i.large capacity in the Availability Zone you requested (us-east-1a).",
                "times": 1,
            }
        ],
    )
    # a KeyName is present, so "KeyName": null does not match
    ec2.run_instances(**launch_kwargs(ec2, KeyName="some-key"))
    assert len(shim("GET", "/_shim/faults")) == 1
    err = client_error(lambda: ec2.run_instances(**launch_kwargs(ec2)))
    assert err["code"] == "InsufficientInstanceCapacity" and err["status"] == 500, err
    assert shim("GET", "/_shim/faults") == []
    ec2.run_instances(**launch_kwargs(ec2))  # times exhausted
    shim("POST", "/_shim/faults", [{"action": "DescribeRegions", "delay_ms": 300, "times": 1}])
    t = time.monotonic()
    ec2.describe_regions()
    assert time.monotonic() - t >= 0.3
    last = shim("GET", "/_shim/calls")[-1]
    assert last["action"] == "DescribeRegions" and last["status"] == 200


@check("drop_response: side effect happens, client sees InternalError, token replay returns it")
def t_drop_response() -> None:
    ec2 = ec2_client()
    before = {i["InstanceId"] for i in all_instances(ec2)}
    shim("POST", "/_shim/faults", [{"action": "RunInstances", "drop_response": True, "times": 1}])
    kw = launch_kwargs(ec2, ClientToken="tok-drop-1")
    err = client_error(lambda: ec2.run_instances(**kw))
    assert err["code"] == "InternalError" and err["status"] == 500, err
    created = {i["InstanceId"] for i in all_instances(ec2)} - before
    assert len(created) == 1, created
    again = ec2.run_instances(**kw)["Instances"][0]["InstanceId"]
    assert {again} == created
    assert len({i["InstanceId"] for i in all_instances(ec2)} - before) == 1


@check("DescribeSpotPriceHistory answered from the shim's table")
def t_spot_prices() -> None:
    ec2 = ec2_client()
    shim(
        "POST",
        "/_shim/spot-prices",
        [
            {"instance_type": "c7i.large", "availability_zone": "us-east-1a", "price": "0.0312"},
            {"instance_type": "c7i.large", "availability_zone": "us-east-1b", "price": "0.0290"},
            {"instance_type": "m7i.large", "availability_zone": "us-east-1a", "price": "0.0400"},
        ],
    )
    raw: dict[str, bytes] = {}
    ec2.meta.events.register(
        "after-call.ec2.DescribeSpotPriceHistory", lambda http_response, **_: raw.__setitem__("b", http_response.content)
    )
    now = datetime.now(timezone.utc)
    out = ec2.describe_spot_price_history(
        InstanceTypes=["c7i.large"],
        StartTime=now,
        Filters=[
            {"Name": "product-description", "Values": ["Linux/UNIX"]},
            {"Name": "availability-zone", "Values": ["us-east-1a", "us-east-1b", "us-east-1c"]},
        ],
    )
    items = out["SpotPriceHistory"]
    got = sorted((i["InstanceType"], i["AvailabilityZone"], i["SpotPrice"], i["ProductDescription"]) for i in items)
    assert got == [("c7i.large", "us-east-1a", "0.0312", "Linux/UNIX"), ("c7i.large", "us-east-1b", "0.0290", "Linux/UNIX")], got
    assert all(abs((i["Timestamp"] - now).total_seconds()) < 5 for i in items)
    body = raw["b"].decode()
    for tag in ("<DescribeSpotPriceHistoryResponse", "<spotPriceHistorySet>", "<item>", "<availabilityZone>", "<instanceType>", "<productDescription>", "<spotPrice>", "<timestamp>", "<nextToken"):
        assert tag in body, (tag, body)
    one = ec2.describe_spot_price_history(AvailabilityZone="us-east-1a", MaxResults=1)
    assert len(one["SpotPriceHistory"]) == 1 and one["NextToken"]
    assert client_error(lambda: ec2.describe_spot_price_history(Filters=[{"Name": "bogus", "Values": ["x"]}]))["code"] == "InvalidParameterValue"
    # 200 filter values in all pass; one more is EC2's FilterLimitExceeded.
    types = [f"c7i.t{i}" for i in range(199)]
    ok = [{"Name": "instance-type", "Values": types}, {"Name": "product-description", "Values": ["Linux/UNIX"]}]
    ec2.describe_spot_price_history(Filters=ok, StartTime=now)
    over = [{"Name": "instance-type", "Values": types + ["c7i.large"]}, ok[1]]
    assert client_error(lambda: ec2.describe_spot_price_history(Filters=over, StartTime=now))["code"] == "FilterLimitExceeded"
    shim("DELETE", "/_shim/spot-prices")


@check("pending_seconds: DescribeInstances reports pending, then running")
def t_pending() -> None:
    ec2 = ec2_client()
    shim("POST", "/_shim/config", {"pending_seconds": 1.0})
    iid = ec2.run_instances(**launch_kwargs(ec2))["Instances"][0]["InstanceId"]
    first = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]
    assert first == {"Code": 0, "Name": "pending"}, first
    running = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    assert iid not in {i["InstanceId"] for r in running["Reservations"] for i in r["Instances"]}
    time.sleep(1.1)
    later = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]
    assert later == {"Code": 16, "Name": "running"}, later
    shim("POST", "/_shim/config", {"pending_seconds": 0})


@check("iam-user: enforced IAM, allowed call works, denied call gives UnauthorizedOperation")
def t_iam() -> None:
    ec2 = ec2_client()
    iid = all_instances(ec2)[0]["InstanceId"]
    kw = launch_kwargs(ec2)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Launch", "Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:CreateTags"], "Resource": ["arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*::image/*"]},
            {"Sid": "Read", "Effect": "Allow", "Action": ["ec2:DescribeInstances", "ec2:DescribeSpotPriceHistory"], "Resource": "*"},
        ],
    }
    # enforce_conditions false: moto's action-only check (plus the implicit
    # CreateTags on "*"), as before the shim enforced policies itself; with
    # the default this policy would also be denied RunInstances on the
    # volume, network interface, subnet and security group, as on EC2.
    creds = shim("POST", "/_shim/iam-user", {"user": "runner-bot", "policy": policy, "enforce_conditions": False})
    assert creds["access_key_id"].startswith("AKIA") and creds["secret_access_key"]
    assert creds["enforce_conditions"] is False and creds["enforced_policies"] == []
    assert any("widened" in n for n in creds["policy_changes"]), creds["policy_changes"]
    bot = ec2_client(creds["access_key_id"], creds["secret_access_key"])
    bot.describe_instances()
    err = client_error(lambda: bot.terminate_instances(InstanceIds=[iid]))
    assert err["code"] == "UnauthorizedOperation" and err["status"] == 403, err
    err = client_error(lambda: bot.terminate_instances(InstanceIds=[iid], DryRun=True))
    assert err["code"] == "UnauthorizedOperation", err
    err = client_error(lambda: bot.run_instances(DryRun=True, **kw))
    assert err["code"] == "DryRunOperation", err
    err = client_error(lambda: ec2.describe_instances())  # key unknown to moto's IAM
    assert err["code"] == "AuthFailure", err
    assert creds["admin_credentials"] == ["testing"]
    admin = ec2_client("testing", "testing")  # stays valid with full access
    assert iid in {i["InstanceId"] for r in admin.describe_instances()["Reservations"] for i in r["Instances"]}
    notags = shim("POST", "/_shim/iam-user", {"user": "no-tags", "policy": {"Statement": [{"Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:Describe*"], "Resource": "*"}]}})
    nt = ec2_client(notags["access_key_id"], notags["secret_access_key"])
    err = client_error(lambda: nt.run_instances(DryRun=True, **kw))  # tags need ec2:CreateTags
    assert err["code"] == "UnauthorizedOperation" and "ec2:CreateTags" in err["message"], err
    plain = {k: v for k, v in kw.items() if k != "TagSpecifications"}
    err = client_error(lambda: nt.run_instances(DryRun=True, **plain))
    assert err["code"] == "DryRunOperation", err
    shim("POST", "/_shim/config", {"rewrite_access_denied": False})
    err = client_error(lambda: bot.terminate_instances(InstanceIds=[iid]))
    assert err["code"] == "AccessDenied" and err["status"] == 403, err
    shim("POST", "/_shim/config", {"rewrite_access_denied": True})
    denied = [c for c in shim("GET", "/_shim/calls") if c["action"] == "TerminateInstances"][-1]
    assert denied["access_key_id"] == creds["access_key_id"] and denied["error_code"] == "AccessDenied"
    shim("POST", "/_shim/auth", {"enforce": False})
    ec2.describe_instances()


@check("iam-user: a form value with a space, signed as the AWS SDKs encode it (%20), is accepted; a bad signature is AuthFailure")
def t_iam_signature_encoding() -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from urllib.parse import quote

    policy = {"Statement": [{"Effect": "Allow", "Action": ["ec2:DescribeSpotPriceHistory"], "Resource": "*"}]}
    creds = shim("POST", "/_shim/iam-user", {"user": "encoding-bot", "policy": policy})
    url = ENV.urls["ec2"] + "/"
    fields = [("Action", "DescribeSpotPriceHistory"), ("Version", "2016-11-15"),
              ("ProductDescription.1", "Linux/UNIX (Amazon VPC)"), ("InstanceType.1", "c7i.large")]
    # SigV4 URI-encodes a space as %20 (the Rust and Java SDKs send the form
    # body that way); Python's urlencode would send '+'.
    body = "&".join(f"{quote(k, safe='')}={quote(v, safe='-_.~')}" for k, v in fields).encode()
    assert b"%20" in body

    def send(secret: str) -> tuple[int, bytes]:
        req = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(Credentials(creds["access_key_id"], secret), "ec2", REGION).add_auth(req)
        status, _, raw = http("POST", url, body, {k: v for k, v in req.headers.items()})
        return status, raw

    status, raw = send(creds["secret_access_key"])
    assert status == 200 and b"spotPriceHistorySet" in raw, (status, raw[:300])
    status, raw = send("not-the-secret")
    assert status == 401 and b"AuthFailure" in raw, (status, raw[:300])
    shim("POST", "/_shim/auth", {"enforce": False})


# ------------------------------------------------------------ IAM policies
SCOPED_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Launch", "Effect": "Allow", "Action": ["ec2:RunInstances"], "Resource": "*"},
        {"Sid": "Read", "Effect": "Allow", "Action": ["ec2:DescribeInstances", "ec2:DescribeSpotPriceHistory"], "Resource": "*"},
        {"Sid": "TagOnLaunchOnly", "Effect": "Allow", "Action": "ec2:CreateTags",
         "Resource": ["arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:volume/*"],
         "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}}},
        {"Sid": "ManagedOnly", "Effect": "Allow", "Action": ["ec2:TerminateInstances", "ec2:ModifyVolume"],
         "Resource": ["arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:volume/*"],
         "Condition": {"StringEquals": {"aws:ResourceTag/ec2-spot-runner:managed": "true"}}},
    ],
}
MANAGED_TAGS = [
    {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "runner-m"}, {"Key": "ec2-spot-runner:managed", "Value": "true"}]},
    {"ResourceType": "volume", "Tags": [{"Key": "ec2-spot-runner:managed", "Value": "true"}]},
]
ARN = f"arn:aws:ec2:{REGION}:123456789012"


def denied_message(err: dict[str, Any], user: str, action: str, resource: str | None, explicit: bool = False) -> dict[str, Any]:
    """Assert EC2's UnauthorizedOperation shape and wording; return the
    decoded authorization failure message."""
    assert err["code"] == "UnauthorizedOperation" and err["status"] == 403, err
    on = f" on resource: {resource}" if resource else ""
    why = "with an explicit deny in an identity-based policy" if explicit else f"because no identity-based policy allows the {action} action"
    head = (
        f"You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/{user} "
        f"is not authorized to perform: {action}{on} {why}. Encoded authorization failure message: "
    )
    assert err["message"].startswith(head), (head, err["message"])
    decoded = json.loads(base64.b64decode(err["message"][len(head):]))
    assert decoded["allowed"] is False and decoded["explicitDeny"] is explicit, decoded
    assert decoded["context"]["action"] == action, decoded
    return decoded


@check("iam_policy.py: evaluator unit checks (wildcards, NotAction, IfExists, set operators, Null, missing keys, EC2 model)")
def t_iam_policy_units() -> None:
    sys.path.insert(0, HERE)
    import iam_policy

    bad = [(label, got, want) for label, got, want in iam_policy.unit_checks() if got != want]
    assert not bad, bad


@check("iam-user with the scoped policy: tag-on-launch, managed-only terminate/modify, as EC2 enforces it")
def t_iam_scoped() -> None:
    shim("POST", "/_shim/auth", {"enforce": False})
    setup = ec2_client()
    base_kw = {k: v for k, v in launch_kwargs(setup).items() if k != "TagSpecifications"}
    # resources the tool did not create: no ec2-spot-runner:managed tag
    foreign = setup.run_instances(**base_kw)["Instances"][0]["InstanceId"]
    foreign_vol = setup.describe_instances(InstanceIds=[foreign])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    creds = shim("POST", "/_shim/iam-user", {"user": "scoped-bot", "policy": SCOPED_POLICY})
    assert creds["enforce_conditions"] is True and creds["enforced_policies"] == ["scoped-bot-policy"], creds
    assert "TagOnLaunchOnly: Condition dropped" in creds["policy_changes"], creds["policy_changes"]
    bot = ec2_client(creds["access_key_id"], creds["secret_access_key"])
    admin = ec2_client("testing", "testing")

    # RunInstances with TagSpecification on instance + volume: allowed
    # (ec2:RunInstances on "*", the implicit CreateTags with ec2:CreateAction)
    err = client_error(lambda: bot.run_instances(DryRun=True, TagSpecifications=MANAGED_TAGS, **base_kw))
    assert err["code"] == "DryRunOperation", err
    mine = bot.run_instances(TagSpecifications=MANAGED_TAGS, **base_kw)["Instances"][0]["InstanceId"]
    d = bot.describe_instances(InstanceIds=[mine])["Reservations"][0]["Instances"][0]  # Read: DescribeInstances
    my_vol = d["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert {t["Key"]: t["Value"] for t in d["Tags"]}["ec2-spot-runner:managed"] == "true"

    # a direct CreateTags (no ec2:CreateAction) is denied, even on its own instance
    err = client_error(lambda: bot.create_tags(Resources=[mine], Tags=[{"Key": "x", "Value": "y"}]))
    decoded = denied_message(err, "scoped-bot", "ec2:CreateTags", f"{ARN}:instance/{mine}")
    keys = {c["key"] for c in decoded["context"]["conditions"]["items"]}
    assert "aws:requesttag/x" in keys and "ec2:createaction" not in keys, keys
    assert {t["Key"] for t in admin.describe_tags(Filters=[{"Name": "resource-id", "Values": [mine]}])["Tags"]} == {"Name", "ec2-spot-runner:managed"}

    # TerminateInstances / ModifyVolume: only resources tagged managed=true
    err = client_error(lambda: bot.terminate_instances(InstanceIds=[foreign]))
    denied_message(err, "scoped-bot", "ec2:TerminateInstances", f"{ARN}:instance/{foreign}")
    err = client_error(lambda: bot.terminate_instances(InstanceIds=[foreign], DryRun=True))
    denied_message(err, "scoped-bot", "ec2:TerminateInstances", f"{ARN}:instance/{foreign}")
    err = client_error(lambda: bot.terminate_instances(InstanceIds=[mine, foreign]))  # one denied = all denied
    denied_message(err, "scoped-bot", "ec2:TerminateInstances", f"{ARN}:instance/{foreign}")
    err = client_error(lambda: bot.modify_volume(VolumeId=foreign_vol, Size=40))
    denied_message(err, "scoped-bot", "ec2:ModifyVolume", f"{ARN}:volume/{foreign_vol}")
    mod = bot.modify_volume(VolumeId=my_vol, Iops=5000)["VolumeModification"]
    assert mod["TargetIops"] == 5000, mod
    err = client_error(lambda: bot.terminate_instances(InstanceIds=["i-0123456789abcdef0"]))
    assert err["code"] == "InvalidInstanceID.NotFound", err  # unknown id: moto answers
    err = client_error(lambda: bot.terminate_instances(InstanceIds=[mine], DryRun=True))
    assert err["code"] == "DryRunOperation", err
    state = bot.terminate_instances(InstanceIds=[mine])["TerminatingInstances"][0]["CurrentState"]["Name"]
    assert state == "shutting-down", state
    assert admin.describe_instances(InstanceIds=[foreign])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"

    # actions without resource-level permissions are evaluated on "*"
    err = client_error(lambda: bot.describe_volumes())
    denied_message(err, "scoped-bot", "ec2:DescribeVolumes", None)
    calls = [c for c in shim("GET", "/_shim/calls") if c["access_key_id"] == creds["access_key_id"]]
    answered = {(c["action"], c["answered_by"]) for c in calls if c["status"] == 403}
    assert answered == {("CreateTags", "shim-iam"), ("TerminateInstances", "shim-iam"), ("ModifyVolume", "shim-iam"), ("DescribeVolumes", "shim-iam")}, answered
    # authentication still comes first: a wrong secret is AuthFailure, not a denial
    wrong = ec2_client(creds["access_key_id"], "not-the-secret")
    assert client_error(lambda: wrong.terminate_instances(InstanceIds=[foreign]))["code"] == "AuthFailure"
    assert client_error(lambda: wrong.describe_instances())["code"] == "AuthFailure"
    shim("POST", "/_shim/auth", {"enforce": False})


@check("iam-user: explicit Deny wins, per-resource context (the ec2:InstanceType pitfall), enforce_conditions false")
def t_iam_deny_and_context() -> None:
    setup = ec2_client()
    base_kw = {k: v for k, v in launch_kwargs(setup).items() if k != "TagSpecifications"}
    protected_tags = [
        {"ResourceType": "instance", "Tags": [{"Key": "ec2-spot-runner:managed", "Value": "true"}, {"Key": "protected", "Value": "yes"}]},
        {"ResourceType": "volume", "Tags": [{"Key": "ec2-spot-runner:managed", "Value": "true"}]},
    ]
    protected = setup.run_instances(TagSpecifications=protected_tags, **base_kw)["Instances"][0]["InstanceId"]
    policy = copy.deepcopy(SCOPED_POLICY)
    policy["Statement"] += [
        {"Sid": "NoProtected", "Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/protected": "yes"}}},
        {"Sid": "NoBigIron", "Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "arn:aws:ec2:*:*:instance/*",
         "Condition": {"StringLike": {"ec2:InstanceType": ["p5.*", "*.metal"]}}},
    ]
    creds = shim("POST", "/_shim/iam-user", {"user": "deny-bot", "policy": policy})
    assert "NoProtected: Deny with condition/resource scope dropped" in creds["policy_changes"], creds["policy_changes"]
    bot = ec2_client(creds["access_key_id"], creds["secret_access_key"])
    err = client_error(lambda: bot.terminate_instances(InstanceIds=[protected]))  # ManagedOnly allows, NoProtected denies
    decoded = denied_message(err, "deny-bot", "ec2:TerminateInstances", f"{ARN}:instance/{protected}", explicit=True)
    assert decoded["matchedStatements"]["items"] == [{"statementId": "deny-bot-policy/NoProtected"}], decoded
    err = client_error(lambda: bot.run_instances(DryRun=True, TagSpecifications=MANAGED_TAGS, **dict(base_kw, InstanceType="p5.48xlarge")))
    denied_message(err, "deny-bot", "ec2:RunInstances", f"{ARN}:instance/*", explicit=True)
    err = client_error(lambda: bot.run_instances(DryRun=True, TagSpecifications=MANAGED_TAGS, **base_kw))
    assert err["code"] == "DryRunOperation", err

    # ec2:InstanceType exists only in the instance's context: a RunInstances
    # condition on it with Resource "*" denies the image (as on EC2)
    typed = {"Statement": [
        {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*", "Condition": {"StringEquals": {"ec2:InstanceType": "c7i.large"}}},
        {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
    ]}
    t = shim("POST", "/_shim/iam-user", {"user": "typed-bot", "policy": typed})
    tb = ec2_client(t["access_key_id"], t["secret_access_key"])
    err = client_error(lambda: tb.run_instances(DryRun=True, **base_kw))
    denied_message(err, "typed-bot", "ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/{AMI}")
    fixed = {"Statement": [
        {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "arn:aws:ec2:*:*:instance/*", "Condition": {"StringEquals": {"ec2:InstanceType": "c7i.large"}}},
        {"Effect": "Allow", "Action": "ec2:RunInstances", "NotResource": "arn:aws:ec2:*:*:instance/*"},
    ]}
    f = shim("POST", "/_shim/iam-user", {"user": "typed-bot", "policy": fixed})  # replaces typed-bot-policy
    fb = ec2_client(f["access_key_id"], f["secret_access_key"])
    assert client_error(lambda: fb.run_instances(DryRun=True, **base_kw))["code"] == "DryRunOperation"
    err = client_error(lambda: fb.run_instances(DryRun=True, **dict(base_kw, InstanceType="m7i.large")))
    denied_message(err, "typed-bot", "ec2:RunInstances", f"{ARN}:instance/*")

    # the same scoped policy with enforce_conditions false: moto's action-only
    # check, so an untagged instance can be terminated (what the shim did before)
    loose = shim("POST", "/_shim/iam-user", {"user": "loose-bot", "policy": SCOPED_POLICY, "enforce_conditions": False})
    lb = ec2_client(loose["access_key_id"], loose["secret_access_key"])
    victim = ec2_client("testing", "testing").run_instances(**base_kw)["Instances"][0]["InstanceId"]
    lb.terminate_instances(InstanceIds=[victim])

    # a policy the evaluator cannot take is refused before anything is created
    status, _, raw = http("POST", ENV.urls["ec2"] + "/_shim/iam-user", {"user": "bad-bot", "policy": {"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*", "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}]}})
    assert status == 400 and "not implemented" in jbody(raw)["error"], (status, raw)
    shim("POST", "/_shim/auth", {"enforce": False})


# ------------------------------------------------- EC2 rules moto lacks
# moto's bundled images used below (moto/ec2/resources/amis.json.gz, loaded in
# every region); each root snapshot is 15 GiB.
AMI_XVDA = "ami-760aaa0f"  # Amazon Linux 2017.09 x86_64, root /dev/xvda
AMI_ARM = "ami-0e9271c829888680e"  # Amazon Linux 2022 arm64, root /dev/xvda
AMI_WINDOWS = "ami-b7e93bce"  # Windows Server 2016 Base x86_64, root /dev/sda1


def moto_ec2() -> Any:
    """Admin client straight at moto (no shim)."""
    import boto3

    return boto3.client("ec2", region_name=REGION, endpoint_url=ENV.urls["moto"], aws_access_key_id="testing", aws_secret_access_key="testing")


def plain_launch(ec2: Any, **over: Any) -> dict[str, Any]:
    """A minimal launch (no mappings, tags or market options) in us-east-1a."""
    subnet, sg = subnet_and_sg(ec2)
    kw: dict[str, Any] = dict(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="c7i.large", SubnetId=subnet, SecurityGroupIds=[sg])
    kw.update(over)
    return {k: v for k, v in kw.items() if v is not None}


def volumes_of(ec2: Any, iid: str) -> dict[str, dict[str, Any]]:
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    ids = {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in d["BlockDeviceMappings"]}
    vols = {v["VolumeId"]: v for v in ec2.describe_volumes(VolumeIds=list(ids.values()))["Volumes"]}
    return {dev: vols[vid] for dev, vid in ids.items()}


@check("images: moto's AMIs (root device, arch, platform, 15 GiB snapshot); unknown id is InvalidAMIID.NotFound")
def t_images() -> None:
    shim("POST", "/_shim/reset")
    ec2 = ec2_client()
    images = {i["ImageId"]: i for i in ec2.describe_images(ImageIds=[AMI, AMI_XVDA, AMI_ARM, AMI_WINDOWS])["Images"]}
    want = {AMI: ("/dev/sda1", "x86_64", None), AMI_XVDA: ("/dev/xvda", "x86_64", None), AMI_ARM: ("/dev/xvda", "arm64", None), AMI_WINDOWS: ("/dev/sda1", "x86_64", "windows")}
    for ami, (root, arch, platform) in want.items():
        i = images[ami]
        assert (i["RootDeviceName"], i["Architecture"], i.get("Platform")) == (root, arch, platform) or (ami == AMI_ARM and i["RootDeviceName"] == root), (ami, i)
        [m] = i["BlockDeviceMappings"]
        assert m["DeviceName"] == root and m["Ebs"]["VolumeSize"] == 15, (ami, m)
    err = client_error(lambda: ec2.describe_images(ImageIds=["ami-12345678"]))
    assert err == {"code": "InvalidAMIID.NotFound", "message": "The image id '[ami-12345678]' does not exist", "status": 400}, err
    err = client_error(lambda: ec2.run_instances(**plain_launch(ec2, ImageId="ami-12345678")))
    assert err["code"] == "InvalidAMIID.NotFound" and err["status"] == 400, err


@check("root device: unsized Ebs only for the image's root; extra sized volume; too small refused; per-device iops/throughput")
def t_root_device() -> None:
    ec2 = ec2_client()
    before = len(all_instances(ec2))
    # the root device without a size: the image's 15 GiB snapshot, the mapping's type/encryption/performance
    root_only = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeType": "gp3", "Iops": 4000, "Throughput": 500, "Encrypted": True, "DeleteOnTermination": True}}]
    inst = ec2.run_instances(**plain_launch(ec2, BlockDeviceMappings=root_only))["Instances"][0]
    assert inst["RootDeviceName"] == "/dev/sda1", inst
    vols = volumes_of(ec2, inst["InstanceId"])
    assert list(vols) == ["/dev/sda1"], vols
    v = vols["/dev/sda1"]
    assert (v["Size"], v["VolumeType"], v["Iops"], v["Throughput"], v["Encrypted"]) == (15, "gp3", 4000, 500, True), v
    assert v["SnapshotId"] == ec2.describe_images(ImageIds=[AMI])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    d = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert d["BlockDeviceMappings"][0]["Ebs"]["DeleteOnTermination"] is True, d["BlockDeviceMappings"]
    # another device without a size: refused, nothing launched
    for ami, dev in ((AMI, "/dev/xvda"), (AMI_XVDA, "/dev/sda1")):
        bdm = [{"DeviceName": dev, "Ebs": {"VolumeType": "gp3", "Encrypted": True}}]
        err = client_error(lambda: ec2.run_instances(**plain_launch(ec2, ImageId=ami, BlockDeviceMappings=bdm)))
        assert err == {"code": "InvalidBlockDeviceMapping", "message": f"Either snapshot ID or volume size must be provided for: {dev}", "status": 400}, err
    # a sized mapping for another device: an extra empty volume, the root keeps the image's size/type/encryption
    extra = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}}]
    inst = ec2.run_instances(**plain_launch(ec2, ImageId=AMI_XVDA, BlockDeviceMappings=extra))["Instances"][0]
    assert inst["RootDeviceName"] == "/dev/xvda", inst
    d = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert d["RootDeviceName"] == "/dev/xvda" and [m["DeviceName"] for m in d["BlockDeviceMappings"]] == ["/dev/xvda", "/dev/sda1"], d
    vols = volumes_of(ec2, inst["InstanceId"])
    r, x = vols["/dev/xvda"], vols["/dev/sda1"]
    assert (r["Size"], r["VolumeType"], r["Encrypted"], "Iops" in r) == (15, "standard", False, False), r
    assert (x["Size"], x["VolumeType"], x["Iops"], x["Throughput"], x["Encrypted"], x.get("SnapshotId") or "") == (30, "gp3", 3000, 125, True, ""), x
    # smaller than the snapshot: EC2's message (two spaces before "snapshot")
    small = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 10, "VolumeType": "gp3"}}]
    err = client_error(lambda: ec2.run_instances(**plain_launch(ec2, BlockDeviceMappings=small)))
    snap = ec2.describe_images(ImageIds=[AMI])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert err == {"code": "InvalidBlockDeviceMapping", "message": f"Volume of size 10GB is smaller than  snapshot '{snap}', expect size >= 15GB", "status": 400}, err
    # no mappings: the image's root volume at the image's root device; gp2 gets 3 IOPS/GiB (min 100)
    inst = ec2.run_instances(**plain_launch(ec2, ImageId=AMI_XVDA, BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 50}}]))["Instances"][0]
    vols = volumes_of(ec2, inst["InstanceId"])
    assert list(vols) == ["/dev/xvda", "/dev/sdf"] and (vols["/dev/sdf"]["VolumeType"], vols["/dev/sdf"]["Iops"]) == ("gp2", 150), vols
    inst = ec2.run_instances(**plain_launch(ec2, ImageId=AMI_XVDA))["Instances"][0]
    assert list(volumes_of(ec2, inst["InstanceId"])) == ["/dev/xvda"]
    assert len(all_instances(ec2)) == before + 4  # the refused launches created nothing


@check("instance types: unknown type refused, tests' types known, architecture must match the image")
def t_instance_types() -> None:
    ec2 = ec2_client()
    err = client_error(lambda: ec2.run_instances(**plain_launch(ec2, InstanceType="c7i.lage")))
    assert err == {"code": "InvalidParameterValue", "message": "Invalid value 'c7i.lage' for InstanceType.", "status": 400}, err
    for itype, ami in (("c7i.large", AMI), ("c6i.large", AMI), ("m7i.large", AMI), ("t3.micro", AMI), ("c7g.large", AMI_ARM)):
        assert client_error(lambda: ec2.run_instances(DryRun=True, **plain_launch(ec2, InstanceType=itype, ImageId=ami)))["code"] == "DryRunOperation", itype
    err = client_error(lambda: ec2.run_instances(**plain_launch(ec2, InstanceType="c7i.large", ImageId=AMI_ARM)))
    assert err["code"] == "InvalidParameterValue" and err["message"].startswith("The architecture 'x86_64' of the specified instance type does not match the architecture 'arm64' of the specified AMI."), err


@check("not_found_seconds: new ids unknown to DescribeInstances/TerminateInstances, left out of listings; moto itself unaffected")
def t_not_found() -> None:
    ec2 = ec2_client()
    shim("POST", "/_shim/config", {"not_found_seconds": 0.8})
    a, b = [i["InstanceId"] for i in ec2.run_instances(**plain_launch(ec2, MinCount=2, MaxCount=2))["Instances"]]
    err = client_error(lambda: ec2.describe_instances(InstanceIds=[a]))
    assert err == {"code": "InvalidInstanceID.NotFound", "message": f"The instance ID '{a}' does not exist", "status": 400}, err
    err = client_error(lambda: ec2.describe_instances(InstanceIds=[a, b]))
    assert err["message"] == f"The instance IDs '{a}, {b}' do not exist", err
    assert {a, b}.isdisjoint(i["InstanceId"] for i in all_instances(ec2))
    err = client_error(lambda: ec2.terminate_instances(InstanceIds=[b]))
    assert err["code"] == "InvalidInstanceID.NotFound", err
    assert [c["answered_by"] for c in shim("GET", "/_shim/calls") if c["action"] == "TerminateInstances"][-1] == "shim-consistency"
    direct = moto_ec2().describe_instances(InstanceIds=[a, b])["Reservations"][0]["Instances"]
    assert {i["State"]["Name"] for i in direct} == {"running"}, direct  # nothing was terminated
    time.sleep(0.85)
    assert {i["InstanceId"] for i in ec2.describe_instances(InstanceIds=[a, b])["Reservations"][0]["Instances"]} == {a, b}
    ec2.terminate_instances(InstanceIds=[b])
    shim("POST", "/_shim/config", {"not_found_seconds": 0})


@check("no default subnet in the zone: InvalidInput on-demand, InvalidSubnetID.NotFound ('null') for spot")
def t_default_subnet() -> None:
    ec2 = ec2_client()
    admin = moto_ec2()
    zone = "us-east-1e"
    default = [s for s in admin.describe_subnets()["Subnets"] if s["AvailabilityZone"] == zone and s["DefaultForAz"]]
    for s in default:
        admin.delete_subnet(SubnetId=s["SubnetId"])
    before = len(all_instances(ec2))
    kw = dict(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m7i.large", Placement={"AvailabilityZone": zone})
    err = client_error(lambda: ec2.run_instances(**kw))
    assert err == {"code": "InvalidInput", "message": f"No default subnet for availability zone: '{zone}'.", "status": 400}, err
    err = client_error(lambda: ec2.run_instances(InstanceMarketOptions={"MarketType": "spot"}, **kw))
    assert err == {"code": "InvalidSubnetID.NotFound", "message": "No default subnet for availability zone: 'null'.", "status": 400}, err
    assert len(all_instances(ec2)) == before
    assert len(ec2.describe_instances()["Reservations"]) == len({r["ReservationId"] for r in ec2.describe_instances()["Reservations"]})
    ok = ec2.run_instances(**dict(kw, Placement={"AvailabilityZone": "us-east-1a"}))["Instances"][0]
    assert ok["Placement"]["AvailabilityZone"] == "us-east-1a"
    # (moto's CreateDefaultSubnet cannot restore it: it picks a CIDR that
    # conflicts; the reset in the next check brings it back)


@check("launch_templates.py: merge rules, query keys, conflicts, versions")
def t_launch_template_units() -> None:
    sys.path.insert(0, HERE)
    import launch_templates

    bad = [(label, got, want) for label, got, want in launch_templates.selfcheck() if got != want]
    assert not bad, bad


@check("ec2_model.py: requests checked against botocore's EC2 service model")
def t_ec2_model_units() -> None:
    sys.path.insert(0, HERE)
    import ec2_model

    bad = [(label, got, want) for label, got, want in ec2_model.selfcheck() if got != want]
    assert not bad, bad


@check("GET /_shim/model: SDK requests conform, a request the EC2 model does not describe is listed")
def t_ec2_model_in_shim() -> None:
    shim("POST", "/_shim/reset")
    ec2 = ec2_client()
    ec2.run_instances(**launch_kwargs(ec2))
    ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["runner-1"]}])
    seen = shim("GET", "/_shim/model")
    assert seen["error"] is None and seen["unconforming"] == [], seen
    assert seen["model"].startswith("botocore 1.44.8"), seen
    form = "Action=DescribeInstances&Version=2016-11-15&InstanceIds.member.1=i-1"
    http("POST", ENV.urls["ec2"] + "/", form.encode(),
         {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    seen = shim("GET", "/_shim/model")
    assert [u["action"] for u in seen["unconforming"]] == ["DescribeInstances"], seen
    assert any("InstanceIds.member.1" in p for p in seen["unconforming"][0]["problems"]), seen
    shim("POST", "/_shim/reset")
    assert shim("GET", "/_shim/model")["unconforming"] == []


@check("bake: a guest power-off stops or terminates by shutdown behaviour; CreateImage pending, tags, duplicates; snapshots in use; IAM")
def t_bake_images() -> None:
    shim("POST", "/_shim/reset")
    ec2 = ec2_client()
    on_demand = {k: v for k, v in launch_kwargs(ec2).items() if k not in ("InstanceMarketOptions", "TagSpecifications")}
    builder = ec2.run_instances(**dict(on_demand, InstanceInitiatedShutdownBehavior="stop"))["Instances"][0]["InstanceId"]
    doomed = ec2.run_instances(**on_demand)["Instances"][0]["InstanceId"]  # terminate on shutdown
    out = shim("POST", "/_shim/guest-poweroff", {"instance_id": builder, "console": "bake: done\n"})
    assert out["state"] == "stopped", out
    assert shim("POST", "/_shim/guest-poweroff", {"instance_id": doomed})["state"] == "terminated"
    d = ec2.describe_instances(InstanceIds=[builder])["Reservations"][0]["Instances"][0]
    assert d["State"]["Name"] == "stopped" and d["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown", d
    console = ec2.get_console_output(InstanceId=builder)["Output"]  # botocore decodes the base64
    assert console == "bake: done\n", console
    err = client_error(lambda: ec2.create_image(InstanceId=doomed, Name="ec2sr-terminated"))
    assert err["code"] == "IncorrectInstanceState", err
    shim("POST", "/_shim/config", {"image_pending_seconds": 1.0})
    tags = [{"ResourceType": kind, "Tags": [{"Key": "ec2-spot-runner:managed", "Value": "true"}]} for kind in ("image", "snapshot")]
    image = ec2.create_image(InstanceId=builder, Name="ec2sr-bake-1", TagSpecifications=tags)["ImageId"]
    img = ec2.describe_images(ImageIds=[image])["Images"][0]
    assert img["State"] == "pending", img
    snap = img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snap_tags = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0].get("Tags")
    assert snap_tags == [{"Key": "ec2-spot-runner:managed", "Value": "true"}], snap_tags
    err = client_error(lambda: ec2.create_image(InstanceId=builder, Name="ec2sr-bake-1"))
    assert err["code"] == "InvalidAMIName.Duplicate" and image in err["message"], err
    deadline = time.monotonic() + 30
    while ec2.describe_images(ImageIds=[image])["Images"][0]["State"] != "available":
        assert time.monotonic() < deadline, "the image never became available"
        time.sleep(0.1)
    err = client_error(lambda: ec2.delete_snapshot(SnapshotId=snap))
    assert err["code"] == "InvalidSnapshot.InUse", err
    # Under a policy scoped to the managed tag: the image's own tags and
    # CreateTags with ec2:CreateAction=CreateImage decide.
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ec2:DescribeImages", "ec2:DescribeInstances"], "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:CreateImage", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": ["arn:aws:ec2:*::image/*"],
         "Condition": {"StringEquals": {"ec2:CreateAction": "CreateImage"}}},
        {"Effect": "Allow", "Action": ["ec2:DeregisterImage", "ec2:DeleteSnapshot"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/ec2-spot-runner:managed": "true"}}},
    ]}
    creds = shim("POST", "/_shim/iam-user", {"user": "baker", "policy": policy})
    bot = ec2_client(creds["access_key_id"], creds["secret_access_key"])
    err = client_error(lambda: bot.create_image(InstanceId=builder, Name="ec2sr-bake-2", TagSpecifications=tags))
    denied_message(err, "baker", "ec2:CreateTags", "arn:aws:ec2:us-east-1::snapshot/*")
    shim("POST", "/_shim/auth", {"enforce": False})
    foreign = ec2.create_image(InstanceId=builder, Name="ec2sr-foreign")["ImageId"]
    shim("POST", "/_shim/iam-user", {"user": "baker", "policy": policy})
    err = client_error(lambda: bot.deregister_image(ImageId=foreign))
    denied_message(err, "baker", "ec2:DeregisterImage", f"arn:aws:ec2:us-east-1::image/{foreign}")
    bot.deregister_image(ImageId=image)
    bot.delete_snapshot(SnapshotId=snap)
    shim("POST", "/_shim/auth", {"enforce": False})
    shim("POST", "/_shim/config", {"image_pending_seconds": 0})


@check("RunInstances with a launch template: EC2's errors, conflicts, and the template's spot, protection and volumes applied")
def t_launch_template() -> None:
    ec2 = ec2_client()
    subnet, _ = subnet_and_sg(ec2)
    data = {
        "ImageId": AMI,
        "InstanceType": "m7i.large",
        "InstanceMarketOptions": {"MarketType": "spot"},
        "DisableApiTermination": True,
        "MetadataOptions": {"HttpTokens": "optional"},
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvdb", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}}],
    }
    lt = ec2.create_launch_template(LaunchTemplateName="selftest-lt", LaunchTemplateData=data)["LaunchTemplate"]
    tid = lt["LaunchTemplateId"]
    base = dict(MinCount=1, MaxCount=1)
    # moto: IndexError (500) for an unknown id, version 0 = the newest
    for spec, code in (
        ({"LaunchTemplateId": "lt-0123456789abcdef0"}, "InvalidLaunchTemplateId.NotFound"),
        ({"LaunchTemplateId": "lt-x"}, "InvalidLaunchTemplateId.Malformed"),
        ({"LaunchTemplateName": "no-such"}, "InvalidLaunchTemplateName.NotFoundException"),
        ({"LaunchTemplateId": tid, "Version": "0"}, "InvalidLaunchTemplateId.VersionNotFound"),
        ({"LaunchTemplateId": tid, "Version": "7"}, "InvalidLaunchTemplateId.VersionNotFound"),
    ):
        err = client_error(lambda: ec2.run_instances(LaunchTemplate=spec, **base))
        assert (err["code"], err["status"]) == (code, 400), (spec, err)
    err = client_error(lambda: ec2.describe_launch_template_versions(LaunchTemplateId=tid, Versions=["0"]))
    assert err["code"] == "InvalidLaunchTemplateId.VersionNotFound", err
    # the template's values apply under the request's
    out = ec2.run_instances(LaunchTemplate={"LaunchTemplateId": tid, "Version": "$Default"}, **base)["Instances"][0]
    iid = out["InstanceId"]
    assert out.get("InstanceLifecycle") == "spot", out
    assert out["MetadataOptions"]["HttpTokens"] == "optional", out["MetadataOptions"]
    devices = sorted(m["DeviceName"] for m in out["BlockDeviceMappings"])
    assert devices == ["/dev/sda1", "/dev/xvdb"], devices  # the image's root, plus the template's volume
    err = client_error(lambda: ec2.terminate_instances(InstanceIds=[iid]))
    assert err["code"] == "OperationNotPermitted", err
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
    ec2.terminate_instances(InstanceIds=[iid])
    # the request's values win, nested ones merge, mappings merge by device
    out = ec2.run_instances(
        LaunchTemplate={"LaunchTemplateName": "selftest-lt"},
        ImageId=AMI,
        InstanceType="c7i.large",
        DisableApiTermination=False,
        MetadataOptions={"HttpTokens": "required"},
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 16}}],
        **base,
    )["Instances"][0]
    assert out["InstanceType"] == "c7i.large" and out["MetadataOptions"]["HttpTokens"] == "required", out
    assert sorted(m["DeviceName"] for m in out["BlockDeviceMappings"]) == ["/dev/sda1", "/dev/xvdb"], out
    ec2.terminate_instances(InstanceIds=[out["InstanceId"]])
    # a subnet beside another zone, or beside groups by name (also without a template)
    err = client_error(lambda: ec2.run_instances(ImageId=AMI, SubnetId=subnet, Placement={"AvailabilityZone": "us-east-1b"}, **base))
    assert err["code"] == "InvalidParameterValue" and "is in the availability zone us-east-1a" in err["message"], err
    err = client_error(lambda: ec2.run_instances(ImageId=AMI, SubnetId=subnet, SecurityGroups=["default"], **base))
    assert err == {"code": "InvalidParameterCombination", "status": 400,
                   "message": "The parameter groupName cannot be used with the parameter subnet"}, err
    # groups of another VPC than the subnet the instance lands in
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_security_group(GroupName="selftest-other", Description="x", VpcId=vpc)["GroupId"]
    for where in ({"SubnetId": subnet}, {"Placement": {"AvailabilityZone": "us-east-1a"}}):
        err = client_error(lambda: ec2.run_instances(ImageId=AMI, SecurityGroupIds=[other], **where, **base))
        assert err["code"] == "InvalidParameter" and err["message"].startswith(f"Security group {other} and subnet subnet-") \
            and err["message"].endswith("belong to different networks."), err
    # network interfaces in the template: no instance-level subnet or groups
    ni = ec2.create_launch_template(
        LaunchTemplateName="selftest-lt-ni",
        LaunchTemplateData={"ImageId": AMI, "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": subnet}]},
    )["LaunchTemplate"]["LaunchTemplateId"]
    err = client_error(lambda: ec2.run_instances(LaunchTemplate={"LaunchTemplateId": ni}, SubnetId=subnet, **base))
    assert err == {"code": "InvalidParameterCombination", "status": 400,
                   "message": "Network interfaces and an instance-level subnet ID may not be specified on the same request"}, err


@check("spot_service_linked_role false: spot launch 403 AuthFailure.ServiceLinkedRoleCreationNotPermitted until the role exists")
def t_spot_role() -> None:
    import boto3

    ec2 = ec2_client()
    shim("POST", "/_shim/config", {"spot_service_linked_role": False})
    spot = plain_launch(ec2, InstanceMarketOptions={"MarketType": "spot"})
    for dry in (False, True):
        err = client_error(lambda: ec2.run_instances(DryRun=dry, **spot))
        assert err == {"code": "AuthFailure.ServiceLinkedRoleCreationNotPermitted", "message": "The provided credentials do not have permission to create the service-linked role for EC2 Spot Instances.", "status": 403}, err
    ec2.run_instances(**plain_launch(ec2))  # on-demand is unaffected
    iam = boto3.client("iam", region_name=REGION, endpoint_url=ENV.urls["ec2"], aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_service_linked_role(AWSServiceName="spot.amazonaws.com")
    assert ec2.run_instances(**spot)["Instances"][0]["InstanceLifecycle"] == "spot"
    shim("POST", "/_shim/config", {"spot_service_linked_role": True})


@check("launch outcomes: pending, then terminated with EC2's state reason (KMS key / spot reclaimed), really in moto")
def t_launch_outcomes() -> None:
    ec2 = ec2_client()
    rules = shim("POST", "/_shim/launch-outcomes", [
        {"match": {"InstanceType": "m7i.large"}, "state_reason_code": "Client.InternalError", "after_seconds": 0.5, "times": 1},
        {"match": {"InstanceMarketOptions.MarketType": "spot"}, "state_reason_code": "Server.SpotInstanceTermination", "times": 1},
    ])
    assert rules[0]["state_reason_message"] == "Client.InternalError: Client error on launch" and rules[0]["reason"] == "Client.InternalError", rules
    doomed = ec2.run_instances(**plain_launch(ec2, InstanceType="m7i.large"))["Instances"][0]
    assert doomed["State"]["Name"] == "pending"
    fine = ec2.run_instances(**plain_launch(ec2, InstanceType="m7i.large"))["Instances"][0]["InstanceId"]  # times used up
    d = ec2.describe_instances(InstanceIds=[doomed["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert d["State"] == {"Code": 0, "Name": "pending"}, d["State"]
    time.sleep(0.6)
    for client in (ec2, moto_ec2()):
        d = client.describe_instances(InstanceIds=[doomed["InstanceId"]])["Reservations"][0]["Instances"][0]
        assert d["State"] == {"Code": 48, "Name": "terminated"}, d["State"]
        assert d["StateReason"] == {"Code": "Client.InternalError", "Message": "Client.InternalError: Client error on launch"}, d["StateReason"]
        assert d["StateTransitionReason"] == "Client.InternalError", d
    assert ec2.describe_instances(InstanceIds=[fine])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
    spot = ec2.run_instances(**plain_launch(ec2, InstanceMarketOptions={"MarketType": "spot"}))["Instances"][0]["InstanceId"]
    d = ec2.describe_instances(InstanceIds=[spot])["Reservations"][0]["Instances"][0]
    assert d["State"]["Name"] == "terminated" and d["StateReason"]["Code"] == "Server.SpotInstanceTermination", d
    assert d["StateReason"]["Message"] == "Server.SpotInstanceTermination: Spot instance termination", d["StateReason"]
    assert d["StateTransitionReason"].startswith("Service initiated (") and d["StateTransitionReason"].endswith(" GMT)"), d
    assert shim("GET", "/_shim/launch-outcomes") == []
    shim("DELETE", "/_shim/launch-outcomes")


@check("spot prices: both product descriptions returned as rows (no de-duplication); bad InstanceType refused, bad filter matches nothing")
def t_spot_price_descriptions() -> None:
    ec2 = ec2_client()
    shim("POST", "/_shim/spot-prices", [
        {"instance_type": "c7i.large", "availability_zone": "us-east-1a", "price": "0.0312"},
        {"instance_type": "c7i.large", "availability_zone": "us-east-1a", "price": "0.0313", "product_description": "Linux/UNIX (Amazon VPC)"},
    ])
    both = ["Linux/UNIX", "Linux/UNIX (Amazon VPC)"]
    for kw in ({"Filters": [{"Name": "product-description", "Values": both}]}, {"ProductDescriptions": both}):
        got = sorted((i["ProductDescription"], i["SpotPrice"]) for i in ec2.describe_spot_price_history(InstanceTypes=["c7i.large"], **kw)["SpotPriceHistory"])
        assert got == [("Linux/UNIX", "0.0312"), ("Linux/UNIX (Amazon VPC)", "0.0313")], got
    one = ec2.describe_spot_price_history(Filters=[{"Name": "product-description", "Values": ["Linux/UNIX"]}])["SpotPriceHistory"]
    assert [i["SpotPrice"] for i in one] == ["0.0312"], one
    err = client_error(lambda: ec2.describe_spot_price_history(InstanceTypes=["c7i.lage"]))
    assert err == {"code": "InvalidParameterValue", "message": "Invalid value 'c7i.lage' for InstanceType.", "status": 400}, err
    assert ec2.describe_spot_price_history(Filters=[{"Name": "instance-type", "Values": ["c7i.lage"]}])["SpotPriceHistory"] == []
    shim("DELETE", "/_shim/spot-prices")


@check("call log: non-EC2 requests logged, DELETE clears; reset empties moto")
def t_call_log_and_reset() -> None:
    import boto3

    sts = boto3.client("sts", region_name=REGION, endpoint_url=ENV.urls["ec2"], aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x")
    sts.get_caller_identity()
    last = shim("GET", "/_shim/calls")[-1]
    assert last["service"] == "sts" and last["action"] == "GetCallerIdentity" and last["status"] == 200, last
    http("GET", ENV.urls["ec2"] + "/moto-api/reset-auth")  # moto answers 400 "Need to POST"
    assert shim("GET", "/_shim/calls")[-1]["service"] == "moto-api"
    shim("DELETE", "/_shim/calls")
    assert shim("GET", "/_shim/calls") == []
    shim("POST", "/_shim/reset")
    assert all_instances(ec2_client()) == []


# --------------------------------------------------------------- GitHub
KEYS: dict[str, Any] = {}


def rsa_pair() -> tuple[Any, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, pub


def make_jwt(iss: Any = 1234, key: Any = None, alg: str = "RS256", iat_off: int = -60, exp_off: int = 540) -> str:
    # PyJWS rather than jwt.encode: GitHub (and octocrab) use a numeric "iss",
    # which PyJWT's claim-level encoder refuses.
    from jwt.api_jws import PyJWS

    now = int(time.time())
    payload = json.dumps({"iss": iss, "iat": now + iat_off, "exp": now + exp_off}).encode()
    if alg == "HS256":
        return PyJWS().encode(payload, "not-a-real-secret-but-long-enough-for-hs256", algorithm="HS256")
    return PyJWS().encode(payload, key or KEYS["app"], algorithm=alg)


def gh(method: str, path: str, body: Any = None, auth: str | None = None, ua: str | None = "selftest/1.0", version: str | None = "2022-11-28", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    extra = headers or {}
    headers = {"Accept": "application/vnd.github+json", "User-Agent": ua, "X-GitHub-Api-Version": version}
    headers.update(extra)
    if auth:
        headers["Authorization"] = auth
    status, hdrs, raw = http(method, ENV.urls["github"] + path, body, headers)
    try:
        parsed = jbody(raw)
    except ValueError:
        parsed = raw.decode()
    return status, {k.lower(): v for k, v in hdrs.items()}, parsed


def gh_config(auto_online_after: float | None = None, installations: list[dict[str, Any]] | None = None, **extra: Any) -> None:
    if "app" not in KEYS:
        KEYS["app"], KEYS["app_pub"] = rsa_pair()
        KEYS["other"], _ = rsa_pair()
    cfg = {
        "apps": [
            {
                "id": 1234,
                "client_id": "Iv23liABC",
                "public_key_pem": KEYS["app_pub"],
                "installations": [{"id": 55, "account": "acme", "account_type": "Organization", "repositories": ["acme/widgets"]}]
                + (installations or []),
            }
        ],
        "tokens": [{"token": "ghp_selftest", "repositories": ["acme/widgets"], "organizations": []}],
        "auto_online_after": auto_online_after,
    }
    cfg.update(extra)
    standin("POST", "/_standin/config", cfg)


def install_token(installation: int = 55, headers: dict[str, str] | None = None, prefix: str = "") -> str:
    status, _, body = gh("POST", f"{prefix}/app/installations/{installation}/access_tokens", {}, auth=f"Bearer {make_jwt()}", headers=headers)
    assert status == 201, (status, body)
    return body["token"]


@check("GitHub: User-Agent required, API version checked")
def t_gh_headers() -> None:
    gh_config()
    status, hdrs, body = gh("GET", "/app", auth=f"Bearer {make_jwt()}", ua=None)
    assert status == 403 and "User-Agent" in body, (status, body)
    status, _, body = gh("GET", "/app", auth=f"Bearer {make_jwt()}", version="2020-01-01")
    assert status == 400 and "2020-01-01" in body["message"], body
    status, _, _ = gh("GET", "/app", auth=f"Bearer {make_jwt()}", version="2026-03-10")
    assert status == 200
    status, _, _ = gh("GET", "/app", auth=f"Bearer {make_jwt()}", version=None)
    assert status == 200


def gh_lines(method: str, path: str, lines: list[tuple[str, str]]) -> tuple[int, dict[str, str], str]:
    """A request with exactly these header lines, repeats included (no Host
    unless given, no Accept-Encoding)."""
    parts = urllib.parse.urlsplit(ENV.urls["github"])
    conn = HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in lines:
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    finally:
        conn.close()


@check("GitHub: a repeated single-value header is refused with 400, a repeated Accept is not")
def t_gh_repeated_headers() -> None:
    gh_config()
    standin("DELETE", "/_standin/calls")
    host = ("Host", urllib.parse.urlsplit(ENV.urls["github"]).netloc)
    jwt = f"Bearer {make_jwt()}"
    base = [host, ("Accept", "application/vnd.github+json"), ("X-GitHub-Api-Version", "2022-11-28"), ("Authorization", jwt)]
    status, _, body = gh_lines("GET", "/app", base + [("User-Agent", "octocrab"), ("User-Agent", "ec2-spot-runner/0.1.0")])
    assert status == 400 and 'User-Agent appears on 2 header lines: "octocrab", "ec2-spot-runner/0.1.0"' in body, (status, body)
    # Names are case-insensitive, and equal values are still two lines.
    status, hdrs, body = gh_lines(
        "GET", "/app", base + [("User-Agent", "a/1"), ("x-github-api-version", "2022-11-28")]
    )
    assert status == 400 and "X-GitHub-Api-Version appears on 2 header lines" in body, (status, body)
    assert hdrs.get("connection") == "close" and hdrs["content-type"].startswith("text/plain"), hdrs
    # A repeated credential is refused without being echoed.
    status, _, body = gh_lines("GET", "/app", base + [("User-Agent", "a/1"), ("Authorization", jwt)])
    assert status == 400 and "Authorization appears on 2 header lines" in body and jwt[7:] not in body, (status, body)
    status, _, body = gh_lines("GET", "/app", base + [("User-Agent", "a/1"), host])
    assert status == 400 and "Host appears on 2" in body, (status, body)
    # Accept is a list: it may come on two lines.
    status, _, body = gh_lines("GET", "/app", base + [("User-Agent", "a/1"), ("Accept", "application/json")])
    assert status == 200, (status, body)
    # The same request with each field once is served.
    status, _, body = gh_lines("GET", "/app", base + [("User-Agent", "a/1")])
    assert status == 200, (status, body)
    calls = standin("GET", "/_standin/calls")
    assert [c["status"] for c in calls] == [400, 400, 400, 400, 200, 200], calls
    assert calls[0]["repeated_fields"] == ["User-Agent"] and calls[0]["user_agent_value"] == "octocrab", calls[0]
    assert calls[2]["repeated_fields"] == ["Authorization"] and jwt[7:] not in json.dumps(calls), calls[2]
    assert "repeated_fields" not in calls[5] and calls[5]["user_agent_value"] == "a/1", calls[5]


@check("GitHub: requests are checked against GitHub's OpenAPI description (when EC2SR_GITHUB_OPENAPI is set)")
def t_gh_openapi() -> None:
    if not os.environ.get("EC2SR_GITHUB_OPENAPI"):
        print("     skipped: EC2SR_GITHUB_OPENAPI is not set (python testenv/openapi.py --ensure)", flush=True)
        return
    gh_config()
    standin("DELETE", "/_standin/calls")
    jwt = f"Bearer {make_jwt()}"
    token = install_token()
    auth = f"Bearer {token}"
    gh("GET", "/repos/acme/widgets/actions/runners?name=r1&per_page=100", auth=auth)
    gh("GET", "/repos/acme/widgets/actions/runners?per_page=many&nme=r1", auth=auth)
    gh("POST", "/repos/acme/widgets/actions/runners/generate-jitconfig", {"name": "r1", "labels": []}, auth=auth)
    gh("DELETE", "/repos/acme/widgets/actions/runners/r1", auth=auth)
    gh("PUT", "/app", auth=jwt)
    gh("GET", "/no/such/endpoint", auth=auth)
    calls = standin("GET", "/_standin/calls")
    problems = [c.get("openapi", []) for c in calls]
    assert problems[0] == [] and problems[1] == [], calls[:2]
    assert any("per_page='many'" in p and "not of type integer" in p for p in problems[2]), problems[2]
    assert any("nme is not described" in p for p in problems[2]), problems[2]
    assert any("required property 'runner_group_id' is missing" in p for p in problems[3]), problems[3]
    assert any("body.labels has 0 items, fewer than 1" in p for p in problems[3]), problems[3]
    assert any("runner_id='r1'" in p for p in problems[4]), problems[4]
    assert problems[5] == ["PUT /app: /app describes only GET"], problems[5]
    assert problems[6] == ["no operation for path /no/such/endpoint"], problems[6]
    # Kept for the whole run, whatever clears the call log.
    standin("DELETE", "/_standin/calls")
    seen = standin("GET", "/_standin/openapi")
    assert seen["package"] == "@octokit/openapi@23.0.2" and seen["error"] is None, seen
    assert [u["path"] for u in seen["undescribed"]][-5:] == [
        "/repos/acme/widgets/actions/runners",
        "/repos/acme/widgets/actions/runners/generate-jitconfig",
        "/repos/acme/widgets/actions/runners/r1",
        "/app",
        "/no/such/endpoint",
    ], seen


@check("GitHub: app JWT success paths")
def t_gh_jwt_ok() -> None:
    status, _, app = gh("GET", "/app", auth=f"Bearer {make_jwt()}")
    assert status == 200 and app["id"] == 1234 and app["client_id"] == "Iv23liABC", app
    status, _, inst = gh("GET", "/repos/acme/widgets/installation", auth=f"Bearer {make_jwt('1234')}")
    assert status == 200 and inst["id"] == 55 and inst["account"]["login"] == "acme", inst
    status, _, inst = gh("GET", "/orgs/acme/installation", auth=f"Bearer {make_jwt('Iv23liABC')}")
    assert status == 200 and inst["id"] == 55
    status, _, lst = gh("GET", "/app/installations", auth=f"Bearer {make_jwt()}")
    assert status == 200 and [i["id"] for i in lst] == [55]
    status, _, tok = gh("POST", "/app/installations/55/access_tokens", None, auth=f"Bearer {make_jwt()}")
    assert status == 201 and tok["token"].startswith("ghs_") and tok["repository_selection"] == "selected", tok
    exp = datetime.strptime(tok["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert timedelta(minutes=59) < exp - datetime.now(timezone.utc) <= timedelta(hours=1)
    status, _, body = gh("GET", "/repos/acme/other/installation", auth=f"Bearer {make_jwt()}")
    assert status == 404 and body["message"] == "Not Found"


@check("GitHub: bad JWTs are rejected with GitHub's messages")
def t_gh_jwt_bad() -> None:
    cases = [
        (make_jwt(exp_off=900), "'Expiration time' claim ('exp') is too far in the future"),
        (make_jwt(iat_off=-700, exp_off=-10), "'Expiration time' claim ('exp') must be a numeric value"),
        (make_jwt(iat_off=120, exp_off=300), "'Issued at' claim ('iat') must be an Integer"),
        (make_jwt(iat_off=-300, exp_off=400), "'Expiration time' claim ('exp') is too far in the future"),
        (make_jwt(iss=999), "Integration not found"),
        (make_jwt(key=KEYS["other"]), "A JSON web token could not be decoded"),
        (make_jwt(alg="HS256"), "A JSON web token could not be decoded"),
        ("not.a.jwt", "A JSON web token could not be decoded"),
    ]
    for token, message in cases:
        status, _, body = gh("GET", "/app", auth=f"Bearer {token}")
        assert status == 401 and body["message"].startswith(message) and body["documentation_url"], (message, status, body)
    status, _, body = gh("GET", "/app", auth="Bearer ghp_selftest")
    assert status == 401


@check("GitHub: token access rules (403 / 404 / 401)")
def t_gh_tokens() -> None:
    tok = install_token()
    status, _, body = gh("GET", "/repos/acme/secret/actions/runners", auth=f"token {tok}")
    assert status == 403 and body["message"] == "Resource not accessible by integration", body
    status, _, body = gh("GET", "/repos/acme/secret/actions/runners", auth="Bearer ghp_selftest")
    assert status == 404, body
    status, _, body = gh("GET", "/orgs/acme/actions/runners", auth="Bearer ghp_selftest")
    assert status == 404, body
    status, _, body = gh("GET", "/orgs/acme/actions/runners", auth=f"Bearer {tok}")
    assert status == 200, body
    status, _, body = gh("GET", "/repos/acme/widgets/actions/runners", auth="Bearer ghp_wrong")
    assert status == 401 and body["message"] == "Bad credentials", body
    status, _, body = gh("GET", "/repos/acme/widgets/actions/runners")
    assert status == 401, body


@check("GitHub: JIT config 201, then 409; 422 on bad bodies")
def t_gh_jit() -> None:
    tok = install_token()
    req = {"name": "ec2-i-0abc", "runner_group_id": 1, "labels": ["self-hosted", "linux", "ec2-job-42"], "work_folder": "_work"}
    status, _, body = gh("POST", "/repos/acme/widgets/actions/runners/generate-jitconfig", req, auth=f"Bearer {tok}")
    assert status == 201, body
    r = body["runner"]
    assert r["name"] == "ec2-i-0abc" and r["status"] == "offline" and r["busy"] is False
    assert [(lab["name"], lab["type"]) for lab in r["labels"]] == [("self-hosted", "read-only"), ("linux", "read-only"), ("ec2-job-42", "custom")], r["labels"]
    cfg = json.loads(base64.b64decode(body["encoded_jit_config"]))
    assert cfg["runner_id"] == r["id"] and cfg["runner_name"] == "ec2-i-0abc" and len(cfg["secret"]) >= 32
    status, _, body = gh("POST", "/repos/acme/widgets/actions/runners/generate-jitconfig", req, auth=f"Bearer {tok}")
    assert status == 409 and body["message"] == "Already exists - A runner with the name ec2-i-0abc already exists.", body
    for bad in (
        {"name": "x", "runner_group_id": 1, "labels": []},
        {"name": "", "runner_group_id": 1, "labels": ["a"]},
        {"name": "x", "runner_group_id": "1", "labels": ["a"]},
        {"name": "x", "labels": ["a"]},
        {"name": "x", "runner_group_id": 1, "labels": [""]},
    ):
        status, _, body = gh("POST", "/repos/acme/widgets/actions/runners/generate-jitconfig", bad, auth=f"Bearer {tok}")
        assert status == 422 and body["message"].startswith("Invalid request."), (bad, status, body)
    status, _, body = gh("POST", "/repos/acme/widgets/actions/runners/registration-token", None, auth=f"Bearer {tok}")
    assert status == 201 and body["token"] and body["expires_at"]
    state = standin("GET", "/_standin/state")
    assert state["registration_tokens_issued"] == 1 and state["installation_tokens_issued"] >= 1


@check("GitHub: pagination Link header, name filter, get/delete, busy 422")
def t_gh_runners() -> None:
    tok = install_token()
    base = "/repos/acme/widgets/actions/runners"
    for n in range(2, 6):
        status, _, _ = gh("POST", f"{base}/generate-jitconfig", {"name": f"r{n}", "runner_group_id": 1, "labels": ["x"]}, auth=f"Bearer {tok}")
        assert status == 201
    status, hdrs, body = gh("GET", f"{base}?per_page=2", auth=f"Bearer {tok}")
    assert status == 200 and body["total_count"] == 5 and len(body["runners"]) == 2
    host = ENV.urls["github"]
    assert f'<{host}{base}?per_page=2&page=2>; rel="next"' in hdrs["link"], hdrs["link"]
    assert f'<{host}{base}?per_page=2&page=3>; rel="last"' in hdrs["link"], hdrs["link"]
    status, hdrs, body = gh("GET", f"{base}?per_page=2&page=3", auth=f"Bearer {tok}")
    assert len(body["runners"]) == 1 and 'rel="prev"' in hdrs["link"] and 'rel="next"' not in hdrs["link"]
    status, hdrs, body = gh("GET", f"{base}?name=r3", auth=f"Bearer {tok}")
    assert body["total_count"] == 1 and body["runners"][0]["name"] == "r3" and "link" not in hdrs
    rid = body["runners"][0]["id"]
    status, _, one = gh("GET", f"{base}/{rid}", auth=f"Bearer {tok}")
    assert status == 200 and one["id"] == rid
    standin("POST", "/_standin/runners/status", {"name": "r3", "status": "online", "busy": True})
    status, _, body = gh("DELETE", f"{base}/{rid}", auth=f"Bearer {tok}")
    assert status == 422 and "still running a job" in body["message"], body
    standin("POST", "/_standin/runners/status", {"name": "r3", "busy": False})
    status, _, _ = gh("DELETE", f"{base}/{rid}", auth=f"Bearer {tok}")
    assert status == 204
    status, _, _ = gh("DELETE", f"{base}/{rid}", auth=f"Bearer {tok}")
    assert status == 404
    assert [d["name"] for d in standin("GET", "/_standin/state")["deleted_runners"]] == ["r3"]


@check("GitHub: auto_online_after flips new runners online")
def t_gh_auto_online() -> None:
    gh_config(auto_online_after=0.3)
    tok = install_token()
    status, _, body = gh("POST", "/orgs/acme/actions/runners/generate-jitconfig", {"name": "org-r", "runner_group_id": 1, "labels": ["x"]}, auth=f"Bearer {tok}")
    assert status == 201 and body["runner"]["status"] == "offline"
    time.sleep(0.35)
    status, _, r = gh("GET", f"/orgs/acme/actions/runners/{body['runner']['id']}", auth=f"Bearer {tok}")
    assert r["status"] == "online" and r["os"] == "Linux", r


@check("GitHub: faults (503 Retry-After, rate limit) and the call log")
def t_gh_faults_and_log() -> None:
    gh_config()
    tok = install_token()
    standin(
        "POST",
        "/_standin/faults",
        [
            {"method": "POST", "path": r"/generate-jitconfig$", "status": 503, "headers": {"Retry-After": "1"}, "times": 1},
            {"method": "GET", "path": r"^/repos/[^/]+/[^/]+/actions/runners$", "status": 403, "headers": {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 30)}, "body": {"message": "API rate limit exceeded for installation ID 55.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}, "times": 1},
        ],
    )
    req = {"name": "after-fault", "runner_group_id": 1, "labels": ["x"]}
    status, hdrs, _ = gh("POST", "/repos/acme/widgets/actions/runners/generate-jitconfig", req, auth=f"Bearer {tok}")
    assert status == 503 and hdrs["retry-after"] == "1"
    status, _, _ = gh("POST", "/repos/acme/widgets/actions/runners/generate-jitconfig", req, auth=f"Bearer {tok}")
    assert status == 201
    status, hdrs, body = gh("GET", "/repos/acme/widgets/actions/runners", auth=f"Bearer {tok}")
    assert status == 403 and hdrs["x-ratelimit-remaining"] == "0" and "rate limit" in body["message"]
    assert standin("GET", "/_standin/faults") == []
    gh("GET", "/repos/acme/widgets/actions/runners", auth=f"Bearer {tok}", ua=None, version=None)
    calls = standin("GET", "/_standin/calls")
    kinds = [(c["method"], c["auth"], c["status"]) for c in calls]
    assert ("POST", "jwt", 201) in kinds and ("POST", "token", 503) in kinds, kinds
    last = calls[-1]
    assert last["user_agent"] is False and last["api_version"] is False and last["status"] == 403
    assert all(tok not in json.dumps(c) for c in calls)
    standin("DELETE", "/_standin/calls")
    assert standin("GET", "/_standin/calls") == []


def concurrently(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Runs fn(0..n-1) in n threads released together; returns the results in order."""
    import threading

    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        out[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out


SECONDARY = "You have exceeded a secondary rate limit"


@check("GitHub: secondary rate limit on concurrent mutations (403, retry-after only if configured; per credential; mutation_delay_ms)")
def t_gh_secondary_limit() -> None:
    gh_config(secondary_limit={"max_concurrent_mutations": 1}, mutation_delay_ms=400)
    tok = install_token()  # a mutation too, alone: admitted
    path = "/repos/acme/widgets/actions/runners/registration-token"
    standin("DELETE", "/_standin/calls")
    t0 = time.monotonic()
    results = concurrently(3, lambda i: gh("POST", path, None, auth=f"Bearer {tok}"))
    elapsed = time.monotonic() - t0
    statuses = sorted(r[0] for r in results)
    assert statuses == [201, 403, 403], statuses
    assert elapsed >= 0.4, elapsed  # the admitted one was held mutation_delay_ms
    for status, hdrs, body in results:
        if status != 403:
            continue
        assert body["message"].startswith(SECONDARY + ". Please wait a few minutes before you try again."), body
        assert body["message"].endswith(f"please include the request ID {hdrs['x-github-request-id']}."), (body, hdrs)
        assert body["documentation_url"].endswith("#about-secondary-rate-limits"), body
        assert "retry-after" not in hdrs, hdrs
        assert int(hdrs["x-ratelimit-remaining"]) > 0  # not the primary limit
    calls = standin("GET", "/_standin/calls")
    assert sorted(c["answered_by"] for c in calls) == ["secondary-limit", "secondary-limit", "standin"], calls
    assert all(tok not in json.dumps(c) for c in calls)
    # Another credential has its own count; reads are not limited.
    results = concurrently(
        4,
        lambda i: gh("POST", path, None, auth=f"Bearer {tok}" if i == 0 else "Bearer ghp_selftest")
        if i < 2
        else gh("GET", "/repos/acme/widgets/actions/runners", auth=f"Bearer {tok}"),
    )
    assert [r[0] for r in results] == [201, 201, 200, 200], [r[0] for r in results]
    # After the in-flight one is answered, the next is admitted again.
    assert gh("POST", path, None, auth=f"Bearer {tok}")[0] == 201
    gh_config(secondary_limit={"max_concurrent_mutations": 1, "retry_after": 7, "status": 429}, mutation_delay_ms=300)
    tok = install_token()
    results = concurrently(2, lambda i: gh("POST", path, None, auth=f"Bearer {tok}"))
    refused = [r for r in results if r[0] != 201]
    assert len(refused) == 1 and refused[0][0] == 429 and refused[0][1]["retry-after"] == "7", [r[:2] for r in results]
    assert SECONDARY in refused[0][2]["message"]
    status, _, body = http("POST", ENV.urls["github"] + "/_standin/config", {"secondary_limit": {"status": 500}})
    assert status == 400 and "403 or 429" in jbody(body)["error"], body


@check("GitHub: installation_token_ttl (expires_at, then 401 Bad credentials) and token_format long / X-GitHub-Stateless-S2S-Token")
def t_gh_token_ttl_and_format() -> None:
    import re

    gh_config(installation_token_ttl=2)
    status, _, body = gh("POST", "/app/installations/55/access_tokens", {}, auth=f"Bearer {make_jwt()}")
    assert status == 201 and re.fullmatch(r"ghs_[A-Za-z0-9]{36}", body["token"]), body
    exp = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    left = (exp - datetime.now(timezone.utc)).total_seconds()
    assert 0 < left <= 2, left
    tok = body["token"]
    runners = "/repos/acme/widgets/actions/runners"
    if left > 0.3:
        assert gh("GET", runners, auth=f"Bearer {tok}")[0] == 200
    time.sleep(max(0.0, left) + 0.1)
    status, _, body = gh("GET", runners, auth=f"Bearer {tok}")
    assert status == 401 and body["message"] == "Bad credentials", (status, body)
    assert standin("GET", "/_standin/calls")[-1]["detail"] == "installation token expired"

    long_re = re.compile(r"ghs_1234_[A-Za-z0-9._]+")
    gh_config(token_format="long")
    status, _, body = gh("POST", "/app/installations/55/access_tokens", {}, auth=f"Bearer {make_jwt()}")
    tok = body["token"]
    assert status == 201 and long_re.fullmatch(tok) and tok.count(".") == 2 and 400 <= len(tok) <= 700, (len(tok), tok)
    exp = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert timedelta(minutes=59) < exp - datetime.now(timezone.utc) <= timedelta(hours=1)
    for auth in (f"Bearer {tok}", f"token {tok}"):
        assert gh("GET", runners, auth=auth)[0] == 200
    req = {"name": "long-token-runner", "runner_group_id": 1, "labels": ["x"]}
    assert gh("POST", f"{runners}/generate-jitconfig", req, auth=f"Bearer {tok}")[0] == 201
    assert gh("GET", "/repos/acme/widgets", auth=f"Bearer {tok}")[0] == 200
    assert gh("GET", runners, auth=f"Bearer {tok[:-1]}")[0] == 401
    assert tok in standin("GET", "/_standin/state")["secrets_issued"]
    calls = standin("GET", "/_standin/calls")
    assert all(c["auth"] != "jwt" for c in calls if c["path"].startswith("/repos/"))
    assert all(tok not in json.dumps(c) and tok[:60] not in json.dumps(c) for c in calls)
    # The per-request override header, both ways; other values are ignored.
    assert re.fullmatch(r"ghs_[A-Za-z0-9]{36}", install_token(headers={"X-GitHub-Stateless-S2S-Token": "disabled"}))
    assert long_re.fullmatch(install_token(headers={"X-GitHub-Stateless-S2S-Token": "bogus"}))
    gh_config()
    assert long_re.fullmatch(install_token(headers={"X-GitHub-Stateless-S2S-Token": "enabled"}))
    assert re.fullmatch(r"ghs_[A-Za-z0-9]{36}", install_token())


@check("GitHub: ghes_version (client-id iss from 3.18, JIT from 3.10, /api/v3, GET /meta, API versions)")
def t_gh_ghes() -> None:
    host = ENV.urls["github"]
    jit = {"name": "ghes-runner", "runner_group_id": 1, "labels": ["x"]}
    # github.com: no /api/v3, /meta without installed_version.
    gh_config()
    assert gh("GET", "/api/v3/app", auth=f"Bearer {make_jwt()}")[0] == 404
    status, hdrs, meta = gh("GET", "/meta")
    assert status == 200 and "installed_version" not in meta and "x-github-enterprise-version" not in hdrs, meta

    gh_config(ghes_version="3.9")
    status, hdrs, meta = gh("GET", "/api/v3/meta")
    assert status == 200 and meta["installed_version"] == "3.9.0" and hdrs["x-github-enterprise-version"] == "3.9.0", (meta, hdrs)
    status, _, body = gh("GET", "/api/v3/app", auth=f"Bearer {make_jwt('Iv23liABC')}")
    assert status == 401 and body["message"] == "A JSON web token could not be decoded", body
    assert body["documentation_url"].startswith("https://docs.github.com/enterprise-server@3.9/rest"), body
    assert "3.18" in standin("GET", "/_standin/calls")[-1]["detail"]
    status, _, app = gh("GET", "/api/v3/app", auth=f"Bearer {make_jwt(1234)}")
    assert status == 200 and app["owner"]["url"].startswith(f"{host}/api/v3/users/"), app
    assert app["html_url"] == f"{host}/apps/app-1234", app
    tok = install_token(prefix="/api/v3")
    status, _, body = gh("POST", "/api/v3/repos/acme/widgets/actions/runners/generate-jitconfig", jit, auth=f"Bearer {tok}")
    assert status == 404 and body["message"] == "Not Found", body
    assert gh("POST", "/api/v3/repos/acme/widgets/actions/runners/registration-token", None, auth=f"Bearer {tok}")[0] == 201
    status, _, body = gh("GET", "/api/v3/repos/acme/widgets/actions/runners", auth=f"Bearer {tok}", version="2026-03-10")
    assert status == 400 and '"2022-11-28" (most recent).' in body["message"], body
    assert gh("GET", "/repos/acme/widgets/actions/runners", auth=f"Bearer {tok}")[0] == 200  # root served too
    calls = standin("GET", "/_standin/calls")
    assert any(c["path"].startswith("/api/v3/") and c.get("api_prefix") == "/api/v3" for c in calls)

    gh_config(ghes_version="3.8")
    assert gh("GET", "/api/v3/app", auth=f"Bearer {make_jwt()}", version="2099-01-01")[0] == 200  # not versioned yet

    gh_config(ghes_version="3.17", ghes_serve_root=False)
    assert gh("GET", "/api/v3/app", auth=f"Bearer {make_jwt('Iv23liABC')}")[0] == 401
    assert gh("GET", "/app", auth=f"Bearer {make_jwt()}")[0] == 404
    tok = install_token(prefix="/api/v3")
    status, _, body = gh("POST", "/api/v3/orgs/acme/actions/runners/generate-jitconfig", jit, auth=f"Bearer {tok}")
    assert status == 201 and json.loads(base64.b64decode(body["encoded_jit_config"]))["runner_name"] == "ghes-runner", body
    assert gh("GET", "/api/v3/meta")[2]["installed_version"] == "3.17.0"

    gh_config(ghes_version="3.18.2")
    status, hdrs, app = gh("GET", "/api/v3/app", auth=f"Bearer {make_jwt('Iv23liABC')}")
    assert status == 200 and hdrs["x-github-enterprise-version"] == "3.18.2", (status, app)
    status, _, body = http("POST", host + "/_standin/config", {"ghes_version": "3.18", "token_format": "long"})
    assert status == 400, body
    status, _, body = http("POST", host + "/_standin/config", {"ghes_version": 3.1})
    assert status == 400, body


@check("GitHub: GET /repos/{owner}/{repo} visibility and who may read it")
def t_gh_repo_visibility() -> None:
    gh_config(repositories={"acme/site": {"visibility": "public"}, "acme/corp": {"visibility": "internal"}})
    tok = install_token()
    status, _, repo = gh("GET", "/repos/acme/widgets", auth=f"Bearer {tok}")
    assert status == 200 and repo["private"] is True and repo["visibility"] == "private", repo
    assert repo["full_name"] == "acme/widgets" and repo["name"] == "widgets" and repo["owner"]["login"] == "acme" and repo["id"] > 0
    for auth in (None, f"Bearer {tok}", "Bearer ghp_selftest"):
        status, _, repo = gh("GET", "/repos/acme/site", auth=auth)
        assert status == 200 and repo["private"] is False and repo["visibility"] == "public", (auth, repo)
    for auth in (None, f"Bearer {tok}", "Bearer ghp_selftest"):
        status, _, body = gh("GET", "/repos/acme/corp", auth=auth)
        assert status == 404 and body["message"] == "Not Found", (auth, body)
    assert gh("GET", "/repos/acme/widgets")[0] == 404
    assert gh("GET", "/repos/acme/widgets", auth="Bearer ghp_selftest")[0] == 200
    assert gh("GET", "/repos/acme/site", auth="Bearer ghp_wrong")[0] == 401


@check("GitHub: actions/runner releases (latest, list pages, assets uploaded one by one)")
def t_gh_runner_releases() -> None:
    x64, arm64 = "a" * 64, "b" * 64
    body = f"- <!-- BEGIN SHA linux-x64 -->{x64}<!-- END SHA linux-x64 -->\n- <!-- BEGIN SHA linux-arm64 -->{arm64}<!-- END SHA linux-arm64 -->"
    # The default: the fixture, complete (every package uploaded).
    gh_config()
    status, _, rel = gh("GET", "/repos/actions/runner/releases/latest")
    assert status == 200 and rel["tag_name"].startswith("v2."), (status, rel)
    names = [a["name"] for a in rel["assets"]]
    version = rel["tag_name"][1:]
    assert len(names) == 7 and f"actions-runner-linux-x64-{version}.tar.gz" in names and f"actions-runner-win-x64-{version}.zip" in names, names
    assert all(a["state"] == "uploaded" and a["digest"].startswith("sha256:") for a in rel["assets"]), rel["assets"]
    x64_asset = next(a for a in rel["assets"] if "linux-x64" in a["name"])
    assert x64_asset["digest"] == "sha256:af4b794c1bc41d73d40535e3fe092a39f9679cd8d965954c2aca25a05ca41d32", x64_asset
    assert x64_asset["browser_download_url"] == f"https://github.com/actions/runner/releases/download/{rel['tag_name']}/{x64_asset['name']}"
    for key in ("url", "html_url", "assets_url", "upload_url", "tarball_url", "zipball_url", "id", "node_id", "author", "created_at", "published_at"):
        assert key in rel, key
    # The window: created with its notes, two packages uploaded, the third
    # (linux-x64) under way; the previous release complete; a draft and a
    # pre-release that are never the latest.
    gh_config(
        runner_releases=[
            {"tag_name": "v2.342.0", "body": body, "draft": True},
            {"tag_name": "v2.341.0-rc", "body": body, "prerelease": True},
            {"tag_name": "v2.341.0", "body": body, "uploaded": 2, "uploading": True},
            {"tag_name": "v2.340.0", "body": body},
        ]
        + [{"tag_name": f"v2.3{39 - i}.0", "body": body} for i in range(30)]
    )
    for auth in (None, f"Bearer {install_token()}"):
        status, _, rel = gh("GET", "/repos/actions/runner/releases/latest", auth=auth)
        assert status == 200 and rel["tag_name"] == "v2.341.0", (status, rel)
    states = [(a["name"], a["state"]) for a in rel["assets"]]
    assert states == [
        ("actions-runner-win-x64-2.341.0.zip", "uploaded"),
        ("actions-runner-win-arm64-2.341.0.zip", "uploaded"),
        ("actions-runner-linux-x64-2.341.0.tar.gz", "open"),
    ], states
    assert rel["assets"][2]["digest"] is None
    # The list: newest first, no draft, GitHub's pages and Link header.
    status, hdrs, page1 = gh("GET", "/repos/actions/runner/releases?per_page=10")
    assert status == 200 and [r["tag_name"] for r in page1[:3]] == ["v2.341.0-rc", "v2.341.0", "v2.340.0"], [r["tag_name"] for r in page1]
    assert len(page1) == 10 and 'rel="next"' in hdrs["link"] and "page=2" in hdrs["link"], hdrs
    status, hdrs, page4 = gh("GET", "/repos/actions/runner/releases?per_page=10&page=4")
    assert status == 200 and [r["tag_name"] for r in page4] == ["v2.312.0", "v2.311.0", "v2.310.0"], [r["tag_name"] for r in page4]
    assert 'rel="next"' not in hdrs["link"] and 'rel="prev"' in hdrs["link"], hdrs
    status, _, default_page = gh("GET", "/repos/actions/runner/releases")
    assert len(default_page) == 30, len(default_page)
    assert all(len(r["assets"]) == 7 for r in page1[2:]), "an earlier release is complete"
    assert gh("GET", "/repos/actions/runner/releases/12")[0] == 404
    # Nothing uploaded yet: the release lists no assets.
    gh_config(runner_releases=[{"tag_name": "v2.341.0", "body": body, "uploaded": 0}])
    assert gh("GET", "/repos/actions/runner/releases/latest")[2]["assets"] == []
    # A repository with no release, or none at all.
    gh_config(runner_releases=[])
    assert gh("GET", "/repos/actions/runner/releases/latest")[0] == 404
    assert gh("GET", "/repos/actions/runner/releases")[2] == []
    gh_config(runner_release=None)
    assert gh("GET", "/repos/actions/runner/releases/latest")[0] == 404
    assert gh("GET", "/repos/actions/runner/releases")[0] == 404
    for bad in (
        {"runner_releases": [{"tag_name": "v1.0.0", "uploaded": 8}]},
        {"runner_releases": [{"body": "no tag"}]},
        {"runner_releases": "v2.341.0"},
        {"runner_releases": [], "runner_release": None},
    ):
        status, _, raw = http("POST", ENV.urls["github"] + "/_standin/config", bad)
        assert status == 400, (bad, status, raw)
    gh_config()


@check("GitHub: runner groups (Default id 1 refuses public repos; configured groups; 404; permission)")
def t_gh_runner_groups() -> None:
    gh_config(
        installations=[{"id": 56, "account": "beta", "permissions": {"metadata": "read", "administration": "write"}}],
        runner_groups={"acme": [{"id": 7, "name": "public-ok", "allows_public_repositories": True, "visibility": "selected"}]},
    )
    tok = install_token()
    status, _, g = gh("GET", "/orgs/acme/actions/runner-groups/1", auth=f"Bearer {tok}")
    assert status == 200 and (g["id"], g["name"], g["default"], g["allows_public_repositories"], g["visibility"]) == (1, "Default", True, False, "all"), g
    for key in ("runners_url", "inherited"):
        assert key in g, g
    status, _, g = gh("GET", "/orgs/acme/actions/runner-groups/7", auth=f"Bearer {tok}")
    assert status == 200 and g["allows_public_repositories"] is True and g["default"] is False and "selected_repositories_url" in g, g
    status, _, lst = gh("GET", "/orgs/acme/actions/runner-groups", auth=f"Bearer {tok}")
    assert status == 200 and [x["id"] for x in lst["runner_groups"]] == [1, 7] and lst["total_count"] == 2, lst
    status, _, body = gh("GET", "/orgs/acme/actions/runner-groups/99", auth=f"Bearer {tok}")
    assert status == 404 and body["message"] == "Not Found", body
    status, _, body = gh("GET", "/orgs/beta/actions/runner-groups/1", auth=f"Bearer {install_token(56)}")
    assert status == 403 and body["message"] == "Resource not accessible by integration", body
    assert gh("GET", "/orgs/acme/actions/runner-groups/1", auth="Bearer ghp_selftest")[0] == 404
    assert gh("GET", "/orgs/acme/actions/runner-groups/1")[0] == 401


@check("GitHub: runner_visibility_delay_ms hides a new runner from list/get/delete; the name stays taken (409)")
def t_gh_runner_visibility() -> None:
    gh_config(runner_visibility_delay_ms=500)
    tok = install_token()
    base = "/orgs/acme/actions/runners"
    req = {"name": "late-runner", "runner_group_id": 1, "labels": ["x"]}
    status, _, body = gh("POST", f"{base}/generate-jitconfig", req, auth=f"Bearer {tok}")
    assert status == 201, body
    created = time.monotonic()
    rid = body["runner"]["id"]
    assert gh("GET", base, auth=f"Bearer {tok}")[2]["total_count"] == 0
    assert gh("GET", f"{base}?name=late-runner", auth=f"Bearer {tok}")[2] == {"total_count": 0, "runners": []}
    assert gh("GET", f"{base}/{rid}", auth=f"Bearer {tok}")[0] == 404
    assert gh("DELETE", f"{base}/{rid}", auth=f"Bearer {tok}")[0] == 404
    status, _, body = gh("POST", f"{base}/generate-jitconfig", req, auth=f"Bearer {tok}")
    assert status == 409, body
    assert time.monotonic() - created < 0.5, "checks took too long to see the hidden window"
    assert [r["name"] for r in standin("GET", "/_standin/state")["runners"]["orgs/acme"]] == ["late-runner"]
    time.sleep(max(0.0, 0.55 - (time.monotonic() - created)))
    status, _, body = gh("GET", f"{base}?name=late-runner", auth=f"Bearer {tok}")
    assert body["total_count"] == 1 and body["runners"][0]["id"] == rid, body
    assert gh("GET", f"{base}/{rid}", auth=f"Bearer {tok}")[0] == 200
    assert gh("DELETE", f"{base}/{rid}", auth=f"Bearer {tok}")[0] == 204


# --------------------------------------------------------------- lifecycle
@check("GitHub: workflow runs, attempt jobs (paged), job re-run with dependents; 403s for running, old attempt, no Actions: write")
def t_gh_workflow_runs() -> None:
    gh_config(installations=[{"id": 56, "account": "acme", "account_type": "Organization", "repositories": ["acme/widgets"],
                              "permissions": {"actions": "write", "administration": "write", "metadata": "read"}}])
    jobs = [{"key": "start", "conclusion": "success", "runner_name": "GitHub Actions 1"},
            {"key": "build", "needs": ["start"], "conclusion": "failure", "runner_name": "ec2-1"},
            {"key": "test", "needs": ["build"], "conclusion": "skipped"},
            {"key": "lint", "conclusion": "success"}]
    run = standin("POST", "/_standin/runs", {"repository": "acme/widgets", "jobs": jobs})
    assert run["run_attempt"] == 1 and run["status"] == "completed" and run["conclusion"] == "failure", run
    rid = run["id"]
    reader, writer = install_token(55), install_token(56)
    status, _, body = gh("GET", f"/repos/acme/widgets/actions/runs/{rid}", auth=f"token {reader}")
    assert status == 200 and body["id"] == rid, (status, body)
    status, hdrs, body = gh("GET", f"/repos/acme/widgets/actions/runs/{rid}/attempts/1/jobs?per_page=3", auth=f"token {reader}")
    assert status == 200 and body["total_count"] == 4 and len(body["jobs"]) == 3 and 'rel="next"' in hdrs.get("link", ""), (body, hdrs)
    start = next(j for j in body["jobs"] if j["name"] == "start")
    status, _, _ = gh("GET", f"/repos/acme/widgets/actions/runs/{rid}/attempts/2/jobs", auth=f"token {reader}")
    assert status == 404
    # Actions: read may not re-run
    status, _, body = gh("POST", f"/repos/acme/widgets/actions/jobs/{start['id']}/rerun", {}, auth=f"token {reader}")
    assert status == 403 and body["message"] == "Resource not accessible by integration", body
    status, _, body = gh("POST", f"/repos/acme/widgets/actions/jobs/{start['id']}/rerun", {}, auth=f"token {writer}")
    assert status == 201 and body == {}, (status, body)
    state = standin("GET", "/_standin/runs")[f"acme/widgets#{rid}"]
    assert state["reruns"] == [{"attempt": 2, "what": f"job {start['id']}", "jobs": ["build", "start", "test"]}], state
    # while attempt 2 runs nothing more; afterwards attempt 1's jobs are stale
    status, _, body = gh("POST", f"/repos/acme/widgets/actions/runs/{rid}/rerun", None, auth=f"token {writer}")
    assert status == 403 and body["message"] == "This workflow is already running", body
    standin("POST", "/_standin/runs/complete", {"repository": "acme/widgets", "id": rid, "jobs": {}})
    status, _, body = gh("POST", f"/repos/acme/widgets/actions/jobs/{start['id']}/rerun", {}, auth=f"token {writer}")
    assert status == 403 and body["message"] == "Only jobs from the current attempt can be re-run", body
    status, _, body = gh("POST", f"/repos/acme/widgets/actions/runs/{rid}/rerun", {"enable_debug_logging": "yes"}, auth=f"token {writer}")
    assert status == 422, body
    status, _, body = gh("POST", f"/repos/acme/widgets/actions/runs/{rid}/rerun", {}, auth=f"token {writer}")
    assert status == 201, body
    status, _, body = gh("GET", f"/repos/acme/widgets/actions/runs/{rid}", auth=f"token {reader}")
    assert body["run_attempt"] == 3 and body["status"] == "queued" and body["conclusion"] is None, body
    # runs older than 30 days
    old = standin("POST", "/_standin/runs", {"repository": "acme/widgets", "created_at": "2020-01-01T00:00:00Z", "jobs": jobs})
    status, _, body = gh("POST", f"/repos/acme/widgets/actions/runs/{old['id']}/rerun", {}, auth=f"token {writer}")
    assert status == 403 and "over a month ago" in body["message"], body
    status, _, _ = gh("GET", "/repos/acme/widgets/actions/runs/1", auth=f"token {reader}")
    assert status == 404


@check("EC2 interrupt: a running instance ends with Server.SpotInstanceTermination; TerminateInstances later keeps that reason")
def t_interrupt() -> None:
    ec2 = ec2_client()
    iid = ec2.run_instances(**plain_launch(ec2))["Instances"][0]["InstanceId"]
    done = shim("POST", "/_shim/interrupt", {"instance_ids": [iid, "i-00000000000000000"]})
    assert done == {"terminated": [iid]}, done
    ec2.terminate_instances(InstanceIds=[iid])  # moto would say Client.UserInitiatedShutdown
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["State"]["Name"] == "terminated", inst["State"]
    assert inst["StateReason"]["Code"] == "Server.SpotInstanceTermination", inst["StateReason"]


@check("serve.py exits on SIGTERM and on stdin EOF, removing the ready file")
def t_shutdown() -> None:
    ENV.proc.send_signal(signal.SIGTERM)
    assert ENV.proc.wait(timeout=10) == 0
    assert not os.path.exists(ENV.ready_file)
    ready = ENV.ready_file + ".2"
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "serve.py"), "--ready-file", ready, "--exit-on-stdin-eof", "--no-warmup"],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not os.path.exists(ready):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    assert not os.path.exists(ready)


def main() -> int:
    start_server()
    try:
        for fn in CHECKS:
            fn()
    finally:
        if ENV.proc.poll() is None:
            ENV.proc.terminate()
            try:
                ENV.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                ENV.proc.kill()
    passed = sum(1 for _, ok, _ in RESULTS if ok)
    failed = len(RESULTS) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
