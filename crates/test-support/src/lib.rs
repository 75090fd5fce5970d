//! What havip's tests, the failover benchmark and `havip demo --cluster` share: the
//! network-namespace lab, real keepalived and nginx peers, certificates, and probes.
#![allow(clippy::unwrap_used)] // test support: a broken invariant is a failed test
#![allow(clippy::disallowed_types)] // real processes are timed with the wall clock

pub mod external;
pub mod keepalived;
pub mod lab;
pub mod tls_probe;
