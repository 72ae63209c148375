#!/usr/bin/env python3
"""Regenerate src/catalogue/instance_types.tsv, the catalogue of EC2 instance types, from AWS's
DescribeInstanceTypes data as moto ships it.

moto (pinned in testenv/requirements.txt) carries the DescribeInstanceTypes answer for every
instance type in moto/ec2/resources/instance_types.json.gz, a JSON object from instance type
name to that type's InstanceTypeInfo. moto's own scripts/get_instance_info.py fills it from the
real API, asking every region in turn and keeping the last answer it got for each type.

This script keeps the types that can be launched as spot or on-demand
(SupportedUsageClasses), of the current generation or not, and that run x86_64 or arm64 code
(ProcessorInfo.SupportedArchitectures; the Mac types, "x86_64_mac" and "arm64_mac", are left
out, and a type offering i386 besides x86_64 counts as x86_64). For each it writes one row:

    instance_type  the API name, e.g. c7g.large
    family         the part of the name before the first dot, e.g. c7g
    vcpus          VCpuInfo.DefaultVCpus
    memory_mib     MemoryInfo.SizeInMiB
    arch           x86_64 or arm64
    burstable      yes/no: BurstablePerformanceSupported (the T families)
    gpus           the number of whole GPUs (the sum of GpuInfo.Gpus[].Count), 0 when none;
                   a type with a slice of a GPU (GpuPartitionSize below 1, e.g. g6f) has 0
    accelerators   the kinds of accelerator the type has, one for each field of
                   InstanceTypeInfo that describes one, joined by "|", "-" when none:
                   gpu (GpuInfo; a slice of a GPU included), fpga (FpgaInfo), inference
                   (InferenceAcceleratorInfo: AWS Inferentia, Qualcomm AI 100), neuron
                   (NeuronInfo: AWS Inferentia and Trainium), media (MediaAcceleratorInfo:
                   video transcoders). gpu, fpga, inference and media are the words of EC2's
                   AcceleratorType (attribute-based instance type selection).
    instance_store_disks
                   the number of instance-store disks (the sum of
                   InstanceStorageInfo.Disks[].Count), 0 when none
    instance_store_gb
                   InstanceStorageInfo.TotalSizeInGB, 0 when none
    nvme           yes/no: whether the instance store is NVMe (NvmeSupport "required" or
                   "supported"), "-" when there is no instance store
    bare_metal     yes/no: BareMetal
    current        yes/no: CurrentGeneration (AWS calls c5, m5 and m6i, among others,
                   previous generation by now, and still sells them)
    spot           yes/no: whether SupportedUsageClasses has "spot"

The rows are sorted by instance type name (plain string order).

Where the data comes from (--from-file, or else the moto installed for the Python running this
script, found with importlib without importing it):

    - a moto wheel (.whl): the file is read from inside it, and moto's version from the wheel;
    - instance_types.json.gz or instance_types.json, from an unpacked or installed moto, or any
      file in that format. A plain DescribeInstanceTypes response ({"InstanceTypes": [...]},
      as `aws ec2 describe-instance-types` prints it) is read too.

Typical use, from the repository root (the project's test venv is left alone):

    pip download moto==5.2.5 --no-deps -d /tmp/moto-wheel
    python3 scripts/update-instance-types.py --from-file /tmp/moto-wheel/moto-5.2.5-py3-none-any.whl
    python3 scripts/update-instance-types.py --from-file .../instance_types.json.gz --output -

Testing, from the repository root (prints nothing when all is well):

    python3 scripts/update-instance-types.py --date 2026-11-28 --output - \
        --from-file scripts/testdata/instance-types-sample.json 2>/dev/null \
      | diff - scripts/testdata/expected-instance_types.tsv

The sample holds sixteen entries of moto's file, cut down to the fields that matter here
(p5.4xlarge altered to be sold only as a capacity block). Between them they cover every rule:
a previous-generation type (m4.large), kept; one sold neither as spot nor on-demand
(p5.4xlarge) and a Mac type (mac2.metal), both dropped; an i386+x86_64 type (t2.micro); a burstable arm64
type (t4g.micro); an arm64 and an x86_64 compute type (c7g.large, c7i.large); instance stores
with NVMe and two disks (i4i.8xlarge) and without NVMe on HDD (h1.2xlarge); a bare-metal type
without a Hypervisor field (c7g.metal); a GPU type with four GPUs (g4dn.12xlarge) and one with
an eighth of a GPU (g6f.large); and one type of each other accelerator kind: Inferentia
(inf2.xlarge, with both InferenceAcceleratorInfo and NeuronInfo), Trainium (trn1.2xlarge,
NeuronInfo only), an FPGA (f2.6xlarge) and a media accelerator (vt1.3xlarge).

Standard library only.
"""

import argparse
import datetime
import gzip
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
import zipfile

RESOURCE = "moto/ec2/resources/instance_types.json"  # moto ships it gzipped, with ".gz" added
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS = os.path.join(REPO, "testenv", "requirements.txt")

COLUMNS = (
    "instance_type",
    "family",
    "vcpus",
    "memory_mib",
    "arch",
    "burstable",
    "gpus",
    "accelerators",
    "instance_store_disks",
    "instance_store_gb",
    "nvme",
    "bare_metal",
    "current",
    "spot",
)

USAGE_CLASSES = ("spot", "on-demand")
# The accelerator kinds and the field of InstanceTypeInfo that tells each. gpu, fpga, inference
# and media are the values of EC2's AcceleratorType (InstanceRequirements.AcceleratorTypes);
# NeuronInfo (Inferentia and Trainium) has no word there and is named after its field.
# NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceTypeInfo.html
# NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceRequirements.html
ACCELERATOR_FIELDS = (
    ("gpu", "GpuInfo"),
    ("fpga", "FpgaInfo"),
    ("inference", "InferenceAcceleratorInfo"),
    ("neuron", "NeuronInfo"),
    ("media", "MediaAcceleratorInfo"),
)
NVME_YES = ("required", "supported")
NVME_NO = ("unsupported",)


class DataError(Exception):
    """The instance-type data is not what this script expects."""


def pinned_moto():
    """The moto version pinned in testenv/requirements.txt, or None."""
    try:
        with open(REQUIREMENTS, encoding="utf-8") as stream:
            for line in stream:
                match = re.match(r"\s*moto(\[[^\]]*\])?\s*==\s*([^\s;#]+)", line)
                if match:
                    return match.group(2)
    except OSError:
        pass
    return None


# --- reading -------------------------------------------------------------------------------


def decode(raw, name):
    """JSON from bytes that may be gzipped (by content, not by name)."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{name}: not a readable gzip file: {err}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{name}: not JSON: {err}") from None


def version_from_dist_info(directory):
    """moto's version from a moto-*.dist-info folder in `directory`, or None."""
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return None
    for entry in entries:
        if entry.startswith("moto-") and entry.endswith(".dist-info"):
            try:
                with open(os.path.join(directory, entry, "METADATA"), encoding="utf-8") as meta:
                    for line in meta:
                        if line.startswith("Version:"):
                            return line.split(":", 1)[1].strip()
                        if not line.strip():
                            break
            except OSError:
                pass
            match = re.fullmatch(r"moto-(.+)\.dist-info", entry)
            return match.group(1) if match else None
    return None


def read_wheel(path):
    """(data, moto version, name of the file inside) from a moto wheel."""
    try:
        with zipfile.ZipFile(path) as wheel:
            names = set(wheel.namelist())
            inside = next((n for n in (RESOURCE + ".gz", RESOURCE) if n in names), None)
            if inside is None:
                raise DataError(f"{path}: no {RESOURCE}[.gz] in this wheel")
            version = None
            for name in sorted(names):
                match = re.fullmatch(r"moto-([^/]+)\.dist-info/METADATA", name)
                if match:
                    version = match.group(1)
                    for line in wheel.read(name).decode("utf-8", "replace").splitlines():
                        if line.startswith("Version:"):
                            version = line.split(":", 1)[1].strip()
                            break
                        if not line.strip():
                            break
                    break
            raw = wheel.read(inside)
    except zipfile.BadZipFile as err:
        raise DataError(f"{path}: not a readable wheel: {err}") from None
    return decode(raw, f"{path}:{inside}"), version, inside


def moto_place(path):
    """For a file inside a moto tree (.../moto/ec2/resources/instance_types.json[.gz]):
    (its name from "moto/" on, the folder holding "moto/"); else None."""
    parts = os.path.abspath(path).split(os.sep)
    tail = RESOURCE.split("/")
    if len(parts) >= len(tail) and parts[-len(tail):-1] == tail[:-1]:
        return "/".join(parts[-len(tail):]), os.sep.join(parts[:-len(tail)]) or os.sep
    return None


def read_source(path):
    """(data, moto version or None, how the header names the file) for --from-file."""
    if path.endswith(".whl"):
        data, version, inside = read_wheel(path)
        return data, version, inside
    with open(path, "rb") as stream:
        data = decode(stream.read(), path)
    place = moto_place(path)
    if place is None:
        return data, None, path
    inside, root = place
    return data, version_from_dist_info(root), inside


def installed_moto():
    """The path of the instance-type file of the installed moto and moto's version."""
    spec = importlib.util.find_spec("moto")
    if spec is None or not spec.submodule_search_locations:
        pin = pinned_moto() or "VERSION"
        raise DataError(
            "no --from-file and no moto installed for this Python. Get moto's data without "
            f"installing it: pip download moto=={pin} --no-deps -d /tmp/moto-wheel, then "
            f"--from-file /tmp/moto-wheel/moto-{pin}-py3-none-any.whl"
        )
    relative = RESOURCE.split("/", 1)[1]
    for location in spec.submodule_search_locations:
        for suffix in (".gz", ""):
            candidate = os.path.join(location, *relative.split("/")) + suffix
            if os.path.isfile(candidate):
                try:
                    version = importlib.metadata.version("moto")
                except importlib.metadata.PackageNotFoundError:
                    version = None
                return candidate, version
    places = ", ".join(spec.submodule_search_locations)
    raise DataError(f"the installed moto ({places}) has no {RESOURCE}[.gz]")


def instance_infos(data):
    """{name: InstanceTypeInfo} from moto's object keyed by name, a DescribeInstanceTypes
    response or a bare list of InstanceTypeInfo."""
    if isinstance(data, dict) and isinstance(data.get("InstanceTypes"), list):
        data = data["InstanceTypes"]
    if isinstance(data, list):
        infos = {}
        for info in data:
            name = info.get("InstanceType") if isinstance(info, dict) else None
            if not isinstance(name, str):
                raise DataError("an entry of the list has no InstanceType")
            if name in infos:
                raise DataError(f"{name} is listed twice")
            infos[name] = info
        return infos
    if not isinstance(data, dict) or not data:
        raise DataError("expected an object from instance type name to its description")
    for name, info in data.items():
        if not isinstance(info, dict):
            raise DataError(f"{name}: its description is not an object")
        if info.get("InstanceType", name) != name:
            raise DataError(
                f"{name}: listed under another name than its InstanceType {info['InstanceType']!r}"
            )
    return data


# --- one row -------------------------------------------------------------------------------


def field(info, name, *path, kind):
    """info[path...], which must be present and of `kind`."""
    value = info
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise DataError(f"{name}: no {'.'.join(path)}")
        value = value[key]
    # bool is an int in Python: never accept one for the other.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DataError(f"{name}: {'.'.join(path)} is {value!r}, not {kind.__name__}")
    return value


def yes_no(flag):
    return "yes" if flag else "no"


def drop_reason(name, info):
    """Why a type is left out ("usage class", "architecture"), or None."""
    classes = field(info, name, "SupportedUsageClasses", kind=list)
    if not any(c in classes for c in USAGE_CLASSES):
        return "usage class"
    if architecture(name, info) is None:
        return "architecture"
    return None


def architecture(name, info):
    archs = field(info, name, "ProcessorInfo", "SupportedArchitectures", kind=list)
    if "x86_64" in archs:
        return "x86_64"
    if "arm64" in archs:
        return "arm64"
    return None


def row(name, info):
    """The table row (a tuple of strings) of a type that is kept."""
    vcpus = field(info, name, "VCpuInfo", "DefaultVCpus", kind=int)
    memory = field(info, name, "MemoryInfo", "SizeInMiB", kind=int)
    if vcpus <= 0 or memory <= 0:
        raise DataError(f"{name}: {vcpus} vCPUs and {memory} MiB")
    burstable = field(info, name, "BurstablePerformanceSupported", kind=bool)
    bare_metal = field(info, name, "BareMetal", kind=bool)

    gpus = 0
    if "GpuInfo" in info:
        for gpu in field(info, name, "GpuInfo", "Gpus", kind=list):
            gpus += field(gpu, name, "Count", kind=int)
    accelerators = []
    for kind, key in ACCELERATOR_FIELDS:
        if key in info:
            if not isinstance(info[key], dict) or not info[key]:
                raise DataError(f"{name}: {key} is {info[key]!r}, not a description")
            accelerators.append(kind)

    disks = size_gb = 0
    nvme = "-"
    has_store = field(info, name, "InstanceStorageSupported", kind=bool)
    if has_store != ("InstanceStorageInfo" in info):
        state = "there" if "InstanceStorageInfo" in info else "missing"
        raise DataError(
            f"{name}: InstanceStorageSupported is {has_store} but InstanceStorageInfo is {state}"
        )
    if has_store:
        for disk in field(info, name, "InstanceStorageInfo", "Disks", kind=list):
            disks += field(disk, name, "Count", kind=int)
        size_gb = field(info, name, "InstanceStorageInfo", "TotalSizeInGB", kind=int)
        support = field(info, name, "InstanceStorageInfo", "NvmeSupport", kind=str)
        if support in NVME_YES:
            nvme = "yes"
        elif support in NVME_NO:
            nvme = "no"
        else:
            raise DataError(f"{name}: unknown InstanceStorageInfo.NvmeSupport {support!r}")
        if disks <= 0 or size_gb <= 0:
            raise DataError(f"{name}: an instance store of {disks} disks and {size_gb} GB")

    return (
        name,
        name.split(".", 1)[0],
        str(vcpus),
        str(memory),
        architecture(name, info),
        yes_no(burstable),
        str(gpus),
        "|".join(accelerators) or "-",
        str(disks),
        str(size_gb),
        nvme,
        yes_no(bare_metal),
        yes_no(field(info, name, "CurrentGeneration", kind=bool)),
        yes_no("spot" in field(info, name, "SupportedUsageClasses", kind=list)),
    )


def build(infos):
    """(rows sorted by name, {drop reason: count})."""
    rows = []
    dropped = {}
    for name in sorted(infos):
        info = infos[name]
        reason = drop_reason(name, info)
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        rows.append(row(name, info))
    return rows, dropped


# --- writing -------------------------------------------------------------------------------


def render(rows, source, version, as_of):
    """The whole instance_types.tsv text."""
    if version:
        origin = [
            f"# source: AWS EC2 DescribeInstanceTypes, as shipped by moto {version} in",
            f"#   {source}; moto's scripts/get_instance_info.py asks every",
            "#   region, GovCloud and China included, and keeps the last answer for each type.",
        ]
    else:
        origin = [f"# source: AWS EC2 DescribeInstanceTypes data read from {source}."]
    lines = [
        "# EC2 instance types sold as spot or on-demand, x86_64 or arm64",
        "# (Mac types left out), one row each, for matching an instance-requirements input.",
        f"# as-of: {as_of}",
        *origin,
        "# columns: vcpus = default vCPUs; memory_mib in MiB; arch x86_64 or arm64; burstable",
        "#   yes/no (T families); gpus = whole GPUs (0 when none, and for a slice of one);",
        "#   accelerators = gpu, fpga, inference, neuron, media joined by |, - when none;",
        "#   instance_store_disks and instance_store_gb (0 when none); nvme yes/no, - without an",
        "#   instance store; bare_metal yes/no; current = AWS's CurrentGeneration; spot = sold",
        "#   as spot.",
        "#   Sorted by instance_type.",
        f"# taken: {as_of}, by scripts/update-instance-types.py.",
        "# regenerate with the moto version pinned in testenv/requirements.txt (see --help):",
        f"#   pip download moto=={version or 'VERSION'} --no-deps -d /tmp/moto-wheel",
        "#   python3 scripts/update-instance-types.py \\",
        f"#     --from-file /tmp/moto-wheel/moto-{version or 'VERSION'}-py3-none-any.whl",
        "\t".join(COLUMNS),
    ]
    lines += ["\t".join(r) for r in rows]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Regenerate src/catalogue/instance_types.tsv from AWS's DescribeInstanceTypes data "
        "as shipped by moto.",
    )
    parser.add_argument(
        "--from-file",
        metavar="PATH",
        help="a moto wheel (.whl), moto's instance_types.json[.gz] or a DescribeInstanceTypes "
        "response (default: the file of the moto installed for this Python)",
    )
    parser.add_argument(
        "--output",
        default=os.path.join(REPO, "src", "catalogue", "instance_types.tsv"),
        help="where to write the table, '-' for standard output (default: %(default)s)",
    )
    parser.add_argument(
        "--date",
        help="the as-of date to write, YYYY-MM-DD (default: today, UTC)",
    )
    parser.add_argument(
        "--moto-version",
        help="moto's version to name in the header when it cannot be read from the source",
    )
    args = parser.parse_args(argv)
    if args.date:
        try:
            datetime.date.fromisoformat(args.date)
        except ValueError:
            parser.error(f"--date wants YYYY-MM-DD, got {args.date!r}")
        as_of = args.date
    else:
        as_of = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    return args, as_of


def main(argv=None):
    args, as_of = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.from_file:
            location = args.from_file
            installed_version = None
        else:
            location, installed_version = installed_moto()
        data, version, source = read_source(location)
        version = args.moto_version or installed_version or version
        pin = pinned_moto()
        if not args.from_file and pin and version != pin:
            print(f"update-instance-types: warning: the installed moto is {version}, not {pin} as "
                  "pinned in testenv/requirements.txt", file=sys.stderr)
        infos = instance_infos(data)
        rows, dropped = build(infos)
    except (OSError, DataError) as err:
        print(f"update-instance-types: {err}", file=sys.stderr)
        return 1
    if not rows:
        print("update-instance-types: no instance type kept; nothing written", file=sys.stderr)
        return 1

    text = render(rows, source, version, as_of)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(dropped.items()))
    print(
        f"update-instance-types: wrote {len(rows)} of the {len(infos)} instance types in "
        f"{location}" + (f" (moto {version})" if version else "") + " to "
        f"{'standard output' if args.output == '-' else args.output}; dropped "
        f"{sum(dropped.values())}" + (f" ({reasons})" if reasons else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
