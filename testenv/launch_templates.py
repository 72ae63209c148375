"""How EC2 combines a RunInstances request with the launch template it names,
where moto 5.2.5 falls short (it reads only the image, type, key, user data,
security groups, instance tags and, replacing the request's, the block device
mappings of a template; it 500s on an unknown template id, takes version 0 as
the newest, and launches a template's spot, instance profile, metadata
options, placement and network interfaces as if they were not there).

The rules, from AWS's documentation:

* "Any additional parameters that you specify for the new instance overwrite
  the corresponding parameters included in the launch template."
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html,
  parameter LaunchTemplate)
* Nested structures merge: "the instance is launched using the complex
  structure as specified in the launch template plus any additional nested
  parameters that you specify"; tags merge by key and block device mappings
  by device name, the request's values replacing the template's
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/launch-instances-from-launch-template.html).
* A template's ImageId may be resolve:ssm:NAME, resolved at launch
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/create-launch-template.html#use-an-ssm-parameter-instead-of-an-ami-id).
* With network interfaces, subnets and security groups belong to the
  interface: EC2 answers 400 InvalidParameterCombination "Network interfaces
  and an instance-level subnet ID may not be specified on the same request"
  (aws/aws-cli#809), and "... instance-level security groups may not be
  specified on the same request" for groups, also when the interfaces come
  from a template (ansible-collections/amazon.aws#157).
* Tags in a template apply as the request's do, and are authorised the same
  way: "The ec2:CreateTags action is also evaluated if tags are provided in
  a launch template" (EC2 User Guide, "Grant permission to tag resources
  during creation",
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html).
  A template may tag instance, volume, network-interface and
  spot-instances-request
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateTagSpecificationRequest.html).
  Per resource type the two merge by key, the request's value winning.
* A resource holds at most 50 tags; keys starting with aws: do not count
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions).
  EC2's error is TagLimitExceeded
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
* Versions are $Latest, $Default or a number; the default is $Default
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateSpecification.html).
  Unknown ones are 400 InvalidLaunchTemplateId.VersionNotFound "Could not find
  the specified version V for the launch template with ID lt-…", unknown ids
  InvalidLaunchTemplateId.NotFound, unknown names
  InvalidLaunchTemplateName.NotFoundException (messages as moto's
  aws_verified tests record them).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Mapping

from ec2_query import tag_specifications

# Members whose value the request replaces whole (undocumented either way;
# an instance profile or a group list is one choice, not parts to mix).
REPLACED = {"IamInstanceProfile", "SecurityGroupIds", "SecurityGroups", "NetworkInterfaces"}
# Left to moto, which merges them itself (instance tags) or reads them raw.
LEFT_TO_MOTO = {"TagSpecifications", "UserData"}

_ID = re.compile(r"lt-[0-9a-f]{17}")


class TemplateError(Exception):
    """An EC2 error: (status, code, message)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def find_version(backend: Any, spec: Mapping[str, Any]) -> Any:
    """moto's LaunchTemplateVersion for a LaunchTemplateSpecification
    ({LaunchTemplateId|LaunchTemplateName, Version}), with EC2's errors."""
    tid, name = spec.get("LaunchTemplateId"), spec.get("LaunchTemplateName")
    if tid:
        if not _ID.fullmatch(str(tid)):
            raise TemplateError(400, "InvalidLaunchTemplateId.Malformed",
                                f"The specified ID for the launch template is malformed: {tid}.")
        template = backend.launch_templates.get(tid)
        if template is None:
            raise TemplateError(400, "InvalidLaunchTemplateId.NotFound",
                                f"The specified launch template, with template ID {tid}, does not exist.")
    elif name:
        tid = backend.launch_template_name_to_ids.get(name)
        template = backend.launch_templates.get(tid) if tid else None
        if template is None:
            raise TemplateError(400, "InvalidLaunchTemplateName.NotFoundException",
                                f"The specified launch template, with template name {name}, does not exist.")
    else:
        raise TemplateError(400, "MissingParameter",
                            "The request must contain the parameter launchTemplateId or launchTemplateName")
    version = str(spec.get("Version") or "$Default")
    return template.get_version(check_version(template.id, version))


def check_version(template_id: str, version: str) -> str:
    """$Latest, $Default or a number from 1 (moto takes 0 as the newest)."""
    if version.lower() in ("$latest", "$default") or (version.isdigit() and int(version) >= 1):
        return version
    raise TemplateError(400, "InvalidLaunchTemplateId.VersionNotFound",
                        f"Could not find the specified version {version} for the launch template with ID {template_id}.")


def _merge_dict(template: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(template))
    for key, value in request.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge_dict(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_mappings(template: list[Any], request: list[Any], mode: str = "fields") -> list[Any]:
    """Mappings by device name: the request's entry merged into the
    template's field by field ("fields"), or replacing it whole ("entry")."""
    by_device = {m.get("DeviceName"): m for m in request}
    merged = []
    for m in template:
        dev = m.get("DeviceName")
        if dev not in by_device:
            merged.append(copy.deepcopy(m))
        elif mode == "entry":
            merged.append(copy.deepcopy(by_device.pop(dev)))
        else:
            merged.append(_merge_dict(m, by_device.pop(dev)))
    return merged + [copy.deepcopy(m) for m in request if m.get("DeviceName") in by_device]


def effective(data: Mapping[str, Any], request: Mapping[str, Any], mapping_merge: str = "fields") -> dict[str, Any]:
    """The request as EC2 launches it: the template's values under the
    request's (parsed, nested, moto's shape names). Raises the conflicts
    EC2 refuses."""
    if data.get("NetworkInterfaces") and not request.get("NetworkInterfaces"):
        if request.get("SubnetId"):
            raise TemplateError(400, "InvalidParameterCombination",
                                "Network interfaces and an instance-level subnet ID may not be specified on the same request")
        if request.get("SecurityGroupIds") or request.get("SecurityGroups"):
            raise TemplateError(400, "InvalidParameterCombination",
                                "Network interfaces and an instance-level security groups may not be specified on the same request")
    out = copy.deepcopy(dict(request))
    for key, value in data.items():
        if key in LEFT_TO_MOTO or key not in out:
            if key not in LEFT_TO_MOTO:
                out[key] = copy.deepcopy(value)
            continue
        if key == "BlockDeviceMappings":
            out[key] = _merge_mappings(list(value), list(out[key]), mapping_merge)
        elif key not in REPLACED and isinstance(value, Mapping) and isinstance(out[key], Mapping):
            out[key] = _merge_dict(value, out[key])
    return out


_LISTS = {
    "SecurityGroupIds": "SecurityGroupId",
    "SecurityGroups": "SecurityGroup",
    "BlockDeviceMappings": "BlockDeviceMapping",
    "NetworkInterfaces": "NetworkInterface",
    "Groups": "SecurityGroupId",
}


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested template data as RunInstances query keys
    (IamInstanceProfile.Name, NetworkInterface.1.SecurityGroupId.1, …)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if key in LEFT_TO_MOTO:
            continue
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            name = _LISTS.get(key, key)
            for i, item in enumerate(value, 1):
                if isinstance(item, Mapping):
                    out.update(flatten(item, f"{prefix}{name}.{i}."))
                else:
                    out[f"{prefix}{name}.{i}"] = str(item)
        elif isinstance(value, bool):
            out[prefix + key] = "true" if value else "false"
        elif value is not None:
            out[prefix + key] = str(value)
    return out


def effective_tags(data: Mapping[str, Any] | None, params: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """{resource type: {key: value}} a launch tags: the template's tags
    (when there is one) under the request's, merged by key."""
    out: dict[str, dict[str, str]] = {}
    for spec in (data or {}).get("TagSpecifications") or []:
        tags = out.setdefault(str(spec.get("ResourceType")), {})
        for tag in spec.get("Tags") or spec.get("Tag") or []:
            tags[str(tag.get("Key"))] = str(tag.get("Value") or "")
    for rtype, tags in tag_specifications(params).items():
        out.setdefault(rtype, {}).update(tags)
    return out


TAG_LIMIT = 50


def check_tag_limit(tags: Mapping[str, Mapping[str, str]]) -> None:
    """EC2's 50 tags per resource (aws: keys aside), for every type tagged."""
    for rtype, pairs in tags.items():
        if len([k for k in pairs if not k.lower().startswith("aws:")]) > TAG_LIMIT:
            raise TemplateError(400, "TagLimitExceeded",
                                "The maximum number of Tags for a resource has been reached.")


def effective_query(data: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, str]:
    """The flat query parameters EC2 authorises a templated launch by: the
    template's, under every top-level member the request sets; the tags of
    both, merged per resource type."""
    given = {k.split(".", 1)[0] for k in params}
    out = dict(params)
    for key, value in flatten(data).items():
        if key.split(".", 1)[0] not in given:
            out[key] = value
    if data.get("TagSpecifications"):
        out = {k: v for k, v in out.items() if not k.startswith("TagSpecification.")}
        for n, (rtype, tags) in enumerate(effective_tags(data, params).items(), 1):
            out[f"TagSpecification.{n}.ResourceType"] = rtype
            for m, (key, value) in enumerate(tags.items(), 1):
                out[f"TagSpecification.{n}.Tag.{m}.Key"] = key
                out[f"TagSpecification.{n}.Tag.{m}.Value"] = value
    return out


def selfcheck() -> list[tuple[str, Any, Any]]:
    """(label, got, want) for selftest.py."""
    data = {
        "ImageId": "ami-1",
        "InstanceType": "c7i.large",
        "MetadataOptions": {"HttpTokens": "optional", "InstanceMetadataTags": "enabled"},
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 50}},
            {"DeviceName": "/dev/xvdb", "Ebs": {"VolumeSize": 20}},
        ],
        "IamInstanceProfile": {"Arn": "arn:aws:iam::1:instance-profile/a"},
        "SecurityGroupIds": ["sg-t"],
        "DisableApiTermination": True,
    }
    request = {
        "InstanceType": "m7i.large",
        "MetadataOptions": {"HttpTokens": "required"},
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeType": "gp3"}}],
        "IamInstanceProfile": {"Name": "b"},
    }
    eff = effective(data, request)
    checks: list[tuple[str, Any, Any]] = [
        ("request wins", eff["InstanceType"], "m7i.large"),
        ("template fills", eff["ImageId"], "ami-1"),
        ("nested merge", eff["MetadataOptions"], {"HttpTokens": "required", "InstanceMetadataTags": "enabled"}),
        ("mapping merged by device", eff["BlockDeviceMappings"],
         [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 50, "VolumeType": "gp3"}},
          {"DeviceName": "/dev/xvdb", "Ebs": {"VolumeSize": 20}}]),
        ("mapping replaced whole by device (entry mode)",
         effective(data, request, mapping_merge="entry")["BlockDeviceMappings"],
         [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeType": "gp3"}},
          {"DeviceName": "/dev/xvdb", "Ebs": {"VolumeSize": 20}}]),
        ("profile replaced whole", eff["IamInstanceProfile"], {"Name": "b"}),
        ("groups from the template", eff["SecurityGroupIds"], ["sg-t"]),
    ]
    q = effective_query(data, {"InstanceType": "m7i.large", "IamInstanceProfile.Name": "b"})
    checks += [
        ("query: template profile hidden by the request's", "IamInstanceProfile.Arn" in q, False),
        ("query: list keys", q.get("SecurityGroupId.1"), "sg-t"),
        ("query: bools", q.get("DisableApiTermination"), "true"),
        ("query: nested lists", flatten({"NetworkInterfaces": [{"Groups": ["sg-1"]}]}),
         {"NetworkInterface.1.SecurityGroupId.1": "sg-1"}),
    ]
    tagged = {"TagSpecifications": [
        {"ResourceType": "network-interface", "Tags": [{"Key": "team", "Value": "ci"}]},
        {"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "ci"}, {"Key": "Name", "Value": "t"}]},
    ]}
    request_tags = {"TagSpecification.1.ResourceType": "instance", "TagSpecification.1.Tag.1.Key": "Name",
                    "TagSpecification.1.Tag.1.Value": "runner-1"}
    checks += [
        ("template tags merge per type, the request's value winning", effective_tags(tagged, request_tags),
         {"network-interface": {"team": "ci"}, "instance": {"team": "ci", "Name": "runner-1"}}),
        ("template tags are authorised with the request's",
         tag_specifications(effective_query(tagged, request_tags)),
         {"network-interface": {"team": "ci"}, "instance": {"team": "ci", "Name": "runner-1"}}),
    ]
    for label, count, ok in (("50 tags", 50, True), ("51 tags", 51, False), ("50 tags and aws: keys", 50, True)):
        tags = {f"k{i}": "v" for i in range(count)}
        if "aws:" in label:
            tags["aws:ec2launchtemplate:id"] = "lt-0"
        try:
            check_tag_limit({"instance": tags})
            got = True
        except TemplateError as e:
            got = e.code
        checks.append((f"tag limit: {label}", got, True if ok else "TagLimitExceeded"))
    for label, req in (("subnet", {"SubnetId": "subnet-1"}), ("groups", {"SecurityGroupIds": ["sg-1"]})):
        try:
            effective({"NetworkInterfaces": [{"DeviceIndex": 0}]}, req)
            got = None
        except TemplateError as e:
            got = e.code
        checks.append((f"interfaces beside instance-level {label}", got, "InvalidParameterCombination"))
    for version, ok in (("$Latest", True), ("$Default", True), ("2", True), ("0", False), ("x", False)):
        try:
            check_version("lt-0", version)
            got = True
        except TemplateError:
            got = False
        checks.append((f"version {version}", got, ok))
    return checks
