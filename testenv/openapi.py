"""GitHub's OpenAPI description as a check on the requests the stand-in receives.

    python testenv/openapi.py --ensure     # prints the index path, installing it once

The description is the one GitHub publishes for api.github.com, pinned as npm
package @octokit/openapi (generated/api.github.com.json). --ensure fetches
that package with npm (checking the registry's sha512 of the pinned version),
reads the description and keeps a compact index beside it: every operation's
method, path template, parameters and request body schema, with `$ref`s
resolved. The stand-in loads the index when EC2SR_GITHUB_OPENAPI names it
and records, for each API request, what does not match the description
(`check`): a method and path no operation describes, a path or query
parameter that is undescribed, missing or of the wrong type, a body missing
where required or failing the body schema.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from typing import Any

PACKAGE = "@octokit/openapi"
VERSION = "23.0.2"
# `npm view @octokit/openapi@23.0.2 dist.integrity`
INTEGRITY = "sha512-pV8M7L9GY23AybNvTmo2nyjmpmnt6+2sRE/tqr0ZLQcPS4lnw7u5eZGNmwRNkBC3D7gZXbFx5AHzLUVRBXGDhg=="
MEMBER = "package/generated/api.github.com.json"
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "ec2-spot-runner", "openapi")
INDEX = os.path.join(CACHE, f"api.github.com-{VERSION}.index.json")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


# ------------------------------------------------------------ building
def _resolve(doc: dict[str, Any], node: Any, seen: tuple[str, ...] = ()) -> Any:
    """`node` with every local `$ref` replaced by its target; a reference
    back into itself stays an empty schema (accepts anything)."""
    if isinstance(node, list):
        return [_resolve(doc, x, seen) for x in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref in seen or not ref.startswith("#/"):
            return {}
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part]
        return _resolve(doc, target, seen + (ref,))
    return {
        k: _resolve(doc, v, seen)
        for k, v in node.items()
        if k not in ("description", "examples", "example", "x-github", "externalDocs", "title")
    }


def build_index(doc: dict[str, Any]) -> dict[str, Any]:
    ops = []
    for path, item in doc["paths"].items():
        common = item.get("parameters", [])
        for method, op in item.items():
            if method not in METHODS:
                continue
            params = []
            for p in _resolve(doc, common + op.get("parameters", [])):
                params.append(
                    {"name": p["name"], "in": p["in"], "required": bool(p.get("required")), "schema": p.get("schema", {})}
                )
            body = _resolve(doc, op.get("requestBody"))
            body_schema = None
            if body:
                body_schema = (body.get("content", {}).get("application/json") or {}).get("schema")
            ops.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "operation": op.get("operationId"),
                    "params": params,
                    "body_required": bool(body and body.get("required")),
                    "body_described": bool(body),
                    "body_schema": body_schema,
                }
            )
    return {"package": f"{PACKAGE}@{VERSION}", "operations": ops}


def ensure() -> str:
    """The index path; fetches the pinned package and builds it when missing."""
    if os.path.exists(INDEX):
        return INDEX
    os.makedirs(CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        out = subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp, "--silent", "--loglevel=error"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip().splitlines()
        tarball = os.path.join(tmp, out[-1])
        with open(tarball, "rb") as fh:
            digest = "sha512-" + base64.b64encode(hashlib.sha512(fh.read()).digest()).decode()
        if digest != INTEGRITY:
            raise SystemExit(f"openapi.py: {PACKAGE}@{VERSION} has integrity {digest}, expected {INTEGRITY}")
        with tarfile.open(tarball) as tar:
            member = tar.extractfile(MEMBER)
            if member is None:
                raise SystemExit(f"openapi.py: {MEMBER} is missing from {PACKAGE}@{VERSION}")
            doc = json.load(member)
        partial = os.path.join(tmp, "index.json")
        with open(partial, "w", encoding="utf-8") as fh:
            json.dump(build_index(doc), fh, separators=(",", ":"))
        os.replace(partial, INDEX)
    return INDEX


# ------------------------------------------------------------ checking
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def schema_errors(schema: dict[str, Any], value: Any, at: str = "") -> list[str]:
    """Where `value` breaks an OpenAPI 3.0 schema (the keywords GitHub's
    request schemas use; `format` is not checked). Loading a JSON Schema
    library costs each stand-in start most of a second: this is enough."""
    where = at or "the value"
    if not schema:
        return []
    if value is None:
        return [] if schema.get("nullable") or "type" not in schema else [f"{where} is null"]
    kind = schema.get("type")
    if kind:
        ok = isinstance(value, JSON_TYPES.get(kind, (object,)))
        if kind in ("integer", "number") and isinstance(value, bool):
            ok = False
        if kind == "integer" and isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            return [f"{where} {json.dumps(value)[:60]} is not of type {kind}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where} {json.dumps(value)[:60]} is not one of {schema['enum']}")
    for key, alternatives in (("oneOf", "exactly one"), ("anyOf", "any")):
        if key in schema:
            fits = sum(1 for alt in schema[key] if not schema_errors(alt, value, at))
            if (key == "oneOf" and fits != 1) or (key == "anyOf" and fits == 0):
                errors.append(f"{where} matches {fits} of the {key} schemas, not {alternatives}")
    for alt in schema.get("allOf", []):
        errors.extend(schema_errors(alt, value, at))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: required property {name!r} is missing")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                errors.extend(schema_errors(props[name], item, f"{at}.{name}" if at else name))
            elif extra is False:
                errors.append(f"{where}: property {name!r} is not allowed")
            elif isinstance(extra, dict):
                errors.extend(schema_errors(extra, item, f"{at}.{name}" if at else name))
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errors.append(f"{where} has more than {schema['maxProperties']} properties")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where} has {len(value)} items, fewer than {schema['minItems']}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where} has {len(value)} items, more than {schema['maxItems']}")
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            errors.append(f"{where} repeats an item")
        for i, item in enumerate(value):
            errors.extend(schema_errors(schema.get("items", {}), item, f"{at}[{i}]"))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where} is shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where} is longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where} does not match {schema['pattern']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where} {value} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where} {value} is above {schema['maximum']}")
    return errors


class Description:
    """The operations of the index, matched against requests."""

    def __init__(self, index_path: str):
        with open(index_path, encoding="utf-8") as fh:
            index = json.load(fh)
        self.package = index["package"]
        self.by_path: list[tuple[re.Pattern[str], list[str], int, str, dict[str, dict[str, Any]]]] = []
        grouped: dict[str, dict[str, dict[str, Any]]] = {}
        for op in index["operations"]:
            grouped.setdefault(op["path"], {})[op["method"]] = op
        for path, methods in grouped.items():
            # Parameter names may hold '-', which a regex group name cannot.
            names = re.findall(r"\{([^}]+)\}", path)
            pattern = "^"
            for i, part in enumerate(re.split(r"\{[^}]+\}", path)):
                pattern += re.escape(part) + (f"(?P<p{i}>[^/]+)" if i < len(names) else "")
            literal = sum(1 for seg in path.split("/") if seg and "{" not in seg)
            self.by_path.append((re.compile(pattern + "$"), names, literal, path, methods))

    @staticmethod
    def _typed(schema: dict[str, Any], raw: str) -> Any:
        """A path or query value as its schema's type (the wire has strings)."""
        kind = schema.get("type")
        try:
            if kind == "integer":
                return int(raw)
            if kind == "number":
                return float(raw)
        except ValueError:
            return raw
        if kind == "boolean" and raw in ("true", "false"):
            return raw == "true"
        return raw

    def check(self, method: str, path: str, query: dict[str, str], body: bytes) -> list[str]:
        """What in one request does not match the description (empty: all does)."""
        matches = [
            (literal, tpl, methods, {name: m.group(f"p{i}") for i, name in enumerate(names)})
            for rx, names, literal, tpl, methods in self.by_path
            if (m := rx.match(path))
        ]
        if not matches:
            return [f"no operation for path {path}"]
        matches.sort(key=lambda x: -x[0])
        with_method = [x for x in matches if method in x[2]]
        if not with_method:
            return [f"{method} {path}: {matches[0][1]} describes only {', '.join(sorted(matches[0][2]))}"]
        _, template, methods, values = with_method[0]
        op = methods[method]
        where = f"{method} {template} ({op['operation']})"
        problems: list[str] = []
        described_query = set()
        for p in op["params"]:
            if p["in"] == "path":
                value = values[p["name"]]
                for err in schema_errors(p["schema"], self._typed(p["schema"], value))[:3]:
                    problems.append(f"{where}: path parameter {p['name']}={value!r}: {err}")
            elif p["in"] == "query":
                described_query.add(p["name"])
                if p["name"] not in query:
                    if p["required"]:
                        problems.append(f"{where}: query parameter {p['name']} is required")
                    continue
                value = query[p["name"]]
                for err in schema_errors(p["schema"], self._typed(p["schema"], value))[:3]:
                    problems.append(f"{where}: query parameter {p['name']}={value!r}: {err}")
        for name in sorted(set(query) - described_query):
            problems.append(f"{where}: query parameter {name} is not described")
        if not body:
            if op["body_required"]:
                problems.append(f"{where}: a request body is required")
            return problems
        if not op["body_described"]:
            problems.append(f"{where}: the operation takes no request body, got {len(body)} bytes")
            return problems
        try:
            value = json.loads(body)
        except ValueError:
            problems.append(f"{where}: the body is not JSON")
            return problems
        if op["body_schema"] is not None:
            for err in schema_errors(op["body_schema"], value, "body")[:3]:
                problems.append(f"{where}: {err}")
        return problems


def load_from_env() -> Description | None:
    path = os.environ.get("EC2SR_GITHUB_OPENAPI")
    return Description(path) if path else None


if __name__ == "__main__":
    if sys.argv[1:] == ["--ensure"]:
        print(ensure())
    else:
        raise SystemExit(__doc__)
