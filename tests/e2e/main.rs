//! End-to-end tests: the real binary against real local servers (moto behind
//! our EC2 shim, and a stateful GitHub stand-in), checking what a user would
//! check in the AWS console and on GitHub.

mod action;
mod bake;
mod cancel;
mod doctor;
mod extras;
mod faults;
mod github_limits;
mod harness;
mod inputs;
mod load;
mod orphans;
mod placement;
mod readme;
mod real_ec2;
mod requests;
mod rerun;
mod secrets;
mod start_stop;
