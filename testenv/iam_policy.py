"""A small IAM identity-policy evaluator, and a model of what EC2 authorises
for a request.

Used by the EC2 shim (``ec2_shim.py``) to enforce the *original* policy of a
user created through ``POST /_shim/iam-user`` -- resource ARNs, conditions and
the implicit ``ec2:CreateTags`` of tag-on-create included -- because moto
checks only the action, against resource ``"*"``, and ignores conditions.

Part 1, the evaluator, follows AWS's documented evaluation logic for identity
policies in a single account:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html

* every statement of every policy is checked; an explicit ``Deny`` that
  applies wins; otherwise an ``Allow`` that applies is needed; otherwise the
  request is implicitly denied;
* a statement applies when its ``Action``/``NotAction``, its
  ``Resource``/``NotResource`` and every part of its ``Condition`` match.

Condition semantics (condition operators:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html;
multiple keys/values:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html;
set operators:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html):

* several operators in a block, and several keys under one operator: AND;
  several policy values for one key: OR -- NOR for a negated operator
  (``StringNotEquals``, ``StringNotLike``, ``ArnNotLike``, ...);
* a key missing from the request context makes the condition false, except
  that a negated operator is then true, ``...IfExists`` is then true,
  ``Null`` tests exactly for presence, ``ForAllValues:`` is then true and
  ``ForAnyValue:`` false;
* ``ForAllValues:`` -- every request value must satisfy the operator against
  the policy values; ``ForAnyValue:`` -- at least one must;
* condition key names are case-insensitive (the tag-key part of
  ``aws:RequestTag/K`` too), values case-sensitive unless the operator says
  otherwise;
* ``Action`` matching is case-insensitive, ``Resource`` matching is
  case-sensitive; both take ``*`` and ``?`` wildcards.  ``*`` in ``Resource``
  may span ``/`` and ``:``; ``ArnLike``/``ArnEquals`` compare the six
  colon-separated ARN parts one by one;
* policy variables (``${aws:username}``, ``${aws:RequestTag/K}``, with a
  default ``${key, 'default'}``, and ``${*}``, ``${?}``, ``${$}``) are
  substituted in ``Resource``/``NotResource`` and in String/ARN condition
  values of ``"Version": "2012-10-17"`` policies; an unresolved variable makes
  that element not match.

Supported operators: ``String{Not}Equals``, ``String{Not}EqualsIgnoreCase``,
``String{Not}Like``, ``Numeric{Not}Equals``, ``NumericLessThan{Equals}``,
``NumericGreaterThan{Equals}``, ``Bool``, ``Arn{Not}Equals``,
``Arn{Not}Like``, ``Null``, each with ``IfExists`` and the set qualifiers.
Date, IP address and binary operators are not implemented: a policy using
them is rejected with :class:`PolicyError` (loudly, rather than evaluated
wrongly).  Not modelled at all: resource-based policies, permission
boundaries, session policies, SCPs/RCPs, cross-account access.

Part 2, :func:`ec2_authorizations`, lists the (action, resource ARN, request
context) triples EC2 authorises for one Query API request, after the EC2 user
guide ("Grant permission to tag resources during creation",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html)
and the Service Authorization Reference for EC2
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html).
:class:`MotoEc2State` reads the tags/attributes of existing resources from
moto's in-process backend.

Run ``python iam_policy.py`` for the evaluator's own unit checks.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ec2_query import indexed as _indexed
from ec2_query import numbered as _numbered
from ec2_query import tag_specifications

Context = Mapping[str, "str | list[str] | tuple[str, ...]"]


class PolicyError(ValueError):
    """The policy document is malformed or uses something not implemented."""


# ------------------------------------------------------------ wildcards
_VAR_RE = re.compile(r"\$\{([^}]*)\}")


@functools.lru_cache(maxsize=4096)
def _glob_regex(pattern: str, ignore_case: bool) -> "re.Pattern[str]":
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """``*`` = any run of characters (also none), ``?`` = one character."""
    return _glob_regex(pattern, ignore_case).fullmatch(value) is not None


def _single(context: "NormalisedContext", key: str) -> str | None:
    vals = context.get(key.strip().lower())
    if vals is None or len(vals) != 1:
        return None  # multivalued keys cannot be policy variables
    return vals[0]


def substitute(value: str, context: "NormalisedContext | None", wildcards: bool) -> str | None:
    """Replace policy variables.  Returns None if a variable cannot be
    resolved (no such single-valued key and no default).  With
    ``wildcards`` the result is a glob pattern in which substituted text is
    literal (its ``*``/``?`` escaped as ``${*}``/``${?}`` would be), so this
    returns a *marked* pattern: literal wildcard characters are encoded as
    \\x00* / \\x00? and decoded by :func:`_pattern_match`."""
    if "${" not in value:
        return value
    ctx = context or {}
    out: list[str] = []
    pos = 0
    for m in _VAR_RE.finditer(value):
        out.append(value[pos : m.start()])
        pos = m.end()
        body = m.group(1).strip()
        if body in ("*", "?", "$"):
            lit = body
        else:
            name, default = body, None
            dm = re.fullmatch(r"(.*?)\s*,\s*'(.*)'", body)
            if dm:
                name, default = dm.group(1), dm.group(2)
            lit = _single(ctx, name)
            if lit is None:
                lit = default
            if lit is None:
                return None
        if wildcards:
            lit = lit.replace("*", "\x00*").replace("?", "\x00?")
        out.append(lit)
    out.append(value[pos:])
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _marked_regex(pattern: str, ignore_case: bool) -> "re.Pattern[str]":
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\x00" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _pattern_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    if "\x00" not in pattern:
        return glob_match(pattern, value, ignore_case)
    return _marked_regex(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """``ec2:Describe*`` vs ``ec2:DescribeInstances``: case-insensitive."""
    return glob_match(pattern, action, ignore_case=True)


def resource_matches(pattern: str, resource: str) -> bool:
    """Resource element matching: case-sensitive, ``*`` may span ``/`` and
    ``:`` (so ``arn:aws:ec2:*`` covers every EC2 ARN).  The requested
    resource ``"*"`` (actions without resource-level permissions) is only
    matched by patterns that match the literal string ``*``, e.g. ``"*"``."""
    return _pattern_match(pattern, resource)


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-separated parts is matched
    separately (wildcards do not cross a colon, except within the last,
    resource part, which may itself contain colons)."""
    p_parts = pattern.split(":", 5)
    a_parts = arn.split(":", 5)
    if len(p_parts) != 6 or len(a_parts) != 6:
        return False
    return all(_pattern_match(p, a) for p, a in zip(p_parts, a_parts))


# ------------------------------------------------------------ conditions
NormalisedContext = dict  # lower-cased key -> list[str]


def normalise_context(context: Context | None) -> NormalisedContext:
    out: dict[str, list[str]] = {}
    for key, value in (context or {}).items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            vals = [_policy_str(v) for v in value]
        else:
            vals = [_policy_str(value)]
        out.setdefault(key.lower(), []).extend(vals)
    return out


def _policy_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _num(s: str) -> float | None:
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def _numeric(cmp: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def match(ctx_value: str, policy_value: str) -> bool:
        a, b = _num(ctx_value), _num(policy_value)
        return a is not None and b is not None and cmp(a, b)

    return match


# base operator -> (negated, match(context value, policy value), takes policy variables)
OPERATORS: dict[str, tuple[bool, Callable[[str, str], bool], bool]] = {
    "StringEquals": (False, lambda c, p: _pattern_match(p, c) if "\x00" in p else c == p, True),
    "StringNotEquals": (True, lambda c, p: _pattern_match(p, c) if "\x00" in p else c == p, True),
    "StringEqualsIgnoreCase": (False, lambda c, p: c.lower() == p.replace("\x00", "").lower(), True),
    "StringNotEqualsIgnoreCase": (True, lambda c, p: c.lower() == p.replace("\x00", "").lower(), True),
    "StringLike": (False, lambda c, p: _pattern_match(p, c), True),
    "StringNotLike": (True, lambda c, p: _pattern_match(p, c), True),
    "NumericEquals": (False, _numeric(lambda a, b: a == b), False),
    "NumericNotEquals": (True, _numeric(lambda a, b: a == b), False),
    "NumericLessThan": (False, _numeric(lambda a, b: a < b), False),
    "NumericLessThanEquals": (False, _numeric(lambda a, b: a <= b), False),
    "NumericGreaterThan": (False, _numeric(lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (False, _numeric(lambda a, b: a >= b), False),
    "Bool": (False, lambda c, p: c.lower() == p.lower(), True),
    "ArnEquals": (False, lambda c, p: arn_like(p, c), True),
    "ArnLike": (False, lambda c, p: arn_like(p, c), True),
    "ArnNotEquals": (True, lambda c, p: arn_like(p, c), True),
    "ArnNotLike": (True, lambda c, p: arn_like(p, c), True),
}
NOT_IMPLEMENTED_OPERATORS = ("Date", "IpAddress", "NotIpAddress", "BinaryEquals")


def parse_operator(name: str) -> tuple[str | None, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> ("ForAnyValue", "StringLike", True)."""
    qualifier = None
    base = name
    if ":" in name:
        qualifier, base = name.split(":", 1)
        if qualifier not in ("ForAllValues", "ForAnyValue"):
            raise PolicyError(f"unknown condition set qualifier {qualifier!r} in {name!r}")
    if_exists = False
    if base.endswith("IfExists") and base != "IfExists":
        base, if_exists = base[: -len("IfExists")], True
    if base == "Null":
        if if_exists:
            raise PolicyError("NullIfExists is not a condition operator")
        return qualifier, base, False
    if base not in OPERATORS:
        if base.startswith(NOT_IMPLEMENTED_OPERATORS):
            raise PolicyError(f"condition operator {name!r} is valid in AWS but not implemented by iam_policy.py")
        raise PolicyError(f"unknown condition operator {name!r}")
    return qualifier, base, if_exists


def condition_matches(
    operator: str, key: str, policy_values: Any, context: NormalisedContext, variables: bool = True
) -> bool:
    """One (operator, key, values) triple of a Condition block."""
    qualifier, base, if_exists = parse_operator(operator)
    if not isinstance(policy_values, list):
        policy_values = [policy_values]
    pvals = [_policy_str(v) for v in policy_values]
    values = context.get(key.lower()) or None  # [] counts as absent
    if base == "Null":
        # "true": the key must be absent; "false": it must be present.
        return any((p.lower() == "true") == (values is None) for p in pvals)
    negated, match, takes_vars = OPERATORS[base]
    if values is None:
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        if if_exists:
            return True
        return negated
    if variables and takes_vars:
        resolved = [substitute(p, context, wildcards=base.endswith("Like") or base.startswith("Arn")) for p in pvals]
        pvals = [p for p in resolved if p is not None]

    def value_ok(v: str) -> bool:
        hit = any(match(v, p) for p in pvals)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(value_ok(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(value_ok(v) for v in values)
    # No set qualifier: a positive operator matches if any request value
    # matches; a negated one only if none does.
    return all(value_ok(v) for v in values) if negated else any(value_ok(v) for v in values)


def condition_block_matches(block: Mapping[str, Any], context: NormalisedContext, variables: bool = True) -> bool:
    for operator, keys in block.items():
        for key, values in keys.items():
            if not condition_matches(operator, key, values, context, variables):
                return False
    return True


# ------------------------------------------------------------ statements
def _as_list(v: Any, what: str) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return list(v)
    raise PolicyError(f"{what} must be a string or a non-empty list of strings, got {v!r}")


@dataclass
class Statement:
    effect: str
    sid: str
    actions: list[str] | None
    not_actions: list[str] | None
    resources: list[str] | None
    not_resources: list[str] | None
    condition: dict[str, dict[str, Any]]
    policy_name: str = ""
    variables: bool = True

    @classmethod
    def parse(cls, raw: Any, index: int, policy_name: str, variables: bool) -> "Statement":
        if not isinstance(raw, dict):
            raise PolicyError(f"statement #{index} is not an object")
        effect = raw.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"statement #{index}: Effect must be \"Allow\" or \"Deny\", got {effect!r}")
        if "Principal" in raw or "NotPrincipal" in raw:
            raise PolicyError(f"statement #{index}: an identity-based policy must not specify a principal")
        if ("Action" in raw) == ("NotAction" in raw):
            raise PolicyError(f"statement #{index}: exactly one of Action and NotAction is required")
        if ("Resource" in raw) == ("NotResource" in raw):
            raise PolicyError(f"statement #{index}: exactly one of Resource and NotResource is required")
        actions = _as_list(raw["Action"], "Action") if "Action" in raw else None
        not_actions = _as_list(raw["NotAction"], "NotAction") if "NotAction" in raw else None
        for a in (actions or []) + (not_actions or []):
            if a != "*" and ":" not in a:
                raise PolicyError(f"statement #{index}: action {a!r} must be prefixed by a service (e.g. ec2:)")
        condition = raw.get("Condition") or {}
        if not isinstance(condition, dict) or not all(isinstance(v, dict) for v in condition.values()):
            raise PolicyError(f"statement #{index}: Condition must map operators to {{key: values}} objects")
        for op in condition:
            parse_operator(op)  # validates
        return cls(
            effect=effect,
            sid=str(raw.get("Sid") or f"#{index}"),
            actions=actions,
            not_actions=not_actions,
            resources=_as_list(raw["Resource"], "Resource") if "Resource" in raw else None,
            not_resources=_as_list(raw["NotResource"], "NotResource") if "NotResource" in raw else None,
            condition=condition,
            policy_name=policy_name,
            variables=variables,
        )

    def _resource_hit(self, patterns: list[str], resource: str, context: NormalisedContext) -> bool:
        for p in patterns:
            q = substitute(p, context, wildcards=True) if self.variables else p
            if q is not None and resource_matches(q, resource):
                return True
        return False

    def applies(self, action: str, resource: str, context: NormalisedContext) -> bool:
        if self.actions is not None:
            if not any(action_matches(p, action) for p in self.actions):
                return False
        elif any(action_matches(p, action) for p in self.not_actions or []):
            return False
        if self.resources is not None:
            if not self._resource_hit(self.resources, resource, context):
                return False
        elif self._resource_hit(self.not_resources or [], resource, context):
            return False
        return condition_block_matches(self.condition, context, self.variables)

    @property
    def label(self) -> str:
        return f"{self.policy_name}/{self.sid}" if self.policy_name else self.sid


@dataclass
class Policy:
    name: str
    statements: list[Statement]
    document: dict[str, Any]

    @classmethod
    def parse(cls, document: Any, name: str = "") -> "Policy":
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise PolicyError(f"policy is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise PolicyError("a policy document must be a JSON object")
        version = document.get("Version", "2008-10-17")
        if version not in ("2012-10-17", "2008-10-17"):
            raise PolicyError(f"unknown policy Version {version!r}")
        raw = document.get("Statement")
        if isinstance(raw, dict):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            raise PolicyError("Statement must be an object or a non-empty list")
        variables = version == "2012-10-17"
        return cls(name, [Statement.parse(s, i, name, variables) for i, s in enumerate(raw)], document)


@dataclass
class Decision:
    action: str
    resource: str
    allowed: bool
    explicit_deny: bool
    allow_statements: list[str] = field(default_factory=list)
    deny_statements: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        if self.explicit_deny:
            return "explicit deny"
        return "allowed" if self.allowed else "implicit deny (no statement allows it)"


def evaluate(
    policies: Iterable["Policy | dict[str, Any]"], action: str, resource: str = "*", context: Context | None = None
) -> Decision:
    """AWS identity-policy evaluation within one account: an applicable
    explicit Deny wins, else an applicable Allow allows, else deny."""
    ctx = normalise_context(context)
    allows: list[str] = []
    denies: list[str] = []
    for pol in policies:
        if not isinstance(pol, Policy):
            pol = Policy.parse(pol)
        for st in pol.statements:
            if st.applies(action, resource, ctx):
                (denies if st.effect == "Deny" else allows).append(st.label)
    return Decision(action, resource, allowed=bool(allows) and not denies, explicit_deny=bool(denies),
                    allow_statements=allows, deny_statements=denies)


# ================================================================ EC2 model
ARN_TYPES_WITHOUT_ACCOUNT = {"image", "snapshot", "fpga-image"}

# resource id prefix -> ARN resource type (the ones a tool is likely to tag)
ID_PREFIX_TYPES = {
    "i": "instance",
    "vol": "volume",
    "snap": "snapshot",
    "ami": "image",
    "eni": "network-interface",
    "sg": "security-group",
    "subnet": "subnet",
    "vpc": "vpc",
    "sir": "spot-instances-request",
    "lt": "launch-template",
    "igw": "internet-gateway",
    "rtb": "route-table",
    "acl": "network-acl",
    "eipalloc": "elastic-ip",
    "dopt": "dhcp-options",
    "nat": "natgateway",
    "key": "key-pair",
    "pg": "placement-group",
    "cr": "capacity-reservation",
    "fi": "fleet",
}

# actions on instance ids (InstanceId.N, or InstanceId for the singular ones)
INSTANCE_ACTIONS = {
    "TerminateInstances", "StopInstances", "StartInstances", "RebootInstances",
    "MonitorInstances", "UnmonitorInstances", "ModifyInstanceAttribute",
    "ModifyInstanceMetadataOptions", "GetConsoleOutput",
}
VOLUME_ACTIONS = {"ModifyVolume", "DeleteVolume"}
TAG_ACTIONS = {"CreateTags", "DeleteTags"}


def ec2_arn(region: str, account: str, rtype: str, rid: str = "*") -> str:
    acct = "" if rtype in ARN_TYPES_WITHOUT_ACCOUNT else account
    return f"arn:aws:ec2:{region}:{acct}:{rtype}/{rid}"


def resource_type_of(resource_id: str) -> str | None:
    prefix = resource_id.split("-", 1)[0] if "-" in resource_id else ""
    return ID_PREFIX_TYPES.get(prefix)


@dataclass
class AuthzRequest:
    """One authorisation EC2 performs for a request."""

    action: str  # "ec2:RunInstances"
    resource: str  # ARN, or "*"
    context: dict[str, Any]
    # False: the resource does not exist, so it is not evaluated (EC2 needs the
    # resource to evaluate its tags; moto answers NotFound)
    known: bool = True


class ResourceState:
    """What the model needs to know about existing resources.  This base
    class knows nothing: every lookup answers None, and since it is not
    ``authoritative`` a resource it does not know is still evaluated (with
    no tags, so tag conditions fail) instead of being taken as nonexistent."""

    authoritative = False

    def tags(self, resource_id: str) -> dict[str, str] | None:
        return None

    def instance(self, instance_id: str) -> dict[str, Any] | None:
        return None

    def volume(self, volume_id: str) -> dict[str, Any] | None:
        return None

    def image(self, image_id: str) -> dict[str, Any] | None:
        return None

    def snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        return None

    def subnet(self, subnet_id: str | None, zone: str | None) -> dict[str, Any] | None:
        """The subnet, or (subnet_id None) the default subnet of the zone."""
        return None

    def security_group(self, id_or_name: str | None, vpc_id: str | None) -> dict[str, Any] | None:
        """The group, or (None) the default group of the VPC."""
        return None

    def instance_profile_roles(self, name_or_arn: str) -> list[str] | None:
        """The role ARNs of an instance profile (by name or ARN); None if unknown."""
        return None

    def launch_template(self, spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """(template id, the named version's data) of a
        LaunchTemplateSpecification; None if unknown."""
        return None



class MotoEc2State(ResourceState):
    """Reads moto's in-process EC2 backend (serve.py runs moto in the same
    process).  Read-only; every lookup tolerates moto mutating concurrently.
    Authoritative: an instance/volume it does not find does not exist."""

    authoritative = True

    def __init__(self, account: str, region: str):
        from moto.ec2.models import ec2_backends

        self.b = ec2_backends[account][region]
        self.region = region
        self.account = account

    @staticmethod
    def _retry(fn: Callable[[], Any]) -> Any:
        for _ in range(3):
            try:
                return fn()
            except RuntimeError:  # dict changed size during iteration
                continue
        return None

    def instance_profile_roles(self, name_or_arn: str) -> list[str] | None:
        try:
            from moto.iam.models import iam_backends

            backend = iam_backends[self.account]["aws"]
            for profile in backend.instance_profiles.values():
                if name_or_arn in (profile.name, profile.arn):
                    return [role.arn for role in profile.roles]
        except Exception:
            return None
        return None

    def launch_template(self, spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
        import launch_templates

        try:
            version = launch_templates.find_version(self.b, spec)
        except launch_templates.TemplateError:
            return None  # RunInstances itself answers EC2's error
        return version.template.id, dict(version.data)

    def tags(self, resource_id: str) -> dict[str, str] | None:
        t = self.b.tags.get(resource_id)  # .get: the defaultdict must not grow
        return dict(t) if t else {}

    def instance(self, instance_id: str) -> dict[str, Any] | None:
        inst = self._retry(lambda: self.b.get_instance_by_id(instance_id))
        if inst is None:
            return None
        return {
            "instance_type": inst.instance_type,
            "zone": getattr(inst.placement, "zone", None),
            "tenancy": getattr(inst.placement, "tenancy", None) or "default",
            "market": "spot" if getattr(inst, "lifecycle", None) == "spot" else "on-demand",
            "root_device_type": getattr(inst, "root_device_type", None),
            "tags": self.tags(instance_id) or {},
        }

    def volume(self, volume_id: str) -> dict[str, Any] | None:
        vol = self.b.volumes.get(volume_id)
        if vol is None:
            return None
        zone = getattr(vol, "zone", None)
        return {
            "volume_type": vol.volume_type,
            "size": vol.size,
            "encrypted": bool(vol.encrypted),
            "iops": getattr(vol, "iops", None),
            "zone": getattr(zone, "name", zone),
            "snapshot_id": getattr(vol, "snapshot_id", None),
            "tags": self.tags(volume_id) or {},
        }

    def image(self, image_id: str) -> dict[str, Any] | None:
        ami = self.b.amis.get(image_id)
        if ami is None:
            return None
        return {
            "owner": ami.owner_alias or ami.owner_id,
            "public": bool(ami.is_public),
            "image_type": ami.image_type or "machine",
            "root_device_type": ami.root_device_type,
            "root_device_name": ami.root_device_name,
            "tags": self.tags(image_id) or {},
        }

    def snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        snap = self.b.snapshots.get(snapshot_id)
        if snap is None:
            return None
        return {"tags": self.tags(snapshot_id) or {}}

    def subnet(self, subnet_id: str | None, zone: str | None) -> dict[str, Any] | None:
        def find() -> Any:
            if subnet_id:
                for per_zone in self.b.subnets.values():
                    if subnet_id in per_zone:
                        return per_zone[subnet_id]
                return None
            defaults = self.b.get_default_subnets()
            if zone:
                return defaults.get(zone)
            return next(iter(sorted(defaults.items())), (None, None))[1]

        sn = self._retry(find)
        if sn is None:
            return None
        az = getattr(sn, "availability_zone", None)
        return {"id": sn.id, "vpc_id": sn.vpc_id, "zone": getattr(az, "name", az), "tags": self.tags(sn.id) or {}}

    def security_group(self, id_or_name: str | None, vpc_id: str | None) -> dict[str, Any] | None:
        def find() -> Any:
            if id_or_name:
                return self.b.get_security_group_by_name_or_id(id_or_name, vpc_id)
            return self.b.get_default_security_group(vpc_id)

        sg = self._retry(find)
        if sg is None:
            return None
        return {"id": sg.id, "vpc_id": sg.vpc_id, "tags": self.tags(sg.id) or {}}




def request_tag_keys(tags: Mapping[str, str]) -> dict[str, Any]:
    """aws:RequestTag/K and aws:TagKeys for tags sent in the request."""
    if not tags:
        return {}
    ctx: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    ctx["aws:TagKeys"] = list(tags)
    return ctx


def resource_tag_keys(tags: Mapping[str, str] | None) -> dict[str, Any]:
    """aws:ResourceTag/K and its EC2 alias ec2:ResourceTag/K."""
    ctx: dict[str, Any] = {}
    for k, v in (tags or {}).items():
        ctx[f"aws:ResourceTag/{k}"] = v
        ctx[f"ec2:ResourceTag/{k}"] = v
    return ctx


def principal_context(user_arn: str, account: str, region: str) -> dict[str, Any]:
    """Global keys present in every request of an IAM user's long-term key."""
    return {
        "aws:PrincipalArn": user_arn,
        "aws:PrincipalAccount": account,
        "aws:PrincipalType": "User",
        "aws:username": user_arn.rsplit("/", 1)[-1],
        "aws:RequestedRegion": region,
        "ec2:Region": region,
        "aws:SecureTransport": "true",  # the tool talks HTTPS to real EC2
        "aws:ViaAWSService": "false",
    }


def _bool(v: str | None) -> str | None:
    return None if v is None else ("true" if v.lower() == "true" else "false")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, "")}


def run_instances_authorizations(
    params: Mapping[str, str], region: str, account: str, base: dict[str, Any], state: ResourceState,
    implicit_create_tags: bool = True,
) -> list[AuthzRequest]:
    """What EC2 authorises for RunInstances (SAR: the instance, image,
    volume, network-interface, security-group and subnet resource types, plus
    key-pair, launch-template, placement-group and snapshot when used) and,
    when ``TagSpecification`` is given, ec2:CreateTags per tagged resource
    type with ec2:CreateAction=RunInstances."""
    act = "ec2:RunInstances"
    # A launch template's values are authorised as if the request held
    # them (its instance profile's role is passed, its market and type are
    # the launch's). NOTE: "You must grant anyone that will use a launch
    # template the permissions required to create and access the resources
    # that are specified in the launch template."
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/permissions-for-launch-templates.html
    template = None
    if params.get("LaunchTemplate.LaunchTemplateId") or params.get("LaunchTemplate.LaunchTemplateName"):
        template = state.launch_template({
            "LaunchTemplateId": params.get("LaunchTemplate.LaunchTemplateId"),
            "LaunchTemplateName": params.get("LaunchTemplate.LaunchTemplateName"),
            "Version": params.get("LaunchTemplate.Version"),
        })
        if template is not None:
            import launch_templates

            params = launch_templates.effective_query(template[1], params)
    tagspecs = tag_specifications(params)
    out: list[AuthzRequest] = []

    def add(rtype: str, rid: str, extra: dict[str, Any], created: bool = False) -> None:
        ctx = dict(base)
        ctx.update(_drop_none(extra))
        if created:
            ctx.update(request_tag_keys(tagspecs.get(rtype, {})))
        out.append(AuthzRequest(act, ec2_arn(region, account, rtype, rid), ctx))

    image_id = params.get("ImageId")
    image = state.image(image_id) if image_id else None
    subnet_id = params.get("SubnetId") or params.get("NetworkInterface.1.SubnetId")
    zone = params.get("Placement.AvailabilityZone")
    subnet = state.subnet(subnet_id, zone)
    if zone is None and subnet is not None:
        zone = subnet.get("zone")
    vpc_id = subnet.get("vpc_id") if subnet else None
    vpc_arn = ec2_arn(region, account, "vpc", vpc_id) if vpc_id else None
    subnet_arn = ec2_arn(region, account, "subnet", subnet_id or (subnet or {}).get("id") or "*")

    # instance
    market = params.get("InstanceMarketOptions.MarketType")
    group = params.get("Placement.GroupName")
    add("instance", "*", {
        "ec2:InstanceType": params.get("InstanceType", "m1.small"),
        "ec2:AvailabilityZone": zone,
        "ec2:Tenancy": params.get("Placement.Tenancy", "default"),
        "ec2:InstanceMarketType": "spot" if market == "spot" else "on-demand",
        "ec2:EbsOptimized": _bool(params.get("EbsOptimized")),
        "ec2:InstanceProfile": params.get("IamInstanceProfile.Arn"),
        "ec2:PlacementGroup": ec2_arn(region, account, "placement-group", group) if group else None,
        "ec2:RootDeviceType": (image or {}).get("root_device_type"),
        "ec2:MetadataHttpTokens": params.get("MetadataOptions.HttpTokens"),
        "ec2:MetadataHttpEndpoint": params.get("MetadataOptions.HttpEndpoint"),
        "ec2:MetadataHttpPutResponseHopLimit": params.get("MetadataOptions.HttpPutResponseHopLimit"),
        "ec2:InstanceMetadataTags": params.get("MetadataOptions.InstanceMetadataTags"),
    }, created=True)

    # image (existing resource)
    if image_id:
        extra: dict[str, Any] = {"ec2:ImageType": "machine"}
        if image is not None:
            extra.update({
                "ec2:Owner": image.get("owner"),
                "ec2:Public": "true" if image.get("public") else "false",
                "ec2:RootDeviceType": image.get("root_device_type"),
                "ec2:ImageType": image.get("image_type") or "machine",
            })
            extra.update(resource_tag_keys(image.get("tags")))
        add("image", image_id, extra)

    # volumes (created): one per EBS block device mapping, plus the root
    # volume when no mapping names the image's root device
    mapped_root = False
    root_name = (image or {}).get("root_device_name")
    n_vol = 0
    for n in _numbered(params, "BlockDeviceMapping"):
        p = f"BlockDeviceMapping.{n}."
        if params.get(p + "NoDevice") is not None or params.get(p + "VirtualName"):
            continue
        if params.get(p + "DeviceName") == root_name or root_name is None:
            mapped_root = True
        n_vol += 1
        add("volume", "*", {
            "ec2:AvailabilityZone": zone,
            "ec2:VolumeType": params.get(p + "Ebs.VolumeType"),
            "ec2:VolumeSize": params.get(p + "Ebs.VolumeSize"),
            "ec2:Encrypted": _bool(params.get(p + "Ebs.Encrypted")),
            "ec2:VolumeIops": params.get(p + "Ebs.Iops"),
            "ec2:VolumeThroughput": params.get(p + "Ebs.Throughput"),
            "ec2:ParentSnapshot": ec2_arn(region, account, "snapshot", params[p + "Ebs.SnapshotId"])
            if params.get(p + "Ebs.SnapshotId") else None,
        }, created=True)
    if n_vol == 0 or not mapped_root:
        add("volume", "*", {"ec2:AvailabilityZone": zone}, created=True)

    # network interface(s)
    enis = _numbered(params, "NetworkInterface") or [0]
    for n in enis:
        eni_id = params.get(f"NetworkInterface.{n}.NetworkInterfaceId") if n else None
        if eni_id:
            add("network-interface", eni_id, resource_tag_keys(state.tags(eni_id)))
        else:
            add("network-interface", "*", {
                "ec2:Subnet": subnet_arn if subnet_arn and not subnet_arn.endswith("/*") else None,
                "ec2:Vpc": vpc_arn,
                "ec2:AvailabilityZone": zone,
            }, created=True)

    # subnet (existing)
    add("subnet", subnet_id or (subnet or {}).get("id") or "*", {
        "ec2:Vpc": vpc_arn,
        "ec2:AvailabilityZone": (subnet or {}).get("zone") or zone,
        **resource_tag_keys((subnet or {}).get("tags")),
    })

    # security group(s) (existing); none given = the VPC's default group
    groups = _indexed(params, "SecurityGroupId") + _indexed(params, "SecurityGroup")
    for n in _numbered(params, "NetworkInterface"):
        groups += _indexed(params, f"NetworkInterface.{n}.SecurityGroupId")
    if not groups:
        groups = [None]  # type: ignore[list-item]
    for g in groups:
        sg = state.security_group(g, vpc_id)
        sg_id = (sg or {}).get("id") or (g if g and g.startswith("sg-") else "*")
        add("security-group", sg_id, {"ec2:Vpc": vpc_arn, **resource_tag_keys((sg or {}).get("tags"))})

    if params.get("KeyName"):
        add("key-pair", params["KeyName"], {})
    if group:
        add("placement-group", group, {})
    lt = params.get("LaunchTemplate.LaunchTemplateId") or (template[0] if template else None)
    if lt or params.get("LaunchTemplate.LaunchTemplateName"):
        add("launch-template", lt or "*", resource_tag_keys(state.tags(lt) if lt else None))
    for n in _numbered(params, "BlockDeviceMapping"):
        snap = params.get(f"BlockDeviceMapping.{n}.Ebs.SnapshotId")
        if snap:
            add("snapshot", snap, resource_tag_keys(state.tags(snap)))
    for rtype in tagspecs:
        if rtype not in ("instance", "volume", "network-interface"):
            add(rtype, "*", {}, created=True)  # e.g. spot-instances-request

    # An instance profile: EC2 checks that the caller may pass its role to
    # EC2 (iam:PassRole on the role, iam:PassedToService=ec2.amazonaws.com).
    # NOTE: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_switch-role-ec2.html#roles-usingrole-ec2instance-permissions
    profile = params.get("IamInstanceProfile.Arn") or params.get("IamInstanceProfile.Name")
    if profile:
        for role_arn in state.instance_profile_roles(profile) or []:
            ctx = dict(base)
            ctx["iam:PassedToService"] = "ec2.amazonaws.com"
            out.append(AuthzRequest("iam:PassRole", role_arn, ctx))

    if implicit_create_tags:
        for rtype, tags in tagspecs.items():
            ctx = dict(base)
            ctx["ec2:CreateAction"] = "RunInstances"
            ctx.update(request_tag_keys(tags))
            out.append(AuthzRequest("ec2:CreateTags", ec2_arn(region, account, rtype, "*"), ctx))
    return out


def ec2_authorizations(
    action: str,
    params: Mapping[str, str],
    region: str,
    account: str,
    user_arn: str,
    state: ResourceState | None = None,
    implicit_create_tags: bool = True,
) -> list[AuthzRequest]:
    """The authorisations EC2 performs for one Query API request, in the
    order the shim reports the first failure."""
    state = state or ResourceState()
    base = principal_context(user_arn, account, region)
    if action == "RunInstances":
        return run_instances_authorizations(params, region, account, base, state, implicit_create_tags)
    if action in TAG_ACTIONS:
        tags: dict[str, str] = {}
        for m in _numbered(params, "Tag"):
            key = params.get(f"Tag.{m}.Key")
            if key is not None:
                tags[key] = params.get(f"Tag.{m}.Value", "")
        req_ctx = request_tag_keys(tags)
        if action == "DeleteTags":  # a key without a value deletes any value
            req_ctx = {k: v for k, v in req_ctx.items() if not (k.startswith("aws:RequestTag/") and v == "")}
            if tags:
                req_ctx["aws:TagKeys"] = list(tags)
        out = []
        for rid in _indexed(params, "ResourceId"):
            rtype = resource_type_of(rid)
            if rtype is None:
                continue  # unknown id kind: only moto's action check applies
            ctx = dict(base, **req_ctx, **resource_tag_keys(state.tags(rid)))
            out.append(AuthzRequest(f"ec2:{action}", ec2_arn(region, account, rtype, rid), ctx))
        return out
    if action in INSTANCE_ACTIONS or action in ("AttachVolume", "DetachVolume"):
        ids = _indexed(params, "InstanceId") or ([params["InstanceId"]] if params.get("InstanceId") else [])
        out = []
        for iid in ids:
            inst = state.instance(iid)
            if inst is None:
                out.append(AuthzRequest(f"ec2:{action}", ec2_arn(region, account, "instance", iid), dict(base),
                                        known=not state.authoritative))
                continue
            ctx = dict(base, **_drop_none({
                "ec2:InstanceType": inst.get("instance_type"),
                "ec2:AvailabilityZone": inst.get("zone"),
                "ec2:Tenancy": inst.get("tenancy"),
                "ec2:InstanceMarketType": inst.get("market"),
                "ec2:RootDeviceType": inst.get("root_device_type"),
            }), **resource_tag_keys(inst.get("tags")))
            out.append(AuthzRequest(f"ec2:{action}", ec2_arn(region, account, "instance", iid), ctx))
        if action in ("AttachVolume", "DetachVolume") and params.get("VolumeId"):
            out += _volume_authz(action, params["VolumeId"], region, account, base, state)
        return out
    if action in VOLUME_ACTIONS:
        return _volume_authz(action, params.get("VolumeId", ""), region, account, base, state)
    if action == "CreateImage":
        return create_image_authorizations(params, region, account, base, state, implicit_create_tags)
    if action in ("DeregisterImage", "DeleteSnapshot"):
        # NOTE: SAR (list_amazonec2.html): DeregisterImage on image*,
        # DeleteSnapshot on snapshot*, both with aws:ResourceTag.
        rtype, key = ("image", "ImageId") if action == "DeregisterImage" else ("snapshot", "SnapshotId")
        rid = params.get(key, "")
        found = state.image(rid) if rtype == "image" else state.snapshot(rid)
        ctx = dict(base, **resource_tag_keys((found or {}).get("tags")))
        return [AuthzRequest(f"ec2:{action}", ec2_arn(region, account, rtype, rid), ctx,
                             known=found is not None or not state.authoritative)]
    return [AuthzRequest(f"ec2:{action}", "*", dict(base))]


def create_image_authorizations(
    params: Mapping[str, str], region: str, account: str, base: dict[str, Any], state: ResourceState,
    implicit_create_tags: bool = True,
) -> list[AuthzRequest]:
    """CreateImage is authorised on the image and the snapshots it creates
    (aws:RequestTag from their TagSpecification) and on the instance
    (aws:ResourceTag); tags at creation also need ec2:CreateTags with
    ec2:CreateAction=CreateImage.
    NOTE: SAR (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html),
    CreateImage: image*, instance*, snapshot*, dependent action ec2:CreateTags;
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html"""
    act = "ec2:CreateImage"
    tagspecs = tag_specifications(params)
    iid = params.get("InstanceId", "")
    inst = state.instance(iid)
    out = [
        AuthzRequest(act, ec2_arn(region, account, "image", "*"),
                     dict(base, **request_tag_keys(tagspecs.get("image", {})))),
        AuthzRequest(act, ec2_arn(region, account, "instance", iid),
                     dict(base, **resource_tag_keys((inst or {}).get("tags"))),
                     known=inst is not None or not state.authoritative),
        AuthzRequest(act, ec2_arn(region, account, "snapshot", "*"),
                     dict(base, **request_tag_keys(tagspecs.get("snapshot", {})))),
    ]
    if implicit_create_tags:
        for rtype, tags in tagspecs.items():
            ctx = dict(base, **request_tag_keys(tags))
            ctx["ec2:CreateAction"] = "CreateImage"
            out.append(AuthzRequest("ec2:CreateTags", ec2_arn(region, account, rtype, "*"), ctx))
    return out


def _volume_authz(action: str, vol_id: str, region: str, account: str, base: dict[str, Any], state: ResourceState) -> list[AuthzRequest]:
    arn = ec2_arn(region, account, "volume", vol_id)
    vol = state.volume(vol_id) if vol_id else None
    if vol is None:
        return [AuthzRequest(f"ec2:{action}", arn, dict(base), known=not state.authoritative)]
    ctx = dict(base, **_drop_none({
        "ec2:VolumeType": vol.get("volume_type"),
        "ec2:VolumeSize": vol.get("size"),
        "ec2:Encrypted": "true" if vol.get("encrypted") else "false",
        "ec2:VolumeIops": vol.get("iops"),
        "ec2:AvailabilityZone": vol.get("zone"),
        "ec2:ParentSnapshot": ec2_arn(region, account, "snapshot", vol["snapshot_id"]) if vol.get("snapshot_id") else None,
    }), **resource_tag_keys(vol.get("tags")))
    return [AuthzRequest(f"ec2:{action}", arn, ctx)]


@dataclass
class Denial:
    request: AuthzRequest
    decision: Decision
    message: str


def authorize(
    policies: list[Policy], requests: list[AuthzRequest], user_arn: str
) -> Denial | None:
    """Evaluate every request (unknown resources are skipped: EC2 needs the
    resource to evaluate it and answers NotFound); return the denial to
    report -- the first explicit deny, else the first implicit one -- or None."""
    first: tuple[AuthzRequest, Decision] | None = None
    for req in requests:
        if not req.known:
            continue
        dec = evaluate(policies, req.action, req.resource, req.context)
        if dec.allowed:
            continue
        if dec.explicit_deny:
            first = (req, dec)
            break
        if first is None:
            first = (req, dec)
    if first is None:
        return None
    req, dec = first
    return Denial(req, dec, unauthorized_message(user_arn, req, dec))


def unauthorized_message(user_arn: str, req: AuthzRequest, dec: Decision) -> str:
    on = "" if req.resource == "*" else f" on resource: {req.resource}"
    if dec.explicit_deny:
        why = "with an explicit deny in an identity-based policy"
    else:
        why = f"because no identity-based policy allows the {req.action} action"
    return (
        f"You are not authorized to perform this operation. User: {user_arn} is not authorized to perform: "
        f"{req.action}{on} {why}. Encoded authorization failure message: {encode_failure(user_arn, req, dec)}"
    )


def encode_failure(user_arn: str, req: AuthzRequest, dec: Decision) -> str:
    """Base64 of JSON shaped like sts:DecodeAuthorizationMessage's output
    (real EC2 messages are opaque and need that call; here plain base64)."""
    ctx = normalise_context(req.context)
    doc = {
        "allowed": False,
        "explicitDeny": dec.explicit_deny,
        "matchedStatements": {"items": [{"statementId": s} for s in dec.deny_statements]},
        "failures": {"items": []},
        "context": {
            "principal": {"arn": user_arn},
            "action": req.action,
            "resource": req.resource,
            "conditions": {"items": [{"key": k, "values": {"items": [{"value": v} for v in vs]}} for k, vs in sorted(ctx.items())]},
        },
    }
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


# ================================================================ self-check
def _selfcheck() -> int:  # pragma: no cover - run by selftest.py and by hand
    failures = 0

    def expect(label: str, got: Any, want: Any) -> None:
        nonlocal failures
        if got != want:
            failures += 1
            print(f"FAIL {label}: got {got!r}, want {want!r}")

    for label, got, want in unit_checks():
        expect(label, got, want)
    print(f"iam_policy: {len(list(unit_checks())) - failures} passed, {failures} failed")
    return 1 if failures else 0


def unit_checks() -> Iterable[tuple[str, Any, Any]]:
    """(label, got, want) triples: the evaluator's unit checks."""

    def allowed(policy: dict[str, Any], action: str, resource: str = "*", ctx: Context | None = None) -> bool:
        return evaluate([policy], action, resource, ctx).allowed

    def stmt(**kw: Any) -> dict[str, Any]:
        s = {"Effect": "Allow", "Action": "*", "Resource": "*"}
        s.update(kw)
        return {"Version": "2012-10-17", "Statement": s}

    inst = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"
    # wildcards and case
    yield "action wildcard", allowed(stmt(Action="ec2:Describe*"), "ec2:DescribeInstances"), True
    yield "action case-insensitive", allowed(stmt(Action="EC2:describeinstances"), "ec2:DescribeInstances"), True
    yield "action ?", allowed(stmt(Action="ec2:?unInstances"), "ec2:RunInstances"), True
    yield "action other", allowed(stmt(Action="ec2:Describe*"), "ec2:RunInstances"), False
    yield "action list", allowed(stmt(Action=["ec2:RunInstances", "ec2:CreateTags"]), "ec2:CreateTags"), True
    yield "resource wildcard", allowed(stmt(Resource="arn:aws:ec2:*:*:instance/*"), "ec2:X", inst), True
    yield "resource case-sensitive", allowed(stmt(Resource="arn:aws:ec2:*:*:Instance/*"), "ec2:X", inst), False
    yield "resource * spans colons", allowed(stmt(Resource="arn:aws:ec2:*"), "ec2:X", inst), True
    yield "resource ARN does not match *", allowed(stmt(Resource="arn:aws:ec2:*:*:instance/*"), "ec2:X", "*"), False
    yield "resource ?", allowed(stmt(Resource="arn:aws:ec2:us-east-?:*:instance/i-0abc"), "ec2:X", inst), True
    # NotAction / NotResource
    yield "NotAction excludes", allowed({"Statement": {"Effect": "Allow", "NotAction": "ec2:Terminate*", "Resource": "*"}}, "ec2:TerminateInstances"), False
    yield "NotAction includes others", allowed({"Statement": {"Effect": "Allow", "NotAction": "ec2:Terminate*", "Resource": "*"}}, "ec2:RunInstances"), True
    yield "NotResource", allowed({"Statement": [{"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:ec2:*:*:volume/*"}]}, "ec2:X", inst), True
    # explicit deny wins, implicit deny by default
    both = {"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
                          {"Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*"}]}
    d = evaluate([both], "ec2:TerminateInstances")
    yield "explicit deny wins", (d.allowed, d.explicit_deny), (False, True)
    d = evaluate([{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}], "ec2:RunInstances")
    yield "implicit deny", (d.allowed, d.explicit_deny), (False, False)
    yield "deny in another policy", evaluate([{"Statement": both["Statement"][0]}, {"Statement": both["Statement"][1]}], "ec2:TerminateInstances").allowed, False
    # conditions: multiple keys AND, multiple values OR
    c2 = stmt(Condition={"StringEquals": {"ec2:InstanceType": ["c7i.large", "m7i.large"], "ec2:Region": "us-east-1"}})
    yield "values OR", allowed(c2, "ec2:X", "*", {"ec2:InstanceType": "m7i.large", "ec2:Region": "us-east-1"}), True
    yield "keys AND", allowed(c2, "ec2:X", "*", {"ec2:InstanceType": "m7i.large", "ec2:Region": "eu-west-1"}), False
    yield "missing key -> false", allowed(c2, "ec2:X", "*", {"ec2:Region": "us-east-1"}), False
    yield "condition key case-insensitive", allowed(stmt(Condition={"StringEquals": {"AWS:ResourceTag/Team": "a"}}), "ec2:X", "*", {"aws:resourcetag/team": "a"}), True
    yield "condition value case-sensitive", allowed(stmt(Condition={"StringEquals": {"k": "A"}}), "ec2:X", "*", {"k": "a"}), False
    yield "StringEqualsIgnoreCase", allowed(stmt(Condition={"StringEqualsIgnoreCase": {"k": "A"}}), "ec2:X", "*", {"k": "a"}), True
    yield "StringLike", allowed(stmt(Condition={"StringLike": {"k": "job-*"}}), "ec2:X", "*", {"k": "job-42"}), True
    yield "StringEquals no wildcard", allowed(stmt(Condition={"StringEquals": {"k": "job-*"}}), "ec2:X", "*", {"k": "job-42"}), False
    # negated operators: NOR over values, true when the key is missing
    ne = stmt(Condition={"StringNotEquals": {"k": ["a", "b"]}})
    yield "StringNotEquals NOR (hit)", allowed(ne, "ec2:X", "*", {"k": "b"}), False
    yield "StringNotEquals NOR (miss)", allowed(ne, "ec2:X", "*", {"k": "c"}), True
    yield "StringNotEquals missing key -> true", allowed(ne, "ec2:X", "*", {}), True
    yield "StringNotLike", allowed(stmt(Condition={"StringNotLike": {"k": "x*"}}), "ec2:X", "*", {"k": "xy"}), False
    # IfExists
    ie = stmt(Condition={"StringEqualsIfExists": {"ec2:InstanceType": "c7i.large"}})
    yield "IfExists missing -> true", allowed(ie, "ec2:X", "*", {}), True
    yield "IfExists present, match", allowed(ie, "ec2:X", "*", {"ec2:InstanceType": "c7i.large"}), True
    yield "IfExists present, no match", allowed(ie, "ec2:X", "*", {"ec2:InstanceType": "p5.48xlarge"}), False
    # Null
    nul = stmt(Condition={"Null": {"aws:RequestTag/owner": "true"}})
    yield "Null true, absent", allowed(nul, "ec2:X", "*", {}), True
    yield "Null true, present", allowed(nul, "ec2:X", "*", {"aws:RequestTag/owner": "me"}), False
    yield "Null false, present", allowed(stmt(Condition={"Null": {"k": "false"}}), "ec2:X", "*", {"k": "v"}), True
    yield "Null false, absent", allowed(stmt(Condition={"Null": {"k": False}}), "ec2:X", "*", {}), False
    # Bool
    yield "Bool", allowed(stmt(Condition={"Bool": {"aws:SecureTransport": True}}), "ec2:X", "*", {"aws:SecureTransport": "true"}), True
    yield "Bool false", allowed(stmt(Condition={"Bool": {"aws:SecureTransport": "true"}}), "ec2:X", "*", {"aws:SecureTransport": "false"}), False
    yield "Bool missing", allowed(stmt(Condition={"Bool": {"aws:SecureTransport": "true"}}), "ec2:X", "*", {}), False
    # set operators
    fa = stmt(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["Name", "ec2-spot-runner"]}})
    yield "ForAllValues subset", allowed(fa, "ec2:X", "*", {"aws:TagKeys": ["Name"]}), True
    yield "ForAllValues extra key", allowed(fa, "ec2:X", "*", {"aws:TagKeys": ["Name", "other"]}), False
    yield "ForAllValues missing -> true", allowed(fa, "ec2:X", "*", {}), True
    yield "ForAllValues empty list -> true", allowed(fa, "ec2:X", "*", {"aws:TagKeys": []}), True
    fy = stmt(Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["ec2-spot-runner"]}})
    yield "ForAnyValue one", allowed(fy, "ec2:X", "*", {"aws:TagKeys": ["Name", "ec2-spot-runner"]}), True
    yield "ForAnyValue none", allowed(fy, "ec2:X", "*", {"aws:TagKeys": ["Name"]}), False
    yield "ForAnyValue missing -> false", allowed(fy, "ec2:X", "*", {}), False
    yield "ForAllValues:StringNotEquals", allowed(stmt(Condition={"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret"]}}), "ec2:X", "*", {"aws:TagKeys": ["a", "b"]}), True
    yield "ForAnyValue:StringNotLike", allowed(stmt(Condition={"ForAnyValue:StringNotLike": {"aws:TagKeys": ["a*"]}}), "ec2:X", "*", {"aws:TagKeys": ["ab", "ac"]}), False
    yield "ForAnyValue:StringLike", allowed(stmt(Condition={"ForAnyValue:StringLike": {"aws:TagKeys": ["ec2-*"]}}), "ec2:X", "*", {"aws:TagKeys": ["x", "ec2-spot-runner"]}), True
    # ARN operators: part by part
    al = stmt(Condition={"ArnLike": {"ec2:Subnet": "arn:aws:ec2:*:*:subnet/*"}})
    yield "ArnLike", allowed(al, "ec2:X", "*", {"ec2:Subnet": "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-1"}), True
    yield "ArnLike parts", allowed(stmt(Condition={"ArnLike": {"k": "arn:aws:ec2:*"}}), "ec2:X", "*", {"k": inst}), False
    yield "ArnEquals = ArnLike", allowed(stmt(Condition={"ArnEquals": {"k": "arn:aws:ec2:*:*:instance/i-*"}}), "ec2:X", "*", {"k": inst}), True
    yield "ArnNotLike missing -> true", allowed(stmt(Condition={"ArnNotLike": {"k": "arn:*:*:*:*:*"}}), "ec2:X", "*", {}), True
    # numeric
    yield "NumericLessThanEquals", allowed(stmt(Condition={"NumericLessThanEquals": {"ec2:VolumeSize": 100}}), "ec2:X", "*", {"ec2:VolumeSize": "30"}), True
    yield "NumericGreaterThan", allowed(stmt(Condition={"NumericGreaterThan": {"ec2:VolumeSize": "100"}}), "ec2:X", "*", {"ec2:VolumeSize": "30"}), False
    # policy variables
    pv = stmt(Resource="arn:aws:iam::*:user/${aws:username}")
    yield "policy variable", allowed(pv, "iam:X", "arn:aws:iam::1:user/bob", {"aws:username": "bob"}), True
    yield "policy variable other", allowed(pv, "iam:X", "arn:aws:iam::1:user/eve", {"aws:username": "bob"}), False
    yield "policy variable missing", allowed(pv, "iam:X", "arn:aws:iam::1:user/bob", {}), False
    yield "policy variable default", allowed(stmt(Resource="arn:x:${aws:username, 'anon'}"), "iam:X", "arn:x:anon", {}), True
    yield "policy variable is literal", allowed(stmt(Resource="arn:x:${k}"), "iam:X", "arn:x:abc", {"k": "*"}), False
    yield "${*} literal", allowed(stmt(Resource="arn:x:${*}"), "iam:X", "arn:x:*", {}), True
    yield "variables off in 2008-10-17", allowed({"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:x:${k}"}}, "iam:X", "arn:x:${k}", {"k": "v"}), True
    yield "condition variable", allowed(stmt(Condition={"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}), "ec2:X", "*", {"aws:username": "bob", "aws:ResourceTag/owner": "bob"}), True
    # malformed / unimplemented policies are rejected
    for label, doc in (
        ("no Effect", {"Statement": {"Action": "*", "Resource": "*"}}),
        ("bad Effect", {"Statement": {"Effect": "allow", "Action": "*", "Resource": "*"}}),
        ("Principal", {"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}}),
        ("no Resource", {"Statement": {"Effect": "Allow", "Action": "*"}}),
        ("Action and NotAction", {"Statement": {"Effect": "Allow", "Action": "*", "NotAction": "x:y", "Resource": "*"}}),
        ("action without service", {"Statement": {"Effect": "Allow", "Action": "RunInstances", "Resource": "*"}}),
        ("unknown operator", {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqual": {"k": "v"}}}}),
        ("Date not implemented", {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}}),
        ("bad qualifier", {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"ForEach:StringEquals": {"k": "v"}}}}),
    ):
        try:
            Policy.parse(doc)
            got = "accepted"
        except PolicyError:
            got = "PolicyError"
        yield f"rejects {label}", got, "PolicyError"
    yield "Statement as object", Policy.parse({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}).statements[0].effect, "Allow"

    # the EC2 model, with the scoped policy the tool prints
    scoped = Policy.parse(SCOPED_POLICY_EXAMPLE, "scoped")
    user = "arn:aws:iam::123456789012:user/bot"
    params = {
        "Action": "RunInstances", "ImageId": "ami-1", "InstanceType": "c7i.large", "SubnetId": "subnet-1",
        "SecurityGroupId.1": "sg-1",
        "TagSpecification.1.ResourceType": "instance", "TagSpecification.1.Tag.1.Key": "ec2-spot-runner:managed",
        "TagSpecification.1.Tag.1.Value": "true",
        "TagSpecification.2.ResourceType": "volume", "TagSpecification.2.Tag.1.Key": "ec2-spot-runner:managed",
        "TagSpecification.2.Tag.1.Value": "true",
    }
    reqs = ec2_authorizations("RunInstances", params, "us-east-1", "123456789012", user)
    yield "RunInstances resources", sorted({(r.action, r.resource) for r in reqs}), sorted({
        ("ec2:RunInstances", "arn:aws:ec2:us-east-1:123456789012:instance/*"),
        ("ec2:RunInstances", "arn:aws:ec2:us-east-1::image/ami-1"),
        ("ec2:RunInstances", "arn:aws:ec2:us-east-1:123456789012:volume/*"),
        ("ec2:RunInstances", "arn:aws:ec2:us-east-1:123456789012:network-interface/*"),
        ("ec2:RunInstances", "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-1"),
        ("ec2:RunInstances", "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1"),
        ("ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:instance/*"),
        ("ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:volume/*"),
    })
    yield "RunInstances allowed by the scoped policy", authorize([scoped], reqs, user), None
    inst_req = next(r for r in reqs if r.resource.endswith(":instance/*") and r.action == "ec2:RunInstances")
    yield "request tags only on the tagged resource", (
        inst_req.context.get("aws:RequestTag/ec2-spot-runner:managed"),
        next(r for r in reqs if ":image/" in r.resource).context.get("aws:TagKeys")), ("true", None)
    ct = ec2_authorizations("CreateTags", {"ResourceId.1": "i-1", "Tag.1.Key": "a", "Tag.1.Value": "b"}, "us-east-1", "123456789012", user)
    den = authorize([scoped], ct, user)
    yield "direct CreateTags denied", den is not None and den.message.startswith(
        f"You are not authorized to perform this operation. User: {user} is not authorized to perform: ec2:CreateTags "
        "on resource: arn:aws:ec2:us-east-1:123456789012:instance/i-1 because no identity-based policy allows the "
        "ec2:CreateTags action. Encoded authorization failure message: "), True
    yield "describe on * allowed", authorize([scoped], ec2_authorizations("DescribeInstances", {}, "us-east-1", "123456789012", user), user), None
    den = authorize([scoped], ec2_authorizations("DescribeVolumes", {}, "us-east-1", "123456789012", user), user)
    yield "describe not listed -> denied, no 'on resource'", den.message.split(" Encoded")[0] if den else None, (
        f"You are not authorized to perform this operation. User: {user} is not authorized to perform: ec2:DescribeVolumes "
        "because no identity-based policy allows the ec2:DescribeVolumes action.")
    arn_only = Policy.parse({"Statement": {"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "arn:aws:ec2:*:*:instance/*"}})
    yield "ARN-scoped describe denied", authorize([arn_only], ec2_authorizations("DescribeInstances", {}, "us-east-1", "1", user), user) is not None, True


SCOPED_POLICY_EXAMPLE: dict[str, Any] = {
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


if __name__ == "__main__":
    raise SystemExit(_selfcheck())
