//! The test harness: starts the local stand-ins (moto behind our EC2 shim,
//! and the GitHub stand-in) in one Python process per test, configures a
//! GitHub App and a token, and runs the real `ec2-spot-runner` binary
//! against them with a clean environment.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The AMI moto ships (an Ubuntu image with root device /dev/sda1).
pub const AMI: &str = "ami-1e749f67";
/// The repository the stand-in's App installation and token can reach.
pub const REPO: &str = "acme/widgets";
/// The organization of that installation.
pub const ORG: &str = "acme";
/// The App's numeric id.
pub const APP_ID: u64 = 1234;
/// The App's client id.
pub const CLIENT_ID: &str = "Iv23liTestApp0001";
/// A personal access token the stand-in accepts.
pub const PAT: &str = "ghp_TestTokenThatMustNeverBeLogged0001";

/// The checkout under test. Read at run time (cargo sets it for every test
/// run): with a target directory shared between checkouts, the compile-time
/// value can name another checkout.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The Python venv with moto, created once per test run by testenv/setup.sh.
pub fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("testenv/setup.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run testenv/setup.sh");
        assert!(out.status.success(), "testenv/setup.sh failed");
        let path = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned();
        PathBuf::from(path)
    })
}

/// A fresh 2048-bit RSA private key (PEM).
pub fn rsa_key() -> String {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl genpkey");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// An RSA key pair for the test App, made once per test run.
pub fn app_keys() -> &'static (String, String) {
    static KEYS: OnceLock<(String, String)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let private = rsa_key();
        let mut child = Command::new("openssl")
            .args(["pkey", "-pubout"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl pkey");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(private.as_bytes())
            .unwrap();
        let public = child.wait_with_output().unwrap();
        (private, String::from_utf8(public.stdout).unwrap())
    })
}

/// One isolated set of stand-ins.
pub struct Env {
    pub dir: tempfile::TempDir,
    server: Child,
    pub ec2: String,
    pub github: String,
    pub moto: String,
    http: reqwest::blocking::Client,
    pub aws_key: (String, String),
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub outputs: HashMap<String, String>,
    pub summary: String,
}

impl Run {
    /// Everything the user sees.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn output(&self, name: &str) -> &str {
        self.outputs
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no output {name}: {self:#?}"))
    }

    /// The first `::error::` line, or "" when there is none.
    pub fn error(&self) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with("::error::"))
            .unwrap_or_default()
    }

    /// The `::error::` line, when there is exactly one.
    pub fn single_error(&self) -> Option<&str> {
        let mut errors = self.stdout.lines().filter(|l| l.starts_with("::error::"));
        let first = errors.next()?;
        errors.next().is_none().then_some(first)
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\n{}", self.all());
        self
    }
}

impl Env {
    /// Starts moto, the shim and the GitHub stand-in, and configures GitHub
    /// with the test App (installed on acme, repository acme/widgets) and a PAT.
    pub fn start() -> Env {
        Self::start_with(&[])
    }

    /// Like `start`, with extra environment for the servers.
    pub fn start_with(server_env: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready.json");
        let mut cmd = Command::new(venv().join("bin/python"));
        cmd.arg(repo_root().join("testenv/serve.py"))
            .arg("--ready-file")
            .arg(&ready)
            .arg("--exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in server_env {
            cmd.env(k, v);
        }
        let mut server = cmd.spawn().expect("start testenv/serve.py");
        let began = Instant::now();
        while !ready.exists() {
            if let Ok(Some(status)) = server.try_wait() {
                let mut err = String::new();
                server.stderr.take().unwrap().read_to_string(&mut err).ok();
                panic!("serve.py exited with {status}: {err}");
            }
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "stand-ins did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        // Drain stderr in the background so the server never blocks on a full pipe.
        let mut stderr = server.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stderr.read_to_end(&mut sink);
        });
        let info: Value = serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
        // Empty AWS config files: nothing from this machine's own AWS set-up leaks in.
        std::fs::write(dir.path().join("aws-config"), "").unwrap();
        std::fs::write(dir.path().join("aws-credentials"), "").unwrap();
        let env = Env {
            dir,
            server,
            ec2: info["ec2"].as_str().unwrap().to_owned(),
            github: info["github"].as_str().unwrap().to_owned(),
            moto: info["moto"].as_str().unwrap().to_owned(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            aws_key: ("testing".into(), "testing".into()),
        };
        env.configure_github(json!({}));
        env
    }

    /// Replaces the stand-in's configuration: the default App and PAT, with
    /// `extra` merged on top.
    pub fn configure_github(&self, extra: Value) {
        let mut config = json!({
            "apps": [{
                "id": APP_ID,
                "client_id": CLIENT_ID,
                "public_key_pem": app_keys().1,
                "installations": [
                    {"id": 55, "account": ORG, "account_type": "Organization", "repositories": [REPO]}
                ]
            }],
            "tokens": [{"token": PAT, "repositories": [REPO], "organizations": [ORG]}],
            "auto_online_after": null
        });
        if let (Some(base), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        self.post(&format!("{}/_standin/config", self.github), &config);
    }

    pub fn post(&self, url: &str, body: &Value) -> Value {
        let resp = self
            .http
            .post(url)
            .json(body)
            .send()
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        assert!(status.is_success(), "POST {url} -> {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub fn get(&self, url: &str) -> Value {
        let resp = self
            .http
            .get(url)
            .send()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(resp.status().is_success(), "GET {url} -> {}", resp.status());
        resp.json().unwrap()
    }

    pub fn delete(&self, url: &str) {
        self.http.delete(url).send().unwrap();
    }

    /// The EC2 actions the shim saw, in order (after `clear_calls`).
    pub fn ec2_calls(&self) -> Vec<Value> {
        let calls = self.get(&format!("{}/_shim/calls", self.ec2));
        calls.as_array().cloned().unwrap_or_default()
    }

    /// The EC2 actions the shim has received, answered or still in flight.
    pub fn ec2_received(&self) -> Vec<String> {
        let received = self.get(&format!("{}/_shim/received", self.ec2));
        received
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn ec2_actions(&self) -> Vec<String> {
        self.ec2_calls()
            .iter()
            .filter_map(|c| c["action"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn clear_calls(&self) {
        self.delete(&format!("{}/_shim/calls", self.ec2));
        self.delete(&format!("{}/_standin/calls", self.github));
    }

    pub fn github_calls(&self) -> Vec<Value> {
        self.get(&format!("{}/_standin/calls", self.github))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn github_state(&self) -> Value {
        self.get(&format!("{}/_standin/state", self.github))
    }

    /// Every runner the stand-in holds, across scopes.
    pub fn runners(&self) -> Vec<Value> {
        let state = self.github_state();
        let mut all = Vec::new();
        if let Some(scopes) = state["runners"].as_object() {
            for runners in scopes.values() {
                all.extend(runners.as_array().cloned().unwrap_or_default());
            }
        } else if let Some(list) = state["runners"].as_array() {
            all.extend(list.iter().cloned());
        }
        all
    }

    pub fn faults(&self, rules: Value) {
        self.post(&format!("{}/_shim/faults", self.ec2), &rules);
    }

    pub fn github_faults(&self, rules: Value) {
        self.post(&format!("{}/_standin/faults", self.github), &rules);
    }

    pub fn spot_prices(&self, prices: &[(&str, &str, &str)]) {
        let body: Vec<Value> = prices
            .iter()
            .map(|(t, z, p)| json!({"instance_type": t, "availability_zone": z, "price": p}))
            .collect();
        self.post(
            &format!("{}/_shim/spot-prices", self.ec2),
            &Value::Array(body),
        );
    }

    /// The policy document `ec2-spot-runner policy` prints.
    pub fn policy(&self) -> Value {
        let run = self.run(&["policy"], &[]);
        run.assert_ok();
        serde_json::from_str(&run.stdout).expect("policy is JSON")
    }

    /// From now on the binary runs as an IAM user holding exactly `policy`,
    /// with moto enforcing IAM (admin checks in the tests keep working).
    pub fn act_as(&mut self, user: &str, policy: &Value) {
        let keys = self.post(
            &format!("{}/_shim/iam-user", self.ec2),
            &json!({"user": user, "policy": policy}),
        );
        self.aws_key = (
            keys["access_key_id"].as_str().unwrap().to_owned(),
            keys["secret_access_key"].as_str().unwrap().to_owned(),
        );
    }

    /// The binary with a clean environment pointing at the stand-ins, as an
    /// Actions job would run it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ec2-spot-runner"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("AWS_ENDPOINT_URL_EC2", &self.ec2)
            .env("AWS_ENDPOINT_URL_SSM", &self.ec2)
            .env("AWS_ACCESS_KEY_ID", &self.aws_key.0)
            .env("AWS_SECRET_ACCESS_KEY", &self.aws_key.1)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.dir.path().join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("aws-credentials"),
            )
            .env("GITHUB_API_URL", &self.github)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_REPOSITORY", REPO)
            .env("GITHUB_RUN_ID", "4242")
            .env("GITHUB_RUN_ATTEMPT", "1")
            .env("GITHUB_JOB", "build")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs the binary with App auth added, capturing outputs and summary.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.finish(cmd)
    }

    /// Runs a prepared command, with fresh outputs and summary files.
    pub fn finish(&self, mut cmd: Command) -> Run {
        let n: u64 = rand_u64();
        let outputs = self.dir.path().join(format!("output-{n}"));
        let summary = self.dir.path().join(format!("summary-{n}"));
        cmd.env("GITHUB_OUTPUT", &outputs)
            .env("GITHUB_STEP_SUMMARY", &summary);
        let out: Output = cmd.output().expect("run ec2-spot-runner");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            outputs: parse_outputs(&std::fs::read_to_string(&outputs).unwrap_or_default()),
            summary: std::fs::read_to_string(&summary).unwrap_or_default(),
        }
    }

    /// Start arguments with App auth and the test AMI.
    pub fn app_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("INPUT_GITHUB_APP_ID", APP_ID.to_string()),
            ("INPUT_GITHUB_APP_PRIVATE_KEY", app_keys().0.clone()),
        ]
    }

    /// Runs any mode with App auth plus `extra` env.
    pub fn run_app(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in self.app_env() {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        self.finish(cmd)
    }

    /// Merges keys into the EC2 shim's configuration.
    pub fn shim_config(&self, config: Value) {
        self.post(&format!("{}/_shim/config", self.ec2), &config);
    }

    /// Adds rules for instances that end right after launch.
    pub fn launch_outcomes(&self, rules: Value) {
        self.post(&format!("{}/_shim/launch-outcomes", self.ec2), &rules);
    }

    /// The (type, zone, market, root device name, size) of every
    /// RunInstances attempt, in order.
    pub fn launch_attempts(&self) -> Vec<[String; 5]> {
        self.ec2_calls()
            .iter()
            .filter(|c| c["action"] == "RunInstances")
            .map(|c| {
                let p = &c["params"];
                let get = |k: &str, default: &str| p[k].as_str().unwrap_or(default).to_owned();
                [
                    get("InstanceType", ""),
                    get("Placement.AvailabilityZone", "-"),
                    get("InstanceMarketOptions.MarketType", "on-demand"),
                    get("BlockDeviceMapping.1.DeviceName", "-"),
                    get("BlockDeviceMapping.1.Ebs.VolumeSize", "-"),
                ]
            })
            .collect()
    }

    /// Terminates an instance directly in moto, behind the tool's back.
    pub fn terminate(&self, id: &str) {
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            client
                .terminate_instances()
                .instance_ids(id)
                .send()
                .await
                .expect("terminate");
        });
    }

    /// Deletes the default VPC's subnet in `zone` (as a later-added zone, or
    /// a deleted subnet, leaves the default VPC).
    pub fn delete_default_subnet(&self, zone: &str) {
        let subnet = self
            .default_subnets()
            .into_iter()
            .find(|(_, z)| z == zone)
            .unwrap_or_else(|| panic!("no default subnet in {zone}"))
            .0;
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            client
                .delete_subnet()
                .subnet_id(&subnet)
                .send()
                .await
                .expect("delete subnet");
        });
    }

    /// The volumes attached to an instance: (device, size GiB, type, iops, throughput, encrypted).
    pub fn volumes_of(&self, instance_id: &str) -> Vec<(String, i32, String, i32, i32, bool)> {
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            let out = client
                .describe_volumes()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("attachment.instance-id")
                        .values(instance_id)
                        .build(),
                )
                .send()
                .await
                .expect("describe volumes");
            let mut volumes: Vec<_> = out
                .volumes()
                .iter()
                .map(|v| {
                    (
                        v.attachments()
                            .first()
                            .and_then(|a| a.device())
                            .unwrap_or_default()
                            .to_owned(),
                        v.size().unwrap_or_default(),
                        v.volume_type()
                            .map(|t| t.as_str().to_owned())
                            .unwrap_or_default(),
                        v.iops().unwrap_or_default(),
                        v.throughput().unwrap_or_default(),
                        v.encrypted().unwrap_or_default(),
                    )
                })
                .collect();
            volumes.sort();
            volumes
        })
    }

    /// Runs `start` with App auth and sensible test inputs plus `extra` env.
    pub fn start_runner(&self, extra: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(&["start"]);
        for (k, v) in self.app_env() {
            cmd.env(k, v);
        }
        cmd.env("INPUT_IMAGE_ID", AMI)
            .env("INPUT_INSTANCE_TYPES", "c7i.large,c6i.large");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        self.finish(cmd)
    }

    /// Runs `stop` for a label with App auth.
    pub fn stop_runner(&self, label: &str, extra: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(&["stop"]);
        for (k, v) in self.app_env() {
            cmd.env(k, v);
        }
        cmd.env("INPUT_LABEL", label);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        self.finish(cmd)
    }

    /// An EC2 client straight to moto with admin credentials, and a runtime to drive it.
    fn admin_ec2(&self) -> (tokio::runtime::Runtime, aws_sdk_ec2::Client) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("us-east-1"))
            .endpoint_url(&self.moto)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .build();
        (rt, aws_sdk_ec2::Client::from_conf(config))
    }

    /// Creates a launch template (or, when one of that name exists, a new
    /// version of it) directly in moto, as its admin; returns (id, version).
    pub fn launch_template(
        &self,
        name: &str,
        data: aws_sdk_ec2::types::RequestLaunchTemplateData,
    ) -> (String, i64) {
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            let existing = client
                .describe_launch_templates()
                .launch_template_names(name)
                .send()
                .await
                .ok()
                .and_then(|o| o.launch_templates().first().cloned());
            match existing {
                Some(t) => {
                    let v = client
                        .create_launch_template_version()
                        .launch_template_name(name)
                        .launch_template_data(data)
                        .send()
                        .await
                        .expect("CreateLaunchTemplateVersion");
                    let v = v.launch_template_version().unwrap();
                    (
                        t.launch_template_id().unwrap().to_owned(),
                        v.version_number().unwrap(),
                    )
                }
                None => {
                    let t = client
                        .create_launch_template()
                        .launch_template_name(name)
                        .launch_template_data(data)
                        .send()
                        .await
                        .expect("CreateLaunchTemplate");
                    let t = t.launch_template().unwrap();
                    (t.launch_template_id().unwrap().to_owned(), 1)
                }
            }
        })
    }

    /// The volumes (ids) that exist but are attached to no instance.
    pub fn volumes_left(&self) -> Vec<String> {
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            let out = client
                .describe_volumes()
                .send()
                .await
                .expect("DescribeVolumes");
            out.volumes()
                .iter()
                .filter(|v| v.attachments().is_empty())
                .filter_map(|v| v.volume_id().map(str::to_owned))
                .collect()
        })
    }

    /// Makes a VPC of its own with a subnet in `zone` and a security group,
    /// directly in moto: (subnet id, group id).
    pub fn vpc_with_group(&self, zone: &str) -> (String, String) {
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            let vpc = client
                .create_vpc()
                .cidr_block("10.20.0.0/16")
                .send()
                .await
                .expect("CreateVpc");
            let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
            let subnet = client
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block("10.20.1.0/24")
                .availability_zone(zone)
                .send()
                .await
                .expect("CreateSubnet");
            let subnet = subnet
                .subnet()
                .and_then(|s| s.subnet_id())
                .unwrap()
                .to_owned();
            let group = client
                .create_security_group()
                .group_name("runners")
                .description("runners")
                .vpc_id(&vpc)
                .send()
                .await
                .expect("CreateSecurityGroup");
            (subnet, group.group_id().unwrap().to_owned())
        })
    }

    /// Stores a Parameter Store parameter directly in moto (as its admin).
    pub fn put_parameter(&self, name: &str, value: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .endpoint_url(&self.moto)
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .build();
        let client = aws_sdk_ssm::Client::from_conf(config);
        rt.block_on(
            client
                .put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send(),
        )
        .expect("PutParameter");
    }

    /// Launches an instance directly in moto with these tags (for orphans of
    /// every kind), returning its id.
    pub fn create_instance(&self, tags: &[(&str, &str)]) -> String {
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            let tags: Vec<aws_sdk_ec2::types::Tag> = tags
                .iter()
                .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
                .collect();
            let out = client
                .run_instances()
                .image_id(AMI)
                .instance_type(aws_sdk_ec2::types::InstanceType::from("c7i.large"))
                .min_count(1)
                .max_count(1)
                .tag_specifications(
                    aws_sdk_ec2::types::TagSpecification::builder()
                        .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                        .set_tags(Some(tags))
                        .build(),
                )
                .send()
                .await
                .expect("run instance");
            out.instances()[0].instance_id().unwrap().to_owned()
        })
    }

    /// An image of a throwaway instance, named and tagged (image and
    /// snapshot), as an earlier bake or someone else made it; the instance
    /// is terminated again. Returns the image id.
    pub fn create_baked_image(&self, name: &str, tags: &[(&str, &str)]) -> String {
        use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
        let instance = self.create_instance(&[("purpose", "an earlier image")]);
        let (rt, client) = self.admin_ec2();
        let id = rt.block_on(async {
            let tags: Vec<Tag> = tags
                .iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect();
            let spec = |kind: ResourceType| {
                TagSpecification::builder()
                    .resource_type(kind)
                    .set_tags(Some(tags.clone()))
                    .build()
            };
            client
                .create_image()
                .instance_id(&instance)
                .name(name)
                .tag_specifications(spec(ResourceType::Image))
                .tag_specifications(spec(ResourceType::Snapshot))
                .send()
                .await
                .expect("create image")
                .image_id()
                .unwrap()
                .to_owned()
        });
        self.terminate(&instance);
        id
    }

    /// The account's own images.
    pub fn images(&self) -> Vec<aws_sdk_ec2::types::Image> {
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            client
                .describe_images()
                .owners("self")
                .send()
                .await
                .expect("describe images")
                .images()
                .to_vec()
        })
    }

    /// The account's snapshots.
    pub fn snapshot_ids(&self) -> Vec<String> {
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            client
                .describe_snapshots()
                .owner_ids("self")
                .send()
                .await
                .expect("describe snapshots")
                .snapshots()
                .iter()
                .filter_map(|s| s.snapshot_id().map(str::to_owned))
                .collect()
        })
    }

    /// One snapshot's tags.
    pub fn snapshot_tags(&self, id: &str) -> Vec<aws_sdk_ec2::types::Tag> {
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            client
                .describe_snapshots()
                .snapshot_ids(id)
                .send()
                .await
                .expect("describe snapshots")
                .snapshots()
                .first()
                .map(|s| s.tags().to_vec())
                .unwrap_or_default()
        })
    }

    /// Registers a runner of the tool's (it carries the `ec2-spot-runner`
    /// label) in the stand-in (repository scope) and sets its state.
    pub fn create_runner(&self, name: &str, status: &str, busy: bool) {
        self.create_runner_labelled(name, status, busy, &["x", "ec2-spot-runner"]);
    }

    /// Registers a runner somebody else made (no `ec2-spot-runner` label).
    pub fn create_foreign_runner(&self, name: &str, status: &str) {
        self.create_runner_labelled(name, status, false, &["x"]);
    }

    fn create_runner_labelled(&self, name: &str, status: &str, busy: bool, labels: &[&str]) {
        let resp = self
            .http
            .post(format!(
                "{}/repos/{REPO}/actions/runners/generate-jitconfig",
                self.github
            ))
            .header("Authorization", format!("Bearer {PAT}"))
            .header("User-Agent", "e2e-test")
            .json(&json!({"name": name, "runner_group_id": 1, "labels": labels}))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 201, "create runner {name}");
        self.set_runner(name, status, busy);
    }

    /// Sets a runner's status in the stand-in.
    pub fn set_runner(&self, name: &str, status: &str, busy: bool) {
        self.post(
            &format!("{}/_standin/runners/status", self.github),
            &json!({"name": name, "status": status, "busy": busy}),
        );
    }

    /// The default VPC's subnets as (id, zone), sorted by zone.
    pub fn default_subnets(&self) -> Vec<(String, String)> {
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            let out = client
                .describe_subnets()
                .send()
                .await
                .expect("describe subnets");
            let mut subnets: Vec<(String, String)> = out
                .subnets()
                .iter()
                .filter_map(|s| {
                    Some((s.subnet_id()?.to_owned(), s.availability_zone()?.to_owned()))
                })
                .collect();
            subnets.sort_by(|a, b| a.1.cmp(&b.1));
            subnets
        })
    }

    /// The state name of one instance.
    pub fn state_of(&self, id: &str) -> String {
        self.instances()
            .iter()
            .find(|i| i.instance_id() == Some(id))
            .and_then(|i| {
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned())
            })
            .unwrap_or_default()
    }

    /// All instances moto knows, described with admin credentials.
    pub fn instances(&self) -> Vec<aws_sdk_ec2::types::Instance> {
        let (rt, client) = self.admin_ec2();
        rt.block_on(async {
            let out = client
                .describe_instances()
                .send()
                .await
                .expect("describe instances");
            out.reservations()
                .iter()
                .flat_map(|r| r.instances().iter().cloned())
                .collect()
        })
    }

    /// Whether EC2, as the tool sees it (through the shim, eventual
    /// consistency included), lists the instance yet.
    pub fn ec2_lists(&self, id: &str) -> bool {
        let (rt, _) = self.admin_ec2();
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("us-east-1"))
            .endpoint_url(&self.ec2)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .build();
        let client = aws_sdk_ec2::Client::from_conf(config);
        rt.block_on(async {
            let out = client
                .describe_instances()
                .send()
                .await
                .expect("describe instances");
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .any(|i| i.instance_id() == Some(id))
        })
    }

    /// Instances that still cost money (pending or running).
    pub fn live_instances(&self) -> Vec<aws_sdk_ec2::types::Instance> {
        self.instances()
            .into_iter()
            .filter(|i| {
                matches!(
                    i.state().and_then(|s| s.name()).map(|n| n.as_str()),
                    Some("pending" | "running")
                )
            })
            .collect()
    }
}

impl Env {
    /// The GitHub requests of this test that GitHub's OpenAPI description
    /// does not describe; checked only when EC2SR_GITHUB_OPENAPI names the
    /// description's index (scripts/test sets it: testenv/openapi.py).
    fn undescribed_requests(&self) -> Option<String> {
        std::env::var_os("EC2SR_GITHUB_OPENAPI")?;
        let seen: Value = self
            .http
            .get(format!("{}/_standin/openapi", self.github))
            .send()
            .ok()?
            .json()
            .ok()?;
        let clean =
            seen["error"].is_null() && seen["undescribed"].as_array().is_some_and(|u| u.is_empty());
        (!clean).then(|| serde_json::to_string_pretty(&seen).unwrap_or_default())
    }
}

impl Env {
    /// The EC2 requests of this test that the EC2 service model botocore
    /// ships does not describe (testenv/ec2_model.py), or why they could
    /// not be checked.
    fn unconforming_ec2_requests(&self) -> Option<String> {
        let seen: Value = match self
            .http
            .get(format!("{}/_shim/model", self.ec2))
            .send()
            .and_then(|r| r.json())
        {
            Ok(seen) => seen,
            Err(e) => return Some(format!("GET /_shim/model failed: {e}")),
        };
        let clean = seen["error"].is_null()
            && seen["unconforming"]
                .as_array()
                .is_some_and(|u| u.is_empty());
        (!clean).then(|| serde_json::to_string_pretty(&seen).unwrap_or_default())
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // A test that failed already says why; else every GitHub request
        // it caused must be one GitHub describes, and every EC2 request
        // one EC2's service model describes.
        let (undescribed, unconforming) = if std::thread::panicking() {
            (None, None)
        } else {
            (
                self.undescribed_requests(),
                self.unconforming_ec2_requests(),
            )
        };
        let _ = self.server.kill();
        let _ = self.server.wait();
        if let Some(undescribed) = undescribed {
            panic!(
                "GitHub requests that GitHub's OpenAPI description does not describe: {undescribed}"
            );
        }
        if let Some(unconforming) = unconforming {
            panic!("EC2 requests that EC2's service model does not describe: {unconforming}");
        }
    }
}

fn rand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// Parses a `GITHUB_OUTPUT` file in the heredoc form (and `name=value` lines).
/// SIGINT to a running step, as the runner cancels it; asserts that it
/// exits with 1 inside the runner's 7.5 s window, and returns how long it
/// took and everything it printed.
pub fn sigint_inside_the_window(child: std::process::Child) -> (Duration, String) {
    let signalled = std::time::Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        took < Duration::from_millis(7500),
        "inside the SIGINT window: {took:?}"
    );
    (took, text)
}

pub fn parse_outputs(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_owned(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_owned(), value.to_owned());
        }
    }
    out
}

/// A tag's value on an instance.
pub fn tag<'a>(instance: &'a aws_sdk_ec2::types::Instance, key: &str) -> Option<&'a str> {
    instance
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}
