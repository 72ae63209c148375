//! `rerun`, as a `workflow_run: completed` workflow runs it: the run's
//! first attempt lost its spot machine under a job, and the start job that
//! launched it is re-run once, with the jobs that need it.

use serde_json::{Value, json};

use crate::harness::{APP_ID, CLIENT_ID, Env, ORG, REPO, app_keys, tag};

const RUN_ID: &str = "9000000001";
const START_RUNNER: &str = "GitHub Actions 1000000007";

/// The App installation, with the Actions permission at `actions`.
fn app_with_actions(env: &Env, actions: &str) {
    env.configure_github(json!({
        "apps": [{
            "id": APP_ID,
            "client_id": CLIENT_ID,
            "public_key_pem": app_keys().1,
            "installations": [{
                "id": 55, "account": ORG, "account_type": "Organization", "repositories": [REPO],
                "permissions": {"actions": actions, "administration": "write", "metadata": "read"}
            }]
        }]
    }));
}

/// Starts a runner as the start job of run RUN_ID would, and records the
/// run on GitHub: the start job, the build job on the machine (ended
/// `build`), and the stop job. Returns (instance id, label, start job id).
fn a_run_with_a_machine(env: &Env, attempt: u32, build: &str) -> (String, String, u64) {
    let attempt_s = attempt.to_string();
    let run = env.start_runner(&[
        ("GITHUB_RUN_ID", RUN_ID),
        ("GITHUB_RUN_ATTEMPT", &attempt_s),
        ("RUNNER_NAME", START_RUNNER),
    ]);
    run.assert_ok();
    let instance = env
        .live_instances()
        .into_iter()
        .find(|i| tag(i, "ec2-spot-runner:run-attempt") == Some(attempt_s.as_str()))
        .unwrap();
    assert_eq!(
        tag(&instance, "ec2-spot-runner:start-runner"),
        Some(START_RUNNER),
        "the start job's runner is tagged"
    );
    let runner = tag(&instance, "ec2-spot-runner:runner-name")
        .unwrap()
        .to_owned();
    let now = chrono::Utc::now();
    let at = |minutes: i64| {
        (now + chrono::Duration::minutes(minutes))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let jobs = json!([
        {"key": "start", "name": "Start runner", "runner_name": START_RUNNER,
         "conclusion": "success", "started_at": at(-5), "completed_at": at(-4)},
        {"key": "build", "name": "Build", "needs": ["start"], "runner_name": runner,
         "labels": [run.output("label")], "conclusion": build, "started_at": at(0), "completed_at": at(1)},
        {"key": "stop", "name": "Stop runner", "needs": ["start", "build"], "runner_name": "GitHub Actions 1000000009",
         "conclusion": "success", "started_at": at(1), "completed_at": at(2)}
    ]);
    let start_job = if attempt == 1 {
        let seeded = env.post(
            &format!("{}/_standin/runs", env.github),
            &json!({"repository": REPO, "id": RUN_ID.parse::<u64>().unwrap(), "jobs": jobs}),
        );
        assert_eq!(seeded["run_attempt"], 1);
        0
    } else {
        let results: serde_json::Map<String, Value> = jobs
            .as_array()
            .unwrap()
            .iter()
            .map(|j| (j["key"].as_str().unwrap().to_owned(), j.clone()))
            .collect();
        env.post(
            &format!("{}/_standin/runs/complete", env.github),
            &json!({"repository": REPO, "id": RUN_ID.parse::<u64>().unwrap(), "jobs": results}),
        );
        0
    };
    (
        instance.instance_id().unwrap().to_owned(),
        run.output("label").to_owned(),
        start_job,
    )
}

/// The `workflow_run` event of the run's attempt, as a file for GITHUB_EVENT_PATH.
fn event(env: &Env, attempt: u32) -> String {
    let path = env.dir.path().join(format!("event-{attempt}.json"));
    let payload = json!({
        "action": "completed",
        "workflow_run": {
            "id": RUN_ID.parse::<u64>().unwrap(), "run_attempt": attempt, "status": "completed",
            "conclusion": "failure", "repository": {"full_name": REPO}
        }
    });
    std::fs::write(&path, payload.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

fn reruns(env: &Env) -> Value {
    let state = env.get(&format!("{}/_standin/runs", env.github));
    state[format!("{REPO}#{RUN_ID}")]["reruns"].clone()
}

fn interrupt(env: &Env, id: &str) {
    let done = env.post(
        &format!("{}/_shim/interrupt", env.ec2),
        &json!({"instance_ids": [id]}),
    );
    assert_eq!(done["terminated"], json!([id]));
}

#[test]
fn a_spot_reclaim_under_a_job_reruns_its_start_job_once() {
    let mut env = Env::start();
    app_with_actions(&env, "write");
    // Every job holds exactly the policy `policy` prints.
    let doc = env.policy();
    env.act_as("six-actions", &doc);
    let (instance, label, _) = a_run_with_a_machine(&env, 1, "failure");
    // EC2 reclaims the machine mid-job; the stop job then finds nothing live.
    interrupt(&env, &instance);
    env.stop_runner(&label, &[]).assert_ok();

    let path = event(&env, 1);
    let rerun = env.run_app(&["rerun"], &[("GITHUB_EVENT_PATH", &path)]);
    rerun.assert_ok();
    assert_eq!(rerun.output("rerun"), "job");
    // The start job, and with it the jobs that need it, as attempt 2.
    assert_eq!(
        reruns(&env),
        json!([{"attempt": 2, "what": reruns(&env)[0]["what"], "jobs": ["build", "start", "stop"]}])
    );
    assert!(
        reruns(&env)[0]["what"]
            .as_str()
            .unwrap()
            .starts_with("job "),
        "one job re-run, not the run"
    );
    for text in [
        "Re-run: EC2 reclaimed the spot machine under a job: re-running start job `Start runner`",
        &instance,
        "Server.SpotInstanceTermination",
        "Build (failure)",
        "reclaimed under its job",
    ] {
        assert!(
            rerun.summary.contains(text),
            "{text} not in {}",
            rerun.summary
        );
    }

    // Once per run: the same event again re-runs nothing.
    let again = env.run_app(&["rerun"], &[("GITHUB_EVENT_PATH", &path)]);
    again.assert_ok();
    assert_eq!(again.output("rerun"), "none");
    assert!(
        again.summary.contains("it was re-run already"),
        "{}",
        again.summary
    );
    assert_eq!(reruns(&env).as_array().unwrap().len(), 1);

    // Attempt 2 loses its machine too: it is not re-run again.
    let (second, label, _) = a_run_with_a_machine(&env, 2, "failure");
    interrupt(&env, &second);
    env.stop_runner(&label, &[]).assert_ok();
    let path = event(&env, 2);
    let third = env.run_app(&["rerun"], &[("GITHUB_EVENT_PATH", &path)]);
    third.assert_ok();
    assert_eq!(third.output("rerun"), "none");
    assert!(
        third.summary.contains("re-run at most once"),
        "{}",
        third.summary
    );
    assert_eq!(reruns(&env).as_array().unwrap().len(), 1);
    // Start (spot, then on demand on the re-run), stop and rerun made no
    // call that the policy denies.
    let calls = env.ec2_calls();
    let refused: Vec<&Value> = calls
        .iter()
        .filter(|c| c["error_code"].is_string())
        .collect();
    assert!(refused.is_empty(), "refused calls: {refused:#?}");
    assert!(
        calls.iter().any(|c| c["action"] == "RunInstances"),
        "{calls:#?}"
    );
    assert!(env.live_instances().is_empty());
}

#[test]
fn a_run_that_failed_for_another_reason_is_not_rerun() {
    let env = Env::start();
    app_with_actions(&env, "write");
    // The build failed on a machine that was fine; stop terminated it.
    let (_, label, _) = a_run_with_a_machine(&env, 1, "failure");
    env.stop_runner(&label, &[]).assert_ok();
    let path = event(&env, 1);
    let rerun = env.run_app(&["rerun"], &[("GITHUB_EVENT_PATH", &path)]);
    rerun.assert_ok();
    assert_eq!(rerun.output("rerun"), "none");
    assert!(
        rerun.summary.contains("failed for another reason"),
        "{}",
        rerun.summary
    );
    assert!(
        rerun.summary.contains("Client.UserInitiatedShutdown"),
        "{}",
        rerun.summary
    );
    assert_eq!(reruns(&env), json!([]));

    // dry-run decides but re-runs nothing.
    let env = Env::start();
    app_with_actions(&env, "write");
    let (instance, _, _) = a_run_with_a_machine(&env, 1, "failure");
    interrupt(&env, &instance);
    let rerun = env.run_app(
        &["rerun"],
        &[
            ("GITHUB_EVENT_PATH", &event(&env, 1)),
            ("INPUT_DRY_RUN", "true"),
        ],
    );
    rerun.assert_ok();
    assert_eq!(rerun.output("rerun"), "none");
    assert!(
        rerun.summary.contains("Would re-run (dry-run)"),
        "{}",
        rerun.summary
    );
    assert_eq!(reruns(&env), json!([]));
}

#[test]
fn rerun_names_the_permission_and_the_inputs_it_lacks() {
    let env = Env::start();
    // The default installation reads Actions but may not write.
    app_with_actions(&env, "read");
    let (instance, _, _) = a_run_with_a_machine(&env, 1, "failure");
    interrupt(&env, &instance);
    let rerun = env.run_app(&["rerun"], &[("GITHUB_EVENT_PATH", &event(&env, 1))]);
    assert_eq!(rerun.code, 1, "{}", rerun.all());
    assert!(
        rerun.error().contains("HTTP 403") && rerun.error().contains("Actions: write"),
        "{}",
        rerun.error()
    );
    assert_eq!(reruns(&env), json!([]));

    // doctor says whether the App may re-run.
    let doctor = env.run_app(&["doctor"], &[]);
    assert!(
        doctor.stdout.lines().any(|l| l
            .starts_with("[warn] GitHub App permission Actions (for mode rerun)")
            && l.contains("Actions is read")),
        "{}",
        doctor.stdout
    );
    app_with_actions(&env, "write");
    let doctor = env.run_app(&["doctor"], &[]);
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("[ok  ] GitHub App permission Actions (for mode rerun)")),
        "{}",
        doctor.stdout
    );

    // GITHUB_TOKEN with `actions: read` may not either; with write it may.
    let token = |actions: &str| {
        json!({"token": "ghs_JobTokenForRerun0001", "repositories": [REPO],
               "permissions": {"actions": actions, "metadata": "read"}})
    };
    env.configure_github(json!({"tokens": [token("read")]}));
    let with_token = [
        ("INPUT_GITHUB_TOKEN", "ghs_JobTokenForRerun0001"),
        ("INPUT_GITHUB_APP_ID", ""),
        ("INPUT_GITHUB_APP_PRIVATE_KEY", ""),
    ];
    let seed = |env: &Env| {
        env.post(
            &format!("{}/_standin/runs", env.github),
            &json!({"repository": REPO, "id": RUN_ID.parse::<u64>().unwrap(), "jobs": [
                {"key": "start", "runner_name": START_RUNNER, "conclusion": "success", "started_at": "2020-01-01T00:00:00Z"},
                {"key": "build", "needs": ["start"], "runner_name": tag(&env.instances()[0], "ec2-spot-runner:runner-name").unwrap(),
                 "conclusion": "failure"}
            ]}),
        );
    };
    seed(&env);
    let mut vars: Vec<(&str, &str)> = with_token.to_vec();
    let path = event(&env, 1);
    vars.push(("GITHUB_EVENT_PATH", &path));
    let run = env.run_app(&["rerun"], &vars);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.error().contains("actions: write"), "{}", run.error());
    env.configure_github(json!({"tokens": [token("write")]}));
    seed(&env);
    let run = env.run_app(&["rerun"], &vars);
    run.assert_ok();
    assert_eq!(run.output("rerun"), "job");

    for (env_vars, input) in [
        (vec![("INPUT_RUN_ID", "x")], "run-id"),
        (vec![("INPUT_RUN_ID", "5")], "run-attempt"),
        (vec![], "run-id"),
    ] {
        let run = env.run_app(&["rerun"], &env_vars);
        assert_eq!(run.code, 2, "{}", run.all());
        let error = run
            .single_error()
            .unwrap_or_else(|| panic!("{}", run.all()));
        assert!(error.contains(&format!("`{input}`")), "{error}");
    }
    let run = env.run_app(&["rerun"], &[]);
    assert!(run.error().contains("workflow_run"), "{}", run.error());
    // An unknown run is named.
    let run = env.run_app(
        &["rerun"],
        &[("INPUT_RUN_ID", "123"), ("INPUT_RUN_ATTEMPT", "1")],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("HTTP 404") && run.error().contains("run-id"),
        "{}",
        run.error()
    );
}

#[test]
fn two_start_jobs_that_lost_their_machines_rerun_the_whole_run() {
    // A workflow with two start jobs (x86 and arm, say), each on its own
    // hosted runner; EC2 reclaims both machines under their jobs. GitHub
    // takes one job re-run per attempt, so the run is re-run as a whole.
    let env = Env::start();
    app_with_actions(&env, "write");
    let mut machines = Vec::new();
    for (starter, label) in [
        ("GitHub Actions 1000000011", "lt-a"),
        ("GitHub Actions 1000000012", "lt-b"),
    ] {
        let run = env.start_runner(&[
            ("GITHUB_RUN_ID", RUN_ID),
            ("RUNNER_NAME", starter),
            ("INPUT_LABEL", label),
        ]);
        run.assert_ok();
        let instance = env
            .live_instances()
            .into_iter()
            .find(|i| tag(i, "ec2-spot-runner:start-runner") == Some(starter))
            .unwrap();
        machines.push((
            starter,
            instance.instance_id().unwrap().to_owned(),
            tag(&instance, "ec2-spot-runner:runner-name")
                .unwrap()
                .to_owned(),
        ));
    }
    let earlier = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let jobs = json!([
        {"key": "start-a", "runner_name": machines[0].0, "conclusion": "success", "started_at": earlier},
        {"key": "start-b", "runner_name": machines[1].0, "conclusion": "success", "started_at": earlier},
        {"key": "build-a", "needs": ["start-a"], "runner_name": machines[0].2, "conclusion": "failure"},
        {"key": "build-b", "needs": ["start-b"], "runner_name": machines[1].2, "conclusion": "cancelled"}
    ]);
    env.post(
        &format!("{}/_standin/runs", env.github),
        &json!({"repository": REPO, "id": RUN_ID.parse::<u64>().unwrap(), "jobs": jobs}),
    );
    for (_, id, _) in &machines {
        interrupt(&env, id);
    }
    let rerun = env.run_app(&["rerun"], &[("GITHUB_EVENT_PATH", &event(&env, 1))]);
    rerun.assert_ok();
    assert_eq!(rerun.output("rerun"), "run");
    let done = reruns(&env);
    assert_eq!(done[0]["what"], "run", "{done}");
    assert_eq!(
        done[0]["jobs"],
        json!(["build-a", "build-b", "start-a", "start-b"])
    );
    assert!(
        rerun.summary.contains("the whole run is re-run"),
        "{}",
        rerun.summary
    );
}
