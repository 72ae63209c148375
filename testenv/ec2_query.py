"""The EC2 Query protocol's flattened lists, shared by the EC2 shim and the
IAM model: `Prefix.1`, `Prefix.2`, ... as sent by every AWS SDK.
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/Query-Requests.html
"""

from __future__ import annotations

from typing import Mapping


def indexed(params: Mapping[str, str], prefix: str) -> list[str]:
    """Values of prefix.1, prefix.2, ... in index order."""
    out = []
    for key, value in params.items():
        if key.startswith(prefix + "."):
            rest = key[len(prefix) + 1 :]
            if rest.isdigit():
                out.append((int(rest), value))
    return [v for _, v in sorted(out)]


def numbered(params: Mapping[str, str], prefix: str) -> list[int]:
    """N of every ``prefix.N.*`` key, sorted."""
    nums = set()
    for key in params:
        if key.startswith(prefix + "."):
            part = key[len(prefix) + 1 :].split(".", 1)[0]
            if part.isdigit():
                nums.add(int(part))
    return sorted(nums)


def tag_specifications(params: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``TagSpecification.N.ResourceType`` + ``.Tag.M.Key/Value`` ->
    {resource type: {key: value}} in request order."""
    out: dict[str, dict[str, str]] = {}
    for n in numbered(params, "TagSpecification"):
        rtype = params.get(f"TagSpecification.{n}.ResourceType")
        if not rtype:
            continue
        tags = out.setdefault(rtype, {})
        for m in numbered(params, f"TagSpecification.{n}.Tag"):
            key = params.get(f"TagSpecification.{n}.Tag.{m}.Key")
            if key is not None:
                tags[key] = params.get(f"TagSpecification.{n}.Tag.{m}.Value", "")
    return out
