//! The actions/runner releases compiled into the binary: the fallback when
//! the newest release cannot be read, with the day each was pinned.

/// An actions/runner release and the published SHA-256 of its two Linux
/// tarballs (`actions-runner-linux-x64-VERSION.tar.gz` and
/// `actions-runner-linux-arm64-VERSION.tar.gz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunnerRelease {
    /// Version without the leading `v`, e.g. `2.338.0`.
    pub(crate) version: &'static str,
    /// SHA-256 of the linux-x64 tarball, lowercase hex.
    pub(crate) sha256_x64: &'static str,
    /// SHA-256 of the linux-arm64 tarball, lowercase hex.
    pub(crate) sha256_arm64: &'static str,
    /// The day this pin was added to the binary (YYYY-MM-DD): how stale the
    /// fallback is, when the newest release cannot be read.
    pub(crate) pinned_on: &'static str,
}

/// Pinned actions/runner releases with their published SHA-256 checksums.
/// Newest first; the first is the default.
///
/// actions/runner publishes these in each release's notes ("SHA-256
/// Checksums"). Each pair below was read from a public repository that pins
/// that release for both architectures, and the same values appear in other,
/// unrelated public pins of the same release:
/// - 2.338.0: totKtoXam/retroplay, `scripts/install-runner.sh` (x64 also in
///   Joshuaweg/pulsatrix, `scripts/setup_gpu_runner.sh`);
/// - 2.337.0: binarycodes/homelab-github-runner, `docker-bake.hcl`;
/// - 2.336.0: namecheap/ec2-github-runner, `src/runner-checksums.js`.
///
/// GitHub stops serving jobs to runner versions some time after newer ones
/// ship, so keep the head of this list current.
pub(crate) const RUNNER_RELEASES: &[RunnerRelease] = &[
    RunnerRelease {
        version: "2.338.0",
        sha256_x64: "af4b794c1bc41d73d40535e3fe092a39f9679cd8d965954c2aca25a05ca41d32",
        sha256_arm64: "628b4a7258487b80c1d3c221095a7ded349f5ae0175fd3dfab708d07428f041b",
        pinned_on: "2026-11-28",
    },
    RunnerRelease {
        version: "2.337.0",
        sha256_x64: "70920811a4f8ad4328818682bca5c6469c1c942fab52448868071d0063816613",
        sha256_arm64: "9b1dc70626422526e3c94767cf024896beb15da5342a3f4819bf2feac13e0393",
        pinned_on: "2026-11-28",
    },
    RunnerRelease {
        version: "2.336.0",
        sha256_x64: "04cf0be1aff4c3ec3554466c39124ca250e3effd8873bb7e8d68535aa9505d5d",
        sha256_arm64: "58b758e420b87093fbd4bfddd368074960053e2f1388f01848c82624b90f27d1",
        pinned_on: "2026-11-28",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// CI fails when the newest compiled pin has fallen more than 20 days
    /// behind the newest release the tests know (their fixture), so a
    /// stale pin is noticed before a release ships with it.
    #[test]
    fn the_newest_pin_is_not_stale() {
        let fixture: serde_json::Value = serde_json::from_str(include_str!(
            "../../testenv/fixtures/runner-release-latest.json"
        ))
        .unwrap();
        let newest = fixture["tag_name"]
            .as_str()
            .unwrap()
            .trim_start_matches('v');
        let published =
            chrono::DateTime::parse_from_rfc3339(fixture["published_at"].as_str().unwrap())
                .unwrap();
        let version = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap()).collect() };
        let pin = RUNNER_RELEASES[0];
        if version(newest) > version(pin.version) {
            let behind = chrono::Utc::now() - published.with_timezone(&chrono::Utc);
            assert!(
                behind.num_days() <= 20,
                "the newest pin {} is {} days behind actions/runner {newest}: add {newest} to RUNNER_RELEASES",
                pin.version,
                behind.num_days()
            );
        }
        chrono::NaiveDate::parse_from_str(pin.pinned_on, "%Y-%m-%d").unwrap();
    }

    #[test]
    fn release_table_is_well_formed() {
        assert!(!RUNNER_RELEASES.is_empty());
        let parse = |v: &str| -> Vec<u32> {
            v.split('.')
                .map(|p| p.parse().expect("numeric version"))
                .collect()
        };
        for pair in RUNNER_RELEASES.windows(2) {
            assert!(
                parse(pair[0].version) > parse(pair[1].version),
                "not newest first: {pair:?}"
            );
        }
        let mut seen = std::collections::HashSet::new();
        for r in RUNNER_RELEASES {
            assert_eq!(parse(r.version).len(), 3, "{r:?}");
            for sum in [r.sha256_x64, r.sha256_arm64] {
                assert!(
                    sum.len() == 64
                        && sum
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                    "{r:?}"
                );
                assert!(seen.insert(sum), "checksum used twice: {sum}");
            }
        }
    }
}
