//! What havip's tests, the failover benchmark and `havip demo --cluster` share, so that each
//! of them builds its world the same way: one network-namespace [`lab`], one prerequisite
//! [`guard`], real peers ([`keepalived`], [`nginx`], certificates from [`pki`]), loopback
//! [`servers`], a client [`prober`], a VRRP [`adverts`] watch, packet [`capture`], one
//! [`wait`] loop, one [`serial`] guard and one [`node_config`] builder.
//!
//! It depends on havip-sys (namespaces, netlink, raw VRRP sockets) and havip-proxy (the
//! health checker's TLS client), never on havip-config or havip-node: node configs are
//! written as TOML text, so the tests keep exercising the real reader.
#![warn(missing_docs)]
#![allow(clippy::unwrap_used)] // test support: a broken invariant is a failed test
#![allow(clippy::disallowed_types)] // real processes and packets are timed with the wall clock

pub mod adverts;
pub mod capture;
pub mod flood;
pub mod flood_drill;
pub mod guard;
pub mod keepalived;
pub mod lab;
pub mod nft;
pub mod nginx;
pub mod node_config;
pub mod pki;
pub mod prober;
pub mod scrape;
pub mod scratch;
pub mod servers;
pub mod tls_probe;
pub mod tools;
pub mod wait;

pub use guard::Need;
pub use wait::{wait_for, wait_for_async, wait_for_every};

use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Hold this while a test runs that measures time on real processes (a lab test): two of them
/// at once would compete for the machine's cores and miss their bounds. It serialises the
/// tests of one test binary; cargo runs the binaries themselves one after another. A test that
/// panicked while holding it does not poison it for the next.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
