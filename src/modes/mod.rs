//! One file per mode of the tool.

pub(crate) mod bake;
pub(crate) mod cleanup;
pub(crate) mod doctor;
pub(crate) mod policy;
pub(crate) mod rerun;
pub(crate) mod start;
pub(crate) mod stop;
pub(crate) mod user_data;
