"""EC2 Query-protocol shim that sits in front of a moto server.

Every request is forwarded to moto unchanged (headers, including the SigV4
``Authorization`` header and ``Host``, are preserved so moto's signature and
IAM checks still work).  On top of moto the shim adds:

* a call log                       (GET/DELETE /_shim/calls)
* ClientToken idempotency for RunInstances
* fault injection                  (GET/POST/DELETE /_shim/faults)
* a spot price table               (GET/POST/DELETE /_shim/spot-prices)
* a "pending" window for new instances and other knobs (GET/POST /_shim/config)
* an IAM helper that creates a user with a policy and switches moto to
  enforce IAM                      (POST /_shim/iam-user, POST /_shim/auth)
* a full reset                     (POST /_shim/reset)

See README.md next to this file for the contracts.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import hashlib
import http.client
import json
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape as xml_escape

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
}

ACCOUNT_ID = "123456789012"  # moto's default account
ADMIN_USER = "ec2sr-admin"
DEFAULT_ADMIN_CREDENTIALS = [{"access_key_id": "testing", "secret_access_key": "testing"}]

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


def _indexed(params: dict[str, str], prefix: str) -> list[str]:
    """Values of prefix.1, prefix.2, ... (EC2 flattened list members)."""
    out = []
    for key, value in params.items():
        if key.startswith(prefix + "."):
            rest = key[len(prefix) + 1 :]
            if rest.isdigit():
                out.append((int(rest), value))
    return [v for _, v in sorted(out)]


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
        self.seq = 0
        self.faults: list[dict[str, Any]] = []
        self.fault_seq = 0
        self.tokens: dict[tuple[str, str], dict[str, Any]] = {}
        self.token_locks: dict[tuple[str, str], threading.Lock] = {}
        self.spot_prices: list[dict[str, Any]] = []
        self.config: dict[str, Any] = dict(DEFAULT_CONFIG)
        self.launches: dict[str, dict[str, Any]] = {}
        self.iam_enforced = False

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            self.tokens.clear()
            self.spot_prices.clear()
            self.config = dict(DEFAULT_CONFIG)
            self.launches.clear()
            self.iam_enforced = False

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

    def take_fault(self, action: str, params: dict[str, str]) -> dict[str, Any] | None:
        with self.state.lock:
            for rule in list(self.state.faults):
                if not fault_matches(rule, action, params):
                    continue
                # "skip": let that many matching requests through first.
                if rule.get("skip", 0) > 0:
                    rule["skip"] -= 1
                    continue
                times = rule.get("times")
                if times is not None:
                    if times <= 0:
                        self.state.faults.remove(rule)
                        continue
                    rule["times"] = times - 1
                    if rule["times"] <= 0:
                        self.state.faults.remove(rule)
                rule["hits"] = rule.get("hits", 0) + 1
                return copy.deepcopy(rule)
        return None

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
                return Response(204, [], b"")
        if path == "/_shim/faults":
            if method == "GET":
                with st.lock:
                    return Response.json(200, copy.deepcopy(st.faults))
            if method == "POST":
                rules = payload()
                if isinstance(rules, dict):
                    rules = [rules]
                if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
                    return Response.json(400, {"error": "expected a JSON list of rule objects"})
                with st.lock:
                    for r in rules:
                        st.fault_seq += 1
                        r = dict(r)
                        r.setdefault("id", st.fault_seq)
                        st.faults.append(r)
                    return Response.json(200, copy.deepcopy(st.faults))
            if method == "DELETE":
                with st.lock:
                    st.faults.clear()
                return Response(204, [], b"")
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
        if path == "/_shim/config":
            if method == "POST":
                cfg = payload() or {}
                if not isinstance(cfg, dict):
                    return Response.json(400, {"error": "expected a JSON object"})
                unknown = set(cfg) - set(DEFAULT_CONFIG)
                if unknown:
                    return Response.json(400, {"error": f"unknown config keys: {sorted(unknown)}"})
                with st.lock:
                    if "pending_seconds" in cfg:
                        st.config["pending_seconds"] = float(cfg["pending_seconds"] or 0)
                    for flag in ("rewrite_access_denied", "tag_on_create_needs_create_tags"):
                        if flag in cfg:
                            st.config[flag] = bool(cfg[flag])
            if method in ("GET", "POST"):
                with st.lock:
                    return Response.json(200, dict(st.config, iam_enforced=st.iam_enforced))
        if path == "/_shim/iam-user" and method == "POST":
            req = payload()
            if not isinstance(req, dict) or not req.get("user") or not isinstance(req.get("policy"), dict):
                return Response.json(400, {"error": 'expected {"user": "...", "policy": {...}}'})
            return Response.json(200, self.create_iam_user(req))
        if path == "/_shim/auth" and method == "POST":
            req = payload() or {}
            self.set_enforcement(bool(req.get("enforce")))
            return Response.json(200, {"iam_enforced": st.iam_enforced})
        if path == "/_shim/reset" and method == "POST":
            status, data = self.upstream.simple("POST", "/moto-api/reset")
            self.set_enforcement(False)
            st.reset()
            return Response.json(200, {"moto_reset_status": status})
        return Response.json(404, {"error": f"no admin endpoint {method} {path}"})

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
        resource-scoped Deny statements."""
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
        user = str(req["user"])
        policy = req["policy"]
        simplify = req.get("simplify", True)
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
                PolicyName=str(req.get("policy_name") or f"{user}-policy"),
                PolicyDocument=json.dumps(installed),
            )
            key = iam.create_access_key(UserName=user)["AccessKey"]
            admins = self.install_admin_keys(admin_keys or [])
            self.set_enforcement(True)
        return {
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
            "user": user,
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{user}",
            "installed_policy": installed,
            "policy_changes": notes,
            "admin_credentials": admins,
        }

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
        if action == "RunInstances":
            denied = self.tag_on_create_denied(params, headers)
            if denied is not None:
                return denied, "shim-iam"
            return self.run_instances(params, region, method, raw_path, headers, body)
        if action == "DescribeSpotPriceHistory":
            with self.state.lock:
                table = list(self.state.spot_prices)
                enforced = self.state.iam_enforced
            if table and not enforced and params.get("DryRun") != "true":
                # Nothing for moto to check; moto's own price generation over
                # every instance type takes ~2 s when no InstanceType is given.
                return self.spot_price_history(table, params, region), "shim-spot-prices"
        resp = self.forward(method, raw_path, headers, body)
        if resp.status != 200:
            return resp, "moto"
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
        if action in ("DescribeInstances", "DescribeInstanceStatus"):
            resp.body = self.rewrite_instances(action, params, resp.body)
        return resp, "moto"

    # --------------------------------------------------------- RunInstances
    def tag_on_create_denied(self, params: dict[str, str], headers: list[tuple[str, str]]) -> Response | None:
        """EC2 authorises ec2:CreateTags as well when RunInstances carries
        TagSpecification; moto only checks the action called.  With IAM
        enforced (and moto in this process) check it here, before anything
        is launched."""
        with self.state.lock:
            if not (self.state.iam_enforced and self.state.config.get("tag_on_create_needs_create_tags")):
                return None
        if not self.in_process or not any(k.startswith("TagSpecification.") for k in params):
            return None
        auth = next((v for k, v in headers if k.lower() == "authorization"), "")
        if "Credential=" not in auth:
            return None
        key_id = auth.split("Credential=", 1)[1].split("/", 1)[0].strip()
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
        return Response.ec2_error(
            403,
            "UnauthorizedOperation",
            f"You are not authorized to perform this operation. User: {arn} is not authorized to perform: "
            "ec2:CreateTags on resource: arn:aws:ec2:*:*:instance/* because no identity-based policy allows the "
            "ec2:CreateTags action.",
        )

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
        owner = root.findtext(_q("ownerId")) or "123456789012"
        volumes: list[tuple[str, str]] = []
        with self.state.lock:
            for item in root.iterfind(f"{_q('instancesSet')}/{_q('item')}"):
                iid = item.findtext(_q("instanceId"))
                if not iid:
                    continue
                self.state.launches[iid] = {"mono": now, "spot": spot, "wall": time.time()}
                for bdm in item.iterfind(f"{_q('blockDeviceMapping')}/{_q('item')}"):
                    dev = bdm.findtext(_q("deviceName"))
                    vol = bdm.findtext(f"{_q('ebs')}/{_q('volumeId')}")
                    if dev and vol:
                        volumes.append((dev, vol))
        if self.in_process and volumes:
            self.patch_volumes(params, region, owner, volumes)

    def patch_volumes(self, params: dict[str, str], region: str, owner: str, volumes: list[tuple[str, str]]) -> None:
        """moto ignores Ebs.Iops and Ebs.Throughput of RunInstances block
        device mappings (a gp3 volume always gets 3000 IOPS and no
        throughput).  Apply them to moto's volume objects directly."""
        wanted: dict[str, dict[str, int]] = {}
        n = 1
        while f"BlockDeviceMapping.{n}.DeviceName" in params:
            dev = params[f"BlockDeviceMapping.{n}.DeviceName"]
            spec = {}
            for attr, name in (("iops", "Iops"), ("throughput", "Throughput")):
                raw = params.get(f"BlockDeviceMapping.{n}.Ebs.{name}")
                if raw not in (None, ""):
                    spec[attr] = int(raw)
            if spec:
                wanted[dev] = spec
            n += 1
        if not wanted:
            return
        try:
            from moto.ec2.models import ec2_backends

            backend = ec2_backends[owner][region]
            for dev, vol_id in volumes:
                spec = wanted.get(dev)
                vol = backend.volumes.get(vol_id)
                if spec and vol is not None:
                    for attr, value in spec.items():
                        setattr(vol, attr, value)
        except Exception as exc:  # best effort; never break RunInstances
            print(f"ec2-shim: could not patch volume iops/throughput: {exc}", file=sys.stderr)

    # ---------------------------------------------------- DescribeInstances
    def rewrite_instances(self, action: str, params: dict[str, str], body: bytes) -> bytes:
        with self.state.lock:
            pending_for = float(self.state.config.get("pending_seconds") or 0)
            launches = dict(self.state.launches)
        if not launches:
            return body
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
            state = item.find(_q("instanceState"))
            if state is not None and pending_for > 0 and now - info["mono"] < pending_for:
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

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def patch_moto_root_volume_size() -> None:
    """Real EC2 takes a block device mapping without VolumeSize or SnapshotId
    for the image's root device (the size comes from the image's snapshot);
    moto rejects it with MissingParameter. Give such a mapping the size of
    moto's image snapshots (8 GiB) before moto validates it. The request body
    is left untouched, so SigV4 signatures stay valid under IAM enforcement."""
    from moto.ec2.responses.instances import InstanceResponse

    original = InstanceResponse._validate_block_device_mapping
    if getattr(original, "_ec2sr_patched", False):
        return

    def validate(device_mapping: dict[str, Any]) -> None:
        ebs = device_mapping.get("Ebs")
        if isinstance(ebs, dict) and not ebs.get("VolumeSize") and not ebs.get("SnapshotId"):
            ebs["VolumeSize"] = 8
        original(device_mapping)

    validate._ec2sr_patched = True  # type: ignore[attr-defined]
    InstanceResponse._validate_block_device_mapping = staticmethod(validate)  # type: ignore[assignment]


def make_server(host: str, port: int, moto_url: str, in_process_moto: bool = False, verbose: bool = False) -> tuple[QuietServer, Ec2Shim]:
    if in_process_moto:
        patch_moto_root_volume_size()
    shim = Ec2Shim(moto_url, in_process_moto=in_process_moto, verbose=verbose)
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
