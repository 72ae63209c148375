"""Stateful stand-in for the GitHub REST endpoints ec2-spot-runner uses.

Shapes follow GitHub's OpenAPI description (operations
apps/get-authenticated, apps/get-{repo,org,user}-installation,
apps/list-installations, apps/create-installation-access-token,
actions/generate-runner-jitconfig-for-{repo,org},
actions/create-registration-token-for-{repo,org},
actions/list-self-hosted-runners-for-{repo,org},
actions/get-self-hosted-runner-for-{repo,org},
actions/delete-self-hosted-runner-from-{repo,org}).

Admin endpoints live under /_standin/ and need no authentication.  See
README.md next to this file for the contracts.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import secrets
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

DOCS = "https://docs.github.com/rest"
DOCS_RUNNERS = "https://docs.github.com/rest/actions/self-hosted-runners"
DOCS_APPS = "https://docs.github.com/rest/apps/apps"
SUPPORTED_API_VERSIONS = ("2026-03-10", "2022-11-28")
DEFAULT_API_VERSION = "2022-11-28"
USER_AGENT_MESSAGE = (
    "Request forbidden by administrative rules. Please make sure your request has a User-Agent header "
    "(https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). "
    "Check https://developer.github.com for other possible causes."
)
JWT_DECODE = "A JSON web token could not be decoded"
JWT_EXP_FAR = "'Expiration time' claim ('exp') is too far in the future"
JWT_EXP_BAD = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the "
    "assertion expires"
)
JWT_IAT_BAD = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
CLOCK_SKEW = 60
RUNNER_VERSION = "2.330.0"
READ_ONLY_LABELS = {"self-hosted", "linux", "windows", "macos", "x64", "arm", "arm64"}
DEFAULT_INSTALLATION_PERMISSIONS = {
    "actions": "read",
    "administration": "write",
    "metadata": "read",
    "organization_self_hosted_runners": "write",
}
PERMISSION_RANK = {"read": 1, "write": 2, "admin": 3}
FIXED_CREATED = "2024-01-15T09:30:00Z"


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stable_id(kind: str, name: str, lo: int = 100000, span: int = 90000000) -> int:
    digest = hashlib.sha256(f"{kind}:{name.lower()}".encode()).digest()
    return lo + int.from_bytes(digest[:6], "big") % span


def node_id(prefix: str, ident: int) -> str:
    return base64.b64encode(f"{prefix}{ident}".encode()).decode().rstrip("=")


class Reply:
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None):
        self.status = status
        self.headers = dict(headers or {})
        if raw is not None:
            self.body = raw
        elif body is None:
            self.body = b""
        else:
            self.body = json.dumps(body, indent=1).encode()
            self.headers.setdefault("Content-Type", "application/json; charset=utf-8")


def gh_error(status: int, message: str, doc: str = DOCS, errors: list[Any] | None = None, **headers: str) -> Reply:
    body: dict[str, Any] = {"message": message, "documentation_url": doc, "status": str(status)}
    if errors is not None:
        body["errors"] = errors
    return Reply(status, body, {k.replace("_", "-"): v for k, v in headers.items()})


class AuthFailure(Exception):
    def __init__(self, reply: Reply, detail: str):
        super().__init__(detail)
        self.reply = reply
        self.detail = detail


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calls: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.fault_seq = 0
        self.apply_config({})

    def apply_config(self, cfg: dict[str, Any]) -> None:
        apps: dict[int, dict[str, Any]] = {}
        client_ids: dict[str, int] = {}
        installations: dict[int, dict[str, Any]] = {}
        for app in cfg.get("apps") or []:
            app = dict(app)
            app_id = int(app["id"])
            pem = app.get("public_key_pem")
            app["_key"] = None
            if pem:
                from cryptography.hazmat.primitives.serialization import load_pem_public_key

                app["_key"] = load_pem_public_key(pem.encode())
            app.setdefault("slug", f"app-{app_id}")
            app.setdefault("name", f"App {app_id}")
            app.setdefault("client_id", f"Iv23li{app_id:014d}")
            app.setdefault("owner", (app.get("installations") or [{}])[0].get("account", "octo-owner"))
            insts = []
            for inst in app.get("installations") or []:
                inst = dict(inst)
                inst["id"] = int(inst["id"])
                inst.setdefault("account_type", "Organization")
                repos = inst.get("repositories")
                inst["repositories"] = [r.lower() for r in repos] if repos else None
                inst["permissions"] = dict(inst.get("permissions") or DEFAULT_INSTALLATION_PERMISSIONS)
                inst["app_id"] = app_id
                installations[inst["id"]] = inst
                insts.append(inst)
            app["installations"] = insts
            apps[app_id] = app
            client_ids[str(app["client_id"])] = app_id
        pats = {}
        for tok in cfg.get("tokens") or []:
            pats[str(tok["token"])] = {
                "repositories": {r.lower() for r in tok.get("repositories") or []},
                "organizations": {o.lower() for o in tok.get("organizations") or []},
            }
        with self.lock:
            self.config = json.loads(json.dumps(cfg))
            self.apps = apps
            self.client_ids = client_ids
            self.installations = installations
            self.pats = pats
            self.issued: dict[str, dict[str, Any]] = {}
            self.runners: dict[str, dict[int, dict[str, Any]]] = {}
            self.deleted: list[dict[str, Any]] = []
            self.next_runner_id = 1
            self.label_ids: dict[str, int] = {}
            self.installation_tokens_issued = 0
            # Every credential handed out, for tests that scan output for leaks.
            self.secrets_issued: list[str] = []
            self.registration_tokens_issued = 0
            self.remove_tokens_issued = 0
            self.calls.clear()
            self.faults.clear()
            self.request_count = 0

    def label_id(self, name: str) -> int:
        key = name.lower()
        if key not in self.label_ids:
            self.label_ids[key] = len(self.label_ids) + 1
        return self.label_ids[key]


class Principal:
    def __init__(self, kind: str, **kw: Any):
        self.kind = kind  # "jwt", "pat", "installation"
        self.__dict__.update(kw)


class Standin:
    def __init__(self, verbose: bool = False):
        self.state = State()
        self.verbose = verbose

    # ------------------------------------------------------------- entry
    def handle(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        path = parts.path
        if path.startswith("/_standin"):
            try:
                return self.admin(method, path, body)
            except Exception as exc:
                return Reply(500, {"error": f"{type(exc).__name__}: {exc}"})
        hdr: dict[str, str] = {}
        for k, v in headers:
            hdr.setdefault(k.lower(), v)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        auth_kind, token = self.auth_kind(hdr.get("authorization"))
        entry: dict[str, Any] = {
            "time": iso(datetime.now(timezone.utc)),
            "ts": time.time(),
            "method": method,
            "path": path,
            "query": query,
            "user_agent": bool(hdr.get("user-agent")),
            "api_version": "x-github-api-version" in hdr,
            "api_version_value": hdr.get("x-github-api-version"),
            "auth": auth_kind,
        }
        reply, detail, answered_by = self.route(method, path, query, hdr, auth_kind, token, body)
        entry["status"] = reply.status
        entry["answered_by"] = answered_by
        if detail:
            entry["detail"] = detail
        with self.state.lock:
            self.state.request_count += 1
            used = self.state.request_count
            self.state.calls.append(entry)
            entry["seq"] = len(self.state.calls)
        # Fault rules may set their own rate-limit headers; only add what is missing.
        reset = int(time.time()) // 3600 * 3600 + 3600
        base = {
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": hdr.get("x-github-api-version") or DEFAULT_API_VERSION,
            "X-GitHub-Request-Id": uuid.uuid4().hex[:20].upper(),
        }
        if auth_kind != "none":
            base.update(
                {
                    "X-RateLimit-Limit": "5000",
                    "X-RateLimit-Remaining": str(max(0, 5000 - used)),
                    "X-RateLimit-Reset": str(reset),
                    "X-RateLimit-Used": str(used),
                    "X-RateLimit-Resource": "core",
                }
            )
        lower = {k.lower() for k in reply.headers}
        for k, v in base.items():
            if k.lower() not in lower:
                reply.headers[k] = v
        return reply

    @staticmethod
    def auth_kind(header: str | None) -> tuple[str, str | None]:
        if not header:
            return "none", None
        scheme, _, cred = header.strip().partition(" ")
        cred = cred.strip()
        if scheme.lower() not in ("bearer", "token") or not cred:
            return "other", None
        if cred.count(".") == 2 and not cred.startswith(("ghp_", "ghs_", "gho_", "ghu_", "github_pat_")):
            return "jwt", cred
        return "token", cred

    def route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        hdr: dict[str, str],
        auth_kind: str,
        token: str | None,
        body: bytes,
    ) -> tuple[Reply, str | None, str]:
        if not hdr.get("user-agent"):
            return Reply(403, raw=USER_AGENT_MESSAGE.encode(), headers={"Content-Type": "text/html"}), "no User-Agent", "standin"
        version = hdr.get("x-github-api-version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            supported = ", ".join(
                f'"{v}"' + (" (most recent)" if i == 0 else "") for i, v in enumerate(SUPPORTED_API_VERSIONS)
            )
            return (
                gh_error(
                    400,
                    f'The version you specified in the "X-GitHub-Api-Version" request header, "{version}", is not a '
                    f"supported version. The following versions are currently supported: {supported}.",
                ),
                "unsupported api version",
                "standin",
            )
        fault = self.take_fault(method, path)
        if fault is not None:
            delay = float(fault.get("delay_ms") or 0) / 1000.0
            if delay:
                time.sleep(delay)
            if fault.get("drop_response"):
                # The request takes effect, but its answer is "lost": the
                # client sees the fault instead (a 502 from a proxy, say).
                base = f"http://{hdr.get('host', '127.0.0.1')}"
                try:
                    self.dispatch(method, path, query, hdr, auth_kind, token, body, base)
                except AuthFailure:
                    pass
            fbody = fault.get("body")
            fheaders = {str(k): str(v) for k, v in (fault.get("headers") or {}).items()}
            status = int(fault.get("status") or 500)
            if fbody is None:
                fbody = {"message": "Injected fault", "documentation_url": DOCS, "status": str(status)}
            if isinstance(fbody, str):
                fheaders.setdefault("Content-Type", "text/plain; charset=utf-8")
                return Reply(status, raw=fbody.encode(), headers=fheaders), f"fault {fault.get('id')}", "fault"
            return Reply(status, fbody, fheaders), f"fault {fault.get('id')}", "fault"
        base = f"http://{hdr.get('host', '127.0.0.1')}"
        try:
            return self.dispatch(method, path, query, hdr, auth_kind, token, body, base), None, "standin"
        except AuthFailure as af:
            return af.reply, af.detail, "standin"

    def take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        with self.state.lock:
            for rule in list(self.state.faults):
                if rule.get("method") and str(rule["method"]).upper() != method:
                    continue
                if rule.get("path") and not re.search(rule["path"], path):
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

    # ------------------------------------------------------------- admin
    def admin(self, method: str, path: str, body: bytes) -> Reply:
        st = self.state
        data = json.loads(body.decode()) if body.strip() else None
        if path == "/_standin/health":
            return Reply(200, {"ok": True})
        if path == "/_standin/calls":
            if method == "GET":
                with st.lock:
                    return Reply(200, copy.deepcopy(st.calls))
            if method == "DELETE":
                with st.lock:
                    st.calls.clear()
                return Reply(204)
        if path == "/_standin/config":
            if method == "POST":
                if not isinstance(data, dict):
                    return Reply(400, {"error": "expected a JSON object"})
                st.apply_config(data)
                return Reply(200, st.config)
            if method == "GET":
                with st.lock:
                    return Reply(200, st.config)
        if path == "/_standin/reset" and method == "POST":
            st.apply_config({})
            return Reply(200, {"ok": True})
        if path == "/_standin/faults":
            if method == "GET":
                with st.lock:
                    return Reply(200, copy.deepcopy(st.faults))
            if method == "POST":
                rules = [data] if isinstance(data, dict) else data
                if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
                    return Reply(400, {"error": "expected a JSON list of rule objects"})
                with st.lock:
                    for r in rules:
                        r = dict(r)
                        if r.get("path"):
                            re.compile(r["path"])
                        st.fault_seq += 1
                        r.setdefault("id", st.fault_seq)
                        st.faults.append(r)
                    return Reply(200, copy.deepcopy(st.faults))
            if method == "DELETE":
                with st.lock:
                    st.faults.clear()
                return Reply(204)
        if path == "/_standin/runners/status" and method == "POST":
            if not isinstance(data, dict) or not (data.get("name") or data.get("id")):
                return Reply(400, {"error": 'expected {"name": "...", "status": "online"|"offline", "busy": bool}'})
            with st.lock:
                found = []
                for scope, runners in st.runners.items():
                    if data.get("scope") and data["scope"].lower() != scope:
                        continue
                    for r in runners.values():
                        if (data.get("id") and r["id"] == int(data["id"])) or (
                            data.get("name") and r["name"] == data["name"]
                        ):
                            found.append(r)
                if not found:
                    return Reply(404, {"error": "no such runner"})
                if len(found) > 1:
                    return Reply(409, {"error": "runner name exists in several scopes; pass \"scope\""})
                r = found[0]
                if "status" in data:
                    if data["status"] not in ("online", "offline"):
                        return Reply(400, {"error": "status must be online or offline"})
                    r["status"] = data["status"]
                    if r["status"] == "online":
                        r["os"] = r["os"] if r["os"] != "unknown" else "Linux"
                        r["version"] = r.get("version") or RUNNER_VERSION
                if "busy" in data:
                    r["busy"] = bool(data["busy"])
                r["_manual"] = True
                return Reply(200, self.public_runner(r))
        if path == "/_standin/state" and method == "GET":
            with st.lock:
                return Reply(
                    200,
                    {
                        "runners": {
                            scope: [self.public_runner(r) for _, r in sorted(rs.items())]
                            for scope, rs in st.runners.items()
                        },
                        "deleted_runners": copy.deepcopy(st.deleted),
                        "installation_tokens_issued": st.installation_tokens_issued,
                        "registration_tokens_issued": st.registration_tokens_issued,
                        "remove_tokens_issued": st.remove_tokens_issued,
                        "secrets_issued": list(st.secrets_issued),
                    },
                )
        return Reply(404, {"error": f"no admin endpoint {method} {path}"})

    # -------------------------------------------------------------- auth
    def verify_jwt(self, token: str) -> dict[str, Any]:
        from jwt.api_jws import PyJWS
        from jwt.exceptions import InvalidSignatureError, PyJWTError

        jws = PyJWS()
        try:
            unverified = jws.decode_complete(token, options={"verify_signature": False})
            header = unverified["header"]
            claims = json.loads(unverified["payload"])
            if not isinstance(claims, dict):
                raise ValueError("payload is not a JSON object")
        except (PyJWTError, ValueError) as exc:
            raise AuthFailure(gh_error(401, JWT_DECODE), f"malformed JWT: {exc}")
        if header.get("alg") != "RS256":
            raise AuthFailure(gh_error(401, JWT_DECODE), f"alg {header.get('alg')!r} is not RS256")
        iss = claims.get("iss")
        st = self.state
        app = None
        with st.lock:
            if isinstance(iss, bool):
                iss = None
            if isinstance(iss, int) or (isinstance(iss, str) and iss.isdigit()):
                app = st.apps.get(int(iss))
            elif isinstance(iss, str):
                app_id = st.client_ids.get(iss)
                app = st.apps.get(app_id) if app_id is not None else None
        if app is None:
            raise AuthFailure(gh_error(401, "Integration not found"), f"unknown iss {iss!r}")
        if app["_key"] is None:
            raise AuthFailure(gh_error(401, JWT_DECODE), "app has no public key configured")
        try:
            jws.decode_complete(token, app["_key"], algorithms=["RS256"])
        except InvalidSignatureError:
            raise AuthFailure(gh_error(401, JWT_DECODE), "signature does not match the app's public key")
        except PyJWTError as exc:
            raise AuthFailure(gh_error(401, JWT_DECODE), f"JWT rejected: {exc}")
        now = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise AuthFailure(gh_error(401, JWT_EXP_BAD), "exp missing or not numeric")
        if exp <= now:
            raise AuthFailure(gh_error(401, JWT_EXP_BAD), f"exp is {now - exp:.0f}s in the past")
        if not isinstance(iat, int) or isinstance(iat, bool):
            raise AuthFailure(gh_error(401, JWT_IAT_BAD), "iat missing or not an integer")
        if iat > now + CLOCK_SKEW:
            raise AuthFailure(gh_error(401, JWT_IAT_BAD), f"iat is {iat - now:.0f}s in the future")
        if exp > now + 600:
            raise AuthFailure(gh_error(401, JWT_EXP_FAR), f"exp is {exp - now:.0f}s in the future (max 600)")
        if exp - iat > 600:
            raise AuthFailure(gh_error(401, JWT_EXP_FAR), f"exp - iat = {exp - iat:.0f}s (max 600)")
        return app

    def require_jwt(self, auth_kind: str, token: str | None) -> dict[str, Any]:
        if auth_kind == "none":
            raise AuthFailure(gh_error(401, "Requires authentication"), "no Authorization header")
        if auth_kind != "jwt" or token is None:
            raise AuthFailure(gh_error(401, JWT_DECODE), "endpoint needs an app JWT")
        return self.verify_jwt(token)

    def require_token(self, auth_kind: str, token: str | None) -> Principal:
        st = self.state
        if auth_kind == "none":
            raise AuthFailure(gh_error(401, "Requires authentication"), "no Authorization header")
        if auth_kind == "jwt" and token is not None:
            app = self.verify_jwt(token)
            raise AuthFailure(
                gh_error(403, "Resource not accessible by integration"),
                f"app JWT (app {app['id']}) used where an installation token or PAT is needed",
            )
        if auth_kind != "token" or token is None:
            raise AuthFailure(gh_error(401, "Bad credentials"), "unsupported Authorization scheme")
        with st.lock:
            if token in st.pats:
                p = st.pats[token]
                return Principal("pat", repositories=p["repositories"], organizations=p["organizations"])
            issued = st.issued.get(token)
        if issued is None:
            raise AuthFailure(gh_error(401, "Bad credentials"), "unknown token")
        if issued["expires"] <= time.time():
            raise AuthFailure(gh_error(401, "Bad credentials"), "installation token expired")
        return Principal("installation", **issued)

    def check_scope(self, principal: Principal, scope_kind: str, owner: str, repo: str | None) -> None:
        owner_l = owner.lower()
        if principal.kind == "pat":
            if scope_kind == "repos":
                ok = f"{owner_l}/{repo.lower()}" in principal.repositories or owner_l in principal.organizations
            else:
                ok = owner_l in principal.organizations
            if not ok:
                raise AuthFailure(gh_error(404, "Not Found"), "token has no access to this scope")
            return
        inst = principal.installation
        ok = inst["account"].lower() == owner_l
        if ok and scope_kind == "repos":
            repos = principal.repositories
            ok = repos is None or f"{owner_l}/{repo.lower()}" in repos
        if ok and scope_kind == "orgs":
            ok = inst["account_type"] == "Organization"
        if not ok:
            raise AuthFailure(
                gh_error(403, "Resource not accessible by integration"), "installation token has no access to this scope"
            )

    # ---------------------------------------------------------- builders
    @staticmethod
    def account_obj(base: str, login: str, kind: str = "Organization") -> dict[str, Any]:
        uid = stable_id("account", login)
        users = f"{base}/users/{login}"
        return {
            "login": login,
            "id": uid,
            "node_id": node_id("04:User" if kind == "User" else "12:Organization", uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": users,
            "html_url": f"https://github.com/{login}",
            "followers_url": f"{users}/followers",
            "following_url": f"{users}/following{{/other_user}}",
            "gists_url": f"{users}/gists{{/gist_id}}",
            "starred_url": f"{users}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{users}/subscriptions",
            "organizations_url": f"{users}/orgs",
            "repos_url": f"{base}/{'orgs' if kind == 'Organization' else 'users'}/{login}/repos",
            "events_url": f"{users}/events{{/privacy}}",
            "received_events_url": f"{users}/received_events",
            "type": kind,
            "user_view_type": "public",
            "site_admin": False,
        }

    def installation_obj(self, base: str, inst: dict[str, Any]) -> dict[str, Any]:
        app = self.state.apps[inst["app_id"]]
        account = self.account_obj(base, inst["account"], inst["account_type"])
        org = inst["account_type"] == "Organization"
        return {
            "id": inst["id"],
            "client_id": app["client_id"],
            "account": account,
            "repository_selection": "selected" if inst["repositories"] else "all",
            "access_tokens_url": f"{base}/app/installations/{inst['id']}/access_tokens",
            "repositories_url": f"{base}/installation/repositories",
            "html_url": (
                f"https://github.com/organizations/{inst['account']}/settings/installations/{inst['id']}"
                if org
                else f"https://github.com/settings/installations/{inst['id']}"
            ),
            "app_id": inst["app_id"],
            "app_slug": app["slug"],
            "target_id": account["id"],
            "target_type": inst["account_type"],
            "permissions": dict(inst["permissions"]),
            "events": [],
            "created_at": FIXED_CREATED,
            "updated_at": FIXED_CREATED,
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def repo_obj(self, base: str, full_name: str, owner_type: str) -> dict[str, Any]:
        owner, name = full_name.split("/", 1)
        rid = stable_id("repo", full_name)
        url = f"{base}/repos/{owner}/{name}"
        return {
            "id": rid,
            "node_id": node_id("010:Repository", rid),
            "name": name,
            "full_name": f"{owner}/{name}",
            "private": True,
            "owner": self.account_obj(base, owner, owner_type),
            "html_url": f"https://github.com/{owner}/{name}",
            "description": None,
            "fork": False,
            "url": url,
            "created_at": FIXED_CREATED,
            "updated_at": FIXED_CREATED,
            "pushed_at": FIXED_CREATED,
            "default_branch": "main",
            "visibility": "private",
        }

    def public_runner(self, r: dict[str, Any]) -> dict[str, Any]:
        self.refresh(r)
        return {k: copy.deepcopy(v) for k, v in r.items() if not k.startswith("_")}

    def refresh(self, r: dict[str, Any]) -> None:
        after = self.state.config.get("auto_online_after")
        if after is None or r.get("_manual") or r["status"] == "online":
            return
        if time.monotonic() - r["_created"] >= float(after):
            r["status"] = "online"
            r["os"] = "Linux"
            r["version"] = RUNNER_VERSION

    # ---------------------------------------------------------- dispatch
    def dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        hdr: dict[str, str],
        auth_kind: str,
        token: str | None,
        body: bytes,
        base: str,
    ) -> Reply:
        segs = [s for s in path.split("/") if s]

        # ---- GitHub App (JWT) endpoints
        if segs == ["app"] and method == "GET":
            app = self.require_jwt(auth_kind, token)
            owner_login = app["owner"]
            owner_type = next(
                (i["account_type"] for i in app["installations"] if i["account"] == owner_login), "Organization"
            )
            return Reply(
                200,
                {
                    "id": app["id"],
                    "client_id": app["client_id"],
                    "slug": app["slug"],
                    "node_id": node_id("03:Integration", app["id"]),
                    "owner": self.account_obj(base, owner_login, owner_type),
                    "name": app["name"],
                    "description": app.get("description", ""),
                    "external_url": app.get("external_url", f"https://github.com/{owner_login}"),
                    "html_url": f"https://github.com/apps/{app['slug']}",
                    "created_at": FIXED_CREATED,
                    "updated_at": FIXED_CREATED,
                    "permissions": dict(app.get("permissions") or DEFAULT_INSTALLATION_PERMISSIONS),
                    "events": list(app.get("events") or []),
                    "installations_count": len(app["installations"]),
                },
            )
        if segs == ["app", "installations"] and method == "GET":
            app = self.require_jwt(auth_kind, token)
            per_page, page = self.paging(query)
            items = [self.installation_obj(base, i) for i in app["installations"]]
            chunk = items[(page - 1) * per_page : page * per_page]
            return Reply(200, chunk, self.link_header(base, path, query, page, per_page, len(items)))
        if len(segs) == 3 and segs[:2] == ["app", "installations"] and method == "GET":
            app = self.require_jwt(auth_kind, token)
            inst = self.find_installation(app, segs[2])
            return Reply(200, self.installation_obj(base, inst))
        if len(segs) == 4 and segs[:2] == ["app", "installations"] and segs[3] == "access_tokens" and method == "POST":
            app = self.require_jwt(auth_kind, token)
            inst = self.find_installation(app, segs[2])
            return self.create_installation_token(base, inst, body)
        if len(segs) == 4 and segs[0] == "repos" and segs[3] == "installation" and method == "GET":
            app = self.require_jwt(auth_kind, token)
            owner, repo = segs[1].lower(), segs[2].lower()
            for inst in app["installations"]:
                if inst["account"].lower() == owner and (
                    inst["repositories"] is None or f"{owner}/{repo}" in inst["repositories"]
                ):
                    return Reply(200, self.installation_obj(base, inst))
            return gh_error(404, "Not Found", f"{DOCS_APPS}#get-a-repository-installation-for-the-authenticated-app")
        if len(segs) == 3 and segs[0] in ("orgs", "users") and segs[2] == "installation" and method == "GET":
            app = self.require_jwt(auth_kind, token)
            for inst in app["installations"]:
                if inst["account"].lower() == segs[1].lower() and (
                    segs[0] == "users" or inst["account_type"] == "Organization"
                ):
                    return Reply(200, self.installation_obj(base, inst))
            what = "an-organization" if segs[0] == "orgs" else "a-user"
            return gh_error(404, "Not Found", f"{DOCS_APPS}#get-{what}-installation-for-the-authenticated-app")

        # ---- self-hosted runners
        scope = None
        if len(segs) >= 5 and segs[0] == "repos" and segs[3:5] == ["actions", "runners"]:
            scope, owner, repo, rest = "repos", segs[1], segs[2], segs[5:]
        elif len(segs) >= 4 and segs[0] == "orgs" and segs[2:4] == ["actions", "runners"]:
            scope, owner, repo, rest = "orgs", segs[1], None, segs[4:]
        if scope is not None:
            principal = self.require_token(auth_kind, token)
            self.check_scope(principal, scope, owner, repo)
            key = f"repos/{owner}/{repo}".lower() if scope == "repos" else f"orgs/{owner}".lower()
            where = "a-repository" if scope == "repos" else "an-organization"
            return self.runners(method, rest, key, where, query, body, base, path, scope, owner, repo)

        return gh_error(404, "Not Found")

    def find_installation(self, app: dict[str, Any], raw_id: str) -> dict[str, Any]:
        inst = self.state.installations.get(int(raw_id)) if raw_id.isdigit() else None
        if inst is None or inst["app_id"] != app["id"]:
            raise AuthFailure(
                gh_error(404, "Not Found", f"{DOCS_APPS}#get-an-installation-for-the-authenticated-app"),
                f"installation {raw_id} does not belong to app {app['id']}",
            )
        return inst

    def create_installation_token(self, base: str, inst: dict[str, Any], body: bytes) -> Reply:
        doc = f"{DOCS_APPS}#create-an-installation-access-token-for-an-app"
        req: dict[str, Any] = {}
        if body.strip():
            try:
                req = json.loads(body)
            except ValueError:
                return gh_error(400, "Problems parsing JSON", doc)
            if not isinstance(req, dict):
                return gh_error(400, "Problems parsing JSON", doc)
        account = inst["account"].lower()
        allowed = inst["repositories"]
        repos = allowed
        wanted_names = req.get("repositories")
        wanted_ids = req.get("repository_ids")
        if wanted_names or wanted_ids:
            chosen = set()
            for name in wanted_names or []:
                full = f"{account}/{str(name).lower()}"
                if allowed is not None and full not in allowed:
                    return gh_error(
                        422,
                        "There is at least one repository that does not exist or is not accessible to the parent installation.",
                        doc,
                    )
                chosen.add(full)
            for rid in wanted_ids or []:
                match = [r for r in (allowed or []) if stable_id("repo", r) == rid]
                if not match:
                    return gh_error(
                        422,
                        "There is at least one repository that does not exist or is not accessible to the parent installation.",
                        doc,
                    )
                chosen.update(match)
            repos = chosen
        perms = dict(inst["permissions"])
        if req.get("permissions"):
            asked = req["permissions"]
            for name, level in asked.items():
                have = inst["permissions"].get(name)
                if have is None or PERMISSION_RANK.get(level, 99) > PERMISSION_RANK.get(have, 0):
                    return gh_error(422, "The permissions requested are not granted to this installation.", doc)
            perms = dict(asked)
        tok = "ghs_" + secrets.token_urlsafe(27).replace("-", "A").replace("_", "b")[:36]
        expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
        with self.state.lock:
            self.state.issued[tok] = {
                "installation": inst,
                "repositories": set(repos) if repos is not None else None,
                "permissions": perms,
                "expires": expires.timestamp(),
            }
            self.state.installation_tokens_issued += 1
            self.state.secrets_issued.append(tok)
        out: dict[str, Any] = {
            "token": tok,
            "expires_at": iso(expires),
            "permissions": perms,
            "repository_selection": "selected" if repos is not None else "all",
        }
        if repos is not None:
            out["repositories"] = [self.repo_obj(base, r, inst["account_type"]) for r in sorted(repos)]
        return Reply(201, out)

    @staticmethod
    def paging(query: dict[str, str]) -> tuple[int, int]:
        try:
            per_page = int(query.get("per_page", 30))
        except ValueError:
            per_page = 30
        if per_page < 1:
            per_page = 30
        per_page = min(per_page, 100)
        try:
            page = int(query.get("page", 1))
        except ValueError:
            page = 1
        return per_page, max(page, 1)

    @staticmethod
    def link_header(base: str, path: str, query: dict[str, str], page: int, per_page: int, total: int) -> dict[str, str]:
        last = max(1, -(-total // per_page))
        if last <= 1 and page <= 1:
            return {}

        def url(p: int) -> str:
            q = dict(query)
            q["per_page"] = str(per_page)
            q["page"] = str(p)
            return f"{base}{path}?{urlencode(q)}"

        links = []
        if page > 1:
            links.append(f'<{url(min(page - 1, last))}>; rel="prev"')
        if page < last:
            links.append(f'<{url(page + 1)}>; rel="next"')
            links.append(f'<{url(last)}>; rel="last"')
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
        return {"Link": ", ".join(links)}

    def runners(
        self,
        method: str,
        rest: list[str],
        key: str,
        where: str,
        query: dict[str, str],
        body: bytes,
        base: str,
        path: str,
        scope: str,
        owner: str,
        repo: str | None,
    ) -> Reply:
        st = self.state
        if not rest and method == "GET":
            per_page, page = self.paging(query)
            with st.lock:
                items = [self.public_runner(r) for _, r in sorted(st.runners.get(key, {}).items())]
            if "name" in query:
                items = [r for r in items if r["name"] == query["name"]]
            chunk = items[(page - 1) * per_page : page * per_page]
            return Reply(
                200,
                {"total_count": len(items), "runners": chunk},
                self.link_header(base, path, query, page, per_page, len(items)),
            )
        if rest == ["generate-jitconfig"] and method == "POST":
            return self.generate_jitconfig(key, where, body, base, scope, owner, repo)
        if rest in (["registration-token"], ["remove-token"]) and method == "POST":
            expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
            with st.lock:
                if rest[0] == "registration-token":
                    st.registration_tokens_issued += 1
                else:
                    st.remove_tokens_issued += 1
            return Reply(201, {"token": secrets.token_hex(15).upper(), "expires_at": iso(expires)})
        if len(rest) == 1 and method in ("GET", "DELETE"):
            doc_get = f"{DOCS_RUNNERS}#get-a-self-hosted-runner-for-{where}"
            doc_del = f"{DOCS_RUNNERS}#delete-a-self-hosted-runner-from-{where}"
            if not rest[0].isdigit():
                return gh_error(404, "Not Found", doc_get if method == "GET" else doc_del)
            rid = int(rest[0])
            with st.lock:
                r = st.runners.get(key, {}).get(rid)
                if r is None:
                    return gh_error(404, "Not Found", doc_get if method == "GET" else doc_del)
                if method == "GET":
                    return Reply(200, self.public_runner(r))
                self.refresh(r)
                if r["busy"]:
                    return gh_error(422, f'Bad request - Runner "{r["name"]}" is still running a job"', doc_del)
                del st.runners[key][rid]
                st.deleted.append(dict(self.public_runner(r), scope=key, deleted_at=iso(datetime.now(timezone.utc))))
            return Reply(204)
        return gh_error(404, "Not Found")

    def generate_jitconfig(
        self, key: str, where: str, body: bytes, base: str, scope: str, owner: str, repo: str | None
    ) -> Reply:
        doc = f"{DOCS_RUNNERS}#create-configuration-for-a-just-in-time-runner-for-{where}"

        def invalid(msg: str) -> Reply:
            return gh_error(422, f"Invalid request.\n\n{msg}", doc, errors=[msg])

        try:
            req = json.loads(body) if body.strip() else None
        except ValueError:
            return gh_error(400, "Problems parsing JSON", doc)
        if not isinstance(req, dict):
            return gh_error(400, "Problems parsing JSON", doc) if req is not None else invalid('"name", "runner_group_id", "labels" weren\'t supplied.')
        missing = [f for f in ("name", "runner_group_id", "labels") if f not in req]
        if missing:
            names = ", ".join(f'"{m}"' for m in missing)
            return invalid(f"{names} {'wasn' if len(missing) == 1 else 'weren'}'t supplied.")
        name, group, labels = req["name"], req["runner_group_id"], req["labels"]
        if not isinstance(name, str):
            return invalid(f"For 'properties/name', {json.dumps(name)} is not a string.")
        if not name.strip():
            return invalid("For 'properties/name', \"\" is too short (minimum is 1 character).")
        if not isinstance(group, int) or isinstance(group, bool):
            return invalid(f"For 'properties/runner_group_id', {json.dumps(group)} is not an integer.")
        if not isinstance(labels, list):
            return invalid(f"For 'properties/labels', {json.dumps(labels)} is not an array.")
        if not 1 <= len(labels) <= 100:
            return invalid(
                f"For 'properties/labels', {json.dumps(labels)[:80]} should contain "
                + ("at least 1 item(s)." if not labels else "at most 100 item(s).")
            )
        for lab in labels:
            if not isinstance(lab, str):
                return invalid(f"For 'items', {json.dumps(lab)} is not a string.")
            if not lab.strip():
                return invalid("For 'items', \"\" is too short (minimum is 1 character).")
        work = req.get("work_folder", "_work")
        if not isinstance(work, str):
            return invalid(f"For 'properties/work_folder', {json.dumps(work)} is not a string.")
        st = self.state
        with st.lock:
            existing = st.runners.setdefault(key, {})
            if any(r["name"] == name for r in existing.values()):
                return gh_error(409, f"Already exists - A runner with the name {name} already exists.", doc)
            rid = st.next_runner_id
            st.next_runner_id += 1
            label_objs = []
            seen = set()
            for lab in ["self-hosted", *labels]:
                if lab.lower() in seen:
                    continue
                seen.add(lab.lower())
                kind = "read-only" if lab.lower() in READ_ONLY_LABELS else "custom"
                label_objs.append({"id": st.label_id(lab), "name": lab, "type": kind})
            secret = secrets.token_hex(32)
            runner = {
                "id": rid,
                "runner_group_id": group,
                "name": name,
                "os": "unknown",
                "status": "offline",
                "busy": False,
                "ephemeral": True,
                "labels": label_objs,
                "version": None,
                "_created": time.monotonic(),
                "_manual": False,
                "_secret": secret,
            }
            existing[rid] = runner
            public = self.public_runner(runner)
        target = f"{owner}/{repo}" if scope == "repos" else owner
        runner_file = {
            "AgentId": rid,
            "AgentName": name,
            "PoolId": group,
            "PoolName": "Default",
            "Ephemeral": True,
            "DisableUpdate": False,
            "ServerUrl": f"{base}/_standin/pipelines/{secret[:12]}/",
            "GitHubUrl": f"https://github.com/{target}",
            "WorkFolder": work,
            "UseV2Flow": True,
        }
        cfg = {
            "runner_id": rid,
            "runner_name": name,
            "runner_group_id": group,
            "labels": [lab["name"] for lab in label_objs],
            "work_folder": work,
            "scope": key,
            "secret": secret,
            ".runner": base64.b64encode(json.dumps(runner_file).encode()).decode(),
        }
        encoded = base64.b64encode(json.dumps(cfg, separators=(",", ":")).encode()).decode()
        with self.state.lock:
            self.state.secrets_issued.extend([encoded, secret])
        return Reply(201, {"runner": public, "encoded_jit_config": encoded})


# ----------------------------------------------------------------- server
def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    te = (handler.headers.get("Transfer-Encoding") or "").lower()
    if "chunked" in te:
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def make_handler(standin: Standin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "GitHub.com"
        sys_version = ""

        def _go(self) -> None:
            try:
                body = _read_body(self)
                reply = standin.handle(self.command, self.path, list(self.headers.items()), body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return
            except Exception as exc:
                reply = Reply(500, {"message": f"stand-in error: {type(exc).__name__}: {exc}", "documentation_url": DOCS})
            try:
                self.send_response_only(reply.status)
                self.send_header("Server", "github.com")
                self.send_header("Date", self.date_time_string())
                for k, v in reply.headers.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD" and reply.body:
                    self.wfile.write(reply.body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _go

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            if standin.verbose:
                sys.stderr.write("github-standin: %s\n" % (format % args))

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(host: str, port: int, verbose: bool = False) -> tuple[QuietServer, Standin]:
    standin = Standin(verbose=verbose)
    return QuietServer((host, port), make_handler(standin)), standin


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="GitHub REST stand-in")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    srv, _ = make_server("127.0.0.1", a.port)
    print(f"http://127.0.0.1:{srv.server_address[1]}", flush=True)
    srv.serve_forever()
