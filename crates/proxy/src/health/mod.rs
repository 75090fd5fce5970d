//! Health monitoring of backends: one monitor task per backend owns that backend's health.
//!
//! - [`machine`]: the pure state machine (rise/fall, probation, passive failures, intervals).
//! - [`probe`]: one active check (TCP, HTTP, HTTPS) against one backend, typed failures.
//! - [`tls`]: building the rustls client configuration of HTTPS checks, once per service.
//! - [`monitor`]: the task per backend that runs checks, receives passive failures and
//!   publishes the state on the [`crate::backend::Backend`].
//!
//! Lifecycle, as a service uses it: at start (and on reload) build the service's check once
//! with [`Probe::new`] (this reads the TLS files; the binary's `havip check` calls it too, so
//! bad files fail validation), wrap it in an `Arc`, and spawn one [`Monitor`] per backend
//! with that backend's [`crate::backend::HealthInbox`]. Keep the `JoinHandle`s and abort them
//! when the service stops; the tasks never end on their own.

pub mod machine;
pub mod monitor;
pub mod probe;
pub mod tls;

pub use machine::{HealthMachine, Reason, Transition};
pub use monitor::{Checks, Monitor};
pub use probe::{CheckError, Probe, ProbeConfigError};
pub use tls::{client_config, TlsConfigError};
