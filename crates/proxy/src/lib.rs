//! havip's layer-4 TCP load balancer.
//!
//! A [`service::Service`] owns listeners and a set of [`backend::Backend`]s. Each accepted
//! client connection asks [`balance`] for a backend, connects to it (retrying on another
//! when a connect fails), and then [`forward`] copies bytes both ways until both sides close
//! or a timeout ends it. [`health`] runs one monitor task per backend that owns its health
//! state: active checks (TCP, HTTP, HTTPS) and passive connect failures. [`runtime::Proxy`]
//! starts and gracefully stops the whole.
#![warn(missing_docs)]

pub mod backend;
pub mod balance;
pub mod forward;
pub mod health;
pub mod listener;
pub mod runtime;
pub mod service;

pub use runtime::{
    ApplyReport, BackendKey, Inherited, Prepared, Proxy, ProxyConfig, ServiceTable, ShutdownReport,
    StartError,
};
