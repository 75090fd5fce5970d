//! havip's layer-4 TCP load balancer.
//!
//! A [`service::Service`] owns listeners and a set of [`backend::Backend`]s. Each accepted
//! client connection asks [`balance`] for candidates, connects to one (retrying on another
//! when a connect fails), and then [`forward`] copies bytes both ways until both sides close
//! or a timeout ends it. [`health`] runs one monitor task per backend that owns its health
//! state: active checks (TCP, HTTP, HTTPS) and passive connect failures.

pub mod backend;
pub mod health;
pub mod spec;
