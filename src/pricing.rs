//! Compiled-in EC2 and GitHub-hosted runner prices, and what a spot run saved against them.
//!
//! The step summary compares a run's spot rate with two references: the same instance type on
//! demand in the same region, and the GitHub-hosted Linux runner of similar size.
//!
//! The figures live in `src/pricing/on_demand.tsv` and `src/pricing/github_hosted.tsv`, whose
//! header comments say where every number came from and when. They are built into the binary
//! and parsed once, on first use. A price the tables do not hold is unknown: every lookup then
//! answers `None` instead of estimating one from another region, size or family.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::OnceLock;

/// The date (YYYY-MM-DD) of the on-demand figures in `src/pricing/on_demand.tsv`; it must match
/// that file's `# as-of:` line, which a unit test checks.
pub(crate) const PRICES_AS_OF: &str = "2026-02-09";

/// One line naming where the on-demand figures come from.
pub(crate) const ON_DEMAND_SOURCE: &str =
    "AWS Price List (AmazonEC2 offer): Linux on-demand, shared tenancy, USD per hour";

/// One line naming where the GitHub-hosted runner figures come from.
pub(crate) const GITHUB_HOSTED_SOURCE: &str = "GitHub Docs \"Actions runner pricing\" (docs.github.com/en/billing/reference/actions-runner-pricing), rates from 2026-01-01";

const ON_DEMAND_TSV: &str = include_str!("pricing/on_demand.tsv");
const GITHUB_HOSTED_TSV: &str = include_str!("pricing/github_hosted.tsv");

const ON_DEMAND_COLUMNS: &str = "region\tinstance_type\tvcpus\tarch\tusd_per_hour";
const GITHUB_HOSTED_COLUMNS: &str = "sku\tarch\tvcpus\tusd_per_minute\tname";

const X86_64: &str = "x86_64";
const ARM64: &str = "arm64";

/// Size and architecture of one instance type; the same in every region.
#[derive(Debug, Clone, Copy, PartialEq)]
struct InstanceInfo {
    vcpus: u32,
    arch: &'static str,
}

/// The parsed on-demand table: prices by region then instance type, and what each type is.
#[derive(Debug, Default)]
struct OnDemandTable {
    per_hour: HashMap<&'static str, HashMap<&'static str, f64>>,
    instances: HashMap<&'static str, InstanceInfo>,
}

/// The GitHub-hosted Linux runner closest to (at least) this many vCPUs for the arch, with its per-hour price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HostedRunner {
    /// Display name as GitHub's price page words it, with the architecture, e.g. "Linux 4-core (x64)".
    pub(crate) name: &'static str,
    /// vCPUs of the runner.
    pub(crate) vcpus: u32,
    /// List price in USD per hour (GitHub's per-minute rate times 60).
    pub(crate) per_hour: f64,
}

/// What a spot run saved, as fractions of the price it is compared with.
///
/// A fraction is `1 - spot / reference`: 0.6 means the run cost 60% less. It is at most 1 and
/// usually above 0; it is negative when spot cost more than the reference, and is reported as such
/// rather than hidden. Only the instance-hour rate is compared: EBS volumes, data transfer and
/// GitHub's rounding of each job up to a whole minute are left out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Savings {
    /// Saving against the same instance type on demand in the same region; `None` when that
    /// region/type price is not in the table.
    pub(crate) vs_on_demand: Option<f64>,
    /// The comparable GitHub-hosted runner and the saving against it; `None` when the instance
    /// type is not in the table or no runner is as large.
    pub(crate) vs_github: Option<(HostedRunner, f64)>,
}

/// What gp3 charges beyond its free baseline (3000 IOPS, 125 MiB/s), in USD
/// per month: per provisioned IOPS and per provisioned MiB/s (us-east-1,
/// the EBS pricing page as of 2026-02-09; other regions differ by a few %).
// NOTE: https://aws.amazon.com/ebs/pricing/
const GP3_IOPS_MONTH: f64 = 0.005;
const GP3_MIBPS_MONTH: f64 = 0.040;
/// AWS bills a month as 730 hours.
const HOURS_PER_MONTH: f64 = 730.0;

/// The extra cost per hour of a gp3 volume at `iops` and `throughput` over
/// the baseline: what the boot boost costs while it lasts.
pub(crate) fn gp3_boost_per_hour(iops: i32, throughput: i32) -> f64 {
    let extra_iops = f64::from((iops - 3000).max(0));
    let extra_mibps = f64::from((throughput - 125).max(0));
    (extra_iops * GP3_IOPS_MONTH + extra_mibps * GP3_MIBPS_MONTH) / HOURS_PER_MONTH
}

/// The Linux on-demand price in USD per hour of `instance_type` in `region`, if the table has it.
pub(crate) fn on_demand_per_hour(region: &str, instance_type: &str) -> Option<f64> {
    on_demand_table()
        .per_hour
        .get(region)?
        .get(instance_type)
        .copied()
}

/// vCPUs of `instance_type`, if the table lists it (in any region).
pub(crate) fn vcpus(instance_type: &str) -> Option<u32> {
    on_demand_table()
        .instances
        .get(instance_type)
        .map(|info| info.vcpus)
}

/// CPU architecture of `instance_type`, `"x86_64"` or `"arm64"`, if the table lists it (in any region).
pub(crate) fn arch(instance_type: &str) -> Option<&'static str> {
    on_demand_table()
        .instances
        .get(instance_type)
        .map(|info| info.arch)
}

/// The smallest GitHub-hosted Linux runner of `arch` with at least `vcpus` vCPUs.
///
/// `arch` is `"x86_64"` or `"arm64"` (the spellings `"x64"`, `"amd64"` and `"aarch64"` are
/// accepted too). `None` for any other architecture, for zero vCPUs, and when even the largest
/// runner of that architecture is smaller than asked.
pub(crate) fn github_hosted_equivalent(vcpus: u32, arch: &str) -> Option<HostedRunner> {
    smallest_at_least(github_hosted_table(), vcpus, normalize_arch(arch)?)
}

/// Compares a spot rate (USD per hour) for `instance_type` in `region` with the on-demand rate of
/// the same type and with the comparable GitHub-hosted runner. A spot rate that is negative or not
/// a number yields no savings at all.
pub(crate) fn savings(region: &str, instance_type: &str, spot_per_hour: f64) -> Savings {
    if !spot_per_hour.is_finite() || spot_per_hour < 0.0 {
        return Savings {
            vs_on_demand: None,
            vs_github: None,
        };
    }
    let vs_on_demand =
        on_demand_per_hour(region, instance_type).map(|od| fraction_saved(spot_per_hour, od));
    let vs_github = vcpus(instance_type)
        .zip(arch(instance_type))
        .and_then(|(n, a)| github_hosted_equivalent(n, a))
        .map(|runner| (runner, fraction_saved(spot_per_hour, runner.per_hour)));
    Savings {
        vs_on_demand,
        vs_github,
    }
}

/// `1 - paid / reference`; `reference` is a table price, so always positive.
fn fraction_saved(paid: f64, reference: f64) -> f64 {
    1.0 - paid / reference
}

fn normalize_arch(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" | "x64" | "amd64" => Some(X86_64),
        "arm64" | "aarch64" => Some(ARM64),
        _ => None,
    }
}

/// The closest-size rule: among runners of `arch` (already normalized), the one with the fewest
/// vCPUs that still has at least `vcpus`.
fn smallest_at_least(runners: &[HostedRunnerRow], vcpus: u32, arch: &str) -> Option<HostedRunner> {
    if vcpus == 0 {
        return None;
    }
    runners
        .iter()
        .filter(|row| row.arch == arch && row.runner.vcpus >= vcpus)
        .min_by_key(|row| row.runner.vcpus)
        .map(|row| row.runner)
}

/// One row of the GitHub-hosted table.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HostedRunnerRow {
    arch: &'static str,
    runner: HostedRunner,
}

/// The embedded on-demand table. The data ships with the binary and a unit test proves it parses,
/// so the empty fallback (every lookup `None`) is only a guard against panicking at run time.
fn on_demand_table() -> &'static OnDemandTable {
    static TABLE: OnceLock<OnDemandTable> = OnceLock::new();
    TABLE.get_or_init(|| parse_on_demand(ON_DEMAND_TSV).unwrap_or_default())
}

/// The embedded GitHub-hosted table, with the same guard as [`on_demand_table`].
fn github_hosted_table() -> &'static [HostedRunnerRow] {
    static TABLE: OnceLock<Vec<HostedRunnerRow>> = OnceLock::new();
    TABLE.get_or_init(|| parse_github_hosted(GITHUB_HOSTED_TSV).unwrap_or_default())
}

/// The data rows of a table, numbered from 1 as in an editor, with comments (`#`), blank lines
/// and the column header (which must read exactly `columns`) taken out. Every row is checked to
/// have as many tab-separated fields as the header, none of them empty.
pub(crate) fn data_rows(
    text: &'static str,
    columns: &str,
) -> Result<Vec<(usize, Vec<&'static str>)>, String> {
    let width = columns.split('\t').count();
    let mut header_seen = false;
    let mut rows = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !header_seen {
            if line != columns {
                return Err(format!(
                    "line {number}: expected the column header {columns:?}, found {line:?}"
                ));
            }
            header_seen = true;
            continue;
        }
        let fields: Vec<&'static str> = line.split('\t').map(str::trim).collect();
        if fields.len() != width {
            return Err(format!(
                "line {number}: expected {width} tab-separated fields, found {}",
                fields.len()
            ));
        }
        if let Some(column) = fields.iter().position(|field| field.is_empty()) {
            return Err(format!("line {number}: field {} is empty", column + 1));
        }
        rows.push((number, fields));
    }
    if !header_seen {
        return Err(format!("no column header {columns:?}"));
    }
    if rows.is_empty() {
        return Err("no data rows".to_owned());
    }
    Ok(rows)
}

fn parse_vcpus(number: usize, field: &str) -> Result<u32, String> {
    match field.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "line {number}: vcpus must be a positive whole number, found {field:?}"
        )),
    }
}

fn parse_arch(number: usize, field: &str) -> Result<&'static str, String> {
    match field {
        "x86_64" => Ok(X86_64),
        "arm64" => Ok(ARM64),
        _ => Err(format!(
            "line {number}: arch must be x86_64 or arm64, found {field:?}"
        )),
    }
}

fn parse_price(number: usize, field: &str) -> Result<f64, String> {
    match field.parse::<f64>() {
        Ok(price) if price.is_finite() && price > 0.0 => Ok(price),
        _ => Err(format!(
            "line {number}: price must be a positive number, found {field:?}"
        )),
    }
}

/// Parses `on_demand.tsv`: one row per region and instance type. The same type must have the
/// same vCPUs and architecture wherever it appears, and no region/type pair may repeat.
fn parse_on_demand(text: &'static str) -> Result<OnDemandTable, String> {
    let mut table = OnDemandTable::default();
    for (number, fields) in data_rows(text, ON_DEMAND_COLUMNS)? {
        let [region, instance_type, vcpus, arch, price] = fields[..] else {
            unreachable!("data_rows checked the field count");
        };
        let info = InstanceInfo {
            vcpus: parse_vcpus(number, vcpus)?,
            arch: parse_arch(number, arch)?,
        };
        let price = parse_price(number, price)?;
        match table.instances.entry(instance_type) {
            Entry::Occupied(known) if *known.get() != info => {
                return Err(format!(
                    "line {number}: {instance_type} is listed with {} vCPUs {} here but {} vCPUs {} earlier",
                    info.vcpus,
                    info.arch,
                    known.get().vcpus,
                    known.get().arch
                ));
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(slot) => {
                slot.insert(info);
            }
        }
        let prices = table.per_hour.entry(region).or_default();
        if prices.insert(instance_type, price).is_some() {
            return Err(format!(
                "line {number}: {region} {instance_type} is listed twice"
            ));
        }
    }
    Ok(table)
}

/// Parses `github_hosted.tsv`: one row per runner. No two runners may share an architecture and
/// a vCPU count, so the closest-size rule always has a single answer.
fn parse_github_hosted(text: &'static str) -> Result<Vec<HostedRunnerRow>, String> {
    let mut runners: Vec<HostedRunnerRow> = Vec::new();
    for (number, fields) in data_rows(text, GITHUB_HOSTED_COLUMNS)? {
        // The billing SKU is for the reader of the file; the lookups do not need it.
        let [_sku, arch, vcpus, per_minute, name] = fields[..] else {
            unreachable!("data_rows checked the field count");
        };
        let row = HostedRunnerRow {
            arch: parse_arch(number, arch)?,
            runner: HostedRunner {
                name,
                vcpus: parse_vcpus(number, vcpus)?,
                per_hour: parse_price(number, per_minute)? * 60.0,
            },
        };
        if runners
            .iter()
            .any(|seen| seen.arch == row.arch && seen.runner.vcpus == row.runner.vcpus)
        {
            return Err(format!(
                "line {number}: the {} runner with {} vCPUs is listed twice",
                row.arch, row.runner.vcpus
            ));
        }
        runners.push(row);
    }
    Ok(runners)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPSILON: f64 = 1e-9;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < EPSILON
    }

    fn assert_close(actual: Option<f64>, expected: Option<f64>, what: &str) {
        match (actual, expected) {
            (None, None) => {}
            (Some(a), Some(e)) => assert!(close(a, e), "{what}: got {a}, want {e}"),
            _ => panic!("{what}: got {actual:?}, want {expected:?}"),
        }
    }

    /// The value of a `# key: value` header comment.
    fn header_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
        text.lines().find_map(|line| {
            line.strip_prefix('#')?
                .trim_start()
                .strip_prefix(key)?
                .strip_prefix(':')
                .map(str::trim)
        })
    }

    #[test]
    fn embedded_tables_parse() {
        let on_demand = parse_on_demand(ON_DEMAND_TSV).expect("on_demand.tsv parses");
        assert!(!on_demand.per_hour.is_empty());
        let hosted = parse_github_hosted(GITHUB_HOSTED_TSV).expect("github_hosted.tsv parses");
        assert!(hosted.iter().any(|row| row.arch == X86_64));
        assert!(hosted.iter().any(|row| row.arch == ARM64));
    }

    #[test]
    fn as_of_constant_matches_the_table_header() {
        assert_eq!(header_value(ON_DEMAND_TSV, "as-of"), Some(PRICES_AS_OF));
        assert_eq!(PRICES_AS_OF.len(), "YYYY-MM-DD".len());
    }

    #[test]
    fn sources_are_single_lines() {
        for source in [ON_DEMAND_SOURCE, GITHUB_HOSTED_SOURCE] {
            assert!(!source.trim().is_empty());
            assert!(!source.contains('\n'), "{source:?}");
        }
    }

    #[test]
    fn every_listed_family_and_size_is_priced_in_us_east_1() {
        let families = [
            "c5", "c6a", "c6g", "c6i", "c7a", "c7g", "c7i", "c8g", "m5", "m6a", "m6g", "m6i",
            "m7a", "m7g", "m7i", "r6i", "t3", "t3a", "t4g",
        ];
        for family in families {
            let sizes: &[&str] = match family {
                // T families stop at 2xlarge; c5 jumps from 4xlarge to 9xlarge.
                "t3" | "t3a" | "t4g" => &["large", "xlarge", "2xlarge"],
                "c5" => &["large", "xlarge", "2xlarge", "4xlarge"],
                _ => &["large", "xlarge", "2xlarge", "4xlarge", "8xlarge"],
            };
            for size in sizes {
                let instance_type = format!("{family}.{size}");
                assert!(
                    on_demand_per_hour("us-east-1", &instance_type).is_some(),
                    "{instance_type} missing in us-east-1"
                );
            }
        }
    }

    #[test]
    fn on_demand_lookups() {
        let cases: &[(&str, &str, Option<f64>)] = &[
            ("us-east-1", "c6i.large", Some(0.085)),
            ("us-east-1", "m7g.xlarge", Some(0.1632)),
            ("us-east-1", "t3.2xlarge", Some(0.3328)),
            ("us-east-1", "r6i.8xlarge", Some(2.016)),
            ("eu-west-1", "c6i.large", Some(0.0912)),
            ("us-east-2", "c7g.large", Some(0.0723)),
            ("us-west-2", "c8g.8xlarge", Some(1.27616)),
            // Not verified for that region: unknown, not borrowed from us-east-1.
            ("us-west-2", "m7i.large", None),
            ("eu-west-1", "m6a.4xlarge", None),
            // Not in the table at all.
            ("us-east-1", "c6i.metal", None),
            ("us-east-1", "t3.4xlarge", None),
            ("us-east-1", "C6I.LARGE", None),
            ("mars-north-1", "c6i.large", None),
            ("", "", None),
        ];
        for &(region, instance_type, want) in cases {
            assert_close(
                on_demand_per_hour(region, instance_type),
                want,
                &format!("{region} {instance_type}"),
            );
        }
    }

    #[test]
    fn sizes_and_architectures() {
        let cases: &[(&str, Option<u32>, Option<&str>)] = &[
            ("c6i.large", Some(2), Some("x86_64")),
            ("c7a.xlarge", Some(4), Some("x86_64")),
            ("m7g.2xlarge", Some(8), Some("arm64")),
            ("c8g.4xlarge", Some(16), Some("arm64")),
            ("r6i.8xlarge", Some(32), Some("x86_64")),
            ("t4g.large", Some(2), Some("arm64")),
            // Listed only for us-east-1, still known everywhere: size does not depend on region.
            ("m7i.xlarge", Some(4), Some("x86_64")),
            ("g5.xlarge", None, None),
            ("", None, None),
        ];
        for &(instance_type, want_vcpus, want_arch) in cases {
            assert_eq!(vcpus(instance_type), want_vcpus, "{instance_type}");
            assert_eq!(arch(instance_type), want_arch, "{instance_type}");
        }
    }

    #[test]
    fn github_hosted_closest_size() {
        // vCPUs and per-minute price of the runner expected, or `None`.
        type Want = Option<(u32, f64)>;
        // (vCPUs asked, arch asked, runner expected)
        let cases: &[(u32, &str, Want)] = &[
            (1, "x86_64", Some((2, 0.006))),
            (2, "x86_64", Some((2, 0.006))),
            (3, "x86_64", Some((4, 0.012))),
            (8, "x86_64", Some((8, 0.022))),
            (32, "x86_64", Some((32, 0.082))),
            (33, "x86_64", Some((64, 0.162))),
            (96, "x86_64", Some((96, 0.252))),
            (97, "x86_64", None),
            (2, "arm64", Some((2, 0.005))),
            (5, "arm64", Some((8, 0.014))),
            (16, "arm64", Some((16, 0.026))),
            (64, "arm64", Some((64, 0.098))),
            (65, "arm64", None),
            (4, "x64", Some((4, 0.012))),
            (4, "amd64", Some((4, 0.012))),
            (4, "aarch64", Some((4, 0.008))),
            (0, "x86_64", None),
            (4, "riscv64", None),
            (4, "X86_64", None),
            (4, "", None),
        ];
        for &(asked, arch, want) in cases {
            let got = github_hosted_equivalent(asked, arch);
            match (got, want) {
                (None, None) => {}
                (Some(runner), Some((want_vcpus, per_minute))) => {
                    assert_eq!(runner.vcpus, want_vcpus, "{asked} {arch}");
                    assert!(
                        close(runner.per_hour, per_minute * 60.0),
                        "{asked} {arch}: {}",
                        runner.per_hour
                    );
                    assert!(runner.name.starts_with("Linux "), "{}", runner.name);
                }
                _ => panic!("{asked} {arch}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn closest_size_rule_ignores_row_order() {
        let row = |arch, vcpus, name| HostedRunnerRow {
            arch,
            runner: HostedRunner {
                name,
                vcpus,
                per_hour: f64::from(vcpus),
            },
        };
        let runners = [
            row(X86_64, 16, "x16"),
            row(ARM64, 4, "a4"),
            row(X86_64, 4, "x4"),
            row(X86_64, 64, "x64"),
            row(X86_64, 8, "x8"),
        ];
        let cases: &[(u32, &str, Option<&str>)] = &[
            (1, X86_64, Some("x4")),
            (4, X86_64, Some("x4")),
            (5, X86_64, Some("x8")),
            (9, X86_64, Some("x16")),
            (17, X86_64, Some("x64")),
            (65, X86_64, None),
            (2, ARM64, Some("a4")),
            (5, ARM64, None),
        ];
        for &(asked, arch, want) in cases {
            let got = smallest_at_least(&runners, asked, arch).map(|runner| runner.name);
            assert_eq!(got, want, "{asked} {arch}");
        }
    }

    #[test]
    fn savings_arithmetic() {
        let cases: &[(f64, f64, f64)] = &[
            (0.034, 0.085, 0.6),
            (0.085, 0.085, 0.0),
            (0.0, 0.085, 1.0),
            (0.1, 0.08, -0.25),
            (0.09, 0.36, 0.75),
        ];
        for &(paid, reference, want) in cases {
            let got = fraction_saved(paid, reference);
            assert!(close(got, want), "{paid} vs {reference}: {got}");
        }
    }

    #[test]
    fn savings_end_to_end() {
        struct Case {
            region: &'static str,
            instance_type: &'static str,
            spot: f64,
            vs_on_demand: Option<f64>,
            vs_github: Option<(&'static str, f64)>,
        }
        let cases = [
            // 2 vCPUs x86_64: on demand 0.085/h; Linux 2-core x64 is 0.006 * 60 = 0.36/h.
            Case {
                region: "us-east-1",
                instance_type: "c6i.large",
                spot: 0.034,
                vs_on_demand: Some(0.6),
                vs_github: Some(("Linux 2-core (x64)", 1.0 - 0.034 / 0.36)),
            },
            // 4 vCPUs arm64: on demand 0.1632/h; Linux 4-core arm64 is 0.008 * 60 = 0.48/h.
            Case {
                region: "us-east-1",
                instance_type: "m7g.xlarge",
                spot: 0.0816,
                vs_on_demand: Some(0.5),
                vs_github: Some(("Linux 4-core (arm64)", 1.0 - 0.0816 / 0.48)),
            },
            // 32 vCPUs x86_64 in eu-west-1: on demand 1.4592/h; Linux 32-core x64 is 4.92/h.
            Case {
                region: "eu-west-1",
                instance_type: "c6i.8xlarge",
                spot: 0.7296,
                vs_on_demand: Some(0.5),
                vs_github: Some(("Linux 32-core (x64)", 1.0 - 0.7296 / 4.92)),
            },
            // Region without an on-demand row for the type: the GitHub comparison still holds.
            Case {
                region: "us-west-2",
                instance_type: "m7i.large",
                spot: 0.036,
                vs_on_demand: None,
                vs_github: Some(("Linux 2-core (x64)", 0.9)),
            },
            // Spot above on demand: reported as a negative saving.
            Case {
                region: "us-east-1",
                instance_type: "t3.large",
                spot: 0.1248,
                vs_on_demand: Some(-0.5),
                vs_github: Some(("Linux 2-core (x64)", 1.0 - 0.1248 / 0.36)),
            },
            // Unknown type: nothing to compare with.
            Case {
                region: "us-east-1",
                instance_type: "x2idn.16xlarge",
                spot: 1.0,
                vs_on_demand: None,
                vs_github: None,
            },
            // Nonsense spot prices give no savings.
            Case {
                region: "us-east-1",
                instance_type: "c6i.large",
                spot: -0.01,
                vs_on_demand: None,
                vs_github: None,
            },
            Case {
                region: "us-east-1",
                instance_type: "c6i.large",
                spot: f64::NAN,
                vs_on_demand: None,
                vs_github: None,
            },
            Case {
                region: "us-east-1",
                instance_type: "c6i.large",
                spot: f64::INFINITY,
                vs_on_demand: None,
                vs_github: None,
            },
        ];
        for case in cases {
            let what = format!("{} {} at {}", case.region, case.instance_type, case.spot);
            let got = savings(case.region, case.instance_type, case.spot);
            assert_close(got.vs_on_demand, case.vs_on_demand, &what);
            match (got.vs_github, case.vs_github) {
                (None, None) => {}
                (Some((runner, fraction)), Some((name, want))) => {
                    assert_eq!(runner.name, name, "{what}");
                    assert!(close(fraction, want), "{what}: got {fraction}, want {want}");
                }
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn on_demand_parser_accepts_comments_blank_lines_and_crlf() {
        let text = "# a comment\r\n\r\nregion\tinstance_type\tvcpus\tarch\tusd_per_hour\r\n\
                    # another comment\r\nus-east-1\tc6i.large\t2\tx86_64\t0.085\r\n\
                    eu-west-1\tc6i.large\t2\tx86_64\t0.0912\r\n\
                    us-east-1\tm7g.large\t2\tarm64\t0.0816\r\n";
        let table = parse_on_demand(text).expect("parses");
        assert_eq!(table.per_hour["us-east-1"]["c6i.large"], 0.085);
        assert_eq!(table.per_hour["eu-west-1"]["c6i.large"], 0.0912);
        assert_eq!(
            table.instances["m7g.large"],
            InstanceInfo {
                vcpus: 2,
                arch: ARM64
            }
        );
        assert_eq!(table.instances.len(), 2);
    }

    #[test]
    fn on_demand_parser_rejects_bad_input() {
        const HEADER: &str = "region\tinstance_type\tvcpus\tarch\tusd_per_hour\n";
        let cases: &[(&str, &str)] = &[
            ("", "no column header"),
            ("# only a comment\n", "no column header"),
            (HEADER, "no data rows"),
            (
                "region\tinstance\tvcpus\tarch\tusd_per_hour\nus-east-1\tc6i.large\t2\tx86_64\t0.085\n",
                "line 1: expected the column header",
            ),
            (
                "us-east-1\tc6i.large\t2\tx86_64\t0.085\n",
                "line 1: expected the column header",
            ),
            (
                "\tc6i.large\t2\tx86_64\t0.085\n",
                "expected the column header",
            ),
        ];
        for &(text, want) in cases {
            let err = parse_on_demand(text).expect_err(text);
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let rows: &[(&str, &str)] = &[
            (
                "us-east-1\tc6i.large\t2\tx86_64",
                "line 2: expected 5 tab-separated fields, found 4",
            ),
            ("us-east-1\tc6i.large\t2\tx86_64\t0.085\textra", "found 6"),
            ("us-east-1 c6i.large 2 x86_64 0.085", "found 1"),
            ("us-east-1\t\t2\tx86_64\t0.085", "line 2: field 2 is empty"),
            (
                "us-east-1\tc6i.large\t0\tx86_64\t0.085",
                "vcpus must be a positive whole number",
            ),
            (
                "us-east-1\tc6i.large\ttwo\tx86_64\t0.085",
                "vcpus must be a positive whole number",
            ),
            (
                "us-east-1\tc6i.large\t-2\tx86_64\t0.085",
                "vcpus must be a positive whole number",
            ),
            (
                "us-east-1\tc6i.large\t2\tamd64\t0.085",
                "arch must be x86_64 or arm64",
            ),
            (
                "us-east-1\tc6i.large\t2\tx86_64\t0",
                "price must be a positive number",
            ),
            (
                "us-east-1\tc6i.large\t2\tx86_64\t-0.085",
                "price must be a positive number",
            ),
            (
                "us-east-1\tc6i.large\t2\tx86_64\tNaN",
                "price must be a positive number",
            ),
            (
                "us-east-1\tc6i.large\t2\tx86_64\tinf",
                "price must be a positive number",
            ),
            (
                "us-east-1\tc6i.large\t2\tx86_64\t$0.085",
                "price must be a positive number",
            ),
            (
                "us-east-1\tc6i.large\t2\tx86_64\t0.085\nus-east-1\tc6i.large\t2\tx86_64\t0.085",
                "line 3: us-east-1 c6i.large is listed twice",
            ),
            (
                "us-east-1\tc6i.large\t2\tx86_64\t0.085\neu-west-1\tc6i.large\t4\tx86_64\t0.0912",
                "line 3: c6i.large is listed with 4 vCPUs x86_64 here but 2 vCPUs x86_64 earlier",
            ),
            (
                "us-east-1\tc6i.large\t2\tx86_64\t0.085\neu-west-1\tc6i.large\t2\tarm64\t0.0912",
                "2 vCPUs arm64 here but 2 vCPUs x86_64 earlier",
            ),
        ];
        for &(body, want) in rows {
            // Leaked so the parser sees `&'static str`, as it does with the embedded file.
            let text: &'static str = Box::leak(format!("{HEADER}{body}\n").into_boxed_str());
            let err = parse_on_demand(text).expect_err(body);
            assert!(err.contains(want), "{body:?}: {err}");
        }
    }

    #[test]
    fn github_hosted_parser() {
        const HEADER: &str = "sku\tarch\tvcpus\tusd_per_minute\tname\n";
        let text: &'static str = "# c\nsku\tarch\tvcpus\tusd_per_minute\tname\n\
                                  linux\tx86_64\t2\t0.006\tLinux 2-core (x64)\n\
                                  linux_4_core_arm\tarm64\t4\t0.008\tLinux 4-core (arm64)\n";
        let runners = parse_github_hosted(text).expect("parses");
        assert_eq!(runners.len(), 2);
        assert_eq!(runners[0].arch, X86_64);
        assert_eq!(runners[0].runner.name, "Linux 2-core (x64)");
        assert_eq!(runners[0].runner.vcpus, 2);
        assert!(close(runners[0].runner.per_hour, 0.36));
        assert!(close(runners[1].runner.per_hour, 0.48));

        let rows: &[(&str, &str)] = &[
            ("linux\tx86_64\t2\t0.006", "expected 5 tab-separated fields"),
            (
                "linux\tx64\t2\t0.006\tLinux",
                "arch must be x86_64 or arm64",
            ),
            (
                "linux\tx86_64\t0\t0.006\tLinux",
                "vcpus must be a positive whole number",
            ),
            (
                "linux\tx86_64\t2\tfree\tLinux",
                "price must be a positive number",
            ),
            (
                "linux\tx86_64\t2\t0.006\tLinux\nlinux_2\tx86_64\t2\t0.008\tLinux again",
                "line 3: the x86_64 runner with 2 vCPUs is listed twice",
            ),
        ];
        for &(body, want) in rows {
            let text: &'static str = Box::leak(format!("{HEADER}{body}\n").into_boxed_str());
            let err = parse_github_hosted(text).expect_err(body);
            assert!(err.contains(want), "{body:?}: {err}");
        }
        assert!(parse_github_hosted(HEADER).is_err());
    }

    #[test]
    fn header_value_reads_comment_fields() {
        let text = "# as-of: 2026-02-09\n#  taken : 2026-11-28\nx\n";
        assert_eq!(header_value(text, "as-of"), Some("2026-02-09"));
        assert_eq!(header_value(text, "taken"), None);
        assert_eq!(header_value(text, "missing"), None);
    }
}
