//! Spot placement against the shim's prices and injected faults: cheapest
//! first, fallback on capacity only, on-demand when spot is exhausted, and no
//! duplicate machine when a launch answer is lost.

use serde_json::{Value, json};

use crate::harness::{Env, tag};

fn prices(env: &Env) {
    env.spot_prices(&[
        ("c7i.large", "us-east-1a", "0.0450"),
        ("c7i.large", "us-east-1b", "0.0310"),
        ("c7i.large", "us-east-1c", "0.0520"),
        ("c6i.large", "us-east-1a", "0.0380"),
        ("c6i.large", "us-east-1b", "0.0600"),
    ]);
}

/// The (type, zone, market) of every RunInstances attempt, in order.
fn attempts(env: &Env) -> Vec<(String, String, String)> {
    env.ec2_calls()
        .iter()
        .filter(|c| c["action"] == "RunInstances")
        .map(|c| {
            let p = &c["params"];
            (
                p["InstanceType"].as_str().unwrap_or("").to_owned(),
                p["Placement.AvailabilityZone"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned(),
                p["InstanceMarketOptions.MarketType"]
                    .as_str()
                    .unwrap_or("on-demand")
                    .to_owned(),
            )
        })
        .collect()
}

fn capacity(kind: &str, zone: Option<&str>, market: Option<&str>, code: &str) -> Value {
    let mut m = json!({"InstanceType": kind});
    if let Some(zone) = zone {
        m["Placement.AvailabilityZone"] = json!(zone);
    }
    m["InstanceMarketOptions.MarketType"] = market.map_or(Value::Null, |v| json!(v));
    json!({"action": "RunInstances", "match": m, "status": 500, "code": code,
           "message": format!("We currently do not have sufficient {kind} capacity in the zone you requested.")})
}

#[test]
fn the_cheapest_zone_is_chosen_and_the_summary_shows_the_price() {
    let env = Env::start();
    prices(&env);
    let run = env.start_runner(&[]);
    run.assert_ok();
    assert_eq!(run.output("availability-zone"), "us-east-1b");
    assert_eq!(run.output("instance-type"), "c7i.large");
    assert_eq!(run.output("market"), "spot");
    assert_eq!(run.output("price-per-hour"), "0.0310");
    let launch = env
        .ec2_calls()
        .into_iter()
        .find(|c| c["action"] == "RunInstances")
        .unwrap();
    assert!(
        launch["params"]
            .get("InstanceMarketOptions.SpotOptions.MaxPrice")
            .is_none(),
        "no cap unless max-spot-price is given"
    );
    assert_eq!(
        attempts(&env),
        [("c7i.large".into(), "us-east-1b".into(), "spot".into())]
    );
    assert!(
        run.summary.contains(
            "Boot boost: root volume launched at 4000 IOPS and 500 MiB/s (gp3's free baseline is 3000 and 125), about $0.0274 an hour more per machine while it lasts; dropped to the baseline once the machine was up."
        ),
        "{}",
        run.summary
    );
    let live = env.live_instances();
    assert_eq!(
        live[0].instance_lifecycle().map(|l| l.as_str()),
        Some("spot")
    );
    for line in [
        "| c7i.large | us-east-1b | spot | $0.0310 |",
        "across the 3 zones considered: $0.0310 (us-east-1b) to $0.0520 (us-east-1c)",
        "65% less than on-demand ($0.08925/h)",
        "less than a GitHub-hosted Linux 2-core",
        "Reference prices as of",
    ] {
        assert!(
            run.summary.contains(line),
            "summary lacks {line:?}:\n{}",
            run.summary
        );
    }
}

/// Spot c7i.large in us-east-1b, the cheapest candidate of `prices`, has no capacity.
fn no_capacity_in_the_cheapest_place(env: &Env) {
    env.faults(json!([capacity(
        "c7i.large",
        Some("us-east-1b"),
        Some("spot"),
        "InsufficientInstanceCapacity"
    )]));
}

#[test]
fn a_capacity_error_moves_to_the_next_candidate() {
    let env = Env::start();
    prices(&env);
    no_capacity_in_the_cheapest_place(&env);
    let run = env.start_runner(&[]);
    run.assert_ok();
    assert_eq!(
        attempts(&env),
        [
            ("c7i.large".into(), "us-east-1b".into(), "spot".into()),
            ("c6i.large".into(), "us-east-1a".into(), "spot".into()),
        ],
        "one try in the cheapest place (no retry in place), then the next cheapest"
    );
    assert_eq!(run.output("instance-type"), "c6i.large");
    assert_eq!(env.live_instances().len(), 1);
}

#[test]
fn when_all_spot_fails_on_demand_takes_over_or_spot_only_fails_clearly() {
    let env = Env::start();
    prices(&env);
    env.faults(json!([
        capacity(
            "c7i.large",
            None,
            Some("spot"),
            "InsufficientInstanceCapacity"
        ),
        capacity("c6i.large", None, Some("spot"), "SpotMaxPriceTooLow"),
    ]));
    let run = env.start_runner(&[]);
    run.assert_ok();
    assert_eq!(run.output("market"), "on-demand");
    let tried = attempts(&env);
    assert_eq!(
        tried.len(),
        6,
        "5 spot candidates then on-demand: {tried:?}"
    );
    assert_eq!(tried[5].2, "on-demand");
    assert!(env.live_instances()[0].instance_lifecycle().is_none());
    env.stop_runner(run.output("label"), &[]).assert_ok();

    env.clear_calls();
    let run = env.start_runner(&[("INPUT_MARKET", "spot")]);
    assert_eq!(run.code, 1, "{}", run.all());
    let error = run.error();
    assert!(
        error.contains("no capacity for any candidate (5 tried)"),
        "{error}"
    );
    assert!(
        error.contains("spot-then-on-demand"),
        "says how to fix it: {error}"
    );
    assert!(env.live_instances().is_empty());
    assert!(
        env.runners().is_empty(),
        "the JIT runner of the failed start was removed"
    );
}

#[test]
fn a_permission_error_stops_at_once_with_the_action_named() {
    let env = Env::start();
    prices(&env);
    env.faults(
        json!([{"action": "RunInstances", "status": 403, "code": "UnauthorizedOperation",
                        "message": "You are not authorized to perform this operation."}]),
    );
    let run = env.start_runner(&[]);
    assert_eq!(run.code, 1);
    assert_eq!(attempts(&env).len(), 1, "no walk through the candidates");
    assert!(
        run.stdout.contains("may not call ec2:RunInstances"),
        "{}",
        run.all()
    );
    assert!(env.runners().is_empty());
}

#[test]
fn a_missing_spot_service_linked_role_gets_the_one_time_fix() {
    let env = Env::start();
    prices(&env);
    env.faults(json!([{"action": "RunInstances", "status": 403,
                        "code": "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
                        "message": "The provided credentials do not have permission to create the service-linked role for EC2 Spot Instances."}]));
    let run = env.start_runner(&[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("aws iam create-service-linked-role --aws-service-name spot.amazonaws.com"),
        "{}",
        run.all()
    );
}

#[test]
fn a_rerun_goes_on_demand_straight_away() {
    let env = Env::start();
    prices(&env);
    let mut cmd = env.command(&["start"]);
    for (k, v) in env.app_env() {
        cmd.env(k, v);
    }
    cmd.env("INPUT_IMAGE_ID", crate::harness::AMI)
        .env("INPUT_INSTANCE_TYPES", "c7i.large")
        .env("GITHUB_RUN_ATTEMPT", "2");
    let run = env.finish(cmd);
    run.assert_ok();
    assert_eq!(run.output("market"), "on-demand");
    assert_eq!(
        run.output("price-per-hour"),
        "0.08925",
        "the on-demand list price"
    );
    assert_eq!(
        attempts(&env),
        [("c7i.large".into(), "-".into(), "on-demand".into())]
    );
    assert!(
        !env.ec2_actions()
            .contains(&"DescribeSpotPriceHistory".to_owned()),
        "no price lookup for on-demand"
    );
}

#[test]
fn count_three_gives_three_machines_with_their_own_jit_configs() {
    let env = Env::start();
    prices(&env);
    let run = env.start_runner(&[("INPUT_COUNT", "3")]);
    run.assert_ok();
    let label = run.output("label").to_owned();
    let ids: Vec<&str> = run.output("instance-ids").split(',').collect();
    assert_eq!(ids.len(), 3);
    let live = env.live_instances();
    assert_eq!(live.len(), 3);
    let mut names: Vec<&str> = live
        .iter()
        .filter_map(|i| tag(i, "ec2-spot-runner:runner-name"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("{label}-1"),
            format!("{label}-2"),
            format!("{label}-3")
        ]
    );
    let runners = env.runners();
    assert_eq!(runners.len(), 3);
    let jit_posts = env
        .github_calls()
        .iter()
        .filter(|c| {
            c["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("generate-jitconfig"))
        })
        .count();
    assert_eq!(jit_posts, 3);
    let waits = env
        .ec2_actions()
        .iter()
        .filter(|a| *a == "DescribeInstances")
        .count();
    assert!(
        waits <= 3,
        "one DescribeInstances per poll covers all three ({waits})"
    );
    env.stop_runner(&label, &[]).assert_ok();
    assert!(env.live_instances().is_empty());
    assert!(env.runners().is_empty());
}

#[test]
fn a_launch_whose_answer_is_lost_makes_no_duplicate() {
    let env = Env::start();
    prices(&env);
    env.faults(json!([{"action": "RunInstances", "drop_response": true, "times": 1, "status": 500, "code": "InternalError"}]));
    let run = env.start_runner(&[]);
    run.assert_ok();
    let launches = env
        .ec2_calls()
        .iter()
        .filter(|c| c["action"] == "RunInstances")
        .count();
    assert_eq!(launches, 2, "the SDK retried the lost launch");
    assert_eq!(
        env.instances().len(),
        1,
        "the retry with the same ClientToken made no second machine"
    );
}

#[test]
fn subnets_are_ranked_by_their_zone_price_or_tried_in_order_when_describe_subnets_is_denied() {
    let env = Env::start();
    prices(&env);
    let subnets = env.default_subnets();
    let a = subnets
        .iter()
        .find(|s| s.1 == "us-east-1a")
        .unwrap()
        .0
        .clone();
    let b = subnets
        .iter()
        .find(|s| s.1 == "us-east-1b")
        .unwrap()
        .0
        .clone();
    let given = format!("{a},{b}");
    let subnet_of = |env: &Env| -> Vec<String> {
        env.ec2_calls()
            .iter()
            .filter(|c| c["action"] == "RunInstances")
            .map(|c| c["params"]["SubnetId"].as_str().unwrap_or("-").to_owned())
            .collect()
    };

    // DescribeSubnets granted and listed: the cheaper zone's subnet (b)
    // goes first.
    let run = env.start_runner(&[
        ("INPUT_SUBNET_IDS", &given),
        ("INPUT_INSTANCE_TYPES", "c7i.large"),
        ("INPUT_EXTRA_PERMISSIONS", "ec2:DescribeSubnets"),
    ]);
    run.assert_ok();
    assert_eq!(subnet_of(&env), std::slice::from_ref(&b));
    assert_eq!(run.output("availability-zone"), "us-east-1b");
    env.stop_runner(run.output("label"), &[]).assert_ok();

    // Exactly the six actions and nothing listed: DescribeSubnets is never
    // called, the subnets are tried in the given order, and the log says
    // so once.
    let policy = env.policy();
    let mut env = env;
    env.act_as("six", &policy);
    env.clear_calls();
    let run = env.start_runner(&[
        ("INPUT_SUBNET_IDS", &given),
        ("INPUT_INSTANCE_TYPES", "c7i.large"),
    ]);
    run.assert_ok();
    assert_eq!(
        subnet_of(&env),
        std::slice::from_ref(&a),
        "given order without zone knowledge"
    );
    assert_eq!(
        run.stderr
            .matches("subnet-ids are tried in the given order")
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        !env.ec2_calls()
            .iter()
            .any(|c| c["action"] == "DescribeSubnets"),
        "an unlisted optional action is never called"
    );
    // Listed but not granted: the start still works in the given order.
    env.clear_calls();
    let run = env.start_runner(&[
        ("INPUT_SUBNET_IDS", &given),
        ("INPUT_INSTANCE_TYPES", "c7i.large"),
        ("INPUT_EXTRA_PERMISSIONS", "ec2:DescribeSubnets"),
    ]);
    run.assert_ok();
    assert_eq!(subnet_of(&env), std::slice::from_ref(&a));
    assert!(
        run.stderr.contains("trying the subnets in the given order"),
        "{}",
        run.stderr
    );
}

#[test]
fn allow_partial_accepts_fewer_runners_and_its_absence_undoes_them_all() {
    let env = Env::start();
    prices(&env);
    // Capacity for one machine only: every launch after the first fails.
    env.faults(
        json!([{"action": "RunInstances", "status": 500, "code": "InsufficientInstanceCapacity",
                        "message": "no capacity", "skip": 1}]),
    );
    let run = env.start_runner(&[
        ("INPUT_COUNT", "2"),
        ("INPUT_MARKET", "spot"),
        ("INPUT_ALLOW_PARTIAL", "true"),
    ]);
    run.assert_ok();
    assert_eq!(run.output("instance-ids").split(',').count(), 1);
    assert!(run.stdout.contains("::warning::runner"), "{}", run.all());
    assert_eq!(env.live_instances().len(), 1);
    env.stop_runner(run.output("label"), &[]).assert_ok();

    env.clear_calls();
    let run = env.start_runner(&[("INPUT_COUNT", "2"), ("INPUT_MARKET", "spot")]);
    assert_eq!(
        run.code, 1,
        "without allow-partial, fewer than count is a failure"
    );
    assert!(
        env.live_instances().is_empty(),
        "the one machine that started was terminated"
    );
    assert!(env.runners().is_empty());
}

#[test]
fn github_work_runs_while_the_price_lookup_is_slow() {
    let env = Env::start();
    prices(&env);
    env.faults(json!([{"action": "DescribeSpotPriceHistory", "delay_ms": 1500}]));
    let run = env.start_runner(&[]);
    run.assert_ok();
    let price_call = env
        .ec2_calls()
        .into_iter()
        .find(|c| c["action"] == "DescribeSpotPriceHistory")
        .unwrap();
    let jit_call = env
        .github_calls()
        .into_iter()
        .find(|c| {
            c["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("generate-jitconfig"))
        })
        .unwrap();
    let prices_answered = price_call["ts"].as_f64().unwrap() + 1.5;
    assert!(
        jit_call["ts"].as_f64().unwrap() < prices_answered,
        "the JIT config was minted while the prices were still on their way"
    );
    let launch = env
        .ec2_calls()
        .into_iter()
        .find(|c| c["action"] == "RunInstances")
        .unwrap();
    // Ordering, not speed: the launch follows the prices without anything in
    // between (a generous bound keeps a loaded machine from failing this).
    let waited = launch["ts"].as_f64().unwrap() - prices_answered;
    assert!(
        (-0.05..2.0).contains(&waited),
        "the launch went out once the prices arrived ({waited:.3} s later)"
    );
}

#[test]
fn max_spot_price_excludes_dearer_candidates_and_caps_the_bill() {
    let env = Env::start();
    prices(&env);
    no_capacity_in_the_cheapest_place(&env);
    let run = env.start_runner(&[("INPUT_MAX_SPOT_PRICE", "0.04"), ("INPUT_MARKET", "spot")]);
    run.assert_ok();
    let tried = attempts(&env);
    assert_eq!(
        tried,
        [
            ("c7i.large".into(), "us-east-1b".into(), "spot".into()),
            ("c6i.large".into(), "us-east-1a".into(), "spot".into()),
        ],
        "only the candidates at or under $0.04"
    );
    let launch = env
        .ec2_calls()
        .into_iter()
        .rfind(|c| c["action"] == "RunInstances")
        .unwrap();
    assert_eq!(
        launch["params"]["InstanceMarketOptions.SpotOptions.MaxPrice"],
        "0.04"
    );
}

/// The instance-type filter values of the one price lookup.
fn priced_types(env: &Env) -> Vec<String> {
    let calls: Vec<Value> = env
        .ec2_calls()
        .into_iter()
        .filter(|c| c["action"] == "DescribeSpotPriceHistory")
        .collect();
    assert_eq!(calls.len(), 1, "one price call: {calls:#?}");
    let params = calls[0]["params"].as_object().unwrap();
    let filter = (1..10)
        .find(|n| params.get(&format!("Filter.{n}.Name")) == Some(&json!("instance-type")))
        .expect("an instance-type filter");
    (1..)
        .map_while(|m| params.get(&format!("Filter.{filter}.Value.{m}")))
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn instance_requirements_rank_every_matching_type_in_one_price_call() {
    let env = Env::start();
    env.spot_prices(&[
        ("c7i.xlarge", "us-east-1a", "0.0700"),
        ("m7i.xlarge", "us-east-1b", "0.0650"),
        ("c6i.2xlarge", "us-east-1a", "0.1000"),
        ("t3.xlarge", "us-east-1a", "0.0100"),
    ]);
    let requirements = "vcpu=4-8,memory=8-16,family=c7i|m7i|c6i|t3";
    let run = env.start_runner(&[
        ("INPUT_INSTANCE_TYPES", ""),
        ("INPUT_INSTANCE_REQUIREMENTS", requirements),
    ]);
    run.assert_ok();
    let types = priced_types(&env);
    for want in ["c7i.xlarge", "m7i.xlarge", "c6i.2xlarge", "c7i.2xlarge"] {
        assert!(
            types.contains(&want.to_owned()),
            "{want} not priced: {types:?}"
        );
    }
    assert!(
        types
            .iter()
            .all(|t| ["c7i.", "m7i.", "c6i."].iter().any(|f| t.starts_with(f))),
        "burstable t3 and other families are left out: {types:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "instance-requirements matched {} instance types",
            types.len()
        )),
        "{}",
        run.stderr
    );
    // The cheapest machine, in its zone.
    assert_eq!(run.output("instance-type"), "m7i.xlarge");
    assert_eq!(run.output("availability-zone"), "us-east-1b");

    // By price per vCPU, the 8-vCPU machine at $0.10 beats 4 vCPUs at $0.065.
    let env = Env::start();
    env.spot_prices(&[
        ("c7i.xlarge", "us-east-1a", "0.0700"),
        ("m7i.xlarge", "us-east-1b", "0.0650"),
        ("c6i.2xlarge", "us-east-1a", "0.1000"),
    ]);
    let run = env.start_runner(&[
        ("INPUT_INSTANCE_TYPES", ""),
        ("INPUT_INSTANCE_REQUIREMENTS", requirements),
        ("INPUT_RANK_BY", "price-per-vcpu"),
    ]);
    run.assert_ok();
    assert_eq!(run.output("instance-type"), "c6i.2xlarge");

    // Every priced candidate without capacity: a matched type with no price
    // (the region does not offer it) is not tried as spot.
    let env = Env::start();
    env.spot_prices(&[("m7i.xlarge", "us-east-1b", "0.0650")]);
    env.faults(json!([capacity(
        "m7i.xlarge",
        Some("us-east-1b"),
        Some("spot"),
        "InsufficientInstanceCapacity"
    )]));
    let run = env.start_runner(&[
        ("INPUT_INSTANCE_TYPES", ""),
        ("INPUT_INSTANCE_REQUIREMENTS", requirements),
        ("INPUT_MARKET", "spot"),
    ]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        attempts(&env),
        [("m7i.xlarge".into(), "us-east-1b".into(), "spot".into())]
    );
}

/// Every spot launch refused for want of capacity, whatever the type or zone.
fn no_spot_capacity_anywhere(env: &Env) {
    env.faults(json!([{"action": "RunInstances",
                        "match": {"InstanceMarketOptions.MarketType": "spot"},
                        "status": 500, "code": "InsufficientInstanceCapacity",
                        "message": "We currently do not have sufficient capacity in the zone you requested."}]));
}

// The on-demand list prices these tests expect are those of us-east-1 in
// src/pricing/on_demand.tsv: among the 2-vCPU, 8-GiB x86_64 types it lists,
// m6a.large is the cheapest ($0.0864); c6i.large ($0.085) is cheaper than
// c7i.large ($0.08925); c6in.large is not listed.

#[test]
fn on_demand_by_size_launches_the_cheapest_listed_type_and_no_accelerated_one() {
    let env = Env::start();
    let run = env.start_runner(&[
        ("INPUT_INSTANCE_TYPES", ""),
        ("INPUT_INSTANCE_REQUIREMENTS", "vcpu=2,memory=8"),
        ("INPUT_MARKET", "on-demand"),
    ]);
    run.assert_ok();
    assert_eq!(
        attempts(&env),
        [("m6a.large".into(), "-".into(), "on-demand".into())],
        "the cheapest on-demand type first, not the first by name (g6f.large, a GPU type)"
    );
    assert_eq!(run.output("instance-type"), "m6a.large");
    assert_eq!(run.output("market"), "on-demand");
    assert_eq!(run.output("price-per-hour"), "0.0864");
}

#[test]
fn on_demand_from_a_type_list_goes_by_list_price_then_the_given_order() {
    let env = Env::start();
    let run = env.start_runner(&[
        ("INPUT_INSTANCE_TYPES", "c7i.large,c6i.large"),
        ("INPUT_MARKET", "on-demand"),
    ]);
    run.assert_ok();
    assert_eq!(run.output("instance-type"), "c6i.large");
    env.stop_runner(run.output("label"), &[]).assert_ok();

    // A type without a list price comes after those with one.
    env.clear_calls();
    env.faults(json!([
        capacity("c6i.large", None, None, "InsufficientInstanceCapacity"),
        capacity("c7i.large", None, None, "InsufficientInstanceCapacity"),
    ]));
    let run = env.start_runner(&[
        ("INPUT_INSTANCE_TYPES", "c6in.large,c7i.large,c6i.large"),
        ("INPUT_MARKET", "on-demand"),
    ]);
    run.assert_ok();
    let tried: Vec<String> = attempts(&env).into_iter().map(|a| a.0).collect();
    assert_eq!(tried, ["c6i.large", "c7i.large", "c6in.large"]);
    assert_eq!(run.output("instance-type"), "c6in.large");
}

#[test]
fn when_spot_by_size_runs_out_on_demand_takes_the_cheapest_listed_type() {
    let env = Env::start();
    // The cheapest spot price is a GPU type's, which is not a candidate.
    env.spot_prices(&[
        ("g6f.large", "us-east-1a", "0.0200"),
        ("m7i.large", "us-east-1a", "0.0400"),
        ("m6i.large", "us-east-1b", "0.0350"),
    ]);
    no_spot_capacity_anywhere(&env);
    let run = env.start_runner(&[
        ("INPUT_INSTANCE_TYPES", ""),
        ("INPUT_INSTANCE_REQUIREMENTS", "vcpu=2,memory=8"),
    ]);
    run.assert_ok();
    let tried = attempts(&env);
    assert_eq!(
        tried[..2],
        [
            ("m6i.large".into(), "us-east-1b".into(), "spot".into()),
            ("m7i.large".into(), "us-east-1a".into(), "spot".into()),
        ],
        "{tried:?}"
    );
    assert_eq!(
        tried[2..],
        [("m6a.large".into(), "-".into(), "on-demand".into())],
        "{tried:?}"
    );
    assert!(!priced_types(&env).contains(&"g6f.large".to_owned()));
    assert_eq!(run.output("instance-type"), "m6a.large");
    assert_eq!(run.output("market"), "on-demand");
}
