//! Placement: current spot prices per instance type and zone, the ranking of
//! launch candidates (cheapest spot first, then on-demand by list price when
//! allowed), and the optional mapping of subnets to zones.

use std::collections::HashMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::Filter;

use crate::aws::AwsError;
use crate::settings::{InstanceType, MarketPolicy, RankBy, SubnetId};

/// How instances are bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Market {
    /// Spot capacity: up to 90 % cheaper, can be reclaimed.
    Spot,
    /// On-demand capacity.
    OnDemand,
}

impl Market {
    /// The name used in outputs and the summary.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::OnDemand => "on-demand",
        }
    }
}

/// The latest spot price of one type in one zone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpotPrice {
    /// Instance type.
    pub(crate) instance_type: InstanceType,
    /// Availability zone.
    pub(crate) zone: String,
    /// USD per hour.
    pub(crate) price: f64,
}

/// One way to launch: a type, where, and how it is bought.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    /// Instance type.
    pub(crate) instance_type: InstanceType,
    /// Zone for `Placement.AvailabilityZone` (no subnet given), or the subnet's
    /// zone when known; `None` lets EC2 choose.
    pub(crate) zone: Option<String>,
    /// Subnet to launch into, when the user gave subnets.
    pub(crate) subnet: Option<SubnetId>,
    /// Market.
    pub(crate) market: Market,
    /// Current spot price, when known (USD per hour).
    pub(crate) spot_price: Option<f64>,
}

/// The product descriptions of Linux spot prices: accounts made in the
/// EC2-Classic era see VPC prices under the second name.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSpotPriceHistory.html
const LINUX: [&str; 2] = ["Linux/UNIX", "Linux/UNIX (Amazon VPC)"];

/// Fetches the current Linux spot price of each type in each zone. One call
/// (paginated) covers every type; asking from "now" returns only the latest
/// price per type and zone. The types go in as a filter, not as the
/// `InstanceType` parameter: EC2 refuses the whole call when one value of
/// that parameter is not a type it knows, while a filter value that matches
/// nothing just finds no price, so one mistyped type cannot cost the others
/// their ranking.
pub(crate) async fn spot_prices(
    client: &Client,
    types: &[InstanceType],
) -> Result<Vec<SpotPrice>, AwsError> {
    let mut latest: HashMap<(String, String), (aws_smithy_types::DateTime, f64)> = HashMap::new();
    let mut pages = client
        .describe_spot_price_history()
        .filters(
            Filter::builder()
                .name("instance-type")
                .set_values(Some(types.iter().map(|t| t.as_str().to_owned()).collect()))
                .build(),
        )
        .filters(
            Filter::builder()
                .name("product-description")
                .set_values(Some(LINUX.iter().map(|d| (*d).to_owned()).collect()))
                .build(),
        )
        .start_time(aws_smithy_types::DateTime::from(
            std::time::SystemTime::now(),
        ))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("DescribeSpotPriceHistory", &e))?;
        for item in page.spot_price_history() {
            let (Some(kind), Some(zone), Some(price), Some(at)) = (
                item.instance_type(),
                item.availability_zone(),
                item.spot_price().and_then(|p| p.parse::<f64>().ok()),
                item.timestamp(),
            ) else {
                continue;
            };
            let key = (kind.as_str().to_owned(), zone.to_owned());
            // One price per type and zone: the newest, and of two as new
            // (one per product description) the lower.
            let newer = latest.get(&key).is_none_or(|(seen, old)| {
                at.secs() > seen.secs() || (at.secs() == seen.secs() && price < *old)
            });
            if newer {
                latest.insert(key, (*at, price));
            }
        }
    }
    let mut prices: Vec<SpotPrice> = latest
        .into_iter()
        .filter_map(|((kind, zone), (_, price))| {
            Some(SpotPrice {
                instance_type: InstanceType::parse(&kind).ok()?,
                zone,
                price,
            })
        })
        .collect();
    prices.sort_by(|a, b| {
        a.price
            .total_cmp(&b.price)
            .then_with(|| a.zone.cmp(&b.zone))
    });
    Ok(prices)
}

/// The types that have no spot price in any zone: the region does not
/// offer them, or the name is mistyped.
pub(crate) fn unpriced_types<'a>(
    types: &'a [InstanceType],
    prices: &[SpotPrice],
) -> Vec<&'a InstanceType> {
    types
        .iter()
        .filter(|t| !prices.iter().any(|p| &p.instance_type == *t))
        .collect()
}

/// Whether `zone` is one of the region's standard availability zones
/// (`us-east-1a`), not a Local Zone (`us-east-1-bos-1a`) or a Wavelength
/// Zone (`us-east-1-wl1-bos-wlz-1`), which the price history lists too but
/// which an account must opt in to and which offer few types.
// NOTE: https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-availability-zones.html
pub(crate) fn is_standard_zone(region: &str, zone: &str) -> bool {
    zone.strip_prefix(region)
        .is_some_and(|rest| rest.len() == 1 && rest.bytes().all(|b| b.is_ascii_lowercase()))
}

/// What ranking needs to know besides the prices.
pub(crate) struct RankInput<'a> {
    /// Acceptable types, preferred first.
    pub(crate) types: &'a [InstanceType],
    /// The region, to tell its standard zones from Local and Wavelength Zones.
    pub(crate) region: &'a str,
    /// Zones the user allows (empty: all).
    pub(crate) zones: &'a [String],
    /// Subnets the user gave, in order, with their zone when known.
    pub(crate) subnets: &'a [(SubnetId, Option<String>)],
    /// Highest acceptable spot price (USD per hour).
    pub(crate) max_spot_price: Option<f64>,
    /// Markets to use.
    pub(crate) policy: MarketPolicy,
    /// How candidates are ordered (spot and on-demand alike).
    pub(crate) rank_by: RankBy,
    /// Whether a type without a spot price is still tried as spot: yes for
    /// types the user named, no for types matched by size (a type the region
    /// has no price for is one it does not offer).
    pub(crate) try_unpriced: bool,
}

/// The sort key of a spot price: per machine, or per vCPU (from the
/// catalogue; a type it does not know counts as one vCPU).
fn rank_key(by: RankBy, p: &SpotPrice) -> f64 {
    per(by, &p.instance_type, p.price)
}

fn per(by: RankBy, instance_type: &InstanceType, price: f64) -> f64 {
    match by {
        RankBy::Price => price,
        RankBy::PricePerVcpu => {
            let vcpus = crate::catalogue::lookup(instance_type.as_str()).map_or(1, |t| t.vcpus);
            price / f64::from(vcpus.max(1))
        }
    }
}

/// The types in on-demand order: by the region's list price compiled into
/// the release (per vCPU with `rank-by: price-per-vcpu`), cheapest first,
/// then the types the table has no price for; the given order (the user's,
/// or smallest first for matched types) breaks ties and orders the rest, as
/// it does for spot. Nothing is estimated from another region or size.
fn on_demand_order<'a>(input: &RankInput<'a>) -> Vec<&'a InstanceType> {
    let mut keyed: Vec<(Option<(f64, f64)>, &InstanceType)> = input
        .types
        .iter()
        .map(|t| {
            let price = crate::pricing::on_demand_per_hour(input.region, t.as_str());
            (price.map(|p| (per(input.rank_by, t, p), p)), t)
        })
        .collect();
    // A stable sort: equal keys keep the given order.
    keyed.sort_by(|(a, _), (b, _)| match (a, b) {
        (Some(a), Some(b)) => a.0.total_cmp(&b.0).then_with(|| a.1.total_cmp(&b.1)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    keyed.into_iter().map(|(_, t)| t).collect()
}

/// Orders the launch candidates: spot by price (ties by the user's type
/// order, then zone), types without a price after the priced ones, then
/// on-demand by list price (see [`on_demand_order`]).
pub(crate) fn rank(input: &RankInput<'_>, prices: &[SpotPrice]) -> Vec<Candidate> {
    let type_rank = |t: &InstanceType| {
        input
            .types
            .iter()
            .position(|x| x == t)
            .unwrap_or(usize::MAX)
    };
    let zone_allowed = |z: &str| {
        if input.zones.is_empty() {
            is_standard_zone(input.region, z)
        } else {
            input.zones.iter().any(|a| a == z)
        }
    };
    let price_ok = |p: f64| input.max_spot_price.is_none_or(|max| p <= max);
    let mut candidates = Vec::new();

    if input.policy != MarketPolicy::OnDemand {
        let mut priced: Vec<&SpotPrice> = prices
            .iter()
            .filter(|p| {
                type_rank(&p.instance_type) != usize::MAX
                    && zone_allowed(&p.zone)
                    && price_ok(p.price)
            })
            .collect();
        priced.sort_by(|a, b| {
            rank_key(input.rank_by, a)
                .total_cmp(&rank_key(input.rank_by, b))
                .then_with(|| a.price.total_cmp(&b.price))
                .then_with(|| type_rank(&a.instance_type).cmp(&type_rank(&b.instance_type)))
                .then_with(|| a.zone.cmp(&b.zone))
        });
        if input.subnets.is_empty() {
            for p in &priced {
                candidates.push(Candidate {
                    instance_type: p.instance_type.clone(),
                    zone: Some(p.zone.clone()),
                    subnet: None,
                    market: Market::Spot,
                    spot_price: Some(p.price),
                });
            }
            // A type with no published price in any allowed zone (or no price
            // lookup at all) is still worth a try, in each allowed zone or
            // where EC2 picks, unless a price cap is set, which we could not
            // check.
            if input.max_spot_price.is_none() && input.try_unpriced {
                for t in input.types {
                    let has_price = prices
                        .iter()
                        .any(|p| &p.instance_type == t && zone_allowed(&p.zone));
                    if !has_price {
                        candidates.extend(unpriced(t, input.zones, Market::Spot));
                    }
                }
            }
        } else {
            let types: Vec<&InstanceType> = input.types.iter().collect();
            candidates.extend(subnet_candidates(input, &types, prices, Market::Spot));
        }
    }

    if input.policy != MarketPolicy::Spot {
        let types = on_demand_order(input);
        if input.subnets.is_empty() {
            for t in types {
                candidates.extend(unpriced(t, input.zones, Market::OnDemand));
            }
        } else {
            candidates.extend(subnet_candidates(input, &types, prices, Market::OnDemand));
        }
    }
    candidates
}

/// Candidates without a price: one per allowed zone, or one where EC2 picks
/// the zone when the user allowed them all.
fn unpriced(instance_type: &InstanceType, zones: &[String], market: Market) -> Vec<Candidate> {
    let candidate = |zone: Option<String>| Candidate {
        instance_type: instance_type.clone(),
        zone,
        subnet: None,
        market,
        spot_price: None,
    };
    if zones.is_empty() {
        vec![candidate(None)]
    } else {
        zones.iter().map(|z| candidate(Some(z.clone()))).collect()
    }
}

/// Candidates when subnets are pinned: every (type, subnet) pair. With known
/// subnet zones, spot pairs are ordered by that zone's price; otherwise (and
/// on demand) the order of `types`, then subnet order.
fn subnet_candidates(
    input: &RankInput<'_>,
    types: &[&InstanceType],
    prices: &[SpotPrice],
    market: Market,
) -> Vec<Candidate> {
    let price_of = |t: &InstanceType, zone: &Option<String>| {
        zone.as_ref().and_then(|z| {
            prices
                .iter()
                .find(|p| &p.instance_type == t && &p.zone == z)
                .map(|p| p.price)
        })
    };
    let mut out = Vec::new();
    for (ti, t) in types.iter().copied().enumerate() {
        for (si, (subnet, zone)) in input.subnets.iter().enumerate() {
            if let Some(zone) = zone {
                if !input.zones.is_empty() && !input.zones.contains(zone) {
                    continue;
                }
            }
            let spot_price = if market == Market::Spot {
                price_of(t, zone)
            } else {
                None
            };
            if market == Market::Spot {
                if let (Some(max), Some(price)) = (input.max_spot_price, spot_price) {
                    if price > max {
                        continue;
                    }
                }
            }
            out.push((
                spot_price.map_or(f64::INFINITY, |p| per(input.rank_by, t, p)),
                ti,
                si,
                Candidate {
                    instance_type: t.clone(),
                    zone: zone.clone(),
                    subnet: Some(subnet.clone()),
                    market,
                    spot_price,
                },
            ));
        }
    }
    if market == Market::Spot {
        out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    }
    out.into_iter().map(|(_, _, _, c)| c).collect()
}

/// Maps subnets to their zones with ec2:DescribeSubnets. That action is not
/// in the six-action policy, so it is called only when `allowed` (listed in
/// `extra-permissions`); otherwise, or when it is denied all the same, the
/// subnets are tried in the given order, and the log says so once.
pub(crate) async fn subnet_zones(
    client: &Client,
    subnets: &[SubnetId],
    allowed: bool,
) -> Vec<(SubnetId, Option<String>)> {
    if subnets.is_empty() {
        return Vec::new();
    }
    if !allowed {
        tracing::info!(
            "subnet-ids are tried in the given order; to rank them by their zone's spot price, grant ec2:DescribeSubnets and list it in extra-permissions"
        );
        return subnets.iter().map(|s| (s.clone(), None)).collect();
    }
    let result = client
        .describe_subnets()
        .set_subnet_ids(Some(
            subnets.iter().map(|s| s.as_str().to_owned()).collect(),
        ))
        .send()
        .await;
    match result {
        Ok(output) => {
            let zones: HashMap<&str, &str> = output
                .subnets()
                .iter()
                .filter_map(|s| Some((s.subnet_id()?, s.availability_zone()?)))
                .collect();
            subnets
                .iter()
                .map(|s| (s.clone(), zones.get(s.as_str()).map(|z| (*z).to_owned())))
                .collect()
        }
        Err(err) => {
            let err = AwsError::from_sdk("DescribeSubnets", &err);
            tracing::info!(
                "could not map subnet-ids to zones ({}); trying the subnets in the given order. Allow ec2:DescribeSubnets to rank them by spot price",
                err.code.as_deref().unwrap_or("no answer")
            );
            subnets.iter().map(|s| (s.clone(), None)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> InstanceType {
        InstanceType::parse(name).unwrap()
    }

    fn price(kind: &str, zone: &str, price: f64) -> SpotPrice {
        SpotPrice {
            instance_type: t(kind),
            zone: zone.into(),
            price,
        }
    }

    fn summary(c: &[Candidate]) -> Vec<String> {
        c.iter()
            .map(|c| {
                format!(
                    "{} {} {} {}",
                    c.market.as_str(),
                    c.instance_type,
                    c.zone.as_deref().unwrap_or("-"),
                    c.subnet.as_ref().map(|s| s.as_str()).unwrap_or("-")
                )
            })
            .collect()
    }

    #[test]
    fn cheapest_spot_first_then_on_demand_by_list_price() {
        let types = [t("c7i.large"), t("c6i.large")];
        let prices = [
            price("c7i.large", "us-east-1a", 0.05),
            price("c7i.large", "us-east-1b", 0.03),
            price("c6i.large", "us-east-1a", 0.04),
        ];
        let input = RankInput {
            types: &types,
            region: "us-east-1",
            zones: &[],
            subnets: &[],
            max_spot_price: None,
            policy: MarketPolicy::SpotThenOnDemand,
            rank_by: RankBy::Price,
            try_unpriced: true,
        };
        assert_eq!(
            summary(&rank(&input, &prices)),
            [
                "spot c7i.large us-east-1b -",
                "spot c6i.large us-east-1a -",
                "spot c7i.large us-east-1a -",
                // us-east-1 lists c6i.large at $0.085, c7i.large at $0.08925.
                "on-demand c6i.large - -",
                "on-demand c7i.large - -",
            ]
        );
    }

    #[test]
    fn on_demand_goes_by_the_list_price_where_known_then_in_the_given_order() {
        // src/pricing/on_demand.tsv lists c6a.large, c6i.large and c7i.large
        // in us-east-1, not c6in.large or m5a.large.
        let list = |kind: &str| crate::pricing::on_demand_per_hour("us-east-1", kind);
        assert!(list("c6a.large") < list("c6i.large") && list("c6i.large") < list("c7i.large"));
        assert_eq!((list("c6in.large"), list("m5a.large")), (None, None));
        let types = [
            t("c6in.large"),
            t("c7i.large"),
            t("m5a.large"),
            t("c6i.large"),
            t("c6a.large"),
        ];
        let prices = [price("c7i.large", "us-east-1a", 0.03)];
        let mut input = RankInput {
            types: &types,
            region: "us-east-1",
            zones: &[],
            subnets: &[],
            max_spot_price: None,
            policy: MarketPolicy::OnDemand,
            rank_by: RankBy::Price,
            try_unpriced: false,
        };
        let on_demand = [
            "on-demand c6a.large - -",
            "on-demand c6i.large - -",
            "on-demand c7i.large - -",
            "on-demand c6in.large - -",
            "on-demand m5a.large - -",
        ];
        assert_eq!(summary(&rank(&input, &prices)), on_demand);
        // The same order after spot, which goes by the spot price.
        input.policy = MarketPolicy::SpotThenOnDemand;
        let ranked = summary(&rank(&input, &prices));
        assert_eq!(ranked[0], "spot c7i.large us-east-1a -");
        assert_eq!(ranked[1..], on_demand);
        // By price per vCPU, c6a.xlarge ($0.153 for 4) beats c7i.large
        // ($0.08925 for 2); by price, the smaller machine wins.
        let types = [t("c7i.large"), t("c6a.xlarge")];
        input.types = &types;
        input.policy = MarketPolicy::OnDemand;
        assert_eq!(
            summary(&rank(&input, &[])),
            ["on-demand c7i.large - -", "on-demand c6a.xlarge - -"]
        );
        input.rank_by = RankBy::PricePerVcpu;
        assert_eq!(
            summary(&rank(&input, &[])),
            ["on-demand c6a.xlarge - -", "on-demand c7i.large - -"]
        );
        // A region the table does not hold keeps the given order.
        input.region = "ap-south-1";
        assert_eq!(
            summary(&rank(&input, &[])),
            ["on-demand c7i.large - -", "on-demand c6a.xlarge - -"]
        );
    }

    #[test]
    fn on_demand_into_subnets_goes_by_the_list_price_then_subnet_order() {
        let types = [t("c7i.large"), t("c6a.large")];
        let a = SubnetId::parse("subnet-ids", "subnet-0000000a").unwrap();
        let b = SubnetId::parse("subnet-ids", "subnet-0000000b").unwrap();
        let subnets = [(a, None), (b, Some("us-east-1b".to_owned()))];
        let input = RankInput {
            types: &types,
            region: "us-east-1",
            zones: &[],
            subnets: &subnets,
            max_spot_price: None,
            policy: MarketPolicy::OnDemand,
            rank_by: RankBy::Price,
            try_unpriced: true,
        };
        assert_eq!(
            summary(&rank(&input, &[])),
            [
                "on-demand c6a.large - subnet-0000000a",
                "on-demand c6a.large us-east-1b subnet-0000000b",
                "on-demand c7i.large - subnet-0000000a",
                "on-demand c7i.large us-east-1b subnet-0000000b",
            ]
        );
    }

    #[test]
    fn zones_and_price_cap_filter_spot_and_policy_picks_markets() {
        let types = [t("c7i.large")];
        let prices = [
            price("c7i.large", "us-east-1a", 0.05),
            price("c7i.large", "us-east-1b", 0.03),
        ];
        let zones = ["us-east-1a".to_owned()];
        let mut input = RankInput {
            types: &types,
            region: "us-east-1",
            zones: &zones,
            subnets: &[],
            max_spot_price: Some(0.04),
            policy: MarketPolicy::Spot,
            rank_by: RankBy::Price,
            try_unpriced: true,
        };
        assert!(rank(&input, &prices).is_empty());
        input.max_spot_price = None;
        assert_eq!(
            summary(&rank(&input, &prices)),
            ["spot c7i.large us-east-1a -"]
        );
        input.policy = MarketPolicy::OnDemand;
        assert_eq!(
            summary(&rank(&input, &prices)),
            ["on-demand c7i.large us-east-1a -"],
            "on-demand keeps to the allowed zones too"
        );
        // Without prices (the lookup failed) a zone restriction still gives candidates.
        input.policy = MarketPolicy::Spot;
        assert_eq!(summary(&rank(&input, &[])), ["spot c7i.large us-east-1a -"]);
    }

    #[test]
    fn local_and_wavelength_zones_are_left_out_unless_named() {
        let types = [t("c7i.large")];
        let prices = [
            price("c7i.large", "us-east-1-bos-1a", 0.01),
            price("c7i.large", "us-east-1-wl1-bos-wlz-1", 0.02),
            price("c7i.large", "us-east-1b", 0.03),
        ];
        let input = RankInput {
            types: &types,
            region: "us-east-1",
            zones: &[],
            subnets: &[],
            max_spot_price: None,
            policy: MarketPolicy::Spot,
            rank_by: RankBy::Price,
            try_unpriced: true,
        };
        assert_eq!(
            summary(&rank(&input, &prices)),
            ["spot c7i.large us-east-1b -"]
        );
        let named = ["us-east-1-bos-1a".to_owned()];
        let input = RankInput {
            zones: &named,
            ..input
        };
        assert_eq!(
            summary(&rank(&input, &prices)),
            ["spot c7i.large us-east-1-bos-1a -"]
        );
        assert!(is_standard_zone("eu-west-1", "eu-west-1c"));
        assert!(!is_standard_zone("us-west-2", "us-west-2-lax-1a"));
        assert!(!is_standard_zone("us-east-1", "us-east-10"));
    }

    #[test]
    fn types_without_prices_still_get_a_spot_try() {
        let types = [t("c7i.large"), t("m7i.large")];
        let prices = [price("c7i.large", "us-east-1a", 0.05)];
        let input = RankInput {
            types: &types,
            region: "us-east-1",
            zones: &[],
            subnets: &[],
            max_spot_price: None,
            policy: MarketPolicy::Spot,
            rank_by: RankBy::Price,
            try_unpriced: true,
        };
        assert_eq!(
            summary(&rank(&input, &prices)),
            ["spot c7i.large us-east-1a -", "spot m7i.large - -"]
        );
    }

    #[test]
    fn subnets_keep_user_order_without_zones_and_price_order_with_them() {
        let types = [t("c7i.large")];
        let a = SubnetId::parse("subnet-ids", "subnet-0000000a").unwrap();
        let b = SubnetId::parse("subnet-ids", "subnet-0000000b").unwrap();
        let prices = [
            price("c7i.large", "us-east-1a", 0.05),
            price("c7i.large", "us-east-1b", 0.03),
        ];
        let unknown = [(a.clone(), None), (b.clone(), None)];
        let input = RankInput {
            types: &types,
            region: "us-east-1",
            zones: &[],
            subnets: &unknown,
            max_spot_price: None,
            policy: MarketPolicy::Spot,
            rank_by: RankBy::Price,
            try_unpriced: true,
        };
        assert_eq!(
            summary(&rank(&input, &prices)),
            [
                "spot c7i.large - subnet-0000000a",
                "spot c7i.large - subnet-0000000b"
            ]
        );
        let known = [
            (a, Some("us-east-1a".to_owned())),
            (b, Some("us-east-1b".to_owned())),
        ];
        let input = RankInput {
            subnets: &known,
            ..input
        };
        assert_eq!(
            summary(&rank(&input, &prices)),
            [
                "spot c7i.large us-east-1b subnet-0000000b",
                "spot c7i.large us-east-1a subnet-0000000a"
            ]
        );
    }
}
