"""Regenerate the instance-class tables of prices.json from maintained, dated sources.

prices.json holds two kinds of figures. Unit prices (a Fargate vCPU-hour, a NAT gateway-hour, a
GB-month of gp3) are few and are edited by hand, each with its unit, source and the date it was
read. Instance classes (EC2, RDS, ElastiCache) are hundreds of figures per region: they are never
typed in, this script writes them from one of two machine-readable sources and records which
source, which version and the date of its prices:

* ``--karpenter FILE``: ``pkg/providers/pricing/zz_generated.pricing_aws.go`` of
  aws/karpenter-provider-aws. Karpenter's maintainers regenerate it from the AWS Pricing API
  every few weeks ("chore: Update data from AWS APIs") and stamp it ``// generated at <time>``.
  It holds EC2 Linux on-demand prices of every instance type, for us-east-1 only.
* ``--offer FILE``: an AWS Price List bulk offer file for one region, the format AWS publishes
  for every service (``offers/v1.0/aws/<AmazonEC2|AmazonRDS|AmazonElastiCache>/current/<region>/
  index.json``; ``aws pricing list-price-lists`` + ``get-price-list-file-url`` give the URL).
  EC2 (Linux, shared tenancy), RDS (PostgreSQL, MySQL, Aurora; Single-AZ and Multi-AZ) and
  ElastiCache (per engine) on-demand hourly rates are taken from it.

    python -m wwhd_policies.cost_model.build_prices --karpenter zz_generated.pricing_aws.go \\
        --karpenter-version <commit or tag>
    python -m wwhd_policies.cost_model.build_prices --offer AmazonRDS-us-west-2.json ...

Only the regions already in prices.json (``--region`` adds one) are written, so the committed
file stays small. A class table is replaced whole by what the source holds, never merged with
older figures, so a table never mixes dates.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .model import PRICES_FILE

EC2_TABLE = "ec2.linux.instanceHour"

# AWS price list "databaseEngine" -> the engine names pulumi-aws uses (aws.rds.Instance.engine).
_RDS_ENGINES = {
    "PostgreSQL": "postgres",
    "MySQL": "mysql",
    "Aurora PostgreSQL": "aurora-postgresql",
    "Aurora MySQL": "aurora-mysql",
}
_RDS_DEPLOYMENTS = {"Single-AZ": "", "Multi-AZ": ".multiAz"}


def rds_table(engine: str, multi_az: bool = False) -> str:
    """The prices.json key of an RDS engine's class table (per instance-hour)."""
    return f"rds.{engine}{'.multiAz' if multi_az else ''}.instanceHour"


def elasticache_table(engine: str) -> str:
    return f"elasticache.{engine}.nodeHour"


# --- Karpenter's generated Go table ---------------------------------------------------------

_GENERATED_AT = re.compile(r"//\s*generated at (\S+)")
_REGION_OPEN = re.compile(r'^\s*"([a-z]{2}(?:-[a-z]+)+-\d)":\s*\{\s*$')
_ENTRY = re.compile(r'"([a-z0-9-]+\.[a-z0-9-]+)":\s*([0-9]+(?:\.[0-9]+)?)')


def parse_karpenter(text: str) -> tuple[str | None, dict[str, dict[str, float]]]:
    """(generation timestamp, region -> instance type -> USD per hour) from Karpenter's file."""
    stamp = _GENERATED_AT.search(text)
    regions: dict[str, dict[str, float]] = {}
    current: dict[str, float] | None = None
    for line in text.splitlines():
        opened = _REGION_OPEN.match(line)
        if opened:
            current = regions.setdefault(opened.group(1), {})
            continue
        if current is None:
            continue
        if line.strip() == "},":
            current = None
            continue
        for itype, usd in _ENTRY.findall(line):
            current[itype] = float(usd)
    return (stamp.group(1) if stamp else None), regions


# --- AWS Price List bulk offer files --------------------------------------------------------


def _on_demand_hourly(offer: Mapping[str, Any], sku: str) -> float | None:
    """The USD per hour of a SKU's on-demand term (None when it has none or it is not hourly)."""
    for term in (offer.get("terms", {}).get("OnDemand", {}).get(sku) or {}).values():
        for dim in (term.get("priceDimensions") or {}).values():
            if dim.get("unit") == "Hrs":
                usd = float(dim.get("pricePerUnit", {}).get("USD", "nan"))
                if usd > 0:
                    return usd
    return None


def parse_offer(offer: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """region -> prices.json table key -> class -> USD per hour, from one bulk offer file."""
    code = offer.get("offerCode")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for sku, product in (offer.get("products") or {}).items():
        a = product.get("attributes") or {}
        family = product.get("productFamily")
        table: str | None = None
        if code == "AmazonEC2" and family == "Compute Instance":
            shared_linux = (
                a.get("operatingSystem") == "Linux"
                and a.get("tenancy") == "Shared"
                and a.get("preInstalledSw") == "NA"
                and a.get("capacitystatus") == "Used"
                and a.get("licenseModel", "No License required") == "No License required"
            )
            table = EC2_TABLE if shared_linux else None
        elif code == "AmazonRDS" and family == "Database Instance":
            engine = _RDS_ENGINES.get(a.get("databaseEngine", ""))
            deployment = _RDS_DEPLOYMENTS.get(a.get("deploymentOption", ""))
            if engine and deployment is not None and a.get("licenseModel") == "No license required":
                table = rds_table(engine, deployment == ".multiAz")
        elif code == "AmazonElastiCache" and family == "Cache Instance":
            engine = str(a.get("cacheEngine", "")).lower()
            table = elasticache_table(engine) if engine else None
        itype = a.get("instanceType")
        region = a.get("regionCode")
        if table is None or not itype or not region:
            continue
        usd = _on_demand_hourly(offer, sku)
        if usd is not None:
            out.setdefault(region, {}).setdefault(table, {})[itype] = usd
    return out


# --- writing prices.json ---------------------------------------------------------------------


def apply_tables(
    prices: dict[str, Any],
    tables: Mapping[str, Mapping[str, Mapping[str, float]]],
    source: str,
    read: str,
    regions: Iterable[str],
) -> list[str]:
    """Replace the class tables of `regions` in `prices` with `tables`; returns what changed."""
    changed = []
    wanted = set(regions)
    for region, by_table in sorted(tables.items()):
        if region not in wanted:
            continue
        region_prices = prices.setdefault("regions", {}).setdefault(region, {})
        for key, classes in sorted(by_table.items()):
            unit = "USD per instance-hour, on-demand" + (
                ", Multi-AZ (both instances)" if ".multiAz." in key else ""
            )
            region_prices[key] = {
                "unit": unit,
                "source": source,
                "read": read,
                "classes": {k: classes[k] for k in sorted(classes)},
            }
            changed.append(f"{region} {key}: {len(classes)} classes")
    return changed


def dump_prices(prices: Mapping[str, Any]) -> str:
    """prices.json as committed: one unit price per line, one instance class per line, so that a
    regenerated table reads as a diff of the classes whose price moved."""

    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    def entry(value: Any, pad: str) -> str:
        if not (isinstance(value, dict) and isinstance(value.get("classes"), dict)):
            return one(value)
        head = [f"{pad}  {one(k)}: {one(v)}" for k, v in value.items() if k != "classes"]
        classes = ",\n".join(f"{pad}    {one(k)}: {one(v)}" for k, v in value["classes"].items())
        return "{\n" + ",\n".join([*head, f'{pad}  "classes": {{\n{classes}\n{pad}  }}']) + f"\n{pad}}}"

    lines = []
    for key, value in prices.items():
        if key != "regions":
            lines.append(f"  {one(key)}: {one(value)}")
            continue
        blocks = []
        for region, table in value.items():
            rows = ",\n".join(f"      {one(k)}: {entry(v, '      ')}" for k, v in table.items())
            blocks.append(f"    {one(region)}: {{\n{rows}\n    }}")
        lines.append('  "regions": {\n' + ",\n".join(blocks) + "\n  }")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--karpenter", type=Path, help="Karpenter's zz_generated.pricing_aws.go")
    parser.add_argument("--karpenter-version", default="", help="its commit or tag, recorded as the source")
    parser.add_argument("--offer", type=Path, action="append", default=[], help="an AWS bulk offer file")
    parser.add_argument("--region", action="append", default=[], help="a region to add to prices.json")
    parser.add_argument("--prices", type=Path, default=PRICES_FILE, help="the prices.json to update")
    args = parser.parse_args(argv)

    prices = json.loads(args.prices.read_text())
    regions = {*prices.get("regions", {}), *args.region}
    changed: list[str] = []
    if args.karpenter:
        stamp, tables = parse_karpenter(args.karpenter.read_text())
        if stamp is None:
            parser.error(f"{args.karpenter}: no '// generated at' line; is this Karpenter's table?")
        source = (
            "karpenter: aws/karpenter-provider-aws "
            f"{args.karpenter_version or '(version not given)'} "
            f"pkg/providers/pricing/zz_generated.pricing_aws.go, generated {stamp} from the AWS Pricing API"
        )
        changed += apply_tables(
            prices, {r: {EC2_TABLE: t} for r, t in tables.items()}, source, stamp[:10], regions
        )
    for path in args.offer:
        offer = json.loads(path.read_text())
        published = str(offer.get("publicationDate") or "")
        source = f"aws-price-list: {offer.get('offerCode')} offer version {offer.get('version')}, published {published}"
        changed += apply_tables(prices, parse_offer(offer), source, published[:10], regions)
    args.prices.write_text(dump_prices(prices))
    print("\n".join(changed) or "nothing changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
