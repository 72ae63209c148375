"""Whether an EC2 Query-protocol request conforms to the EC2 service model
that the pinned botocore ships (botocore/data/ec2/2016-11-15/service-2.json.gz,
loaded with botocore.loaders.Loader so it is the installed version).

This module owns the mapping from flat form keys (`TagSpecification.1.Tag.2.Key`)
back to model members, and the checks the model states for them.  The naming
rules follow botocore/serialize.py, EC2Serializer and its QuerySerializer base:

* a member is sent as its `queryName`, else its `locationName` with the first
  letter capitalised, else its member name; nested structures are
  `Parent.Child`;
* lists are always flattened, `Name.1`, `Name.2`, ... (never `.member.N`; the
  list member's own locationName is not used; an empty list sends nothing);
* booleans are 'true'/'false', integers and longs decimal, timestamps ISO 8601,
  blobs base64; `Action` and `Version` are top level and always allowed.
No input shape of this model is a map (checked against 1.44.8).

Checks: the operation exists; every key maps to a member; required members
(top level always, nested ones where their parent is present); enums; string
min/max length and `pattern` (Smithy semantics: not anchored, so re.search);
integer/long/double min/max and type range; list min/max counts and indices
1..N without gaps; boolean, number, timestamp and blob formats.  Nothing the
model does not state.  One pattern is skipped: PlacementGroupArn's
`arn:...:placement-group/^.{1,255}$` has a `^` mid-pattern and matches nothing.

Cost (botocore 1.44.8, this machine): importing botocore and loading the model
0.2-0.4 s, once per process (cached); then a check takes 0.01 ms for a one-key
request and 0.15-0.3 ms for a realistic 40-key RunInstances.
"""

from __future__ import annotations

import base64
import functools
import re
from datetime import datetime
from math import inf
from typing import Any, Iterator, Mapping

_VALUE = None  # the tree key under which a node's own value is kept
_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_INDEX = re.compile(r"[1-9][0-9]*")
_NUMBER = re.compile(r"-?[0-9]+")
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?")


@functools.lru_cache(maxsize=1)
def _model() -> dict[str, Any]:
    import botocore.loaders

    return botocore.loaders.Loader().load_service_model("ec2", "service-2")


@functools.lru_cache(maxsize=None)
def _sent(shape_name: str) -> dict[str, str]:
    """Member name -> the name it is sent as, for a structure."""
    members = _model()["shapes"][shape_name]["members"].items()
    return {name: m.get("queryName") or (m["locationName"][:1].upper() + m["locationName"][1:] if "locationName" in m
                                         else name) for name, m in members}


@functools.lru_cache(maxsize=None)
def _names(shape_name: str) -> dict[str, str]:
    """Sent name -> member name, for a structure."""
    return {sent: name for name, sent in _sent(shape_name).items()}


@functools.lru_cache(maxsize=None)
def _pattern(pattern: str) -> re.Pattern[str] | None:
    if "^" in pattern[1:].replace("[^", "").replace("\\^", ""):
        return None  # a mid-pattern ^ never matches (see docstring)
    return re.compile(pattern)


def model_version() -> str:
    import botocore

    return f"botocore {botocore.__version__}, ec2 apiVersion {_model()['metadata']['apiVersion']}"


def _keys(node: dict[Any, Any], path: str) -> Iterator[str]:
    for seg, child in node.items():
        if seg is _VALUE:
            yield path
        else:
            yield from _keys(child, f"{path}.{seg}")


def _show(values: list[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:12])
    return f"[{shown}, ... ({len(values)} values)]" if len(values) > 12 else f"[{shown}]"


def _scalar(shape: dict[str, Any], value: str, path: str) -> list[str]:
    kind = shape["type"]
    if kind == "string":
        out = []
        if "enum" in shape and value not in shape["enum"]:
            out.append(f"{path} {value!r} is not one of {_show(shape['enum'])}")
        if "min" in shape and len(value) < shape["min"]:
            out.append(f"{path} {value!r} is shorter than {shape['min']} characters")
        if "max" in shape and len(value) > shape["max"]:
            out.append(f"{path} is longer than {shape['max']} characters ({len(value)})")
        pattern = _pattern(shape["pattern"]) if "pattern" in shape else None
        if pattern is not None and not pattern.search(value):
            out.append(f"{path} {value!r} does not match the pattern {shape['pattern']}")
        return out
    if kind == "boolean":
        return [] if value in ("true", "false") else [f"{path} {value!r} is not a boolean ('true' or 'false')"]
    if kind in ("integer", "long", "double", "float"):
        try:
            number: float = int(value) if _NUMBER.fullmatch(value) else float("x" if kind in _RANGE else value)
        except ValueError:
            return [f"{path} {value!r} is not a{' decimal' if kind in _RANGE else ''} {kind}"]
        low, high = _RANGE.get(kind, (-inf, inf))
        if number == number and not low <= number <= high:  # NaN is a double
            return [f"{path} {value!r} is out of range for a {kind}"]
        if "min" in shape and number < shape["min"]:
            return [f"{path} {value} is below the minimum {shape['min']}"]
        if "max" in shape and number > shape["max"]:
            return [f"{path} {value} is above the maximum {shape['max']}"]
        return []
    try:
        if kind == "timestamp":
            match = _TIMESTAMP.fullmatch(value)
            datetime.strptime(match.group(1) if match else "", "%Y-%m-%dT%H:%M:%S")
        elif kind == "blob":
            base64.b64decode(value, validate=True)
        else:
            return [f"{path}: the model's type {kind} is not handled here"]
    except ValueError:  # binascii.Error is one
        return [f"{path} {value!r} is not " + ("an ISO 8601 timestamp" if kind == "timestamp" else "base64")]
    return []


def _walk(shape_name: str, node: dict[Any, Any], path: str, out: list[str]) -> None:
    shape = _model()["shapes"][shape_name]
    kind = shape["type"]
    kids = {k: v for k, v in node.items() if k is not _VALUE}
    if kind == "structure":
        if _VALUE in node:
            out.append(f"{path} is a structure; its members are sent as {path}.Member, not as a value")
            if not kids:
                return
        names = _names(shape_name)
        for seg, child in kids.items():
            sub = f"{path}.{seg}" if path else seg
            if seg in names:
                _walk(shape["members"][names[seg]]["shape"], child, sub, out)
                continue
            near = [n for n in names if n.lower() == seg.lower()]
            hint = f" (the model's name is {near[0]})" if near else ""
            if seg in shape["members"]:
                hint = f" (member {seg} is sent as {_sent(shape_name)[seg]})"
            out.extend(f"unknown parameter {key}{hint}" for key in _keys(child, sub))
        for member in shape.get("required", []):
            sent = _sent(shape_name)[member]
            if sent not in kids:
                out.append(f"{f'{path}.{sent}' if path else sent} is required")
    elif kind == "list":
        if _VALUE in node:
            out.append(f"{path} is a list; its items are sent as {path}.1, {path}.2, ...")
        items: dict[int, Any] = {}
        for seg, child in kids.items():
            if _INDEX.fullmatch(seg):
                items[int(seg)] = child
                continue
            why = f"ec2 lists are {path}.1, {path}.2, ..., without .member" if seg == "member" else \
                f"{seg!r} is not a list index (1, 2, ...)"
            out.extend(f"{key}: {why}" for key in _keys(child, f"{path}.{seg}"))
        if items and sorted(items) != list(range(1, len(items) + 1)):
            out.append(f"{path} indices {sorted(items)} are not 1..{len(items)} without gaps")
        if items and "min" in shape and len(items) < shape["min"]:
            out.append(f"{path} has {len(items)} items; the model's minimum is {shape['min']}")
        if "max" in shape and len(items) > shape["max"]:
            out.append(f"{path} has {len(items)} items; the model's maximum is {shape['max']}")
        for index in sorted(items):
            _walk(shape["member"]["shape"], items[index], f"{path}.{index}", out)
    else:
        if kids:
            out.extend(f"{key}: {path} is a {kind} and has no sub-parameters" for key in _keys(kids, path))
        if _VALUE in node:
            out.extend(_scalar(shape, node[_VALUE], path))


def check(action: str, params: Mapping[str, str]) -> list[str]:
    """Every way the request does not conform to the model; [] if it does."""
    operation = _model()["operations"].get(action)
    if operation is None:
        return [f"{action}: no such operation in the ec2 model"]
    tree: dict[Any, Any] = {}
    for key, value in params.items():
        if key in ("Action", "Version"):
            continue
        node = tree
        for seg in key.split("."):
            node = node.setdefault(seg, {})
        node[_VALUE] = value
    out: list[str] = []
    _walk(operation["input"]["shape"], tree, "", out)  # every operation has an input shape (1.44.8)
    return [f"{action}: {problem}" for problem in out]


def _run_instances(**extra: str) -> dict[str, str]:
    """RunInstances as the launcher sends it for a spot runner."""
    params = dict(line.split("=", 1) for line in """Action=RunInstances Version=2016-11-15 ImageId=ami-0abcdef1234567890
        InstanceType=m7i.large MinCount=1 MaxCount=1 UserData=IyEvYmluL2Jhc2gK SubnetId=subnet-1
        InstanceInitiatedShutdownBehavior=terminate SecurityGroupId.1=sg-1 IamInstanceProfile.Name=runner
        MetadataOptions.HttpEndpoint=enabled MetadataOptions.HttpTokens=required
        MetadataOptions.HttpPutResponseHopLimit=2 BlockDeviceMapping.1.DeviceName=/dev/xvda
        BlockDeviceMapping.1.Ebs.VolumeType=gp3 BlockDeviceMapping.1.Ebs.Encrypted=true
        BlockDeviceMapping.1.Ebs.DeleteOnTermination=true BlockDeviceMapping.1.Ebs.VolumeSize=50
        BlockDeviceMapping.1.Ebs.Iops=6000 BlockDeviceMapping.1.Ebs.Throughput=500
        BlockDeviceMapping.1.Ebs.VolumeInitializationRate=300 InstanceMarketOptions.MarketType=spot
        InstanceMarketOptions.SpotOptions.SpotInstanceType=one-time
        InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior=terminate
        InstanceMarketOptions.SpotOptions.MaxPrice=0.05 LaunchTemplate.LaunchTemplateId=lt-0123456789abcdef0
        LaunchTemplate.Version=3 DisableApiTermination=false""".split())
    params["ClientToken"] = "a" * 64
    for i, kind in ((1, "instance"), (2, "volume")):
        params[f"TagSpecification.{i}.ResourceType"] = kind
        for j, (key, value) in enumerate((("Name", "runner"), ("ec2-spot-runner", "acme/widgets")), 1):
            params.update({f"TagSpecification.{i}.Tag.{j}.Key": key, f"TagSpecification.{i}.Tag.{j}.Value": value})
    return dict(params, **extra)


def selfcheck() -> list[tuple[str, object, object]]:
    """(label, got, want) for selftest.py: the model facts the cases rely on,
    requests that conform, and requests that must be caught."""
    shapes, run = _model()["shapes"], _run_instances()
    market = ["spot", "capacity-block", "interruptible-capacity-reservation", "on-demand"]
    checks: list[tuple[str, object, object]] = [
        ("model: RunInstances requires", shapes["RunInstancesRequest"]["required"], ["MaxCount", "MinCount"]),
        ("model: MarketType enum", shapes["MarketType"]["enum"], market),
        ("model: HttpTokensState enum", shapes["HttpTokensState"]["enum"], ["optional", "required"]),
        ("model: ProductDescription.N is a plain string", shapes["ProductDescriptionList"]["member"]["shape"], "String"),
        ("model: Tag requires nothing", shapes["Tag"].get("required"), None),
    ]
    cases: list[tuple[str, str, dict[str, str], list[str]]] = [
        ("spot, tags, volumes, IMDSv2", "RunInstances", run, []),
        ("filters", "DescribeInstances", {"Filter.1.Name": "tag:ec2-spot-runner", "Filter.1.Value.1": "acme/widgets",
                                          "Filter.2.Name": "instance-state-name", "Filter.2.Value.1": "pending",
                                          "Filter.2.Value.2": "running"}, []),
        ("prices", "DescribeSpotPriceHistory", {
            "ProductDescription.1": "Linux/UNIX (Amazon VPC)", "InstanceType.1": "m7i.large", "InstanceType.2": "c7i.large",
            "StartTime": "2025-01-02T03:04:05Z", "EndTime": "2025-01-02T03:04:05.123456Z", "AvailabilityZone": "us-east-1a"},
         []),
        ("ids", "TerminateInstances", {"InstanceId.1": "i-0123456789abcdef0"}, []),
        ("resize", "ModifyVolume", {"VolumeId": "vol-1", "Size": "100", "VolumeType": "gp3", "Iops": "3000"}, []),
        ("tags", "CreateTags", {"ResourceId.1": "i-1", "ResourceId.2": "vol-1", "Tag.1.Key": "Name", "Tag.1.Value": "r"}, []),
        ("versions", "DescribeLaunchTemplateVersions",
         {"LaunchTemplateName": "ci-runners", "LaunchTemplateVersion.1": "$Latest"}, []),
        ("latest", "GetConsoleOutput", {"InstanceId": "i-1", "Latest": "true"}, []),
        ("pattern unanchored, as in Smithy", "DescribeLaunchTemplateVersions", {"LaunchTemplateName": "a!!"}, []),
        ("unmatchable PlacementGroupArn pattern skipped", "CreateCapacityReservation", {
            "InstanceType": "m7i.large", "InstancePlatform": "Linux/UNIX", "InstanceCount": "1",
            "PlacementGroupArn": "arn:aws:ec2:us-east-1:123456789012:placement-group/pg"}, []),
        ("caught: unknown operation", "RunInstance", {}, ["no such operation in the ec2 model"]),
        ("caught: unknown parameter", "RunInstances", dict(run, **{"TagSpecification.1.Foo": "x"}),
         ["unknown parameter TagSpecification.1.Foo"]),
        ("caught: member name for sent name", "TerminateInstances", {"InstanceIds.1": "i-1"},
         ["unknown parameter InstanceIds.1 (member InstanceIds is sent as InstanceId)", "InstanceId is required"]),
        ("caught: wrong case", "GetConsoleOutput", {"InstanceId": "i-1", "latest": "true"},
         ["unknown parameter latest (the model's name is Latest)"]),
        ("caught: missing required", "RunInstances", {k: v for k, v in run.items() if k != "MaxCount"},
         ["MaxCount is required"]),
        ("caught: missing nested required", "RunInstances", dict(run, **{"Monitoring.MetricCategoryId.1": "x"}),
         ["Monitoring.Enabled is required"]),
        ("caught: bad enum", "RunInstances", dict(run, **{"InstanceMarketOptions.MarketType": "spots"}),
         [f"InstanceMarketOptions.MarketType 'spots' is not one of [{', '.join(market)}]"]),
        ("caught: non-boolean", "GetConsoleOutput", {"InstanceId": "i", "Latest": "True"},
         ["Latest 'True' is not a boolean ('true' or 'false')"]),
        ("caught: non-integer", "ModifyVolume", {"VolumeId": "v", "Size": "1.0"}, ["Size '1.0' is not a decimal integer"]),
        ("caught: integer max", "DescribeInstanceTypes", {"MaxResults": "1000"}, ["MaxResults 1000 is above the maximum 100"]),
        ("caught: list max", "DescribeInstanceTypes", {f"InstanceType.{i}": "m7i.large" for i in range(1, 102)},
         ["InstanceType has 101 items; the model's maximum is 100"]),
        ("caught: bad timestamp", "DescribeSpotPriceHistory", {"StartTime": "2025-13-01T00:00:00Z"},
         ["StartTime '2025-13-01T00:00:00Z' is not an ISO 8601 timestamp"]),
        ("caught: string min", "DescribeLaunchTemplateVersions", {"LaunchTemplateName": "a!"},
         ["LaunchTemplateName 'a!' is shorter than 3 characters"]),
        ("caught: pattern", "DescribeLaunchTemplateVersions", {"LaunchTemplateName": "!!!"},
         [f"LaunchTemplateName '!!!' does not match the pattern {shapes['LaunchTemplateName']['pattern']}"]),
        ("caught: list index gap", "TerminateInstances", {"InstanceId.1": "i-1", "InstanceId.3": "i-3"},
         ["InstanceId indices [1, 3] are not 1..2 without gaps"]),
        ("caught: list index 0", "TerminateInstances", {"InstanceId.0": "i"},
         ["InstanceId.0: '0' is not a list index (1, 2, ...)"]),
        ("caught: .member.N", "TerminateInstances", {"InstanceId.member.1": "i-1"},
         ["InstanceId.member.1: ec2 lists are InstanceId.1, InstanceId.2, ..., without .member"]),
        ("caught: list sent as a value", "TerminateInstances", {"InstanceId": "i-1"},
         ["InstanceId is a list; its items are sent as InstanceId.1, InstanceId.2, ..."]),
        ("caught: structure sent as a value", "RunInstances", dict(run, Monitoring="true"),
         ["Monitoring is a structure; its members are sent as Monitoring.Member, not as a value"]),
        ("caught: scalar with sub-parameters", "GetConsoleOutput", {"InstanceId.1": "i"},
         ["InstanceId.1: InstanceId is a string and has no sub-parameters"]),
    ]
    return checks + [(f"{action}: {label}", check(action, params), [f"{action}: {w}" for w in want])
                     for label, action, params, want in cases]
