//! Health monitoring of backends: one monitor task per backend owns that backend's health.
//!
//! - [`tracker`]: the pure state machine (rise/fall, probation, passive failures, intervals).
//! - [`probe`]: one active check (TCP, HTTP, HTTPS) against one backend, typed failures.
//! - [`tls`]: building the rustls client configuration of HTTPS checks, once per service.

pub mod probe;
pub mod tls;
pub mod tracker;

pub use probe::{CheckError, Probe, ProbeConfigError};
pub use tls::{client_config, TlsConfigError};
pub use tracker::{Reason, Tracker, Transition};
