"""EC2 Query-protocol shim that sits in front of a moto server.

Every request is forwarded to moto unchanged (headers, including the SigV4
``Authorization`` header and ``Host``, are preserved so moto's signature and
IAM checks still work).  On top of moto the shim adds:

* a call log                       (GET/DELETE /_shim/calls), and the
  actions received so far, answered or not (GET /_shim/received), so that
  a test can wait for a request to be in flight
* ClientToken idempotency for RunInstances
* fault injection                  (GET/POST/DELETE /_shim/faults)
* a spot price table               (GET/POST/DELETE /_shim/spot-prices)
* a "pending" window for new instances and other knobs (GET/POST /_shim/config),
  among them eventual consistency (not_found_seconds) and a missing spot
  service-linked role (spot_service_linked_role)
* instances that end right after launch (GET/POST/DELETE /_shim/launch-outcomes)
* in-process fixes of moto's RunInstances (patch_moto): the root device and
  block device mapping rules, image, instance type and architecture checks,
  no default subnet in a zone, volumes with EC2's IOPS/throughput
* an IAM helper that creates a user with a policy and switches moto to
  enforce IAM                      (POST /_shim/iam-user, POST /_shim/auth)
* a full reset                     (POST /_shim/reset)
* every EC2 request checked against the EC2 service model botocore ships
  (ec2_model.py); what does not conform is listed at GET /_shim/model

See README.md next to this file for the contracts.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import hashlib
import http.client
import json
import re
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.sax.saxutils import escape as xml_escape

from ec2_query import indexed as _indexed

EC2_VERSION = "2016-11-15"
EC2_NS = f"http://ec2.amazonaws.com/doc/{EC2_VERSION}"
ET.register_namespace("", EC2_NS)

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
}

RUNNING = ("16", "running")
PENDING = ("0", "pending")

DEFAULT_CONFIG: dict[str, Any] = {
    # DescribeInstances reports an instance as pending until this many seconds
    # after the shim saw it launched.
    "pending_seconds": 0.0,
    # moto answers a denied EC2 action with 403 AccessDenied in an
    # <ErrorResponse> document; real EC2 answers 403 UnauthorizedOperation in
    # a <Response><Errors> document.  When true the shim rewrites it.
    "rewrite_access_denied": True,
    # EC2 also requires ec2:CreateTags for RunInstances with
    # TagSpecification; moto does not.  Checked by the shim while IAM is
    # enforced.
    "tag_on_create_needs_create_tags": True,
    # CreateImage: how many seconds a new image stays "pending" before it
    # is "available" (moto makes it available at once).
    "image_pending_seconds": 0.0,
    # GetConsoleOutput: the text every instance's console shows (null =
    # moto's fixed sample, a Xen boot from 2006).
    "console_output": None,
    # Eventual consistency: for this many seconds after the shim saw an
    # instance's RunInstances answer, DescribeInstances/TerminateInstances
    # naming it answer InvalidInstanceID.NotFound and listings leave it out.
    "not_found_seconds": 0.0,
    # The account has EC2 Spot's service-linked role (AWSServiceRoleForEC2Spot).
    # When false, a spot RunInstances fails with 403
    # AuthFailure.ServiceLinkedRoleCreationNotPermitted until the role exists
    # in moto's IAM (CreateServiceLinkedRole for spot.amazonaws.com).
    "spot_service_linked_role": True,
    # How a request's block device mapping combines with a launch template's
    # mapping for the same device.  AWS documents that nested structures
    # merge, but not whether a mapping merges field by field ("fields") or
    # the request's entry replaces the template's whole ("entry"); the shim
    # can do either, so a test can prove the request is right both ways.
    # NOTE: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/launch-instances-from-launch-template.html
    "template_mapping_merge": "fields",
}

ACCOUNT_ID = "123456789012"  # moto's default account
ADMIN_USER = "ec2sr-admin"
DEFAULT_ADMIN_CREDENTIALS = [{"access_key_id": "testing", "secret_access_key": "testing"}]

# Instances that end right after launch (/_shim/launch-outcomes): EC2's state
# reason message and state transition reason per state reason code.
# NOTE: the codes are EC2's (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html).
# Client.InternalError: an EBS volume encrypted with a KMS key the caller may
# not use; DescribeInstances then shows StateReason {"Code":
# "Client.InternalError", "Message": "Client.InternalError: Client error on
# launch"} (https://repost.aws/knowledge-center/encrypted-volumes-stops-immediately,
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html#troubleshooting-launch-internal);
# the console's "State transition reason" then reads "Client.InternalError".
# Server.SpotInstanceTermination: EC2 reclaimed the spot capacity
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-interruptions.html); the
# message text and the "Service initiated (…)" reason are not in AWS's docs,
# taken from public code that parses real DescribeInstances answers.
LAUNCH_OUTCOMES: dict[str, dict[str, str]] = {
    "Client.InternalError": {
        "message": "Client.InternalError: Client error on launch",
        "reason": "Client.InternalError",
    },
    "Server.InternalError": {
        "message": "Server.InternalError: Internal error on launch",
        "reason": "Server.InternalError",
    },
    "Server.SpotInstanceTermination": {
        "message": "Server.SpotInstanceTermination: Spot instance termination",
        "reason": "Service initiated ({now})",
    },
}

SPOT_FILTERS = {
    "availability-zone",
    "availability-zone-id",
    "instance-type",
    "product-description",
    "spot-price",
    "timestamp",
}


def _q(tag: str) -> str:
    return f"{{{EC2_NS}}}{tag}"


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ec2_ts(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ec2_error_body(code: str, message: str, request_id: str | None = None) -> bytes:
    request_id = request_id or str(uuid.uuid4())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        "<Response><Errors><Error>"
        f"<Code>{xml_escape(code)}</Code>"
        f"<Message>{xml_escape(message)}</Message>"
        "</Error></Errors>"
        f"<RequestID>{xml_escape(request_id)}</RequestID>"
        "</Response>"
    ).encode("utf-8")


def parse_error(body: bytes) -> tuple[str | None, str | None, str | None]:
    """Return (root tag, code, message) of an AWS XML error body."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None, None, None
    code = message = None
    for el in root.iter():
        local = el.tag.rsplit("}", 1)[-1]
        if local == "Code" and code is None:
            code = (el.text or "").strip()
        elif local == "Message" and message is None:
            message = (el.text or "").strip()
    return root.tag.rsplit("}", 1)[-1], code, message


def parse_time(value: str) -> datetime:
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        dt = datetime.fromtimestamp(float(value), timezone.utc)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt




def parse_filters(params: dict[str, str]) -> list[tuple[str, list[str]]]:
    idx = set()
    for key in params:
        parts = key.split(".")
        if len(parts) >= 3 and parts[0] == "Filter" and parts[1].isdigit():
            idx.add(int(parts[1]))
    filters = []
    for n in sorted(idx):
        name = params.get(f"Filter.{n}.Name")
        if name is None:
            continue
        filters.append((name, _indexed(params, f"Filter.{n}.Value")))
    return filters


class Upstream:
    """Minimal HTTP forwarder to moto."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.url = url.rstrip("/")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80

    def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout: float = 300.0,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            have_host = False
            for name, value in headers:
                lname = name.lower()
                if lname in HOP_BY_HOP:
                    continue
                if lname == "host":
                    have_host = True
                conn.putheader(name, value)
            if not have_host:
                conn.putheader("Host", f"{self.host}:{self.port}")
            if body or method not in ("GET", "HEAD", "DELETE"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    def simple(self, method: str, path: str, body: bytes = b"", content_type: str = "text/plain") -> tuple[int, bytes]:
        status, _, data = self.request(method, path, [("Content-Type", content_type)], body)
        return status, data


class Response:
    def __init__(self, status: int, headers: list[tuple[str, str]] | None, body: bytes):
        self.status = status
        self.headers = list(headers or [])
        self.body = body

    @classmethod
    def ec2_error(cls, status: int, code: str, message: str) -> "Response":
        rid = str(uuid.uuid4())
        return cls(
            status,
            [("Content-Type", "text/xml;charset=UTF-8"), ("x-amzn-RequestId", rid)],
            ec2_error_body(code, message, rid),
        )

    @classmethod
    def json(cls, status: int, payload: Any) -> "Response":
        return cls(status, [("Content-Type", "application/json")], json.dumps(payload, indent=1).encode())


class ShimState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calls: list[dict[str, Any]] = []
        # Actions as they arrive, before any delay or answer.
        self.received: list[str] = []
        self.seq = 0
        self.faults: list[dict[str, Any]] = []
        self.rule_seq = 0
        self.tokens: dict[tuple[str, str], dict[str, Any]] = {}
        self.token_locks: dict[tuple[str, str], threading.Lock] = {}
        self.spot_prices: list[dict[str, Any]] = []
        self.config: dict[str, Any] = dict(DEFAULT_CONFIG)
        self.launches: dict[str, dict[str, Any]] = {}
        # /_shim/launch-outcomes rules, and the instances they will end
        # (instance id -> {"due", "code", "message", "reason", "region", "owner", "done"}).
        self.outcome_rules: list[dict[str, Any]] = []
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.generation = 0  # bumped by reset: stale timers do nothing
        self.iam_enforced = False
        # POST /_shim/iam-user: original policies per user, and per access key
        # {"user", "enforce"}; enforced by the shim (iam_policy.py).
        self.iam_users: dict[str, dict[str, Any]] = {}
        self.iam_keys: dict[str, dict[str, Any]] = {}
        # EC2 requests that the EC2 service model does not describe
        # (ec2_model.py), and why the check could not run, if it could not.
        self.unconforming: list[dict[str, Any]] = []
        self.model_error: str | None = None
        # POST /_shim/guest-poweroff: what each instance's console showed.
        self.consoles: dict[str, str] = {}

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.received.clear()
            self.faults.clear()
            self.tokens.clear()
            self.spot_prices.clear()
            self.config = dict(DEFAULT_CONFIG)
            self.launches.clear()
            self.outcome_rules.clear()
            self.outcomes.clear()
            self.generation += 1
            self.iam_enforced = False
            self.iam_users.clear()
            self.iam_keys.clear()
            self.unconforming.clear()
            self.model_error = None
            self.consoles.clear()

    def token_lock(self, key: tuple[str, str]) -> threading.Lock:
        with self.lock:
            lk = self.token_locks.get(key)
            if lk is None:
                lk = self.token_locks[key] = threading.Lock()
            return lk


def _str_value(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def fault_matches(rule: dict[str, Any], action: str, params: dict[str, str]) -> bool:
    want_action = rule.get("action")
    if want_action not in (None, "*", action):
        return False
    for key, expected in (rule.get("match") or {}).items():
        actual = params.get(key)
        if expected is None:
            if actual is not None:
                return False
        elif actual != _str_value(expected):
            return False
    return True


class Ec2Shim:
    def __init__(self, moto_url: str, in_process_moto: bool = False, verbose: bool = False):
        self.upstream = Upstream(moto_url)
        self.moto_url = moto_url.rstrip("/")
        self.in_process = in_process_moto
        self.verbose = verbose
        self.state = ShimState()
        self._iam_client = None
        self._iam_lock = threading.Lock()

    # ------------------------------------------------------------------ utils
    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"ec2-shim: {msg}", file=sys.stderr, flush=True)

    def record(self, entry: dict[str, Any]) -> None:
        with self.state.lock:
            self.state.seq += 1
            entry["seq"] = self.state.seq
            self.state.calls.append(entry)

    def take_rule(self, rules: list[dict[str, Any]], action: str, params: dict[str, str]) -> dict[str, Any] | None:
        """The first rule of `rules` (faults, launch outcomes) that matches,
        counting its `skip` and `times` down; a used-up rule is removed."""
        with self.state.lock:
            for rule in list(rules):
                if not fault_matches(rule, action, params):
                    continue
                # "skip": let that many matching requests through first.
                if rule.get("skip", 0) > 0:
                    rule["skip"] -= 1
                    continue
                times = rule.get("times")
                if times is not None:
                    if times <= 0:
                        rules.remove(rule)
                        continue
                    rule["times"] = times - 1
                    if rule["times"] <= 0:
                        rules.remove(rule)
                rule["hits"] = rule.get("hits", 0) + 1
                return copy.deepcopy(rule)
        return None

    def take_fault(self, action: str, params: dict[str, str]) -> dict[str, Any] | None:
        return self.take_rule(self.state.faults, action, params)

    # --------------------------------------------------------------- routing
    def handle(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        path = urlsplit(raw_path).path
        if path.startswith("/_shim/") or path == "/_shim":
            try:
                return self.admin(method, path, body)
            except Exception as exc:  # surfaced to the test, never hidden
                return Response.json(500, {"error": f"{type(exc).__name__}: {exc}"})
        return self.proxy(method, raw_path, headers, body)

    # ------------------------------------------------------------------ admin
    def admin(self, method: str, path: str, body: bytes) -> Response:
        st = self.state

        def payload() -> Any:
            return json.loads(body.decode("utf-8")) if body.strip() else None

        if path == "/_shim/health":
            return Response.json(200, {"ok": True, "moto": self.moto_url})
        if path == "/_shim/calls":
            if method == "GET":
                with st.lock:
                    return Response.json(200, copy.deepcopy(st.calls))
            if method == "DELETE":
                with st.lock:
                    st.calls.clear()
                    st.received.clear()
                return Response(204, [], b"")
        if path == "/_shim/model" and method == "GET":
            import ec2_model

            with st.lock:
                seen = {"model": ec2_model.model_version(), "error": st.model_error,
                        "unconforming": copy.deepcopy(st.unconforming)}
            return Response.json(200, seen)
        if path == "/_shim/received" and method == "GET":
            with st.lock:
                return Response.json(200, list(st.received))
        if path == "/_shim/faults":
            return self.rules_admin(method, st.faults, payload, lambda r: r)
        if path == "/_shim/spot-prices":
            if method == "GET":
                with st.lock:
                    return Response.json(200, copy.deepcopy(st.spot_prices))
            if method == "POST":
                rows = payload() or []
                if not isinstance(rows, list):
                    return Response.json(400, {"error": "expected a JSON list"})
                for r in rows:
                    if not isinstance(r, dict) or not {"instance_type", "availability_zone", "price"} <= set(r):
                        return Response.json(
                            400, {"error": "each row needs instance_type, availability_zone and price"}
                        )
                with st.lock:
                    st.spot_prices = [dict(r, price=str(r["price"])) for r in rows]
                    return Response.json(200, copy.deepcopy(st.spot_prices))
            if method == "DELETE":
                with st.lock:
                    st.spot_prices = []
                return Response(204, [], b"")
        if path == "/_shim/launch-outcomes":
            if method == "POST" and not self.in_process:
                return Response.json(400, {"error": "launch outcomes need moto in the same process (serve.py)"})

            def outcome(r: dict[str, Any]) -> dict[str, Any]:
                code = str(r.get("state_reason_code") or "Client.InternalError")
                r["state_reason_code"] = code
                known = LAUNCH_OUTCOMES.get(code, {})
                r.setdefault("state_reason_message", known.get("message") or f"{code}: {code}")
                r.setdefault("reason", known.get("reason") or code)
                r["after_seconds"] = float(r.get("after_seconds") or 0)
                return r

            return self.rules_admin(method, st.outcome_rules, payload, outcome)
        if path == "/_shim/interrupt" and method == "POST":
            # EC2 ending running instances on its own: a spot interruption
            # (two minutes' notice, then terminated with StateReason
            # Server.SpotInstanceTermination), or any other code.
            # NOTE: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-interruptions.html
            req = payload() or {}
            ids = req.get("instance_ids") if isinstance(req, dict) else None
            if not self.in_process or not isinstance(ids, list) or not ids:
                return Response.json(400, {"error": 'expected {"instance_ids": [...]} with moto in process'})
            code = str(req.get("state_reason_code") or "Server.SpotInstanceTermination")
            known = LAUNCH_OUTCOMES.get(code, {})
            done = self.end_instances(
                [str(i) for i in ids],
                code,
                str(req.get("state_reason_message") or known.get("message") or f"{code}: {code}"),
                str(req.get("reason") or known.get("reason") or code),
            )
            return Response.json(200, {"terminated": done})
        if path == "/_shim/guest-poweroff" and method == "POST":
            # The instance's own operating system powering off (shutdown,
            # poweroff): EC2 stops or terminates it as its
            # InstanceInitiatedShutdownBehavior says ("Default: stop"), with
            # StateReason Client.InstanceInitiatedShutdown. moto stores the
            # behaviour but has no such event. "console" is what the
            # instance printed, as GetConsoleOutput then shows it.
            # NOTE: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_ChangingInstanceInitiatedShutdownBehavior.html
            # NOTE: StateReason codes: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html
            req = payload() or {}
            iid = str(req.get("instance_id") or "") if isinstance(req, dict) else ""
            if not self.in_process or not iid:
                return Response.json(400, {"error": 'expected {"instance_id": "i-...", "console": "..."} with moto in process'})
            if isinstance(req.get("console"), str):
                with st.lock:
                    st.consoles[iid] = req["console"]
            ended = self.guest_poweroff(iid)
            if ended is None:
                return Response.json(404, {"error": f"no running instance {iid}"})
            return Response.json(200, {"instance_id": iid, "state": ended})
        if path == "/_shim/config":
            if method == "POST":
                cfg = payload() or {}
                if not isinstance(cfg, dict):
                    return Response.json(400, {"error": "expected a JSON object"})
                unknown = set(cfg) - set(DEFAULT_CONFIG)
                if unknown:
                    return Response.json(400, {"error": f"unknown config keys: {sorted(unknown)}"})
                with st.lock:
                    for seconds in ("pending_seconds", "not_found_seconds", "image_pending_seconds"):
                        if seconds in cfg:
                            st.config[seconds] = float(cfg[seconds] or 0)
                    for flag in ("rewrite_access_denied", "tag_on_create_needs_create_tags", "spot_service_linked_role"):
                        if flag in cfg:
                            st.config[flag] = bool(cfg[flag])
                    if "template_mapping_merge" in cfg:
                        mode = cfg["template_mapping_merge"]
                        if mode not in ("fields", "entry"):
                            return Response.json(400, {"error": "template_mapping_merge must be fields or entry"})
                        st.config["template_mapping_merge"] = mode
                    if "console_output" in cfg:
                        text = cfg["console_output"]
                        if text is not None and not isinstance(text, str):
                            return Response.json(400, {"error": "console_output must be a string or null"})
                        st.config["console_output"] = text
            if method in ("GET", "POST"):
                with st.lock:
                    return Response.json(200, dict(st.config, iam_enforced=st.iam_enforced))
        if path == "/_shim/iam-user" and method == "POST":
            req = payload()
            if not isinstance(req, dict) or not req.get("user") or not isinstance(req.get("policy"), dict):
                return Response.json(400, {"error": 'expected {"user": "...", "policy": {...}}'})
            from iam_policy import PolicyError

            try:
                return Response.json(200, self.create_iam_user(req))
            except PolicyError as exc:
                return Response.json(400, {"error": f"policy not accepted: {exc}"})
        if path == "/_shim/auth" and method == "POST":
            req = payload() or {}
            self.set_enforcement(bool(req.get("enforce")))
            return Response.json(200, {"iam_enforced": st.iam_enforced})
        if path == "/_shim/instance-profile" and method == "POST":
            # {"profile": "NAME" or null, "role": "NAME"}: creates the role
            # (trusting EC2) and, unless profile is null, an instance profile
            # holding it, in moto's IAM (admin side, never authorised).
            req = payload() or {}
            return Response.json(200, self.create_instance_profile(req))
        if path == "/_shim/reset" and method == "POST":
            status, data = self.upstream.simple("POST", "/moto-api/reset")
            self.set_enforcement(False)
            st.reset()
            return Response.json(200, {"moto_reset_status": status})
        return Response.json(404, {"error": f"no admin endpoint {method} {path}"})

    def rules_admin(
        self,
        method: str,
        rules: list[dict[str, Any]],
        payload: Any,
        shape: Any,
    ) -> Response:
        """GET lists `rules`, POST appends one rule or a list (each given an
        `id` and passed through `shape`), DELETE clears them."""
        st = self.state
        if method == "GET":
            with st.lock:
                return Response.json(200, copy.deepcopy(rules))
        if method == "POST":
            new = payload()
            if isinstance(new, dict):
                new = [new]
            if not isinstance(new, list) or not all(isinstance(r, dict) for r in new):
                return Response.json(400, {"error": "expected a JSON list of rule objects"})
            with st.lock:
                for r in new:
                    st.rule_seq += 1
                    r = dict(r)
                    r.setdefault("id", st.rule_seq)
                    rules.append(shape(r))
                return Response.json(200, copy.deepcopy(rules))
        if method == "DELETE":
            with st.lock:
                rules.clear()
            return Response(204, [], b"")
        return Response.json(405, {"error": f"{method} is not supported here"})

    # ------------------------------------------------------------------- IAM
    def set_enforcement(self, enforce: bool) -> None:
        # moto counts "actions without auth"; 0 means every following request
        # is authenticated and authorised, "inf" switches the checks off.
        status, data = self.upstream.simple("POST", "/moto-api/reset-auth", b"0" if enforce else b"inf")
        if status != 200:
            raise RuntimeError(f"moto reset-auth answered {status}: {data[:200]!r}")
        with self.state.lock:
            self.state.iam_enforced = enforce

    @staticmethod
    def moto_compatible_policy(policy: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """moto evaluates EC2 permissions against the resource "*" only and
        ignores condition values, so a least-privilege policy written for AWS
        (resource ARNs, tag conditions) would deny everything.  Keep the
        actions, widen Allow statements to Resource "*", drop conditional or
        resource-scoped Deny statements.  (Unless "enforce_conditions" is
        false, the shim enforces the original document itself: iam_denied.)"""
        notes: list[str] = []
        stmts = policy.get("Statement", [])
        if isinstance(stmts, dict):
            stmts = [stmts]
        out = []
        for i, s in enumerate(stmts):
            s = dict(s)
            sid = s.get("Sid", f"#{i}")
            if s.get("Effect") == "Allow":
                if s.get("Resource") != "*" or "NotResource" in s:
                    notes.append(f"{sid}: Resource widened to *")
                s.pop("NotResource", None)
                s["Resource"] = "*"
                if "Condition" in s:
                    notes.append(f"{sid}: Condition dropped")
                    s.pop("Condition")
                out.append(s)
            else:
                if "Condition" in s or s.get("Resource") != "*" or "NotResource" in s:
                    notes.append(f"{sid}: Deny with condition/resource scope dropped")
                    continue
                out.append(s)
        doc = dict(policy)
        doc["Statement"] = out
        doc.setdefault("Version", "2012-10-17")
        return doc, notes

    def _iam(self) -> Any:
        if self._iam_client is None:
            import boto3  # imported lazily: it costs ~0.3 s

            self._iam_client = boto3.client(
                "iam",
                region_name="us-east-1",
                endpoint_url=self.moto_url,
                aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            )
        return self._iam_client

    def create_iam_user(self, req: dict[str, Any]) -> dict[str, Any]:
        import iam_policy

        user = str(req["user"])
        policy = req["policy"]
        simplify = req.get("simplify", True)
        enforce = bool(req.get("enforce_conditions", True))
        policy_name = str(req.get("policy_name") or f"{user}-policy")
        user_arn = f"arn:aws:iam::{ACCOUNT_ID}:user/{user}"
        try:
            original = iam_policy.Policy.parse(policy, policy_name)
        except iam_policy.PolicyError:
            if enforce:
                raise  # answered 400 before anything is created
            original = None
        installed, notes = self.moto_compatible_policy(policy) if simplify else (policy, [])
        admin_keys = req.get("admin_credentials", DEFAULT_ADMIN_CREDENTIALS)
        with self._iam_lock:
            self.set_enforcement(False)
            iam = self._iam()
            try:
                iam.create_user(UserName=user)
            except iam.exceptions.EntityAlreadyExistsException:
                pass
            iam.put_user_policy(
                UserName=user,
                PolicyName=policy_name,
                PolicyDocument=json.dumps(installed),
            )
            key = iam.create_access_key(UserName=user)["AccessKey"]
            admins = self.install_admin_keys(admin_keys or [])
            with self.state.lock:
                entry = self.state.iam_users.setdefault(user, {"arn": user_arn, "policies": {}})
                if original is not None:
                    entry["policies"][policy_name] = original  # same name = replaced, as in IAM
                else:
                    entry["policies"].pop(policy_name, None)
                self.state.iam_keys[key["AccessKeyId"]] = {"user": user, "enforce": enforce}
                enforced_policies = sorted(entry["policies"]) if enforce else []
            self.set_enforcement(True)
        return {
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
            "user": user,
            "arn": user_arn,
            "installed_policy": installed,
            "policy_changes": notes,
            "admin_credentials": admins,
            "enforce_conditions": enforce,
            "enforced_policies": enforced_policies,
        }

    def create_instance_profile(self, req: dict[str, Any]) -> dict[str, Any]:
        role = str(req.get("role") or "runner-role")
        profile = req.get("profile", role)
        with self._iam_lock:
            was = self.state.iam_enforced
            if was:
                self.set_enforcement(False)
            try:
                iam = self._iam()
                trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                         "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
                role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
                out: dict[str, Any] = {"role_arn": role_arn}
                if profile:
                    made = iam.create_instance_profile(InstanceProfileName=str(profile))["InstanceProfile"]
                    iam.add_role_to_instance_profile(InstanceProfileName=str(profile), RoleName=role)
                    out["profile_arn"] = made["Arn"]
                    out["profile_name"] = made["InstanceProfileName"]
            finally:
                if was:
                    self.set_enforcement(True)
        return out

    def install_admin_keys(self, wanted: list[dict[str, str]]) -> list[str]:
        """Give fixed credentials (by default testing/testing, what test code
        uses for setup and inspection) full access once IAM is enforced.
        moto cannot create an access key with a chosen id, so an ordinary key
        of an admin user is created and then renamed in moto's IAM model,
        which is only possible when moto runs in this process."""
        if not wanted:
            return []
        if not self.in_process:
            raise RuntimeError("admin_credentials need moto in the same process (serve.py); pass [] to skip")
        from moto.iam.models import iam_backends

        iam = self._iam()
        backend = iam_backends[ACCOUNT_ID]["aws"]
        existing = {k.access_key_id for u in backend.users.values() for k in u.access_keys}
        try:
            iam.create_user(UserName=ADMIN_USER)
        except iam.exceptions.EntityAlreadyExistsException:
            pass
        iam.put_user_policy(
            UserName=ADMIN_USER,
            PolicyName="admin",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        done = []
        for cred in wanted:
            key_id, secret = str(cred["access_key_id"]), str(cred["secret_access_key"])
            if key_id not in existing:
                made = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]["AccessKeyId"]
                for k in backend.users[ADMIN_USER].access_keys:
                    if k.access_key_id == made:
                        k.access_key_id, k.secret_access_key = key_id, secret
                for dict_key, obj in list(backend.access_keys.items()):
                    if getattr(obj, "access_key_id", None) == key_id and dict_key == made:
                        backend.access_keys[key_id] = backend.access_keys.pop(dict_key)
                existing.add(key_id)
            done.append(key_id)
        return done

    # ------------------------------------------------------------------ proxy
    def proxy(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        started = time.monotonic()
        hdr = {k.lower(): v for k, v in headers}
        parts = urlsplit(raw_path)
        params: dict[str, str] = {}
        if parts.query:
            params.update(parse_qsl(parts.query, keep_blank_values=True))
        ctype = hdr.get("content-type", "")
        if body and ("x-www-form-urlencoded" in ctype or (not ctype and b"Action=" in body)):
            try:
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                pass
        auth = hdr.get("authorization", "")
        access_key = region = service = None
        if "Credential=" in auth:
            scope = auth.split("Credential=", 1)[1].split(",", 1)[0].strip().split("/")
            if len(scope) >= 4:
                access_key, region, service = scope[0], scope[2], scope[3]
        if parts.path.startswith("/moto-api"):
            service = "moto-api"
            action = parts.path.strip("/")
        else:
            action = params.get("Action") or hdr.get("x-amz-target") or f"{method} {parts.path}"
            if service is None:
                service = "ec2" if params.get("Version") == EC2_VERSION else "unknown"
        region = region or "us-east-1"
        with self.state.lock:
            self.state.received.append(action)
        if service == "ec2":
            self.check_model(action, params)
        if service == "ec2" and access_key:
            headers, body = self.signed_for_moto(method, raw_path, headers, body, params, access_key, service, region)
        entry: dict[str, Any] = {
            "time": _now_iso(),
            "ts": time.time(),
            "service": service,
            "action": action,
            "method": method,
            "path": parts.path,
            "params": params,
            "access_key_id": access_key,
            "region": region,
        }
        try:
            if service == "ec2" and not auth and "X-Amz-Credential" not in params:
                # moto would route an unsigned request to S3; EC2 refuses it.
                resp, answered_by = (
                    Response.ec2_error(
                        401,
                        "MissingAuthenticationToken",
                        "The request must contain either a valid (registered) AWS access key ID or X.509 certificate.",
                    ),
                    "shim",
                )
            elif service == "ec2":
                resp, answered_by = self.ec2(action, params, region, method, raw_path, headers, body)
            elif service == "ssm" and (denied := self.ssm_denied(action, region, headers, body)) is not None:
                resp, answered_by = denied, "shim-iam"
            else:
                status, rh, data = self.upstream.request(method, raw_path, headers, body)
                resp, answered_by = Response(status, rh, data), "moto"
        except Exception as exc:
            entry.update(status=502, error_code="ShimUpstreamError", error_message=str(exc), answered_by="shim")
            entry["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
            self.record(entry)
            raise
        entry["status"] = resp.status
        entry["answered_by"] = answered_by
        entry["error_code"] = None
        if resp.status >= 400:
            _, code, message = parse_error(resp.body)
            entry["error_code"] = code
            entry["error_message"] = message
        entry["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        self.record(entry)
        return resp

    def check_model(self, action: str, params: dict[str, str]) -> None:
        """Every EC2 request against the EC2 service model botocore ships
        (ec2_model.py); what does not conform is kept for GET /_shim/model,
        which the tests read when they end."""
        try:
            import ec2_model

            problems = ec2_model.check(action, params)
        except Exception as exc:  # reported, never hidden
            with self.state.lock:
                self.state.model_error = f"{type(exc).__name__}: {exc}"
            return
        if problems:
            with self.state.lock:
                self.state.unconforming.append({"action": action, "problems": problems})

    def forward(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        status, rh, data = self.upstream.request(method, raw_path, headers, body)
        resp = Response(status, rh, data)
        if status >= 400:
            resp = self.normalise_error(resp)
        return resp

    def normalise_error(self, resp: Response) -> Response:
        root, code, message = parse_error(resp.body)
        if root is None or code is None:
            return resp
        if code == "AccessDenied" and self.state.config.get("rewrite_access_denied", True):
            action = (message or "").rsplit(":", 1)[-1].strip() or "this operation"
            user = (message or "").split("User: ", 1)[-1].split(" is not", 1)[0]
            encoded = base64.b64encode(
                json.dumps({"allowed": False, "explicitDeny": False, "context": {"principal": user, "action": f"ec2:{action}"}}).encode()
            ).decode()
            return Response.ec2_error(
                403,
                "UnauthorizedOperation",
                f"You are not authorized to perform this operation. User: {user} is not authorized to perform: "
                f"ec2:{action} because no identity-based policy allows the ec2:{action} action. "
                f"Encoded authorization failure message: {encoded}",
            )
        if root != "Response":
            return Response.ec2_error(resp.status, code, message or "")
        return resp

    def ec2(
        self,
        action: str,
        params: dict[str, str],
        region: str,
        method: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> tuple[Response, str]:
        self.apply_due_outcomes()
        rule = self.take_fault(action, params)
        if rule is not None:
            delay = float(rule.get("delay_ms") or 0) / 1000.0
            if rule.get("drop_response"):
                real = self.dispatch(action, params, region, method, raw_path, headers, body)[0]
                self.log(f"drop_response: {action} really answered {real.status}")
                time.sleep(delay)
                return (
                    Response.ec2_error(500, "InternalError", "An internal error has occurred"),
                    "fault-drop-response",
                )
            if "status" in rule or "code" in rule:
                time.sleep(delay)
                status = int(rule.get("status") or 400)
                code = rule.get("code") or "InternalError"
                message = rule.get("message") or (
                    "An internal error has occurred" if code == "InternalError" else f"Injected fault {code}"
                )
                return Response.ec2_error(status, code, message), "fault"
            time.sleep(delay)  # delay-only rule: answer normally afterwards
        return self.dispatch(action, params, region, method, raw_path, headers, body)

    def dispatch(
        self,
        action: str,
        params: dict[str, str],
        region: str,
        method: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> tuple[Response, str]:
        denied = self.iam_denied(action, params, region, method, raw_path, headers, body)
        if denied is not None:
            return denied, "shim-iam"
        # NOTE: EC2 refuses a call with more than 200 filter values in all
        # (400 FilterLimitExceeded "The maximum number of filter values
        # specified on a single call is 200"), as reported against
        # DescribeInstances in gjbae1212/gossm#31 and #47; moto takes any number.
        values = sum(1 for k in params if re.fullmatch(r"Filter\.\d+\.Value\.\d+", k))
        if values > 200:
            return Response.ec2_error(
                400, "FilterLimitExceeded", "The maximum number of filter values specified on a single call is 200"
            ), "shim"
        if action == "DescribeLaunchTemplateVersions":
            import launch_templates

            # moto takes version 0 as the newest and fails on other words.
            for version in _indexed(params, "LaunchTemplateVersion"):
                try:
                    launch_templates.check_version(params.get("LaunchTemplateId") or "", version)
                except launch_templates.TemplateError as e:
                    return Response.ec2_error(e.status, e.code, e.message), "shim"
        if action == "RunInstances":
            unknown = self.unknown_instance_profile(params)
            if unknown is not None:
                return unknown, "shim"
            return self.run_instances(params, region, method, raw_path, headers, body)
        if action == "DescribeSpotPriceHistory":
            with self.state.lock:
                table = list(self.state.spot_prices)
                enforced = self.state.iam_enforced
            if table and not enforced and params.get("DryRun") != "true":
                # Nothing for moto to check; moto's own price generation over
                # every instance type takes ~2 s when no InstanceType is given.
                bad = self.unknown_instance_types(params)
                if bad is not None:
                    return bad, "shim"
                return self.spot_price_history(table, params, region), "shim-spot-prices"
        if action == "TerminateInstances":
            hidden = self.not_yet_visible(_indexed(params, "InstanceId"))
            if hidden:  # not forwarded: nothing is terminated
                return self.instance_not_found(hidden), "shim-consistency"
        resp = self.forward(method, raw_path, headers, body)
        if resp.status != 200:
            return resp, "moto"
        if action == "DescribeSpotPriceHistory":
            bad = self.unknown_instance_types(params)
            if bad is not None:
                return bad, "shim"
        if action == "DescribeInstances":
            hidden = self.not_yet_visible(_indexed(params, "InstanceId"))
            if hidden:
                return self.instance_not_found(hidden), "shim-consistency"
        if params.get("DryRun") == "true":
            # moto ignores DryRun for a few actions (DescribeSpotPriceHistory
            # among them); EC2 never answers 200 to a dry run.
            return (
                Response.ec2_error(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."),
                "shim-dry-run",
            )
        if action == "DescribeSpotPriceHistory":
            with self.state.lock:
                table = list(self.state.spot_prices)
            if table:
                return self.spot_price_history(table, params, region), "shim-spot-prices"
        if action == "GetConsoleOutput":
            resp.body = self.console_output(resp.body)
        if action in ("DescribeInstances", "DescribeInstanceStatus"):
            resp.body = self.rewrite_instances(action, params, resp.body)
        return resp, "moto"

    # --------------------------------------------------------- RunInstances
    def iam_denied(
        self,
        action: str,
        params: dict[str, str],
        region: str,
        method: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Response | None:
        """While IAM is enforced, authorise a request by a key made with
        POST /_shim/iam-user against the user's ORIGINAL policies, the way
        EC2 does (resource ARNs, condition keys, the implicit ec2:CreateTags
        of tag-on-create; see iam_policy.ec2_authorizations), before
        anything is forwarded.  A 403 UnauthorizedOperation, or None to go
        on (moto then still checks the action against the simplified policy).
        Keys the shim did not make, or made with "enforce_conditions": false,
        only get the action-only check of the implicit ec2:CreateTags."""
        with self.state.lock:
            if not self.state.iam_enforced:
                return None
            implicit_tags = bool(self.state.config.get("tag_on_create_needs_create_tags"))
            key_id = self._request_key_id(headers, params)
            key = self.state.iam_keys.get(key_id or "")
            user = self.state.iam_users.get(key["user"]) if key else None
            policies = list(user["policies"].values()) if user else []
            enforce = bool(key and key.get("enforce"))
        if not key_id:
            return None
        import iam_policy

        if not enforce or user is None:
            if action == "RunInstances" and implicit_tags:
                return self._tag_on_create_action_only(params, region, key_id)
            return None
        state: iam_policy.ResourceState = iam_policy.ResourceState()
        if self.in_process:
            try:
                state = iam_policy.MotoEc2State(ACCOUNT_ID, region)
            except Exception as exc:  # e.g. an unknown region
                self.log(f"iam: no moto state for {region}: {exc}")
        requests = iam_policy.ec2_authorizations(
            action, params, region, ACCOUNT_ID, user["arn"], state, implicit_create_tags=implicit_tags
        )
        denial = iam_policy.authorize(policies, requests, user["arn"])
        if denial is None:
            return None
        if not self._signature_valid(method, raw_path, headers, body, params):
            return None  # EC2 authenticates first: let moto answer AuthFailure
        self.log(f"iam: denied {denial.request.action} on {denial.request.resource} ({denial.decision.reason})")
        return Response.ec2_error(403, "UnauthorizedOperation", denial.message)

    def ssm_denied(self, target: str, region: str, headers: list[tuple[str, str]], body: bytes) -> Response | None:
        """While IAM is enforced, authorise Systems Manager's GetParameter by
        a shim-made key against the user's original policies, on the
        parameter's ARN, as SSM does (moto checks the action only). AWS's
        public parameters have no account in their ARN.
        NOTE: https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-access.html
        NOTE: https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-public-parameters.html
        The denial is SSM's JSON AccessDeniedException (400)."""
        if target != "AmazonSSM.GetParameter":
            return None
        with self.state.lock:
            if not self.state.iam_enforced:
                return None
            key = self.state.iam_keys.get(self._request_key_id(headers, {}) or "")
            user = self.state.iam_users.get(key["user"]) if key else None
            policies = list(user["policies"].values()) if user else []
            if not (key and key.get("enforce") and user):
                return None
        try:
            name = str(json.loads(body or b"{}").get("Name", ""))
        except ValueError:
            return None
        if name.startswith("arn:"):
            # A version or label after the ARN selects a value; SSM
            # authorises the parameter itself.
            prefix, _, rest = name.partition(":parameter/")
            arn = f"{prefix}:parameter/{rest.split(':', 1)[0]}"
        else:
            name = name.split(":", 1)[0]
            account = "" if name.startswith("/aws/service/") else ACCOUNT_ID
            arn = f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"
        import iam_policy

        req = iam_policy.AuthzRequest("ssm:GetParameter", arn, {})
        dec = iam_policy.evaluate(policies, req.action, req.resource, req.context)
        if dec.allowed:
            return None
        message = (f"User: {user['arn']} is not authorized to perform: ssm:GetParameter on resource: {arn} "
                   "because no identity-based policy allows the ssm:GetParameter action")
        self.log(f"iam: denied ssm:GetParameter on {arn}")
        return Response(400, [("Content-Type", "application/x-amz-json-1.1")],
                        json.dumps({"__type": "AccessDeniedException", "message": message}).encode())

    @staticmethod
    def _request_key_id(headers: list[tuple[str, str]], params: dict[str, str]) -> str | None:
        auth = next((v for k, v in headers if k.lower() == "authorization"), "")
        if "Credential=" in auth:
            return auth.split("Credential=", 1)[1].split("/", 1)[0].strip() or None
        cred = params.get("X-Amz-Credential")  # presigned query string
        return cred.split("/", 1)[0] if cred else None

    def signed_for_moto(
        self,
        method: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        params: dict[str, str],
        key_id: str,
        service: str,
        region: str,
    ) -> tuple[list[tuple[str, str]], bytes]:
        """The request as moto can check its signature.

        With IAM enforced, moto verifies SigV4 over the form body as it
        re-encodes the parsed parameters (urlencode: a space becomes '+'),
        not over the bytes that were signed.  The AWS SDKs encode a space as
        %20, as SigV4's URI encoding asks, so moto answered AuthFailure to any
        request with a space in a value (DescribeSpotPriceHistory's
        "Linux/UNIX (Amazon VPC)", a tag value), where EC2 accepts it.  So the
        shim checks the signature over the bytes sent, as EC2 does, and
        re-signs an authentic request with the same key over moto's encoding.
        A request whose signature is wrong goes on unchanged, for moto's
        AuthFailure."""
        # NOTE: SigV4 canonical form: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        form = "x-www-form-urlencoded" in ctype
        if not (self.state.iam_enforced and self.in_process and method == "POST" and body and form):
            return headers, body
        try:
            reencoded = urlencode(parse_qsl(body.decode("utf-8"), keep_blank_values=True)).encode()
        except UnicodeDecodeError:
            return headers, body
        if reencoded == body or not self._signature_valid(method, raw_path, headers, body, params):
            return headers, body
        try:
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
            from moto.iam.models import iam_backends

            secret = next(
                (k.secret_access_key for u in iam_backends[ACCOUNT_ID]["aws"].users.values()
                 for k in u.access_keys if k.access_key_id == key_id),
                None,
            )
        except Exception as exc:  # cannot re-sign: leave it to moto
            self.log(f"iam: could not re-sign for moto: {type(exc).__name__}: {exc}")
            return headers, body
        if secret is None:
            return headers, body
        auth = next((v for k, v in headers if k.lower() == "authorization"), "")
        signed = auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";") if "SignedHeaders=" in auth else []
        keep = [(k, v) for k, v in headers if k.lower() in signed and k.lower() not in ("x-amz-date", "content-length")]
        if "content-length" in signed:
            keep.append(("Content-Length", str(len(reencoded))))
        token = next((v for k, v in headers if k.lower() == "x-amz-security-token"), None)
        request = AWSRequest(method=method, url=raw_path, data=reencoded, headers=dict(keep))
        SigV4Auth(Credentials(key_id, secret, token), service, region).add_auth(request)
        resigned = {k.lower(): v for k, v in request.headers.items()}
        out: list[tuple[str, str]] = []
        for k, v in headers:
            lk = k.lower()
            if lk in ("authorization", "x-amz-date"):
                out.append((k, resigned[lk]))
            elif lk == "content-length":
                out.append((k, str(len(reencoded))))
            else:
                out.append((k, v))
        if not any(k.lower() == "x-amz-date" for k, _ in headers):
            out.append(("X-Amz-Date", resigned["x-amz-date"]))
        return out, reencoded

    def _signature_valid(
        self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, params: dict[str, str]
    ) -> bool:
        """Check the SigV4 signature (and that moto still knows the key) with
        moto's own code, so a bad signature gets moto's AuthFailure rather
        than the shim's UnauthorizedOperation.  Only on the deny path."""
        if not self.in_process:
            return True
        try:
            from moto.core.exceptions import AuthFailureError
            from moto.iam.access_control import IAMRequest
            from requests.structures import CaseInsensitiveDict
        except ImportError:
            return True
        try:
            IAMRequest(
                account_id=ACCOUNT_ID,
                method=method,
                path=raw_path,
                data={k: [v] for k, v in params.items()},
                body=body,
                headers=CaseInsensitiveDict(headers),
                action=params.get("Action", ""),
            ).check_signature()
        except AuthFailureError:
            return False
        except Exception as exc:  # cannot tell: enforce the policy
            self.log(f"iam: signature check skipped: {type(exc).__name__}: {exc}")
        return True

    def _tag_on_create_action_only(self, params: dict[str, str], region: str, key_id: str) -> Response | None:
        """The pre-iam_policy check, for keys whose conditions the shim does
        not enforce: EC2 authorises ec2:CreateTags as well when RunInstances
        carries TagSpecification; moto only checks the action called.  Here
        the caller's policies as moto holds them are asked about
        ec2:CreateTags on "*" (moto's action-only semantics)."""
        if not self.in_process or not any(k.startswith("TagSpecification.") for k in params):
            return None
        try:
            from moto.iam.access_control import CreateAccessKeyFailure, IAMPolicy, IAMUserAccessKey, PermissionResult

            try:
                key = IAMUserAccessKey(account_id=ACCOUNT_ID, partition="aws", access_key_id=key_id, headers={})
            except CreateAccessKeyFailure:
                return None  # unknown key: moto answers AuthFailure itself
            permitted = False
            for policy in key.collect_policies():
                result = IAMPolicy(policy).is_action_permitted("ec2:CreateTags", "*")
                if result == PermissionResult.DENIED:
                    permitted = False
                    break
                if result == PermissionResult.PERMITTED:
                    permitted = True
            if permitted:
                return None
            arn = key.arn
        except Exception as exc:  # never block a launch because of this helper
            print(f"ec2-shim: CreateTags check skipped: {exc}", file=sys.stderr)
            return None
        import iam_policy

        req = iam_policy.AuthzRequest("ec2:CreateTags", iam_policy.ec2_arn(region, ACCOUNT_ID, "instance"), {})
        dec = iam_policy.Decision(req.action, req.resource, allowed=False, explicit_deny=False)
        return Response.ec2_error(403, "UnauthorizedOperation", iam_policy.unauthorized_message(arn, req, dec))

    def run_instances(
        self,
        params: dict[str, str],
        region: str,
        method: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> tuple[Response, str]:
        token = params.get("ClientToken")
        if not token:
            resp = self.forward(method, raw_path, headers, body)
            if resp.status == 200:
                self.after_launch(params, region, resp.body)
            return resp, "moto"
        fingerprint = hashlib.sha256(
            json.dumps(sorted((k, v) for k, v in params.items() if k != "ClientToken")).encode()
        ).hexdigest()
        key = (region, token)
        with self.state.token_lock(key):
            with self.state.lock:
                stored = self.state.tokens.get(key)
            if stored is not None:
                if stored["fingerprint"] != fingerprint:
                    return (
                        Response.ec2_error(
                            400,
                            "IdempotentParameterMismatch",
                            "Arguments on this idempotent request are inconsistent with arguments used in "
                            "previous request(s).",
                        ),
                        "shim-idempotency",
                    )
                return Response(200, stored["headers"], stored["body"]), "shim-idempotency"
            resp = self.forward(method, raw_path, headers, body)
            if resp.status == 200:
                keep = [(k, v) for k, v in resp.headers if k.lower() in ("content-type", "x-amzn-requestid")]
                with self.state.lock:
                    self.state.tokens[key] = {"fingerprint": fingerprint, "headers": keep, "body": resp.body}
                self.after_launch(params, region, resp.body)
            return resp, "moto"

    def after_launch(self, params: dict[str, str], region: str, body: bytes) -> None:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return
        spot = params.get("InstanceMarketOptions.MarketType") == "spot"
        now = time.monotonic()
        owner = root.findtext(_q("ownerId")) or ACCOUNT_ID
        outcome = self.take_outcome(params)
        with self.state.lock:
            for item in root.iterfind(f"{_q('instancesSet')}/{_q('item')}"):
                iid = item.findtext(_q("instanceId"))
                if not iid:
                    continue
                self.state.launches[iid] = {"mono": now, "spot": spot, "wall": time.time()}
                if outcome is not None:
                    self.state.outcomes[iid] = {
                        "due": now + outcome["after_seconds"],
                        "code": outcome["state_reason_code"],
                        "message": outcome["state_reason_message"],
                        "reason": outcome["reason"],
                        "region": region,
                        "owner": owner,
                        "done": False,
                    }
            generation = self.state.generation
        if outcome is not None:
            timer = threading.Timer(outcome["after_seconds"], self.apply_due_outcomes, kwargs={"generation": generation})
            timer.daemon = True
            timer.start()

    # ------------------------------------------------------ launch outcomes
    def take_outcome(self, params: dict[str, str]) -> dict[str, Any] | None:
        """The first /_shim/launch-outcomes rule matching this RunInstances
        (same match/times/skip semantics as fault rules)."""
        return self.take_rule(self.state.outcome_rules, "RunInstances", params)

    def apply_due_outcomes(self, generation: int | None = None) -> None:
        """Terminate, in moto, the instances whose launch outcome is due, with
        the rule's state reason and state transition reason. Called by a timer
        and before every EC2 request (so an answer never lags the clock)."""
        now = time.monotonic()
        with self.state.lock:
            if generation is not None and generation != self.state.generation:
                return
            due = [(iid, o) for iid, o in self.state.outcomes.items() if not o["done"] and o["due"] <= now]
            for _, o in due:
                o["done"] = True
        if not due or not self.in_process:
            return
        from moto.ec2.models import ec2_backends
        from moto.ec2.models.instances import StateReason

        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S GMT")
        for iid, o in due:
            try:
                instance = ec2_backends[o["owner"]][o["region"]].get_instance(iid)
                if instance.state == "terminated":
                    continue  # terminated by the caller first: keep that reason
                instance.terminate()
                instance.state_reason = StateReason(o["message"], o["code"])
                instance._reason = str(o["reason"]).replace("{now}", stamp)
            except Exception as exc:  # the instance may be gone after a moto reset
                self.log(f"launch outcome for {iid} not applied: {exc}")

    def guest_poweroff(self, iid: str) -> str | None:
        """Stops or terminates a running instance as its shutdown behaviour
        says; returns the state it ends in (None: no such running instance)."""
        from moto.ec2.models import ec2_backends
        from moto.ec2.models.instances import StateReason

        for backend in (b for regions in ec2_backends.values() for b in regions.values()):
            for reservation in list(backend.reservations.values()):
                for instance in reservation.instances:
                    if instance.id != iid or instance.state != "running":
                        continue
                    if getattr(instance, "instance_initiated_shutdown_behavior", "stop") == "terminate":
                        instance.terminate()
                    else:
                        instance.stop()
                    instance.state_reason = StateReason(
                        "Client.InstanceInitiatedShutdown: Instance initiated shutdown",
                        "Client.InstanceInitiatedShutdown")
                    instance._reason = ""
                    return instance.state
        return None

    def end_instances(self, ids: list[str], code: str, message: str, reason: str) -> list[str]:
        """Terminates running instances in moto as EC2 itself would, with
        this state reason; returns the ids it ended."""
        from moto.ec2.models import ec2_backends
        from moto.ec2.models.instances import StateReason

        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S GMT")
        done = []
        for backend in (b for regions in ec2_backends.values() for b in regions.values()):
            for reservation in list(backend.reservations.values()):
                for instance in reservation.instances:
                    if instance.id in ids and instance.state != "terminated":
                        instance.terminate()
                        instance.state_reason = StateReason(message, code)
                        instance._reason = reason.replace("{now}", stamp)
                        done.append(instance.id)
        return done

    def outcome_pending(self, iid: str, now: float) -> bool:
        with self.state.lock:
            o = self.state.outcomes.get(iid)
            return o is not None and not o["done"] and now < o["due"]

    # ------------------------------------------------ eventual consistency
    def not_yet_visible(self, ids: list[str]) -> list[str]:
        """Of these instance ids, the ones launched through the shim less than
        not_found_seconds ago (in the order given, without repeats)."""
        with self.state.lock:
            window = float(self.state.config.get("not_found_seconds") or 0)
            if window <= 0 or not ids:
                return []
            now = time.monotonic()
            out: list[str] = []
            for iid in ids:
                info = self.state.launches.get(iid)
                if info is not None and now - info["mono"] < window and iid not in out:
                    out.append(iid)
            return out

    @staticmethod
    def instance_not_found(ids: list[str]) -> Response:
        """NOTE: EC2's eventual consistency: right after RunInstances the id
        may be unknown to DescribeInstances/TerminateInstances
        (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html).
        EC2's wording: "The instance ID 'i-6381a3fa' does not exist"
        (https://github.com/aws/aws-sdk-java/issues/911) and for several
        "The instance IDs 'i-a, i-b' do not exist"
        (https://github.com/aws-samples/aws-plugin-for-slurm/issues/16), HTTP 400."""
        if len(ids) == 1:
            message = f"The instance ID '{ids[0]}' does not exist"
        else:
            message = f"The instance IDs '{', '.join(ids)}' do not exist"
        return Response.ec2_error(400, "InvalidInstanceID.NotFound", message)

    def unknown_instance_types(self, params: dict[str, str]) -> Response | None:
        """DescribeSpotPriceHistory with an InstanceType.N that is no instance
        type: NOTE: EC2's exact answer was not found; EC2 validates the
        InstanceType enum of its API, so the shim refuses the whole call like
        RunInstances does (400 InvalidParameterValue "Invalid value 'x' for
        InstanceType."). A Filter instance-type value is a pattern and matches
        nothing instead."""
        if not self.in_process:
            return None
        for itype in _indexed(params, "InstanceType"):
            if not known_instance_type(itype):
                return Response.ec2_error(400, "InvalidParameterValue", f"Invalid value '{itype}' for InstanceType.")
        return None

    def unknown_instance_profile(self, params: dict[str, str]) -> Response | None:
        """EC2 refuses a launch whose IamInstanceProfile names no instance
        profile (a role name given instead is the usual cause); moto raises
        IAM's NoSuchEntity instead. Message as EC2 words it, e.g. in
        https://repost.aws/knowledge-center/iam-role-not-in-list (the
        profile, not the role, is what RunInstances takes)."""
        if not self.in_process:
            return None
        for key, field in (("IamInstanceProfile.Name", "name"), ("IamInstanceProfile.Arn", "arn")):
            value = params.get(key)
            if not value:
                continue
            state = iam_state(region_free=True)
            if state is not None and state.instance_profile_roles(value) is None:
                return Response.ec2_error(
                    400,
                    "InvalidParameterValue",
                    f"Value ({value}) for parameter iamInstanceProfile.{field} is invalid. Invalid IAM Instance Profile {field}",
                )
        return None

    # ---------------------------------------------------- GetConsoleOutput
    def console_output(self, body: bytes) -> bytes:
        """Puts the configured console text into moto's answer (after moto
        checked the caller and the instance id). EC2 returns the console
        base64-encoded in `output`.
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html"""
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return body
        iid = root.findtext(_q("instanceId")) or ""
        with self.state.lock:
            text = self.state.consoles.get(iid, self.state.config.get("console_output"))
        if text is None:
            return body
        out = root.find(_q("output"))
        if out is None:
            return body
        out.text = base64.b64encode(text.encode("utf-8")).decode()
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)

    # ---------------------------------------------------- DescribeInstances
    def rewrite_instances(self, action: str, params: dict[str, str], body: bytes) -> bytes:
        with self.state.lock:
            pending_for = float(self.state.config.get("pending_seconds") or 0)
            hide_for = float(self.state.config.get("not_found_seconds") or 0)
            launches = dict(self.state.launches)
        if not launches:
            return body
        named = bool(_indexed(params, "InstanceId"))
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return body
        now = time.monotonic()
        changed = False
        state_filters = {
            name: values
            for name, values in parse_filters(params)
            if name in ("instance-state-name", "instance-state-code")
        }

        def fix(item: ET.Element) -> bool:
            """Rewrite one instance element; False means drop it."""
            nonlocal changed
            iid = item.findtext(_q("instanceId"))
            info = launches.get(iid or "")
            if info is None:
                return True
            if hide_for > 0 and not named and now - info["mono"] < hide_for:
                changed = True
                return False  # not yet visible (eventual consistency)
            state = item.find(_q("instanceState"))
            pending = (pending_for > 0 and now - info["mono"] < pending_for) or self.outcome_pending(iid or "", now)
            if state is not None and pending:
                code_el, name_el = state.find(_q("code")), state.find(_q("name"))
                if code_el is not None and name_el is not None and (code_el.text, name_el.text) == RUNNING:
                    code_el.text, name_el.text = PENDING
                    changed = True
                    for fname, values in state_filters.items():
                        current = PENDING[1] if fname == "instance-state-name" else PENDING[0]
                        if not any(fnmatch.fnmatchcase(current, v) for v in values):
                            return False
            if action == "DescribeInstances" and info.get("spot") and item.find(_q("instanceLifecycle")) is None:
                lc = ET.Element(_q("instanceLifecycle"))
                lc.text = "spot"
                item.insert(0, lc)
                changed = True
            return True

        if action == "DescribeInstances":
            rset = root.find(_q("reservationSet"))
            if rset is not None:
                for res in list(rset):
                    iset = res.find(_q("instancesSet"))
                    if iset is None:
                        continue
                    for item in list(iset):
                        if not fix(item):
                            iset.remove(item)
                            changed = True
                    if len(iset) == 0:
                        rset.remove(res)
                        changed = True
        else:
            sset = root.find(_q("instanceStatusSet"))
            if sset is not None:
                for item in list(sset):
                    if not fix(item):
                        sset.remove(item)
                        changed = True
        if not changed:
            return body
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)

    # ---------------------------------------------- DescribeSpotPriceHistory
    def zone_ids(self, region: str) -> dict[str, str]:
        try:
            from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

            return {z.name: z.zone_id for z in RegionsAndZonesBackend.zones.get(region, [])}
        except Exception:
            return {}

    def spot_price_history(self, table: list[dict[str, Any]], params: dict[str, str], region: str) -> Response:
        zone_ids = self.zone_ids(region)
        rows = []
        for r in table:
            az = str(r["availability_zone"])
            rows.append(
                {
                    "availability-zone": az,
                    "availability-zone-id": str(r.get("availability_zone_id") or zone_ids.get(az, "")),
                    "instance-type": str(r["instance_type"]),
                    "product-description": str(r.get("product_description") or "Linux/UNIX"),
                    "spot-price": str(r["price"]),
                }
            )
        for key in ("StartTime", "EndTime"):
            if params.get(key):
                try:
                    parse_time(params[key])
                except (ValueError, OverflowError):
                    return Response.ec2_error(
                        400, "InvalidParameterValue", f"Value ({params[key]}) for parameter {key} is invalid."
                    )
        if params.get("StartTime") and params.get("EndTime"):
            if parse_time(params["EndTime"]) < parse_time(params["StartTime"]):
                return Response.ec2_error(
                    400, "InvalidParameterValue", "The end time must be later than the start time."
                )
        now = datetime.now(timezone.utc)
        stamp = _ec2_ts(now)
        criteria: list[tuple[str, list[str]]] = []
        types = _indexed(params, "InstanceType")
        if types:
            criteria.append(("instance-type", types))
        descs = _indexed(params, "ProductDescription")
        if descs:
            criteria.append(("product-description", descs))
        if params.get("AvailabilityZone"):
            criteria.append(("availability-zone", [params["AvailabilityZone"]]))
        if params.get("AvailabilityZoneId"):
            criteria.append(("availability-zone-id", [params["AvailabilityZoneId"]]))
        for name, values in parse_filters(params):
            if name not in SPOT_FILTERS:
                return Response.ec2_error(400, "InvalidParameterValue", f"The filter '{name}' is invalid")
            criteria.append((name, values))
        selected = []
        for row in rows:
            ok = True
            for name, values in criteria:
                actual = stamp if name == "timestamp" else row[name]
                if not any(fnmatch.fnmatchcase(actual, v) for v in values):
                    ok = False
                    break
            if ok:
                selected.append(row)
        selected.sort(key=lambda r: (r["instance-type"], r["availability-zone"], r["product-description"]))
        offset = 0
        if params.get("NextToken"):
            try:
                offset = int(base64.b64decode(params["NextToken"]).decode())
            except Exception:
                return Response.ec2_error(400, "InvalidNextToken", "The specified token is invalid.")
        max_results = int(params.get("MaxResults") or 1000)
        page = selected[offset : offset + max_results]
        next_token = ""
        if offset + max_results < len(selected):
            next_token = base64.b64encode(str(offset + max_results).encode()).decode()
        rid = str(uuid.uuid4())
        items = []
        for row in page:
            azid = f"<availabilityZoneId>{xml_escape(row['availability-zone-id'])}</availabilityZoneId>" if row["availability-zone-id"] else ""
            items.append(
                "<item>"
                f"<instanceType>{xml_escape(row['instance-type'])}</instanceType>"
                f"<productDescription>{xml_escape(row['product-description'])}</productDescription>"
                f"<spotPrice>{xml_escape(row['spot-price'])}</spotPrice>"
                f"<timestamp>{stamp}</timestamp>"
                f"<availabilityZone>{xml_escape(row['availability-zone'])}</availabilityZone>"
                f"{azid}"
                "</item>"
            )
        token_xml = f"<nextToken>{next_token}</nextToken>" if next_token else "<nextToken/>"
        doc = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<DescribeSpotPriceHistoryResponse xmlns="{EC2_NS}">'
            f"<requestId>{rid}</requestId>"
            f"<spotPriceHistorySet>{''.join(items)}</spotPriceHistorySet>"
            f"{token_xml}"
            "</DescribeSpotPriceHistoryResponse>"
        )
        return Response(200, [("Content-Type", "text/xml;charset=UTF-8"), ("x-amzn-RequestId", rid)], doc.encode())


# ---------------------------------------------------------------- HTTP server
def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    te = (handler.headers.get("Transfer-Encoding") or "").lower()
    if "chunked" in te:
        chunks = []
        while True:
            line = handler.rfile.readline()
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def send(handler: BaseHTTPRequestHandler, resp: Response, head_only: bool = False) -> None:
    handler.send_response_only(resp.status)
    seen = set()
    for name, value in resp.headers:
        lname = name.lower()
        if lname in HOP_BY_HOP:
            continue
        seen.add(lname)
        handler.send_header(name, value)
    if "date" not in seen:
        handler.send_header("Date", handler.date_time_string())
    if "server" not in seen:
        handler.send_header("Server", "ec2-shim")
    handler.send_header("Content-Length", str(len(resp.body)))
    handler.end_headers()
    if not head_only and resp.body:
        handler.wfile.write(resp.body)
    handler.wfile.flush()


def make_handler(shim: Ec2Shim) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ec2-shim"

        def _go(self) -> None:
            try:
                body = read_body(self)
                resp = shim.handle(self.command, self.path, list(self.headers.items()), body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return
            except Exception as exc:
                resp = Response.ec2_error(500, "InternalError", f"shim error: {type(exc).__name__}: {exc}")
            try:
                send(self, resp, head_only=self.command == "HEAD")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _go

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            if shim.verbose:
                sys.stderr.write("ec2-shim: %s\n" % (format % args))

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: with many clients
    # connecting at once the kernel drops their SYNs, a client's connect
    # waits for the retransmission (1 s, then 3 s) and the AWS SDK's 3.1 s
    # connect timeout fires. A real endpoint never refuses a burst like that;
    # 1024 is within Linux's default somaxconn (4096).
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        super().handle_error(request, client_address)


# ------------------------------------------------------ in-process moto fixes
# The shim's state, read by the moto patches below (one shim per process:
# make_server sets it).
_ACTIVE_STATE: ShimState | None = None

SPOT_SLR_NAME = "AWSServiceRoleForEC2Spot"
SPOT_SLR_SERVICE = "spot.amazonaws.com"

# What EC2 reports for a new volume's IOPS/throughput when the mapping does not
# say. NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html
# (gp3: 3,000 IOPS default; Iops not supported for gp2/st1/sc1/standard) and
# https://docs.aws.amazon.com/ebs/latest/userguide/general-purpose.html
# (gp3 baseline 125 MiB/s; gp2 baseline 3 IOPS per GiB, 100 minimum, 16,000 maximum).
GP3_DEFAULT_IOPS = 3000
GP3_DEFAULT_THROUGHPUT = 125


def _moto_error(status: int, code: str, message: str) -> Exception:
    """An EC2 error to raise inside moto. moto serialises an EC2ClientError as
    EC2's <Response><Errors> document with HTTP 400 (its service model knows no
    other status for these codes); for another status a werkzeug HTTPException
    carrying the same document is used, which moto passes through unchanged."""
    if status == 400:
        from moto.ec2.exceptions import EC2ClientError

        return EC2ClientError(code, message)
    from werkzeug.exceptions import HTTPException

    class _Ec2HttpError(HTTPException):
        def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
            return [("Content-Type", "text/xml;charset=UTF-8")]

    err = _Ec2HttpError(description=ec2_error_body(code, message).decode("utf-8"))
    err.code = status
    return err


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.lower() == "true")


def _spot_slr_exists(account_id: str) -> bool:
    """The account has EC2 Spot's service-linked role: created by IAM
    CreateServiceLinkedRole for spot.amazonaws.com (moto names it
    AWSServiceRoleForspot, path /aws-service-role/spot.amazonaws.com/) or a
    role with EC2's own name."""
    try:
        from moto.iam.models import iam_backends

        for role in iam_backends[account_id]["aws"].get_roles():
            if role.name == SPOT_SLR_NAME or (role.path or "").startswith(f"/aws-service-role/{SPOT_SLR_SERVICE}/"):
                return True
    except Exception:
        pass
    return False


class RunInstancesCheck:
    """EC2's RunInstances rules that moto 5.2.5 lacks, evaluated in moto's
    process after moto's own authentication/authorisation (so a denied caller
    still gets the denial first) and before anything is created. Also resolves
    the block device mappings the way EC2 builds an instance's volumes."""

    def __init__(self, resp: Any):
        self.resp = resp
        self.backend = resp.ec2_backend
        self.get = resp._get_param
        self.image: Any = None
        self.mappings: list[dict[str, Any]] | None = None
        # device name -> {"iops", "throughput"} asked for in the request
        self.perf: dict[str, dict[str, Any]] = {}
        # The launch template version's data, when the request names one.
        self.template_data: dict[str, Any] | None = None

    # ------------------------------------------------------------ checks
    def validate(self) -> None:
        self.apply_template()
        self.check_tag_limit()
        itype = self.get("InstanceType")
        self.check_instance_type(itype)
        image_id = self.get("ImageId")
        if image_id:
            self.check_image(image_id)
            if itype:
                self.check_architecture(itype, image_id)
            self.mappings = self.resolve_mappings()
        self.check_subnet()
        self.check_default_subnet()
        self.check_group_networks()
        self.check_spot_role()

    def check_subnet(self) -> None:
        """A subnet beside a zone it is not in, or beside security groups by
        name: EC2's 400s (moto takes both).
        NOTE: InvalidParameterValue "Value (us-east-1e) for parameter
        availabilityZone is invalid. Subnet 'subnet-…' is in the availability
        zone us-east-1d" (InQuicker/kaws#11); InvalidParameterCombination "The
        parameter groupName cannot be used with the parameter subnet"
        (group names only work in the default VPC:
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html,
        parameter SecurityGroup)."""
        subnet_id = self.get("SubnetId")
        if not subnet_id:
            return
        if self.get("SecurityGroups"):
            raise _moto_error(400, "InvalidParameterCombination", "The parameter groupName cannot be used with the parameter subnet")
        zone = self.get("Placement.AvailabilityZone")
        if not zone:
            return
        try:
            subnet = self.backend.get_subnet(subnet_id)
        except Exception:
            return  # moto's own InvalidSubnetID.NotFound follows
        if subnet.availability_zone != zone:
            raise _moto_error(
                400,
                "InvalidParameterValue",
                f"Value ({zone}) for parameter availabilityZone is invalid. "
                f"Subnet '{subnet_id}' is in the availability zone {subnet.availability_zone}",
            )

    def check_group_networks(self) -> None:
        """Security groups must be in the VPC of the subnet the instance
        lands in: the given one, or a default subnet of the default VPC (the
        zone's, when placed by zone). moto takes any.
        NOTE: 400 InvalidParameter "Security group sg-… and subnet subnet-…
        belong to different networks." (QT-DevOps/DevOpsIssues#256,
        ansible-collections/amazon.aws#824, philschmid/efsync#16)."""
        groups = self.get("SecurityGroupIds") or []
        if not groups or self.get("NetworkInterfaces"):
            return
        subnet = None
        if self.get("SubnetId"):
            try:
                subnet = self.backend.get_subnet(self.get("SubnetId"))
            except Exception:
                return  # moto's own InvalidSubnetID.NotFound follows
        else:  # a default subnet: of the zone, or of EC2's choosing
            defaults = self.backend.get_default_subnets()
            zone = self.get("Placement.AvailabilityZone")
            subnet = defaults.get(zone) if zone else next(iter(defaults.values()), None)
        if subnet is None:
            return
        for group in groups:
            sg = self.backend.get_security_group_from_id(group)
            if sg is not None and sg.vpc_id != subnet.vpc_id:
                raise _moto_error(
                    400,
                    "InvalidParameter",
                    f"Security group {group} and subnet {subnet.id} belong to different networks.",
                )

    def apply_template(self) -> None:
        """A LaunchTemplate: EC2's errors for an unknown template or version,
        its conflicts, and the template's values under the request's, so that
        moto launches what EC2 would (see launch_templates.py). A template's
        resolve:ssm: image is resolved as EC2 does at launch."""
        import launch_templates

        spec = self.get("LaunchTemplate")
        if not spec:
            return
        try:
            version = launch_templates.find_version(self.backend, spec)
            state = _ACTIVE_STATE
            mode = "fields"
            if state is not None:
                with state.lock:
                    mode = str(state.config.get("template_mapping_merge") or "fields")
            merged = launch_templates.effective(version.data, self.resp.params, mapping_merge=mode)
            self.template_data = version.data
        except launch_templates.TemplateError as e:
            raise _moto_error(e.status, e.code, e.message) from None
        image = str(merged.get("ImageId") or "")
        if image.startswith("resolve:ssm:"):
            merged["ImageId"] = self.resolve_parameter(image[len("resolve:ssm:"):])
        self.resp.params = merged

    def check_tag_limit(self) -> None:
        """50 tags per resource, the template's and the request's together
        (see launch_templates.py); moto counts only CreateTags, and then
        with the launch half done."""
        import launch_templates

        flat = {k: v[0] for k, v in self.resp.querystring.items() if v}
        try:
            launch_templates.check_tag_limit(launch_templates.effective_tags(self.template_data, flat))
        except launch_templates.TemplateError as e:
            raise _moto_error(e.status, e.code, e.message) from None

    def resolve_parameter(self, name: str) -> str:
        # NOTE: EC2's text for a parameter it cannot read is not documented;
        # InvalidParameterValue with the name is what a launch needs to show.
        from moto.ssm.models import ssm_backends

        try:
            param = ssm_backends[self.resp.current_account][self.resp.region].get_parameter(name)
        except Exception:
            param = None
        if param is None:
            raise _moto_error(400, "InvalidParameterValue",
                              f"Unable to resolve the Systems Manager parameter {name} of the launch template.")
        return str(param.value)

    def check_instance_type(self, itype: str | None) -> None:
        # NOTE: EC2 refuses an unknown type with 400 InvalidParameterValue
        # "Invalid value 't3.nano' for InstanceType." (quoted from EC2 in
        # https://github.com/getmoto/moto/issues/1695 and
        # https://github.com/hashicorp/packer/issues/11585). moto's list of
        # instance types is moto/ec2/resources/instance_types.json.
        if itype is not None and not known_instance_type(itype):
            raise _moto_error(400, "InvalidParameterValue", f"Invalid value '{itype}' for InstanceType.")

    def check_image(self, image_id: str) -> None:
        # NOTE: an unknown image is 400 InvalidAMIID.NotFound "The image id
        # '[ami-…]' does not exist" for RunInstances as for DescribeImages
        # (https://github.com/brikis98/terraform-up-and-running-code/issues/41).
        # moto launches any id unless MOTO_ENABLE_AMI_VALIDATION is set; its
        # describe_images raises EC2's error (and InvalidAMIID.Malformed).
        from moto.ec2.exceptions import InvalidAMIIdError

        images = self.backend.describe_images(ami_ids=[image_id])
        if not images:  # deregistered
            raise InvalidAMIIdError([image_id])
        self.image = images[0]

    def check_architecture(self, itype: str, image_id: str) -> None:
        # NOTE: 400 InvalidParameterValue "The architecture 'x86_64' of the
        # specified instance type does not match the architecture 'arm64' of
        # the specified AMI. …" (https://github.com/hashicorp/packer/issues/11429,
        # https://github.com/skypilot-org/skypilot/issues/6315).
        arch = getattr(self.image, "architecture", None)
        supported = instance_type_architectures(itype)
        if not arch or not supported or arch in supported:
            return
        type_arch = "arm64" if "arm64" in supported else supported[-1]
        raise _moto_error(
            400,
            "InvalidParameterValue",
            f"The architecture '{type_arch}' of the specified instance type does not match the architecture "
            f"'{arch}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, "
            "and try again. You can use 'describe-instance-types' or 'describe-images' to discover the "
            "architecture of the instance type or AMI.",
        )

    def image_root(self) -> tuple[str, Any, int]:
        """(root device name, root snapshot, its size in GiB)."""
        root = self.image.root_device_name
        snap = getattr(self.image, "ebs_snapshot", None)
        size = 8  # the brief's fallback when moto knows no snapshot size
        if snap is not None and getattr(snap, "volume", None) is not None and snap.volume.size:
            size = int(snap.volume.size)
        return root, snap, size

    def resolve_mappings(self) -> list[dict[str, Any]]:
        """EC2's block device rules, and the volumes it creates.

        NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html
        ("You must specify either a snapshot ID or a volume size. If you
        specify a snapshot, the default is the snapshot size. You can specify
        a volume size that is equal to or larger than the snapshot size.") and
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/block-device-mapping-concepts.html
        (an entry for the AMI's root device overrides the AMI's mapping; other
        entries add volumes). The image's root volume is always created; an
        entry for its device name changes it, any other device is an extra
        volume. Errors are EC2's:
        * InvalidBlockDeviceMapping "Either snapshot ID or volume size must be
          provided for: /dev/sda1" (https://github.com/nortontruter/infracoders-workshop/pull/3)
        * InvalidBlockDeviceMapping "Volume of size 15GB is smaller than  snapshot
          'snap-…', expect size >= 30GB" (two spaces before "snapshot", as EC2
          sends it: https://github.com/openshift/origin-ci-tool/issues/153,
          https://github.com/scylladb/scylladb/issues/6999)
        """
        from moto.ec2.exceptions import InvalidRequest, MissingParameterError

        root, root_snap, root_size = self.image_root()
        image_ebs: dict[str, Any] = {}
        try:
            image_ebs = dict(self.image.block_device_mappings[0]["Ebs"])
        except Exception:
            pass
        requested = self.get("BlockDeviceMappings", []) or []
        root_entry: dict[str, Any] | None = None
        extra: list[dict[str, Any]] = []
        for m in requested:
            dev = m.get("DeviceName")
            if "NoDevice" in m:
                if m["NoDevice"] not in ("", None):
                    raise InvalidRequest()
                continue  # suppresses a device of the image: none but the root here
            ebs = m.get("Ebs")
            if ebs is None:
                if m.get("VirtualName"):
                    continue  # instance store: no EBS volume
                raise MissingParameterError("ebs")
            size = ebs.get("VolumeSize")
            size = int(size) if size not in (None, "") else None
            snap_id = ebs.get("SnapshotId") or None
            if dev == root and root_entry is None:
                snap = self.backend.get_snapshot(snap_id) if snap_id else root_snap
            elif snap_id:
                snap = self.backend.get_snapshot(snap_id)  # InvalidSnapshot.NotFound
            elif not size:
                raise _moto_error(
                    400, "InvalidBlockDeviceMapping", f"Either snapshot ID or volume size must be provided for: {dev}"
                )
            else:
                snap = None
            snap_size = None
            if snap is not None:
                snap_size = int(snap.volume.size) if getattr(snap, "volume", None) is not None else root_size
                if dev == root and not snap_id:
                    snap_size = root_size
            if size is not None and snap_size is not None and size < snap_size:
                raise _moto_error(
                    400,
                    "InvalidBlockDeviceMapping",
                    f"Volume of size {size}GB is smaller than  snapshot '{snap.id}', expect size >= {snap_size}GB",
                )
            entry = {
                "DeviceName": dev,
                "VirtualName": None,
                "NoDevice": None,
                "Ebs": {
                    "SnapshotId": snap.id if snap is not None else None,
                    "VolumeSize": size if size is not None else snap_size,
                    "VolumeType": ebs.get("VolumeType"),
                    "DeleteOnTermination": _truthy(ebs.get("DeleteOnTermination", False)),
                    "Encrypted": _truthy(ebs.get("Encrypted", False)),
                    "KmsKeyId": ebs.get("KmsKeyId"),
                    "Iops": ebs.get("Iops"),
                },
            }
            if dev == root and root_entry is None:
                # The image's own values unless the entry overrides them.
                if "DeleteOnTermination" not in ebs:
                    entry["Ebs"]["DeleteOnTermination"] = bool(image_ebs.get("DeleteOnTermination", False))
                if not ebs.get("VolumeType"):
                    entry["Ebs"]["VolumeType"] = image_ebs.get("VolumeType")
                root_entry = entry
            else:
                if not ebs.get("VolumeType"):
                    entry["Ebs"]["VolumeType"] = "gp2"  # EbsBlockDevice's default
                extra.append(entry)
            self.perf[dev] = {"iops": ebs.get("Iops"), "throughput": ebs.get("Throughput")}
        if root_entry is None:
            root_entry = {
                "DeviceName": root,
                "VirtualName": None,
                "NoDevice": None,
                "Ebs": {
                    "SnapshotId": root_snap.id if root_snap is not None else None,
                    "VolumeSize": root_size,
                    "VolumeType": image_ebs.get("VolumeType"),
                    "DeleteOnTermination": bool(image_ebs.get("DeleteOnTermination", False)),
                    "Encrypted": False,
                    "KmsKeyId": None,
                    "Iops": None,
                },
            }
        return [root_entry, *extra]

    def check_default_subnet(self) -> None:
        """NOTE: without a subnet EC2 launches into the default subnet of the
        zone (https://docs.aws.amazon.com/vpc/latest/userguide/work-with-default-vpc.html).
        With none in the named zone: on-demand 400 InvalidInput "No default
        subnet for availability zone: 'us-east-1e'." (EC2's text as handled in
        juju's provider/ec2/environ.go and raised by moto, getmoto/moto#8813);
        a spot launch 400 InvalidSubnetID.NotFound "No default subnet for
        availability zone: 'null'." (seen from EC2 spot requests:
        https://github.com/hashicorp/terraform-provider-aws/issues/4869 and
        retry lists in public Terraform wrappers). moto checks the on-demand
        case only while building the instance (after registering an empty
        reservation), and never the spot one."""
        if self.get("SubnetId"):
            return
        for nic in self.get("NetworkInterfaces", []) or []:
            if nic.get("SubnetId") or nic.get("NetworkInterfaceId"):
                return
        zone = self.get("Placement.AvailabilityZone")
        if not zone:
            return
        try:
            from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

            zones = {z.name for z in RegionsAndZonesBackend.zones.get(self.resp.region, [])}
        except Exception:
            zones = set()
        if zone not in zones or self.backend.get_default_vpc() is None:
            return  # moto's own errors (zone not in region, no default VPC)
        if zone in self.backend.get_default_subnets():
            return
        if self.get("InstanceMarketOptions.MarketType") == "spot":
            raise _moto_error(400, "InvalidSubnetID.NotFound", "No default subnet for availability zone: 'null'.")
        raise _moto_error(400, "InvalidInput", f"No default subnet for availability zone: '{zone}'.")

    def check_spot_role(self) -> None:
        """NOTE: EC2 creates the AWSServiceRoleForEC2Spot service-linked role
        on an account's first spot request, as the caller
        (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html);
        a caller that may not create it gets 403
        AuthFailure.ServiceLinkedRoleCreationNotPermitted "The provided
        credentials do not have permission to create the service-linked role
        for EC2 Spot Instances." (status 403 in
        https://github.com/determined-ai/determined/issues/1830 and
        https://github.com/CloudSnorkel/cdk-github-runners/issues/182)."""
        if self.get("InstanceMarketOptions.MarketType") != "spot":
            return
        state = _ACTIVE_STATE
        if state is None:
            return
        with state.lock:
            has_role = bool(state.config.get("spot_service_linked_role", True))
        if has_role or _spot_slr_exists(self.resp.current_account):
            return
        raise _moto_error(
            403,
            "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
            "The provided credentials do not have permission to create the service-linked role for EC2 Spot Instances.",
        )

    # ------------------------------------------------------- after launch
    def fix_termination_protection(self, reservation: Any) -> None:
        """moto ignores RunInstances' DisableApiTermination (and a template's);
        EC2 then refuses TerminateInstances with OperationNotPermitted until
        it is turned off
        (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_ChangingDisableAPITermination.html)."""
        protected = _truthy(self.get("DisableApiTermination", False))
        for instance in getattr(reservation, "instances", []):
            instance.disable_api_termination = protected

    def fix_volumes(self, reservation: Any) -> None:
        """Give the new volumes EC2's IOPS and throughput: the requested ones,
        else the type's defaults (moto drops Throughput, and only fills in gp3's
        3,000 IOPS)."""
        for instance in getattr(reservation, "instances", []):
            for dev, bdt in instance.get_block_device_mapping:
                vol = self.backend.volumes.get(bdt.volume_id)
                if vol is None:
                    continue
                want = self.perf.get(dev, {})
                vtype = vol.volume_type
                iops, throughput = want.get("iops"), want.get("throughput")
                if vtype == "gp3":
                    vol.iops = int(iops) if iops else GP3_DEFAULT_IOPS
                    vol.throughput = int(throughput) if throughput else GP3_DEFAULT_THROUGHPUT
                elif vtype == "gp2":
                    vol.iops = min(16000, max(100, 3 * int(vol.size)))
                    vol.throughput = None
                elif vtype in ("io1", "io2"):
                    vol.iops = int(iops) if iops else vol.iops
                    vol.throughput = None
                else:  # standard, st1, sc1: EC2 reports no IOPS
                    vol.iops = None
                    vol.throughput = None


_INSTANCE_TYPES: dict[str, Any] | None = None


def _instance_types() -> dict[str, Any]:
    global _INSTANCE_TYPES
    if _INSTANCE_TYPES is None:
        from moto.ec2.models.instance_types import INSTANCE_TYPES

        _INSTANCE_TYPES = INSTANCE_TYPES
    return _INSTANCE_TYPES


def known_instance_type(name: str) -> bool:
    """In moto's list of instance types (moto/ec2/resources/instance_types.json)."""
    return name in _instance_types()


def instance_type_architectures(name: str) -> list[str]:
    info = _instance_types().get(name) or {}
    return list((info.get("ProcessorInfo") or {}).get("SupportedArchitectures") or [])


def patch_moto() -> None:
    """Fix moto 5.2.5's RunInstances in process (the request stays untouched,
    so SigV4 signatures still verify under IAM enforcement):

    * moto refuses an Ebs mapping without VolumeSize/SnapshotId for any device
      (MissingParameter); without mappings it creates an 8 GiB gp2 volume at
      /dev/sda1 whatever the image's root device; with mappings it creates
      only those (no root volume from the image), drops Throughput, and
      defaults DeleteOnTermination/Encrypted to false even for the root.
      RunInstancesCheck.resolve_mappings builds the volumes EC2 would.
    * plus the checks in RunInstancesCheck.validate.
    """
    import launch_templates
    from moto.ec2.responses.instances import InstanceResponse

    if getattr(InstanceResponse.run_instances, "_ec2sr_patched", False):
        return
    original_run = InstanceResponse.run_instances
    original_parse = InstanceResponse._parse_block_device_mapping

    def run_instances(self: Any) -> Any:
        check = RunInstancesCheck(self)
        check.validate()
        self._ec2sr_mappings = check.mappings
        try:
            result = original_run(self)
        finally:
            self._ec2sr_mappings = None
        check.fix_volumes(getattr(result, "result", None))
        check.fix_termination_protection(getattr(result, "result", None))
        return result

    def parse_block_device_mapping(self: Any) -> list[dict[str, Any]]:
        resolved = getattr(self, "_ec2sr_mappings", None)
        if resolved is not None:
            return copy.deepcopy(resolved)
        return original_parse(self)

    # NOTE: TerminateInstances on an instance that is already terminated
    # changes nothing (its state reason stays, e.g. the spot interruption's):
    # "Terminated instances remain visible after termination (for
    # approximately one hour)" and repeated calls succeed
    # (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TerminateInstances.html).
    # moto overwrites the reason with Client.UserInitiatedShutdown.
    from moto.ec2.models.instances import Instance

    if not getattr(Instance.terminate, "_ec2sr_patched", False):
        original_terminate = Instance.terminate

        def terminate(self: Any) -> Any:
            if self._state.name == "terminated":
                return copy.copy(self._state)
            return original_terminate(self)

        terminate._ec2sr_patched = True  # type: ignore[attr-defined]
        Instance.terminate = terminate  # type: ignore[assignment]

    # NOTE: "Tags with this prefix [aws:] do not count against your
    # tags-per-resource limit" of 50
    # (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions).
    # moto 5.2.5 counts a resource's aws: tags it already holds, such as the
    # aws:ec2launchtemplate:id/version it puts on an instance launched from
    # a template, so a templated launch with 50 tags failed where EC2 takes it.
    from moto.ec2.exceptions import TagLimitExceeded
    from moto.ec2.models.tags import TagBackend

    if not getattr(TagBackend.create_tags, "_ec2sr_patched", False):
        original_create_tags = TagBackend.create_tags

        def create_tags(self: Any, resource_ids: list[str], tags: dict[str, str]) -> bool:
            if None in tags.values():
                return original_create_tags(self, resource_ids, tags)
            counted = {k for k in tags if not k.lower().startswith("aws:")}
            for resource_id in resource_ids:
                held = {k for k in self.tags[resource_id] if not k.lower().startswith("aws:")}
                if len(held | counted) > launch_templates.TAG_LIMIT:
                    raise TagLimitExceeded()
            for resource_id in resource_ids:
                self.tags[resource_id].update(tags)
            return True

        create_tags._ec2sr_patched = True  # type: ignore[attr-defined]
        TagBackend.create_tags = create_tags  # type: ignore[assignment]

    patch_create_image()

    run_instances._ec2sr_patched = True  # type: ignore[attr-defined]
    InstanceResponse.run_instances = run_instances  # type: ignore[assignment]
    InstanceResponse._parse_block_device_mapping = parse_block_device_mapping  # type: ignore[assignment]


def patch_create_image() -> None:
    """CreateImage as EC2 does it, where moto 5.2.5 differs:

    * it takes "an Amazon EBS-backed instance that is either running or
      stopped" (API_CreateImage); moto images terminated ones too. Others:
      400 IncorrectInstanceState;
    * a name already used by one of the account's images is 400
      InvalidAMIName.Duplicate "AMI name NAME is already in use by AMI
      ami-…" (as EC2 answers, quoted in hashicorp/packer#11165); moto takes it;
    * TagSpecifications for "snapshot" tag every snapshot the image is made
      of (API_CreateImage); moto raises NotImplementedError;
    * the image is "pending" for a while, then "available" (EC2 User Guide,
      creating-an-ami-ebs.html); moto makes it available at once. The shim
      config's image_pending_seconds says how long.
    NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html
    """
    from moto.ec2.models.amis import AmiBackend

    if getattr(AmiBackend.create_image, "_ec2sr_patched", False):
        return
    original = AmiBackend.create_image

    def create_image(self: Any, instance_id: str, name: str, description: str,
                     tag_specifications: list[dict[str, Any]]) -> Any:
        instance = self.get_instance(instance_id)
        if instance.state not in ("running", "stopped"):
            raise _moto_error(400, "IncorrectInstanceState",
                              f"The instance '{instance_id}' is not in the 'running' or 'stopped' state.")
        owner = getattr(instance, "owner_id", None) or ACCOUNT_ID
        for ami in self.amis.values():
            if ami.name == name and str(ami.owner_id) == str(owner) and ami.state != "deregistered":
                raise _moto_error(400, "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}")
        snapshot_tags = [t for spec in tag_specifications if spec.get("ResourceType") == "snapshot"
                         for t in spec.get("Tags") or spec.get("Tag") or []]
        others = [spec for spec in tag_specifications if spec.get("ResourceType") != "snapshot"]
        ami = original(self, instance_id, name, description, others)
        snapshot = getattr(ami, "ebs_snapshot", None)
        if snapshot is not None and snapshot_tags:
            self.create_tags([snapshot.id], {t["Key"]: t["Value"] for t in snapshot_tags})
        state = _ACTIVE_STATE
        pending = float(state.config.get("image_pending_seconds") or 0) if state is not None else 0.0
        if pending > 0:
            ami.state = "pending"

            def ready() -> None:
                if self.amis.get(ami.id) is ami and ami.state == "pending":
                    ami.state = "available"

            timer = threading.Timer(pending, ready)
            timer.daemon = True
            timer.start()
        return ami

    create_image._ec2sr_patched = True  # type: ignore[attr-defined]
    AmiBackend.create_image = create_image  # type: ignore[assignment]


def iam_state(region_free: bool = True) -> Any:
    """moto's IAM, read in process, through iam_policy's model."""
    try:
        import iam_policy

        return iam_policy.MotoEc2State(ACCOUNT_ID, "us-east-1")
    except Exception:
        return None


# NOTE: Canonical publishes its Ubuntu AMI ids as public parameters under
# /aws/service/canonical/ubuntu/server/RELEASE/stable/current/ARCH/hvm/ebs-gp3/ami-id
# (https://documentation.ubuntu.com/aws/aws-how-to/instances/find-ubuntu-images/);
# moto 5.2.5 has only Amazon Linux's. The shim adds the 24.04 amd64 one,
# naming a Canonical-owned (099720109477) x86_64 image moto ships (its
# newest Ubuntu, 16.04): the name is Canonical's, the value the stand-in's.
CANONICAL_PARAMETERS = {
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id": "ami-785db401",
}


def patch_moto_ssm() -> None:
    """Loads CANONICAL_PARAMETERS the way moto loads Amazon Linux's: on the
    first lookup under /aws/service/canonical/."""
    from moto.ssm.models import Parameter, ParameterDict

    if getattr(ParameterDict._check_loading_status, "_ec2sr_patched", False):
        return
    original = ParameterDict._check_loading_status

    def check_loading_status(self: Any, key: str) -> None:
        original(self, key)
        if str(key or "").startswith("/aws/service/canonical/") and not getattr(self, "_ec2sr_canonical", False):
            self._ec2sr_canonical = True
            for name, value in CANONICAL_PARAMETERS.items():
                super(ParameterDict, self).__getitem__(name).append(
                    Parameter(
                        account_id=self.account_id,
                        name=name,
                        value=value,
                        parameter_type="String",
                        description=None,
                        allowed_pattern=None,
                        keyid=None,
                        last_modified_date=time.time(),
                        version=1,
                        data_type="aws:ec2:image",
                    )
                )

    check_loading_status._ec2sr_patched = True  # type: ignore[attr-defined]
    ParameterDict._check_loading_status = check_loading_status  # type: ignore[assignment]


def make_server(host: str, port: int, moto_url: str, in_process_moto: bool = False, verbose: bool = False) -> tuple[QuietServer, Ec2Shim]:
    global _ACTIVE_STATE
    if in_process_moto:
        patch_moto()
        patch_moto_ssm()
    shim = Ec2Shim(moto_url, in_process_moto=in_process_moto, verbose=verbose)
    if in_process_moto:
        _ACTIVE_STATE = shim.state
    server = QuietServer((host, port), make_handler(shim))
    return server, shim


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="EC2 shim in front of an already running moto server")
    ap.add_argument("--moto", required=True, help="moto base URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    srv, _ = make_server("127.0.0.1", a.port, a.moto)
    print(f"http://127.0.0.1:{srv.server_address[1]}", flush=True)
    srv.serve_forever()
