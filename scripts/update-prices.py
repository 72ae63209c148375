#!/usr/bin/env python3
"""Regenerate src/pricing/on_demand.tsv from AWS's public Price List bulk offer files.

For each region it reads the AmazonEC2 offer file

    https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/<region>/index.json

keeps the products that are a Linux instance with shared tenancy, no pre-installed software and
capacity status "Used" (ordinary on-demand usage, not an idle capacity reservation) in the region
itself (not one of its Local Zones), and takes the USD per-hour price of their OnDemand term. Only
the instance families and sizes listed in FAMILIES and SIZES below are written.

The offer files are large (hundreds of megabytes and more), so they are read as a stream:
one product or one term at a time is held in memory, never the whole document.

A family/size that a region's offer file does not have is left out of the table and reported on
standard error: the CLI treats a missing row as "unknown", never as a price.

Typical use, from the repository root:

    python3 scripts/update-prices.py
    python3 scripts/update-prices.py --regions us-east-1,eu-west-1
    python3 scripts/update-prices.py --from-file us-east-1=/tmp/index.json --output -

Testing without the network, from the repository root (prints nothing when all is well):

    python3 scripts/update-prices.py --date 2026-02-09 --output - \
        --from-file us-east-1=scripts/testdata/offer-us-east-1.json \
        --from-file eu-west-1=scripts/testdata/offer-eu-west-1.json 2>/dev/null \
      | diff - scripts/testdata/expected-on_demand.tsv

The two sample offer files are written by hand in the documented format; between them they
carry rows that must be dropped (Windows, dedicated tenancy, an idle capacity reservation, SQL
pre-installed, a Local Zone, an unlisted size and family, EBS storage), Reserved terms to skip,
and both orders of "products" and "terms".

After writing a new table, set PRICES_AS_OF in src/pricing.rs to the new "as-of" date (a unit
test compares the two). The GitHub-hosted runner table (src/pricing/github_hosted.tsv) is not
produced here: GitHub publishes no machine-readable price list, so it is edited by hand.

Standard library only.
"""

import argparse
import datetime
import decimal
import io
import json
import os
import sys
import urllib.request

OFFER_URL = (
    "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/{region}/index.json"
)
PRICING_PAGE = "https://aws.amazon.com/ec2/pricing/on-demand/"

DEFAULT_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1")

# Families as they appear in the table, in this order, and the sizes asked of each.
FAMILIES = (
    "c5", "c6a", "c6g", "c6i", "c7a", "c7g", "c7i", "c8g",
    "m5", "m6a", "m6g", "m6i", "m7a", "m7g", "m7i",
    "r6i",
    "t3", "t3a", "t4g",
)
SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge")
# Sizes AWS does not sell in a family (c5 jumps from 4xlarge to 9xlarge, T families stop at
# 2xlarge): their absence from an offer file is expected and not reported.
NOT_OFFERED = {
    "c5": ("8xlarge",),
    "t3": ("4xlarge", "8xlarge"),
    "t3a": ("4xlarge", "8xlarge"),
    "t4g": ("4xlarge", "8xlarge"),
}

COLUMNS = ("region", "instance_type", "vcpus", "arch", "usd_per_hour")

CHUNK_CHARS = 1 << 20


class OfferError(Exception):
    """The offer file is not what this script expects."""


class JsonStream:
    """Reads one JSON document from a text stream piecewise.

    The caller walks objects member by member (`members`) and, for each member, either decodes
    the value (`value`), walks into it, or skips it (`skip`). Only the value being decoded is held
    in memory, plus one read chunk.
    """

    def __init__(self, stream, chunk_chars=CHUNK_CHARS):
        self._stream = stream
        self._chunk_chars = chunk_chars
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._decoder = json.JSONDecoder()

    def _more(self):
        """Reads another chunk; returns False at end of input."""
        if self._eof:
            return False
        chunk = self._stream.read(self._chunk_chars)
        if not chunk:
            self._eof = True
            return False
        if self._pos > self._chunk_chars:
            self._buf = self._buf[self._pos:]
            self._pos = 0
        self._buf += chunk
        return True

    def _peek(self):
        """The next non-whitespace character, without consuming it; '' at end of input."""
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in " \t\r\n":
                self._pos += 1
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._more():
                return ""

    def _expect(self, char):
        found = self._peek()
        if found != char:
            raise OfferError(f"expected {char!r} in the JSON, found {found or 'end of input'!r}")
        self._pos += 1

    def value(self):
        """Decodes the next complete value."""
        self._peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as err:
                if self._more():
                    continue
                raise OfferError(f"malformed or truncated JSON: {err}") from None
            # A number that ends exactly at the end of what has been read may go on in the
            # next chunk ("12" + "34"): read on and decode it again.
            if end == len(self._buf) and self._more():
                continue
            self._pos = end
            return value

    def members(self):
        """Yields the keys of the object that starts here. The caller must consume each member's
        value (value, skip or members) before asking for the next key."""
        self._expect("{")
        if self._peek() == "}":
            self._pos += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise OfferError("object key is not a string")
            self._expect(":")
            yield key
            separator = self._peek()
            self._pos += 1
            if separator == "}":
                return
            if separator != ",":
                raise OfferError(f"expected ',' or '}}' in the JSON, found {separator or 'end of input'!r}")

    def skip(self):
        """Skips the next value. An object is skipped member by member, so that a huge one (the
        Reserved terms) never has to fit in memory at once."""
        if self._peek() == "{":
            for _ in self.members():
                self.value()
        else:
            self.value()


def wanted_types():
    """instance type -> (family index, size index), for ordering the output."""
    return {
        f"{family}.{size}": (f_index, s_index)
        for f_index, family in enumerate(FAMILIES)
        for s_index, size in enumerate(SIZES)
    }


def architecture(attributes):
    """'arm64' or 'x86_64' from the processor the offer names; None if it names neither."""
    processor = attributes.get("physicalProcessor", "").lower()
    if "graviton" in processor:
        return "arm64"
    if any(word in processor for word in ("intel", "xeon", "amd", "epyc")):
        return "x86_64"
    return None


def is_wanted_product(product, region, wanted):
    """Whether a product entry is one of our instance types, as plain Linux on demand in the
    region itself."""
    if not product.get("productFamily", "").startswith("Compute Instance"):
        return False
    attributes = product.get("attributes", {})
    checks = (
        ("instanceType", lambda v: v in wanted),
        ("operatingSystem", lambda v: v == "Linux"),
        ("tenancy", lambda v: v == "Shared"),
        ("preInstalledSw", lambda v: v == "NA"),
        ("capacitystatus", lambda v: v == "Used"),
    )
    if not all(name in attributes and ok(attributes[name]) for name, ok in checks):
        return False
    # Attributes that newer files carry: when present, they must say the plain case.
    optional = (
        ("licenseModel", "No License required"),
        ("marketoption", "OnDemand"),
        ("regionCode", region),
        ("locationType", "AWS Region"),
    )
    return all(attributes.get(name, value) == value for name, value in optional)


def hourly_usd(term_group):
    """The USD per-hour price in a SKU's OnDemand terms, as a Decimal; None when there is none.
    Raises when the terms disagree with each other."""
    prices = set()
    for term in term_group.values():
        for dimension in term.get("priceDimensions", {}).values():
            if dimension.get("unit") != "Hrs":
                continue
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if usd is not None:
                prices.add(decimal.Decimal(usd))
    if len(prices) > 1:
        raise OfferError(f"several hourly prices in one OnDemand term group: {sorted(prices)}")
    return prices.pop() if prices else None


def read_offer(stream, region, wanted, chunk_chars=CHUNK_CHARS):
    """Reads one regional offer file. Returns (publication date or None, {instance type:
    (vcpus, arch, Decimal price)})."""
    json_stream = JsonStream(stream, chunk_chars)
    publication = None
    products = {}  # sku -> (instance type, vcpus, arch)
    # sku -> Decimal. When the terms come before the products (not the usual order), every SKU's
    # price is kept, and a SKU whose terms cannot be read keeps the error, raised only if the SKU
    # turns out to be one of ours.
    prices = {}
    products_done = False
    on_demand_done = False

    for key in json_stream.members():
        if key == "publicationDate":
            publication = json_stream.value()
        elif key == "products":
            for sku in json_stream.members():
                product = json_stream.value()
                if not is_wanted_product(product, region, wanted):
                    continue
                attributes = product["attributes"]
                arch = architecture(attributes)
                if arch is None:
                    raise OfferError(
                        f"{region} {attributes['instanceType']}: cannot tell the architecture "
                        f"from {attributes.get('physicalProcessor')!r}"
                    )
                try:
                    vcpus = int(attributes["vcpu"])
                except (KeyError, ValueError):
                    raise OfferError(
                        f"{region} {attributes['instanceType']}: no usable vcpu attribute"
                    ) from None
                products[sku] = (attributes["instanceType"], vcpus, arch)
            products_done = True
        elif key == "terms":
            for term_type in json_stream.members():
                if term_type != "OnDemand":
                    json_stream.skip()
                    continue
                for sku in json_stream.members():
                    group = json_stream.value()
                    if products_done and sku not in products:
                        continue
                    try:
                        price = hourly_usd(group)
                    except OfferError as err:
                        if products_done:
                            raise OfferError(f"{region} {products[sku][0]}: {err}") from None
                        price = err
                    if price is not None:
                        prices[sku] = price
                on_demand_done = True
                if products_done:
                    break  # everything needed is in hand; the Reserved terms can stay unread
            if products_done and on_demand_done:
                break
        else:
            json_stream.skip()

    if not products_done:
        raise OfferError(f"{region}: the offer file has no products")
    if not on_demand_done:
        raise OfferError(f"{region}: the offer file has no OnDemand terms")

    table = {}
    for sku, (instance_type, vcpus, arch) in products.items():
        price = prices.get(sku)
        if isinstance(price, OfferError):
            raise OfferError(f"{region} {instance_type}: {price}")
        if price is None or price <= 0:
            continue
        row = (vcpus, arch, price)
        known = table.get(instance_type)
        if known is not None and known != row:
            raise OfferError(f"{region} {instance_type}: conflicting entries {known} and {row}")
        table[instance_type] = row
    return publication, table


def format_price(price):
    """A Decimal as plain digits without trailing zeros: 0.0850000000 -> 0.085."""
    text = format(price.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def render(rows_by_region, sources, as_of):
    """The whole on_demand.tsv text."""
    order = wanted_types()
    regions = list(rows_by_region)
    lines = [
        "# EC2 on-demand prices in USD per instance-hour: Linux/UNIX, shared tenancy, no",
        '# pre-installed software, capacity status "Used", the OnDemand term of AWS\'s price list.',
        f"# as-of: {as_of}",
        "# source: AWS Price List, AmazonEC2 offer (the figures behind the \"Amazon EC2 On-Demand",
        f"#   Pricing\" page, {PRICING_PAGE}), regional offer files:",
    ]
    for region in regions:
        location, publication = sources[region]
        published = f" (publicationDate {publication})" if publication else ""
        lines.append(f"#   - {region}: {location}{published}")
    lines += [
        "#   A region/type pair that is missing was not in that offer file; it is unknown, never zero.",
        f"# taken: {as_of}, by scripts/update-prices.py.",
        "# regenerate: python3 scripts/update-prices.py (see --help), then set PRICES_AS_OF in",
        "#   src/pricing.rs to the new as-of date.",
        "\t".join(COLUMNS),
    ]
    for instance_type in sorted(order, key=order.get):
        for region in regions:
            row = rows_by_region[region].get(instance_type)
            if row is None:
                continue
            vcpus, arch, price = row
            lines.append(f"{region}\t{instance_type}\t{vcpus}\t{arch}\t{format_price(price)}")
    return "\n".join(lines) + "\n"


def missing_report(rows_by_region):
    """Lines naming the wanted types a region's offer did not have, sizes never sold left out."""
    report = []
    for region, rows in rows_by_region.items():
        missing = [
            f"{family}.{size}"
            for family in FAMILIES
            for size in SIZES
            if f"{family}.{size}" not in rows and size not in NOT_OFFERED.get(family, ())
        ]
        if missing:
            report.append(f"{region}: not in the offer, left out: {' '.join(missing)}")
    return report


def parse_args(argv):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(
        description="Regenerate src/pricing/on_demand.tsv from AWS's Price List bulk offer files.",
    )
    parser.add_argument(
        "--regions",
        help="comma-separated regions (default: %s; with --from-file: the regions of the files)"
        % ",".join(DEFAULT_REGIONS),
    )
    parser.add_argument(
        "--from-file",
        action="append",
        default=[],
        metavar="REGION=PATH",
        help="read REGION's offer from a local index.json instead of downloading it (repeatable)",
    )
    parser.add_argument(
        "--output",
        default=os.path.join(repo, "src", "pricing", "on_demand.tsv"),
        help="where to write the table, '-' for standard output (default: %(default)s)",
    )
    parser.add_argument(
        "--date",
        help="the as-of date to write, YYYY-MM-DD (default: today, UTC)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait on the network for each download (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    files = {}
    for item in args.from_file:
        region, sep, path = item.partition("=")
        if not sep or not region or not path:
            parser.error(f"--from-file wants REGION=PATH, got {item!r}")
        if region in files:
            parser.error(f"--from-file names {region} twice")
        files[region] = path
    if args.regions:
        regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    elif files:
        regions = list(files)
    else:
        regions = list(DEFAULT_REGIONS)
    if not regions or len(set(regions)) != len(regions):
        parser.error("--regions must name each region once")
    stray = sorted(set(files) - set(regions))
    if stray:
        parser.error(f"--from-file for regions not in --regions: {', '.join(stray)}")
    if args.date:
        try:
            datetime.date.fromisoformat(args.date)
        except ValueError:
            parser.error(f"--date wants YYYY-MM-DD, got {args.date!r}")
        as_of = args.date
    else:
        as_of = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    return args, regions, files, as_of


def main(argv=None):
    args, regions, files, as_of = parse_args(sys.argv[1:] if argv is None else argv)
    wanted = wanted_types()
    rows_by_region = {}
    sources = {}
    for region in regions:
        try:
            if region in files:
                location = files[region]
                print(f"update-prices: reading {region} from {location}", file=sys.stderr)
                with open(location, encoding="utf-8") as stream:
                    publication, rows = read_offer(stream, region, wanted)
            else:
                location = OFFER_URL.format(region=region)
                print(f"update-prices: downloading {location}", file=sys.stderr)
                with urllib.request.urlopen(location, timeout=args.timeout) as response:
                    stream = io.TextIOWrapper(response, encoding="utf-8")
                    publication, rows = read_offer(stream, region, wanted)
        except (OSError, OfferError) as err:
            print(f"update-prices: {region}: {err}", file=sys.stderr)
            return 1
        print(f"update-prices: {region}: {len(rows)} instance types", file=sys.stderr)
        rows_by_region[region] = rows
        sources[region] = (location, publication)

    if not any(rows_by_region.values()):
        print("update-prices: no prices found; nothing written", file=sys.stderr)
        return 1
    for line in missing_report(rows_by_region):
        print(f"update-prices: {line}", file=sys.stderr)

    text = render(rows_by_region, sources, as_of)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        print(f"update-prices: wrote {args.output}", file=sys.stderr)
    print(
        f'update-prices: now set PRICES_AS_OF in src/pricing.rs to "{as_of}"',
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
