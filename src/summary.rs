//! The start step's summary: what was launched where, at what price, the
//! spread of spot prices across the zones considered, and the estimated
//! saving against on-demand and a GitHub-hosted runner of similar size.
//! Prices it does not know are said to be unknown, never guessed.

use std::fmt::Write as _;

use crate::actions::Table;
use crate::aws::placement::{Market, SpotPrice};
use crate::pricing;

/// One launched runner, as the summary shows it.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Runner name.
    pub(crate) runner: String,
    /// Instance id.
    pub(crate) instance: String,
    /// Instance type.
    pub(crate) instance_type: String,
    /// Availability zone, once known.
    pub(crate) zone: Option<String>,
    /// How it is bought.
    pub(crate) market: Market,
}

/// The boot boost of the root volumes, and whether it outlives the boot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Boost {
    /// gp3 IOPS at launch.
    pub(crate) iops: i32,
    /// gp3 throughput at launch, MiB/s.
    pub(crate) throughput: i32,
    /// Kept until the machine ends (not dropped after boot).
    pub(crate) kept: bool,
}

/// The hourly price of a row: the zone's current spot price, or the
/// on-demand list price. `None` when neither table has it.
pub(crate) fn price_per_hour(region: &str, row: &Row, prices: &[SpotPrice]) -> Option<f64> {
    match row.market {
        Market::Spot => prices
            .iter()
            .find(|p| {
                p.instance_type.as_str() == row.instance_type && Some(&p.zone) == row.zone.as_ref()
            })
            .map(|p| p.price),
        Market::OnDemand => pricing::on_demand_per_hour(region, &row.instance_type),
    }
}

/// A price in USD with four decimals, or five where the fifth matters
/// (on-demand list prices like $0.08925).
pub(crate) fn decimal(value: f64) -> String {
    let mut text = format!("{value:.5}");
    if text.ends_with('0') {
        text.pop();
    }
    text
}

fn money(value: f64) -> String {
    format!("${}", decimal(value))
}

fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

/// Renders the Markdown summary.
pub(crate) fn render(
    label: &str,
    region: &str,
    rows: &[Row],
    prices: &[SpotPrice],
    boost: Option<Boost>,
    notes: &[String],
    seconds: f64,
) -> String {
    let mut out = format!(
        "### ec2-spot-runner start\n\nLabel `{label}`: {} runner(s) in {region}, ready in {seconds:.1} s.\n\n",
        rows.len()
    );
    for note in notes {
        let _ = writeln!(out, "{note}\n");
    }
    let mut table = Table::new(&[
        "runner",
        "instance",
        "type",
        "zone",
        "market",
        "price / hour",
    ]);
    for row in rows {
        table.row(&[
            row.runner.clone(),
            row.instance.clone(),
            row.instance_type.clone(),
            row.zone.clone().unwrap_or_else(|| "-".into()),
            row.market.as_str().to_owned(),
            price_per_hour(region, row, prices)
                .map(money)
                .unwrap_or_else(|| "unknown".into()),
        ]);
    }
    out.push_str(&table.finish());
    out.push('\n');
    if let Some(b) = boost {
        let _ = writeln!(
            out,
            "Boot boost: root volume launched at {} IOPS and {} MiB/s (gp3's free baseline is 3000 and 125), about {} an hour more per machine while it lasts; {}.\n",
            b.iops,
            b.throughput,
            money(pricing::gp3_boost_per_hour(b.iops, b.throughput)),
            if b.kept {
                "kept until the machine ends"
            } else {
                "dropped to the baseline once the machine was up"
            }
        );
    }

    let Some(first) = rows.first() else {
        return out;
    };
    let kind = &first.instance_type;
    let mut zone_prices: Vec<&SpotPrice> = prices
        .iter()
        .filter(|p| p.instance_type.as_str() == kind)
        .collect();
    zone_prices.sort_by(|a, b| a.price.total_cmp(&b.price));
    match (zone_prices.first(), zone_prices.last()) {
        (Some(low), Some(high)) if zone_prices.len() > 1 => {
            let _ = writeln!(
                out,
                "Spot price of {kind} across the {} zones considered: {} ({}) to {} ({}).\n",
                zone_prices.len(),
                money(low.price),
                low.zone,
                money(high.price),
                high.zone
            );
        }
        (Some(only), _) => {
            let _ = writeln!(
                out,
                "Spot price of {kind}: {} in {}, the only zone with a price.\n",
                money(only.price),
                only.zone
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "Spot prices of {kind}: not read (on-demand launch, or the price history was unavailable).\n"
            );
        }
    }

    match price_per_hour(region, first, prices) {
        Some(paid) => {
            let saving = pricing::savings(region, kind, paid);
            let on_demand = match (
                saving.vs_on_demand,
                pricing::on_demand_per_hour(region, kind),
            ) {
                _ if first.market == Market::OnDemand => {
                    "on-demand: this is the on-demand price".to_owned()
                }
                (Some(fraction), Some(od)) => format!(
                    "{} less than on-demand ({}/h)",
                    percent(fraction),
                    money(od)
                ),
                _ => format!(
                    "on-demand price of {kind} in {region}: unknown (not in the built-in table)"
                ),
            };
            let github = match saving.vs_github {
                Some((runner, fraction)) => format!(
                    "{} less than a GitHub-hosted {} runner ({}/h)",
                    percent(fraction),
                    runner.name,
                    money(runner.per_hour)
                ),
                None => format!(
                    "GitHub-hosted equivalent of {kind}: unknown (size not in the built-in table)"
                ),
            };
            let _ = writeln!(out, "Estimated saving per hour: {on_demand}; {github}.\n");
        }
        None => {
            let _ = writeln!(
                out,
                "Price of {kind} in {region}: unknown, so no saving is estimated.\n"
            );
        }
    }
    let _ = writeln!(
        out,
        "<sub>Reference prices as of {}: {}; {}. Instance-hours only (no EBS or data transfer).</sub>",
        pricing::PRICES_AS_OF,
        pricing::ON_DEMAND_SOURCE,
        pricing::GITHUB_HOSTED_SOURCE
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::InstanceType;

    fn spot(kind: &str, zone: &str, price: f64) -> SpotPrice {
        SpotPrice {
            instance_type: InstanceType::parse(kind).unwrap(),
            zone: zone.into(),
            price,
        }
    }

    fn row(kind: &str, zone: &str, market: Market) -> Row {
        Row {
            runner: "ec2-1-1-build-abc-1".into(),
            instance: "i-0123456789abcdef0".into(),
            instance_type: kind.into(),
            zone: Some(zone.into()),
            market,
        }
    }

    #[test]
    fn spot_summary_shows_price_spread_and_savings() {
        let prices = [
            spot("c7i.large", "us-east-1b", 0.031),
            spot("c7i.large", "us-east-1a", 0.045),
        ];
        let text = render(
            "L",
            "us-east-1",
            &[row("c7i.large", "us-east-1b", Market::Spot)],
            &prices,
            Some(Boost {
                iops: 4000,
                throughput: 500,
                kept: false,
            }),
            &["Instance types: the 3 that matched `instance-requirements`.".into()],
            1.25,
        );
        assert!(
            text.contains("\n\nInstance types: the 3 that matched `instance-requirements`.\n\n|"),
            "{text}"
        );
        // (4000-3000) * $0.005 + (500-125) * $0.040 = $20 a month, / 730 h.
        assert!(
            text.contains(
                "about $0.0274 an hour more per machine while it lasts; dropped to the baseline"
            ),
            "{text}"
        );
        assert!(text.contains("| ec2-1-1-build-abc-1 | i-0123456789abcdef0 | c7i.large | us-east-1b | spot | $0.0310 |"), "{text}");
        assert!(
            text.contains(
                "across the 2 zones considered: $0.0310 (us-east-1b) to $0.0450 (us-east-1a)"
            ),
            "{text}"
        );
        // 1 - 0.031 / 0.08925 = 65%; the 2-core GitHub runner is $0.006/min = $0.36/h: 1 - 0.031/0.36 = 91%.
        assert!(
            text.contains("65% less than on-demand ($0.08925/h)"),
            "{text}"
        );
        assert!(text.contains("91% less than a GitHub-hosted"), "{text}");
        assert!(text.contains(pricing::PRICES_AS_OF));
    }

    #[test]
    fn unknown_prices_are_said_to_be_unknown() {
        let text = render(
            "L",
            "ap-south-2",
            &[row("x9z.huge", "ap-south-2a", Market::Spot)],
            &[],
            None,
            &[],
            1.0,
        );
        assert!(text.contains("| unknown |"), "{text}");
        assert!(
            text.contains("Price of x9z.huge in ap-south-2: unknown, so no saving is estimated"),
            "{text}"
        );
        let text = render(
            "L",
            "ap-south-2",
            &[row("c7i.large", "ap-south-2a", Market::Spot)],
            &[spot("c7i.large", "ap-south-2a", 0.03)],
            None,
            &[],
            1.0,
        );
        assert!(
            text.contains("on-demand price of c7i.large in ap-south-2: unknown"),
            "{text}"
        );
    }
}
