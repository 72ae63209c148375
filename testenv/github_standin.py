"""Stateful stand-in for the GitHub REST endpoints ec2-spot-runner uses.

Shapes follow GitHub's OpenAPI description (operations
apps/get-authenticated, apps/get-{repo,org,user}-installation,
apps/list-installations, apps/create-installation-access-token,
actions/generate-runner-jitconfig-for-{repo,org},
actions/create-registration-token-for-{repo,org},
actions/list-self-hosted-runners-for-{repo,org},
actions/get-self-hosted-runner-for-{repo,org},
actions/delete-self-hosted-runner-from-{repo,org},
actions/get-self-hosted-runner-group-for-org,
actions/list-self-hosted-runner-groups-for-org, repos/get, meta/get), and
workflow runs, their jobs and re-runs (github_runs.py).

Requests are held to HTTP too: a single-value header field on two lines is
refused with 400 (RFC 9110 section 5.3), as a strict server does. With
EC2SR_GITHUB_OPENAPI set, each request is also checked against GitHub's
OpenAPI description (openapi.py) and what does not match is logged.

Behaviours modelled on GitHub's documentation (each cited where it is coded):
secondary rate limits on concurrent mutations, installation token lifetime
and the stateless ("long") installation token format, GitHub Enterprise
Server versions (client-id JWT issuers from 3.18, JIT configs from 3.10,
/api/v3, GET /meta), repository visibility, runner groups, and a delay
before a new runner shows in the runner list.

Admin endpoints live under /_standin/ and need no authentication.  See
README.md next to this file for the contracts.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import math
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
MUTATING = frozenset({"POST", "PATCH", "PUT", "DELETE"})
DOCS_GROUPS = "https://docs.github.com/rest/actions/self-hosted-runner-groups"
DOCS_REPOS = "https://docs.github.com/rest/repos/repos"

# NOTE: secondary rate limit. GitHub asks clients to make requests serially
# and to wait at least a second between mutating ones; a client over a
# secondary limit gets 403 or 429 with a message saying so, with
# `retry-after` sometimes, and must otherwise wait at least one minute.
#   https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
#   https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit
# Message and documentation_url as GitHub sent them (2023-12, quoted in
# github-changelog-generator/github-changelog-generator#993); the request id
# in the message is the response's X-GitHub-Request-Id.
SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)
SECONDARY_LIMIT_DOC = (
    "https://docs.github.com/en/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api"
    "#about-secondary-rate-limits"
)
# NOTE: installation tokens expire one hour after creation; an expired one
# gets 401 (operation apps/create-installation-access-token,
# https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app),
# whose message is "Bad credentials" (seen in actions/create-github-app-token#72).
DEFAULT_TOKEN_TTL = 3600
# NOTE: stateless installation tokens, "ghs_APPID_JWT", about 520 characters,
# variable length, two dots; GitHub's suggested pattern for both formats is
# ghs_[A-Za-z0-9\._]{36,}. Not on GitHub Enterprise Server. The request header
# X-GitHub-Stateless-S2S-Token: enabled|disabled forces one format for one
# POST /app/installations/{id}/access_tokens; other values are ignored.
#   https://github.blog/changelog/2026-04-24-notice-about-upcoming-new-format-for-github-app-installation-tokens
#   https://github.blog/changelog/2026-05-15-github-app-installation-tokens-per-request-override-header
#   github/docs data/reusables/apps/ghs-stateless-token-format.md
TOKEN_FORMATS = ("classic", "long")
STATELESS_HEADER = "x-github-stateless-s2s-token"
LONG_TOKEN_RE = re.compile(r"^ghs_[A-Za-z0-9._]{36,}$")
# NOTE: GitHub Enterprise Server.
# * A client id as the JWT `iss` is accepted from 3.18 (github/docs
#   data/features/client-id-for-app.yml: ghes '>=3.18'; the page
#   https://docs.github.com/en/enterprise-server@3.18/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
#   names "client ID or application ID", the 3.17 page only the app id).
#   What an older server answers is not documented; github.com answers an
#   `iss` that does not match the signing key with 401 "A JSON web token
#   could not be decoded" (github/docs#33989, octokit/auth-app.js#375), so that.
# * JIT runner configs arrived in 3.10 (GHES 3.10.0 release notes, "GitHub
#   Actions": https://docs.github.com/en/enterprise-server@3.10/admin/release-notes#3.10.0-features);
#   below, the route does not exist: 404 "Not Found".
# * The REST API is versioned from 3.9 (banner on the 3.8 REST pages, e.g.
#   https://docs.github.com/en/enterprise-server@3.8/rest/repos); the GHES
#   OpenAPI descriptions carry 2022-11-28 only up to 3.20 and add 2026-03-10
#   in 3.21 (github/rest-api-description descriptions/ghes-3.21).
# * The API lives at http(s)://HOSTNAME/api/v3 (`servers` of the GHES OpenAPI
#   descriptions, @octokit/openapi generated/ghes-3.19.json); GET /meta has
#   `installed_version` (schema api-overview, example "3.19.0"); responses
#   carry X-GitHub-Enterprise-Version: X.Y.0 (example response in the GHES
#   versions of "Resources in the REST API", github/docs
#   content/rest/overview/resources-in-the-rest-api.md).
GHES_CLIENT_ID_ISS = (3, 18)
GHES_JIT = (3, 10)
GHES_API_VERSIONING = (3, 9)
GHES_API_2026 = (3, 21)
REPO_VISIBILITIES = ("public", "private", "internal")
# NOTE: a header field that is not defined as a comma-separated list may
# appear once (RFC 9110 section 5.3, https://www.rfc-editor.org/rfc/rfc9110#section-5.3:
# a sender must not repeat it; a recipient may join repeats with commas, and
# then reads a value the sender never meant, e.g. "octocrab, my-app/1.0").
# Fields of a single value, with where each is defined:
# * Host: RFC 9112 section 3.2 (a server must answer 400 to more than one);
# * User-Agent: RFC 9110 section 10.1.5 (product *( RWS ( product / comment ) ));
# * Authorization: RFC 9110 section 11.6.2 (credentials);
# * Content-Type and Content-Length: RFC 9110 sections 8.3 and 8.6 (a
#   repeated Content-Length is a framing error: RFC 9112 section 6.3, 400
#   and close the connection);
# * X-GitHub-Api-Version: the one API version a request asks for, a date
#   (https://docs.github.com/en/rest/about-the-rest-api/api-versions);
# * X-GitHub-Stateless-S2S-Token: enabled or disabled (see STATELESS_HEADER).
# Accept is a list (RFC 9110 section 12.5.1, #( media-range [ weight ] )) and
# may repeat. A strict server refuses a repeated single-value field with 400
# before any routing; so does the stand-in, naming the field.
SINGLE_VALUE_FIELDS = {
    "host": "Host",
    "user-agent": "User-Agent",
    "authorization": "Authorization",
    "content-type": "Content-Type",
    "content-length": "Content-Length",
    "x-github-api-version": "X-GitHub-Api-Version",
    STATELESS_HEADER: "X-GitHub-Stateless-S2S-Token",
}
# Values never repeated back in an answer or the call log.
SECRET_FIELDS = frozenset({"authorization"})


class ConfigError(ValueError):
    pass


def parse_ghes_version(raw: Any) -> tuple[int, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"\d+\.\d+(\.\d+)?", raw.strip()):
        raise ConfigError('ghes_version must be null or a string like "3.10" or "3.18.2"')
    return tuple(int(x) for x in raw.strip().split("."))


def _number(cfg: dict[str, Any], key: str, default: float, minimum: float, strict: bool = False) -> float:
    v = cfg.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < minimum or (strict and v <= minimum):
        raise ConfigError(f"{key} must be a number {'>' if strict else '>='} {minimum}")
    return float(v)


def parse_extras(cfg: dict[str, Any]) -> dict[str, Any]:
    """Validates and normalises the optional config keys added for secondary
    limits, token lifetime/format, GHES, repositories, runner groups and
    runner visibility. Raises ConfigError (answered 400)."""
    out: dict[str, Any] = {}
    sl = cfg.get("secondary_limit")
    if sl is None:
        sl = {}
    if not isinstance(sl, dict):
        raise ConfigError("secondary_limit must be an object")
    mx = sl.get("max_concurrent_mutations")
    if mx is not None and (isinstance(mx, bool) or not isinstance(mx, int) or mx < 1):
        raise ConfigError("secondary_limit.max_concurrent_mutations must be null or an integer >= 1")
    ra = sl.get("retry_after")
    if ra is not None and (isinstance(ra, bool) or not isinstance(ra, int) or ra < 0):
        raise ConfigError("secondary_limit.retry_after must be null or an integer >= 0 (seconds)")
    status = sl.get("status", 403)
    if status not in (403, 429):
        raise ConfigError("secondary_limit.status must be 403 or 429")
    out["secondary_limit"] = {"max_concurrent_mutations": mx, "retry_after": ra, "status": status}
    out["mutation_delay"] = _number(cfg, "mutation_delay_ms", 0.0, 0.0) / 1000.0
    out["runner_releases"] = parse_runner_releases(cfg)
    out["token_ttl"] = _number(cfg, "installation_token_ttl", float(DEFAULT_TOKEN_TTL), 0.0, strict=True)
    fmt = cfg.get("token_format") or "classic"
    if fmt not in TOKEN_FORMATS:
        raise ConfigError('token_format must be "classic" or "long"')
    ghes = parse_ghes_version(cfg.get("ghes_version"))
    if ghes is not None and fmt == "long":
        raise ConfigError('token_format "long" is github.com only: GitHub Enterprise Server is not part of the new token format')
    out["token_format"] = fmt
    out["ghes"] = ghes
    serve_root = cfg.get("ghes_serve_root", True)
    if not isinstance(serve_root, bool):
        raise ConfigError("ghes_serve_root must be a boolean")
    out["ghes_serve_root"] = serve_root
    repos: dict[str, str] = {}
    raw_repos = cfg.get("repositories") or {}
    if not isinstance(raw_repos, dict):
        raise ConfigError('repositories must be an object {"owner/name": {"visibility": ...}}')
    for full, spec in raw_repos.items():
        if not isinstance(full, str) or full.count("/") != 1 or not all(full.split("/")):
            raise ConfigError(f"repositories: {full!r} is not owner/name")
        vis = (spec or {}).get("visibility", "private") if isinstance(spec, dict) else None
        if vis not in REPO_VISIBILITIES:
            raise ConfigError(f"repositories[{full!r}].visibility must be public, private or internal")
        repos[full.lower()] = vis
    out["repositories"] = repos
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    raw_groups = cfg.get("runner_groups") or {}
    if not isinstance(raw_groups, dict):
        raise ConfigError('runner_groups must be an object {"org": [group, ...]}')
    for org, lst in raw_groups.items():
        if not isinstance(lst, list) or not all(isinstance(g, dict) for g in lst):
            raise ConfigError(f"runner_groups[{org!r}] must be a list of objects")
        table: dict[int, dict[str, Any]] = {}
        for g in lst:
            gid = g.get("id")
            if isinstance(gid, bool) or not isinstance(gid, int) or gid < 1:
                raise ConfigError(f"runner_groups[{org!r}]: id must be an integer >= 1")
            vis = g.get("visibility", "all")
            if vis not in ("all", "selected", "private"):
                raise ConfigError(f"runner_groups[{org!r}][{gid}].visibility must be all, selected or private")
            table[gid] = {
                "id": gid,
                "name": str(g.get("name") or ("Default" if gid == 1 else f"group-{gid}")),
                "visibility": vis,
                "default": bool(g.get("default", gid == 1)),
                "allows_public_repositories": bool(g.get("allows_public_repositories", False)),
                "restricted_to_workflows": bool(g.get("restricted_to_workflows", False)),
                "selected_workflows": [str(w) for w in g.get("selected_workflows") or []],
            }
        groups[str(org).lower()] = table
    out["runner_groups"] = groups
    out["runner_visibility_delay"] = _number(cfg, "runner_visibility_delay_ms", 0.0, 0.0) / 1000.0
    return out


# NOTE: actions/runner's release workflow (.github/workflows/release.yml,
# job `release`) creates the release, with every package's SHA-256 in its
# notes, and only then uploads the packages, one step each, in this order.
# Until the last step has run, GET .../releases/latest already names the new
# version while some of its packages answer 404.
RUNNER_PACKAGES = (
    "win-x64",
    "win-arm64",
    "linux-x64",
    "osx-x64",
    "osx-arm64",
    "linux-arm",
    "linux-arm64",
)
RUNNER_RELEASE_KEYS = ("uploaded", "uploading")


def parse_runner_releases(cfg: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The actions/runner releases, newest first; None = no such repository.

    `runner_releases` lists them; `runner_release` (the older key) is the
    newest one alone: "fixture", a release object, or null (no repository).
    Per release, the stand-in's own keys `uploaded` (how many packages of
    RUNNER_PACKAGES are uploaded, in the workflow's order; default all) and
    `uploading` (the next one is listed in state `open`) shape its `assets`,
    unless the release gives `assets` itself."""
    if "runner_releases" in cfg and "runner_release" in cfg:
        raise ConfigError("give runner_releases or runner_release, not both")
    if "runner_releases" in cfg:
        releases = cfg["runner_releases"]
        if releases is None:
            return None
        if not isinstance(releases, list):
            raise ConfigError("runner_releases must be a list of release objects (newest first) or null")
    else:
        release = cfg.get("runner_release", "fixture")
        if release == "fixture":
            fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "runner-release-latest.json")
            with open(fixture, encoding="utf-8") as fh:
                release = json.load(fh)
        if release is None:
            return None
        releases = [release]
    out = []
    for i, release in enumerate(releases):
        if not isinstance(release, dict):
            raise ConfigError(f'runner_releases[{i}] (or runner_release) must be a release object; runner_release may also be "fixture" or null')
        if not isinstance(release.get("tag_name"), str) or not release["tag_name"]:
            raise ConfigError(f"runner_releases[{i}]: tag_name must be a non-empty string")
        uploaded = release.get("uploaded", len(RUNNER_PACKAGES))
        if isinstance(uploaded, bool) or not isinstance(uploaded, int) or not 0 <= uploaded <= len(RUNNER_PACKAGES):
            raise ConfigError(f"runner_releases[{i}]: uploaded must be an integer from 0 to {len(RUNNER_PACKAGES)}")
        if not isinstance(release.get("uploading", False), bool):
            raise ConfigError(f"runner_releases[{i}]: uploading must be a boolean")
        if "assets" in release and not isinstance(release["assets"], list):
            raise ConfigError(f"runner_releases[{i}]: assets must be a list of release-asset objects")
        out.append(copy.deepcopy(release))
    return out


def runner_release_obj(release: dict[str, Any], base: str, web: str) -> dict[str, Any]:
    """A configured actions/runner release as GitHub answers it: the given
    fields, completed to the `release` schema, with its `assets`."""
    # NOTE: release and release-asset schemas of the REST API (Get the latest
    # release, List releases): https://docs.github.com/en/rest/releases/releases
    # and https://docs.github.com/en/rest/releases/assets. An asset's `state`
    # is `uploaded` or `open` (an upload under way); `digest` is
    # "sha256:HEX" once the upload is complete.
    out = {k: copy.deepcopy(v) for k, v in release.items() if k not in RUNNER_RELEASE_KEYS}
    tag = out["tag_name"]
    rid = out.get("id") or stable_id("release", tag)
    api = f"{base}/repos/actions/runner"
    author = {
        "login": "github-actions[bot]",
        "id": 41898282,
        "node_id": "MDM6Qm90NDE4OTgyODI=",
        "type": "Bot",
        "site_admin": False,
        "url": f"{base}/users/github-actions%5Bbot%5D",
        "html_url": f"{web}/apps/github-actions",
    }
    out.setdefault("url", f"{api}/releases/{rid}")
    out.setdefault("html_url", f"{web}/actions/runner/releases/tag/{tag}")
    out.setdefault("assets_url", f"{api}/releases/{rid}/assets")
    out.setdefault("upload_url", f"https://uploads.github.com/repos/actions/runner/releases/{rid}/assets{{?name,label}}")
    out.setdefault("tarball_url", f"{api}/tarball/{tag}")
    out.setdefault("zipball_url", f"{api}/zipball/{tag}")
    out["id"] = rid
    out.setdefault("node_id", node_id("RE_", rid))
    out.setdefault("target_commitish", "main")
    out.setdefault("name", tag)
    out.setdefault("draft", False)
    out.setdefault("prerelease", False)
    out.setdefault("created_at", FIXED_CREATED)
    out.setdefault("published_at", FIXED_CREATED)
    out.setdefault("author", author)
    out.setdefault("body", "")
    if "assets" in out:
        return out
    version = tag[1:] if tag.startswith("v") else tag
    uploaded = release.get("uploaded", len(RUNNER_PACKAGES))
    listed = RUNNER_PACKAGES[: uploaded + (1 if release.get("uploading") and uploaded < len(RUNNER_PACKAGES) else 0)]
    assets = []
    for i, package in enumerate(listed):
        name = f"actions-runner-{package}-{version}.{'zip' if package.startswith('win') else 'tar.gz'}"
        done = i < uploaded
        aid = stable_id("asset", f"{tag}/{name}")
        marker = re.search(
            rf"<!-- BEGIN SHA {re.escape(package)} -->([0-9a-fA-F]{{64}})<!-- END SHA {re.escape(package)} -->",
            out["body"] or "",
        )
        digest = marker.group(1).lower() if marker else hashlib.sha256(name.encode()).hexdigest()
        assets.append(
            {
                "url": f"{api}/releases/assets/{aid}",
                "browser_download_url": f"{web}/actions/runner/releases/download/{tag}/{name}",
                "id": aid,
                "node_id": node_id("RA_", aid),
                "name": name,
                "label": "",
                "state": "uploaded" if done else "open",
                "content_type": "application/octet-stream",
                "size": 100_000_000 + aid % 90_000_000,
                "digest": f"sha256:{digest}" if done else None,
                "download_count": 0,
                "created_at": out["published_at"],
                "updated_at": out["published_at"],
                "uploader": author,
            }
        )
    out["assets"] = assets
    return out


def default_runner_group() -> dict[str, Any]:
    # NOTE: every organization has the "Default" group, id 1; a group admits
    # only private repositories unless public ones are allowed.
    # https://docs.github.com/en/actions/hosting-your-own-runners/managing-self-hosted-runners/managing-access-to-self-hosted-runners-using-groups#changing-the-access-policy-of-a-runner-group
    return {
        "id": 1,
        "name": "Default",
        "visibility": "all",
        "default": True,
        "allows_public_repositories": False,
        "restricted_to_workflows": False,
        "selected_workflows": [],
    }


def github_request_id() -> str:
    """X-GitHub-Request-Id in GitHub's shape, e.g. FA2D:87B1:8879E3:1176C87:6570B7E6."""
    h = secrets.token_hex(16).upper()
    return f"{h[0:4]}:{h[4:8]}:{h[8:14]}:{h[14:21]}:{h[21:29]}"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


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
        # Mutating requests being handled, per credential (a hash of it, kept
        # in memory only); replaced, not cleared, on reconfiguration so that
        # requests still in flight decrement the table they incremented.
        self.inflight_lock = threading.Lock()
        self.inflight: dict[str, int] = {}
        self.calls: list[dict[str, Any]] = []
        # Requests that do not match the OpenAPI description, since the start
        # (neither DELETE /_standin/calls nor a new config clears them).
        self.undescribed: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.fault_seq = 0
        self.apply_config({})

    def apply_config(self, cfg: dict[str, Any]) -> None:
        extras = parse_extras(cfg)
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
                # A fine-grained token's (or GITHUB_TOKEN's) permissions;
                # None: a classic token, whose `repo` scope covers them.
                "permissions": dict(tok["permissions"]) if tok.get("permissions") is not None else None,
            }
        with self.lock:
            self.config = json.loads(json.dumps(cfg))
            self.extras = extras
            self.ghes: tuple[int, ...] | None = extras["ghes"]
            with self.inflight_lock:
                self.inflight = {}
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
            from github_runs import WorkflowRuns

            self.workflow_runs = WorkflowRuns()

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
        # GitHub's OpenAPI description (openapi.py), when EC2SR_GITHUB_OPENAPI
        # names its index: each API request is checked against it and what
        # does not match is logged with the call ("openapi"). About 0.1 s.
        self.description: Any = None
        self.description_error: str | None = None
        index = os.environ.get("EC2SR_GITHUB_OPENAPI")
        if index:
            try:
                from openapi import Description

                self.description = Description(index)
            except Exception as exc:  # reported with every request: see openapi_problems
                self.description_error = f"{index}: {type(exc).__name__}: {exc}"

    def openapi_problems(self, method: str, path: str, query: dict[str, str], body: bytes) -> list[str]:
        if self.description_error:
            return [f"the OpenAPI description could not be loaded: {self.description_error}"]
        if self.description is None:
            return []
        return self.description.check(method, path, query, body)

    # ------------------------------------------------------------- entry
    def handle(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        path = parts.path
        if path.startswith("/_standin"):
            try:
                return self.admin(method, path, body)
            except ConfigError as exc:
                return Reply(400, {"error": str(exc)})
            except Exception as exc:
                return Reply(500, {"error": f"{type(exc).__name__}: {exc}"})
        hdr: dict[str, str] = {}
        for k, v in headers:
            hdr.setdefault(k.lower(), v)
        repeated = self.repeated_fields(headers)
        st = self.state
        with st.lock:
            ghes = st.ghes
            serve_root = st.extras["ghes_serve_root"]
        # GHES serves the API under /api/v3 (see the NOTE at GHES_JIT); the
        # stand-in also serves it at / unless ghes_serve_root is false.
        # github.com has no /api/v3.
        prefix = ""
        api_path = path
        if ghes is not None and (path == "/api/v3" or path.startswith("/api/v3/")):
            prefix = "/api/v3"
            api_path = path[len(prefix) :] or "/"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        auth_kind, token = self.auth_kind(hdr.get("authorization"))
        request_id = github_request_id()
        entry: dict[str, Any] = {
            "time": iso(datetime.now(timezone.utc)),
            "ts": time.time(),
            "method": method,
            "path": path,
            "query": query,
            "user_agent": bool(hdr.get("user-agent")),
            "user_agent_value": hdr.get("user-agent"),
            "api_version": "x-github-api-version" in hdr,
            "api_version_value": hdr.get("x-github-api-version"),
            "auth": auth_kind,
        }
        if prefix:
            entry["api_prefix"] = prefix
        if repeated:
            reply, detail, answered_by = self.refuse_repeated(repeated), "repeated header field(s)", "standin"
            entry["repeated_fields"] = [SINGLE_VALUE_FIELDS[name] for name, _ in repeated]
        elif ghes is not None and not prefix and not serve_root:
            reply, detail, answered_by = gh_error(404, "Not Found"), "GHES API is under /api/v3", "standin"
        else:
            base = f"http://{hdr.get('host', '127.0.0.1')}{prefix}"
            reply, detail, answered_by = self.route(
                method, api_path, query, hdr, auth_kind, token, body, base, request_id
            )
        entry["status"] = reply.status
        entry["answered_by"] = answered_by
        problems = self.openapi_problems(method, api_path, query, body)
        if problems:
            entry["openapi"] = problems
            with st.lock:
                st.undescribed.append({"method": method, "path": path, "query": query, "problems": problems})
        if detail:
            entry["detail"] = detail
        with st.lock:
            st.request_count += 1
            used = st.request_count
            st.calls.append(entry)
            entry["seq"] = len(st.calls)
        if ghes is not None and answered_by != "fault":
            self.enterprise_doc_urls(reply, ghes)
        # Fault rules may set their own rate-limit headers; only add what is missing.
        reset = int(time.time()) // 3600 * 3600 + 3600
        base_headers = {
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": request_id,
        }
        if ghes is None or ghes >= GHES_API_VERSIONING:
            base_headers["X-GitHub-Api-Version-Selected"] = hdr.get("x-github-api-version") or DEFAULT_API_VERSION
        if ghes is not None:
            base_headers["X-GitHub-Enterprise-Version"] = self.ghes_full_version()
        if auth_kind != "none":
            base_headers.update(
                {
                    "X-RateLimit-Limit": "5000",
                    "X-RateLimit-Remaining": str(max(0, 5000 - used)),
                    "X-RateLimit-Reset": str(reset),
                    "X-RateLimit-Used": str(used),
                    "X-RateLimit-Resource": "core",
                }
            )
        lower = {k.lower() for k in reply.headers}
        for k, v in base_headers.items():
            if k.lower() not in lower:
                reply.headers[k] = v
        return reply

    @staticmethod
    def repeated_fields(headers: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
        """The single-value fields that came on more than one line, with
        their values in order (see SINGLE_VALUE_FIELDS)."""
        seen: dict[str, list[str]] = {}
        for k, v in headers:
            name = k.lower()
            if name in SINGLE_VALUE_FIELDS:
                seen.setdefault(name, []).append(v)
        return [(name, values) for name, values in seen.items() if len(values) > 1]

    @staticmethod
    def refuse_repeated(repeated: list[tuple[str, list[str]]]) -> Reply:
        """400 as a strict front end sends it: plain text, the connection
        closed (a repeated Content-Length leaves the framing unknown)."""
        lines = []
        for name, values in repeated:
            shown = "" if name in SECRET_FIELDS else ": " + ", ".join(json.dumps(v) for v in values)
            lines.append(f"{SINGLE_VALUE_FIELDS[name]} appears on {len(values)} header lines{shown}")
        text = (
            "400 Bad Request: "
            + "; ".join(lines)
            + ". A field that is not a comma-separated list must be sent once (RFC 9110, section 5.3).\n"
        )
        return Reply(400, raw=text.encode(), headers={"Content-Type": "text/plain; charset=utf-8", "Connection": "close"})

    def ghes_full_version(self) -> str:
        raw = str(self.state.config.get("ghes_version")).strip()
        return raw if raw.count(".") == 2 else f"{raw}.0"

    @staticmethod
    def enterprise_doc_urls(reply: Reply, ghes: tuple[int, ...]) -> None:
        """GHES links its own docs: https://docs.github.com/enterprise-server@X.Y/rest/..."""
        if not reply.headers.get("Content-Type", "").startswith("application/json"):
            return
        try:
            body = json.loads(reply.body)
        except ValueError:
            return
        doc = body.get("documentation_url") if isinstance(body, dict) else None
        if isinstance(doc, str) and doc.startswith("https://docs.github.com/rest"):
            body["documentation_url"] = doc.replace(
                "https://docs.github.com/", f"https://docs.github.com/enterprise-server@{ghes[0]}.{ghes[1]}/", 1
            )
            reply.body = json.dumps(body, indent=1).encode()

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

    def supported_api_versions(self) -> tuple[str, ...] | None:
        """None: the server does not check X-GitHub-Api-Version (GHES < 3.9)."""
        ghes = self.state.ghes
        if ghes is None or ghes >= GHES_API_2026:
            return SUPPORTED_API_VERSIONS
        if ghes >= GHES_API_VERSIONING:
            return (DEFAULT_API_VERSION,)
        return None

    def route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        hdr: dict[str, str],
        auth_kind: str,
        token: str | None,
        body: bytes,
        base: str,
        request_id: str,
    ) -> tuple[Reply, str | None, str]:
        if not hdr.get("user-agent"):
            return Reply(403, raw=USER_AGENT_MESSAGE.encode(), headers={"Content-Type": "text/html"}), "no User-Agent", "standin"
        version = hdr.get("x-github-api-version")
        supported_versions = self.supported_api_versions()
        if version is not None and supported_versions is not None and version not in supported_versions:
            supported = ", ".join(
                f'"{v}"' + (" (most recent)" if i == 0 else "") for i, v in enumerate(supported_versions)
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
        if method not in MUTATING:
            return self.route_admitted(method, path, query, hdr, auth_kind, token, body, base)
        st = self.state
        limits = st.extras["secondary_limit"]
        cap = limits["max_concurrent_mutations"]
        key = self.credential_key(hdr.get("authorization"))
        with st.inflight_lock:
            table = st.inflight
            busy = table.get(key, 0)
            if cap is not None and busy >= cap:
                refused = True
            else:
                refused = False
                table[key] = busy + 1
        if refused:
            status = limits["status"]
            headers = {}
            if limits["retry_after"] is not None:
                headers["retry-after"] = str(limits["retry_after"])
            reply = Reply(
                status,
                {
                    "message": SECONDARY_LIMIT_MESSAGE.format(request_id=request_id),
                    "documentation_url": SECONDARY_LIMIT_DOC,
                    "status": str(status),
                },
                headers,
            )
            return reply, f"{busy} mutating request(s) of this credential in flight (max {cap})", "secondary-limit"
        try:
            delay = st.extras["mutation_delay"]
            if delay:
                time.sleep(delay)
            return self.route_admitted(method, path, query, hdr, auth_kind, token, body, base)
        finally:
            with st.inflight_lock:
                left = table.get(key, 1) - 1
                if left > 0:
                    table[key] = left
                else:
                    table.pop(key, None)

    @staticmethod
    def credential_key(header: str | None) -> str:
        """Identifies a credential for the secondary limit without keeping it."""
        if not header:
            return "anonymous"
        _, _, cred = header.strip().partition(" ")
        return hashlib.sha256(cred.strip().encode()).hexdigest()

    def route_admitted(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        hdr: dict[str, str],
        auth_kind: str,
        token: str | None,
        body: bytes,
        base: str,
    ) -> tuple[Reply, str | None, str]:
        fault = self.take_fault(method, path)
        if fault is not None:
            delay = float(fault.get("delay_ms") or 0) / 1000.0
            if delay:
                time.sleep(delay)
            if fault.get("drop_response"):
                # The request takes effect, but its answer is "lost": the
                # client sees the fault instead (a 502 from a proxy, say).
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
        if path == "/_standin/runs":
            if method == "POST":
                if not isinstance(data, dict) or not data.get("repository"):
                    return Reply(400, {"error": 'expected {"repository": "o/r", "jobs": [{"key": ...}]}'})
                return Reply(201, st.workflow_runs.seed(data))
            if method == "GET":
                return Reply(200, st.workflow_runs.state())
        if path == "/_standin/runs/complete" and method == "POST":
            if not isinstance(data, dict) or not data.get("repository") or not data.get("id"):
                return Reply(400, {"error": 'expected {"repository": "o/r", "id": RUN_ID, "jobs": {KEY: {...}}}'})
            done = st.workflow_runs.complete(str(data["repository"]), int(data["id"]), data)
            return Reply(200, done) if done else Reply(404, {"error": "no such run"})
        if path == "/_standin/openapi" and method == "GET":
            with st.lock:
                return Reply(
                    200,
                    {
                        "package": self.description.package if self.description else None,
                        "error": self.description_error,
                        "undescribed": copy.deepcopy(st.undescribed),
                    },
                )
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
        ghes = st.ghes
        numeric_iss = isinstance(iss, int) and not isinstance(iss, bool) or (isinstance(iss, str) and iss.isdigit())
        if ghes is not None and ghes < GHES_CLIENT_ID_ISS and isinstance(iss, str) and not numeric_iss:
            # See the NOTE at GHES_CLIENT_ID_ISS.
            raise AuthFailure(
                gh_error(401, JWT_DECODE),
                f"iss {iss!r} is not a numeric App id: GHES {'.'.join(map(str, ghes))} accepts a client id from 3.18",
            )
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
                return Principal(
                    "pat", repositories=p["repositories"], organizations=p["organizations"], permissions=p["permissions"]
                )
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
    def web_base(self, base: str) -> str:
        """Where html_url points: github.com, or the GHES host itself."""
        if self.state.ghes is None:
            return "https://github.com"
        return base[: -len("/api/v3")] if base.endswith("/api/v3") else base

    def account_obj(self, base: str, login: str, kind: str = "Organization") -> dict[str, Any]:
        uid = stable_id("account", login)
        users = f"{base}/users/{login}"
        web = self.web_base(base)
        avatars = "https://avatars.githubusercontent.com" if self.state.ghes is None else f"{web}/avatars"
        return {
            "login": login,
            "id": uid,
            "node_id": node_id("04:User" if kind == "User" else "12:Organization", uid),
            "avatar_url": f"{avatars}/u/{uid}?v=4",
            "gravatar_id": "",
            "url": users,
            "html_url": f"{web}/{login}",
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
        web = self.web_base(base)
        return {
            "id": inst["id"],
            "client_id": app["client_id"],
            "account": account,
            "repository_selection": "selected" if inst["repositories"] else "all",
            "access_tokens_url": f"{base}/app/installations/{inst['id']}/access_tokens",
            "repositories_url": f"{base}/installation/repositories",
            "html_url": (
                f"{web}/organizations/{inst['account']}/settings/installations/{inst['id']}"
                if org
                else f"{web}/settings/installations/{inst['id']}"
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

    def repo_visibility(self, full_name: str) -> str:
        return self.state.extras["repositories"].get(full_name.lower(), "private")

    def owner_type(self, owner: str) -> str:
        for inst in self.state.installations.values():
            if inst["account"].lower() == owner.lower():
                return inst["account_type"]
        return "Organization"

    def repo_obj(self, base: str, full_name: str, owner_type: str | None = None) -> dict[str, Any]:
        """A repository with every property the OpenAPI "full-repository"
        schema requires (also a superset of "repository"'s essentials);
        `visibility` from config `repositories` (default private) and
        `private` = visibility != "public"."""
        owner, name = full_name.split("/", 1)
        rid = stable_id("repo", full_name)
        url = f"{base}/repos/{owner}/{name}"
        web = self.web_base(base)
        host = urlsplit(web).netloc
        visibility = self.repo_visibility(full_name)
        return {
            "id": rid,
            "node_id": node_id("010:Repository", rid),
            "name": name,
            "full_name": f"{owner}/{name}",
            "private": visibility != "public",
            "owner": self.account_obj(base, owner, owner_type or self.owner_type(owner)),
            "html_url": f"{web}/{owner}/{name}",
            "description": None,
            "fork": False,
            "url": url,
            "archive_url": f"{url}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{url}/assignees{{/user}}",
            "blobs_url": f"{url}/git/blobs{{/sha}}",
            "branches_url": f"{url}/branches{{/branch}}",
            "collaborators_url": f"{url}/collaborators{{/collaborator}}",
            "comments_url": f"{url}/comments{{/number}}",
            "commits_url": f"{url}/commits{{/sha}}",
            "compare_url": f"{url}/compare/{{base}}...{{head}}",
            "contents_url": f"{url}/contents/{{+path}}",
            "contributors_url": f"{url}/contributors",
            "deployments_url": f"{url}/deployments",
            "downloads_url": f"{url}/downloads",
            "events_url": f"{url}/events",
            "forks_url": f"{url}/forks",
            "git_commits_url": f"{url}/git/commits{{/sha}}",
            "git_refs_url": f"{url}/git/refs{{/sha}}",
            "git_tags_url": f"{url}/git/tags{{/sha}}",
            "git_url": f"git://{host}/{owner}/{name}.git",
            "issue_comment_url": f"{url}/issues/comments{{/number}}",
            "issue_events_url": f"{url}/issues/events{{/number}}",
            "issues_url": f"{url}/issues{{/number}}",
            "keys_url": f"{url}/keys{{/key_id}}",
            "labels_url": f"{url}/labels{{/name}}",
            "languages_url": f"{url}/languages",
            "merges_url": f"{url}/merges",
            "milestones_url": f"{url}/milestones{{/number}}",
            "notifications_url": f"{url}/notifications{{?since,all,participating}}",
            "pulls_url": f"{url}/pulls{{/number}}",
            "releases_url": f"{url}/releases{{/id}}",
            "ssh_url": f"git@{host}:{owner}/{name}.git",
            "stargazers_url": f"{url}/stargazers",
            "statuses_url": f"{url}/statuses/{{sha}}",
            "subscribers_url": f"{url}/subscribers",
            "subscription_url": f"{url}/subscription",
            "tags_url": f"{url}/tags",
            "teams_url": f"{url}/teams",
            "trees_url": f"{url}/git/trees{{/sha}}",
            "clone_url": f"{web}/{owner}/{name}.git",
            "mirror_url": None,
            "hooks_url": f"{url}/hooks",
            "svn_url": f"{web}/{owner}/{name}",
            "homepage": None,
            "language": None,
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 0,
            "default_branch": "main",
            "open_issues_count": 0,
            "open_issues": 0,
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": True,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": visibility,
            "license": None,
            "pushed_at": FIXED_CREATED,
            "created_at": FIXED_CREATED,
            "updated_at": FIXED_CREATED,
            "network_count": 0,
            "subscribers_count": 0,
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

        # ---- actions/runner releases (a public repository: any valid
        # credential, or none). NOTE: the latest release is the newest full
        # release (neither draft nor pre-release); the list is newest first,
        # paginated (per_page default 30, at most 100), and shows drafts only
        # to those with push access, which no caller here has:
        # https://docs.github.com/en/rest/releases/releases#get-the-latest-release
        # https://docs.github.com/en/rest/releases/releases#list-releases
        if segs[:4] == ["repos", "actions", "runner", "releases"] and len(segs) <= 5 and method == "GET":
            releases = self.state.extras.get("runner_releases")
            not_found = Reply(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})
            if releases is None or segs[4:] not in ([], ["latest"]):
                return not_found
            web = self.web_base(base)
            if segs[4:] == ["latest"]:
                latest = next((r for r in releases if not r.get("draft") and not r.get("prerelease")), None)
                if latest is None:
                    return not_found
                return Reply(200, runner_release_obj(latest, base, web))
            listed = [r for r in releases if not r.get("draft")]
            per_page, page = self.paging(query)
            chunk = listed[(page - 1) * per_page : page * per_page]
            return Reply(
                200,
                [runner_release_obj(r, base, web) for r in chunk],
                self.link_header(base, path, query, page, per_page, len(listed)),
            )

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
                    "external_url": app.get("external_url", f"{self.web_base(base)}/{owner_login}"),
                    "html_url": f"{self.web_base(base)}/apps/{app['slug']}",
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
            return self.create_installation_token(base, inst, body, hdr)
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

        # ---- meta
        if segs == ["meta"] and method == "GET":
            return self.meta(auth_kind, token)

        # ---- repository
        if len(segs) == 3 and segs[0] == "repos" and method == "GET":
            return self.get_repository(base, segs[1], segs[2], auth_kind, token)

        # ---- runner groups (organization)
        if len(segs) in (4, 5) and segs[0] == "orgs" and segs[2:4] == ["actions", "runner-groups"] and method == "GET":
            return self.runner_groups(base, segs[1], segs[4] if len(segs) == 5 else None, query, path, auth_kind, token)

        # ---- workflow runs, jobs and re-runs
        if len(segs) >= 6 and segs[0] == "repos" and segs[3] == "actions" and segs[4] in ("runs", "jobs"):
            principal = self.require_token(auth_kind, token)
            self.check_scope(principal, "repos", segs[1], segs[2])

            def permission(level: str) -> str | None:
                granted = principal.permissions
                if granted is None:
                    return None  # a classic token: `repo` covers Actions
                have = granted.get("actions")
                if PERMISSION_RANK.get(have or "", 0) >= PERMISSION_RANK[level]:
                    return None
                return f"actions: {have or 'none'}, {level} needed"

            return self.state.workflow_runs.handle(
                method, segs, query, body, base, path, permission,
                gh_error, Reply, self.paging, self.link_header,
            )

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

    def meta(self, auth_kind: str, token: str | None) -> Reply:
        """GET /meta needs no authentication; a credential that is sent is
        still checked (a bad one is 401 as everywhere). github.com: the
        api-overview essentials (addresses are documentation ranges); GHES:
        `installed_version` as the GHES OpenAPI api-overview schema has it."""
        if auth_kind == "jwt" and token is not None:
            self.verify_jwt(token)
        elif auth_kind != "none":
            self.require_token(auth_kind, token)
        if self.state.ghes is not None:
            return Reply(
                200,
                {
                    "verifiable_password_authentication": True,
                    "installed_version": self.ghes_full_version(),
                    "packages": [],
                    "domains": {},
                },
            )
        return Reply(
            200,
            {
                "verifiable_password_authentication": False,
                "ssh_key_fingerprints": {"SHA256_ED25519": "+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"},
                "hooks": ["192.0.2.0/24"],
                "web": ["192.0.2.0/24"],
                "api": ["192.0.2.0/24"],
                "git": ["192.0.2.0/24"],
                "actions": ["198.51.100.0/24"],
                "domains": {"website": ["*.github.com"], "actions": ["*.actions.githubusercontent.com"]},
            },
        )

    def get_repository(self, base: str, owner: str, repo: str, auth_kind: str, token: str | None) -> Reply:
        """GET /repos/{owner}/{repo} (operation repos/get).

        A public repository is readable by anyone (no credential, or any
        valid one). A private or internal one only with a PAT that reaches it
        or an installation token of an installation covering it; otherwise
        404 "Not Found", which GitHub answers instead of 403 so as not to
        confirm that a private repository exists
        (https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#404-not-found-for-an-existing-resource).
        "internal" is treated like "private" (the stand-in has no enterprise
        members)."""
        doc = f"{DOCS_REPOS}#get-a-repository"
        full = f"{owner}/{repo}".lower()
        visibility = self.repo_visibility(full)
        if auth_kind == "none":
            if visibility == "public":
                return Reply(200, self.repo_obj(base, f"{owner}/{repo}"))
            raise AuthFailure(gh_error(404, "Not Found", doc), "private repository, no credential")
        principal = self.require_token(auth_kind, token)
        if visibility != "public":
            if principal.kind == "pat":
                ok = full in principal.repositories or owner.lower() in principal.organizations
            else:
                inst = principal.installation
                repos = principal.repositories
                ok = inst["account"].lower() == owner.lower() and (repos is None or full in repos)
            if not ok:
                raise AuthFailure(gh_error(404, "Not Found", doc), f"{visibility} repository not reachable by this credential")
        return Reply(200, self.repo_obj(base, f"{owner}/{repo}"))

    def runner_groups(
        self,
        base: str,
        org: str,
        raw_id: str | None,
        query: dict[str, str],
        path: str,
        auth_kind: str,
        token: str | None,
    ) -> Reply:
        """GET /orgs/{org}/actions/runner-groups[/{id}] (operations
        actions/list-self-hosted-runner-groups-for-org and
        actions/get-self-hosted-runner-group-for-org); objects carry the
        required properties of schema "runner-groups-org". Installation
        tokens need organization_self_hosted_runners read (else 403
        "Resource not accessible by integration")."""
        principal = self.require_token(auth_kind, token)
        self.check_scope(principal, "orgs", org, None)
        if principal.kind == "installation":
            have = principal.permissions.get("organization_self_hosted_runners")
            if PERMISSION_RANK.get(have or "", 0) < PERMISSION_RANK["read"]:
                raise AuthFailure(
                    gh_error(403, "Resource not accessible by integration"),
                    "installation token lacks organization_self_hosted_runners: read",
                )
        groups = dict(self.state.extras["runner_groups"].get(org.lower(), {}))
        groups.setdefault(1, default_runner_group())
        if raw_id is None:
            per_page, page = self.paging(query)
            items = [self.runner_group_obj(base, org, g) for _, g in sorted(groups.items())]
            chunk = items[(page - 1) * per_page : page * per_page]
            return Reply(
                200,
                {"total_count": len(items), "runner_groups": chunk},
                self.link_header(base, path, query, page, per_page, len(items)),
            )
        group = groups.get(int(raw_id)) if raw_id.isdigit() else None
        if group is None:
            raise AuthFailure(
                gh_error(404, "Not Found", f"{DOCS_GROUPS}#get-a-self-hosted-runner-group-for-an-organization"),
                f"no runner group {raw_id} in {org}",
            )
        return Reply(200, self.runner_group_obj(base, org, group))

    @staticmethod
    def runner_group_obj(base: str, org: str, g: dict[str, Any]) -> dict[str, Any]:
        gid = g["id"]
        # URL shapes as in the OpenAPI example "runner-group-item".
        out: dict[str, Any] = {
            "id": gid,
            "name": g["name"],
            "visibility": g["visibility"],
            "default": g["default"],
            "runners_url": f"{base}/orgs/{org}/actions/runner_groups/{gid}/runners",
            "hosted_runners_url": f"{base}/orgs/{org}/actions/runner_groups/{gid}/hosted-runners",
            "inherited": False,
            "allows_public_repositories": g["allows_public_repositories"],
            "restricted_to_workflows": g["restricted_to_workflows"],
            "selected_workflows": list(g["selected_workflows"]),
            "workflow_restrictions_read_only": False,
        }
        if g["visibility"] == "selected":
            out["selected_repositories_url"] = f"{base}/orgs/{org}/actions/runner-groups/{gid}/repositories"
        return out

    def find_installation(self, app: dict[str, Any], raw_id: str) -> dict[str, Any]:
        inst = self.state.installations.get(int(raw_id)) if raw_id.isdigit() else None
        if inst is None or inst["app_id"] != app["id"]:
            raise AuthFailure(
                gh_error(404, "Not Found", f"{DOCS_APPS}#get-an-installation-for-the-authenticated-app"),
                f"installation {raw_id} does not belong to app {app['id']}",
            )
        return inst

    def create_installation_token(self, base: str, inst: dict[str, Any], body: bytes, hdr: dict[str, str]) -> Reply:
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
        st = self.state
        # Whole seconds, so that expires_at is exactly when the token stops
        # working (see the NOTE at DEFAULT_TOKEN_TTL).
        now = time.time()
        expires_ts = math.floor(now + st.extras["token_ttl"])
        expires = datetime.fromtimestamp(expires_ts, timezone.utc)
        fmt = st.extras["token_format"]
        if st.ghes is None:
            override = (hdr.get(STATELESS_HEADER) or "").strip()
            fmt = {"enabled": "long", "disabled": "classic"}.get(override, fmt)
        if fmt == "long":
            tok = self.long_token(inst, int(now), expires_ts)
        else:
            tok = "ghs_" + secrets.token_urlsafe(27).replace("-", "A").replace("_", "b")[:36]
        with self.state.lock:
            self.state.issued[tok] = {
                "installation": inst,
                "repositories": set(repos) if repos is not None else None,
                "permissions": perms,
                "expires": float(expires_ts),
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
    def long_token(inst: dict[str, Any], iat: int, exp: int) -> str:
        """A stateless installation token, "ghs_APPID_JWT" (see the NOTE at
        TOKEN_FORMATS): a JWT whose claims name the installation and app,
        signed with a random 2048-bit-sized signature (clients must treat it
        as opaque, so nothing can or should verify it). About 520 characters;
        kept within GitHub's published pattern ghs_[A-Za-z0-9._]{36,}, so the
        base64url segments avoid "-"."""
        header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
        for _ in range(10000):
            claims = {
                "iss": "https://github.com",
                "aid": inst["app_id"],
                "iid": inst["id"],
                "iat": iat,
                "exp": exp,
                "jti": secrets.token_hex(8),
            }
            payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
            if "-" not in payload:
                break
        signature = b64url(secrets.token_bytes(256)).replace("-", "_")
        tok = f"ghs_{inst['app_id']}_{header}.{payload}.{signature}"
        assert LONG_TOKEN_RE.match(tok), tok
        return tok

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
                items = [
                    self.public_runner(r) for _, r in sorted(st.runners.get(key, {}).items()) if self.listed(r)
                ]
            if "name" in query:
                items = [r for r in items if r["name"] == query["name"]]
            chunk = items[(page - 1) * per_page : page * per_page]
            return Reply(
                200,
                {"total_count": len(items), "runners": chunk},
                self.link_header(base, path, query, page, per_page, len(items)),
            )
        if rest == ["generate-jitconfig"] and method == "POST":
            if st.ghes is not None and st.ghes < GHES_JIT:
                # See the NOTE at GHES_JIT: no such route before 3.10.
                raise AuthFailure(gh_error(404, "Not Found"), f"GHES {'.'.join(map(str, st.ghes))} has no JIT configs (3.10+)")
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
                if r is None or not self.listed(r):
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

    def listed(self, r: dict[str, Any]) -> bool:
        """Whether the runner list (and GET/DELETE by id) can see the runner
        yet: `runner_visibility_delay_ms` after its creation.

        Models eventual consistency between creating a JIT runner and the
        runner list. GitHub documents no such delay: this is an assumption,
        prompted by reports of runners missing from the list and appearing
        later (actions/runner#936, actions/runner#756) and of a registration
        not found right after its JIT config was made (actions/runner#2507).
        The name stays taken meanwhile (a second JIT config with that name
        is still 409)."""
        delay = self.state.extras["runner_visibility_delay"]
        return not delay or time.monotonic() - r["_created"] >= delay

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
            "GitHubUrl": f"{self.web_base(base)}/{target}",
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
                if reply.headers.get("Connection") == "close":
                    self.send_header("Connection", "close")
                    self.close_connection = True
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
