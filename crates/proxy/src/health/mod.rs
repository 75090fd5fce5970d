//! Health monitoring of backends: one monitor task per backend owns that backend's health.
//!
//! - [`tracker`]: the pure state machine (rise/fall, probation, passive failures, intervals).

pub mod tracker;

pub use tracker::{Reason, Tracker, Transition};
