//! The running havip node: the proxy and the VRRP instances of one config, wired together,
//! with the trackers that tie the instances' priorities to the proxy's health, the admin
//! API (metrics, status, the stats page, runtime commands) on the TCP admin endpoint and the
//! local control socket ([`control`]), and the logs.
//!
//! [`run::run`] is what `havip run` does: load the config, start everything, wait for
//! SIGTERM or SIGINT, hand the VIPs over and drain. [`run::Running`] is the same without the
//! signal handling, for the demo and in-process tests.
#![warn(missing_docs)]

pub mod admin;
pub mod bgp;
pub mod command;
pub mod control;
pub mod load;
pub mod logging;
pub mod metrics;
pub mod privileges;
pub mod run;
pub mod systemd;
pub mod tracking;
pub mod upgrade;
pub mod vrrp;
