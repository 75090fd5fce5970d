//! The receive path of one interface and family: read every VRRP packet from the raw socket
//! and hand it to the instance of its VRID, so that several instances on one interface each
//! see a packet once (issue #4 item 1). What no instance can take is counted here; everything
//! else is checked by the instance's core.
//!
//! Before a packet is queued, the instance's [`Gate`] runs the core's configuration-only
//! checks on it (`havip_vrrp::Screen`, the same code the instance runs first): junk is
//! counted under the instance's drop reason and never queued, so a flood of it cannot fill
//! the bounded inbox and push real adverts out (issue 15). The decision stays the core's;
//! the shell only decides where it is made. The first rejected packet of each reason per
//! [`havip_vrrp::instance::WARNING_HOLDOFF`] is queued anyway, so that the instance logs it
//! with its details, rate-limited as all its warnings are (RFC 9568 7.1).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use havip_sys::vrrp_socket::{ReceivedDatagram, VrrpReceiver};
use havip_vrrp::instance::WARNING_HOLDOFF;
use havip_vrrp::{DropReason, ReceivedPacket, Screen};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::instance::{Control, OwnedPacket};
use super::status::{EarlyDrops, ReceiveCounters};

/// How many packets one wakeup drains at most, so that other tasks keep running.
const DRAIN_PER_WAKEUP: usize = 256;

/// A socket overflow is logged at most once per this period (RFC 9568 7.1: rate-limited).
const OVERFLOW_LOG_HOLDOFF: Duration = Duration::from_secs(60);

/// The instances' routes by VRID. Usually one per VRID; two while a reload replaces an
/// instance (the old one hands over while the new one starts). Swapped whole by a reload.
pub type Routes = ArcSwap<HashMap<u8, Vec<Route>>>;

/// Where one instance's packets go: its gate, then its inbox.
#[derive(Clone)]
pub struct Route {
    /// The instance's inbox.
    pub inbox: mpsc::Sender<Control>,
    /// The instance's screen and early drops.
    pub gate: Arc<Gate>,
}

/// One instance's screen (replaced when a reload reconfigures the instance), the drops it
/// made and when each reason was last let through for the instance to log.
pub struct Gate {
    screen: ArcSwap<Screen>,
    drops: Arc<EarlyDrops>,
    logged: Mutex<HashMap<DropReason, Instant>>,
}

impl Gate {
    /// A gate with `screen`, counting into `drops` (the instance status's).
    pub fn new(screen: &Screen, drops: Arc<EarlyDrops>) -> Gate {
        Gate {
            screen: ArcSwap::from_pointee(screen.clone()),
            drops,
            logged: Mutex::new(HashMap::new()),
        }
    }

    /// The instance now runs `screen` (a reload reconfigured it).
    pub fn replace(&self, screen: &Screen) {
        self.screen.store(Arc::new(screen.clone()));
    }

    /// Whether to queue `packet`: yes when the screen admits it, or when it is the first of
    /// its reason for a while (the instance counts and logs that one itself); otherwise it
    /// is counted here.
    fn pass(&self, packet: &ReceivedPacket<'_>, now: Instant) -> bool {
        let Err(reason) = self.screen.load().admit(packet) else {
            return true;
        };
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        let due = logged
            .get(&reason)
            .is_none_or(|at| now.duration_since(*at) >= WARNING_HOLDOFF);
        if due {
            logged.insert(reason, now);
        } else {
            self.drops.add(reason);
        }
        due
    }
}

/// Read packets until `stop`; route each by VRID to its instances' inboxes.
pub async fn receive_loop(
    fd: AsyncFd<VrrpReceiver>,
    routes: Arc<Routes>,
    counters: Arc<ReceiveCounters>,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; 65_536];
    let mut overflow = Overflow::default();
    loop {
        let mut guard = tokio::select! {
            guard = fd.readable() => match guard {
                Ok(guard) => guard,
                Err(error) => {
                    tracing::error!(interface = %counters.interface, %error, "VRRP receive path failed");
                    return;
                }
            },
            () = stop.cancelled() => return,
        };
        for _ in 0..DRAIN_PER_WAKEUP {
            match guard.get_inner().recv(&mut buf) {
                Ok(datagram) => {
                    counters.received.fetch_add(1, Relaxed);
                    let payload = buf.get(datagram.payload.clone()).unwrap_or(&[]);
                    route(payload, &datagram, &routes.load(), &counters);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    counters.malformed.fetch_add(1, Relaxed);
                }
                Err(error) => {
                    tracing::warn!(interface = %counters.interface, %error, "VRRP receive error");
                    guard.clear_ready();
                    break;
                }
            }
        }
        overflow.update(guard.get_inner(), &counters);
    }
}

/// The kernel's drop count on the socket, turned into the `socket_overflow` counter.
#[derive(Default)]
struct Overflow {
    /// The socket's count when last read (it counts from the socket's opening).
    seen: u64,
    logged: Option<Instant>,
}

impl Overflow {
    fn update(&mut self, socket: &VrrpReceiver, counters: &ReceiveCounters) {
        let Ok(total) = socket.kernel_drops() else {
            return;
        };
        let new = total.saturating_sub(self.seen);
        self.seen = total;
        if new == 0 {
            return;
        }
        counters.socket_overflow.fetch_add(new, Relaxed);
        let now = Instant::now();
        if self
            .logged
            .is_none_or(|at| now.duration_since(at) >= OVERFLOW_LOG_HOLDOFF)
        {
            self.logged = Some(now);
            tracing::warn!(
                interface = %counters.interface,
                dropped = total,
                "VRRP receive queue overflowed: the kernel dropped packets (a flood on the segment?); real adverts may be among them"
            );
        }
    }
}

fn route(
    payload: &[u8],
    datagram: &ReceivedDatagram,
    routes: &HashMap<u8, Vec<Route>>,
    counters: &ReceiveCounters,
) {
    let Some(vrid) = havip_vrrp::packet::peek_vrid(payload) else {
        counters.malformed.fetch_add(1, Relaxed);
        return;
    };
    let Some(inboxes) = routes.get(&vrid).filter(|inboxes| !inboxes.is_empty()) else {
        counters.unknown_vrid.fetch_add(1, Relaxed);
        return;
    };
    let received = ReceivedPacket {
        source: datagram.source,
        destination: datagram.destination,
        ttl: datagram.ttl,
        payload,
    };
    let now = Instant::now();
    for Route { inbox, gate } in inboxes {
        if !gate.pass(&received, now) {
            continue;
        }
        let packet = OwnedPacket {
            source: datagram.source,
            destination: datagram.destination,
            ttl: datagram.ttl,
            payload: payload.to_vec(),
        };
        // A task this far behind is better served by fresh adverts than by old ones.
        if inbox.try_send(Control::Packet(packet)).is_err() {
            counters.inbox_full.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use havip_vrrp::packet::{encode, AddressList, Advertisement, Authentication, ChecksumContext};
    use havip_vrrp::{InstanceConfig, V3Ipv4Checksum, Version};

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn config() -> InstanceConfig {
        InstanceConfig::new(51, ip("192.0.2.1"), vec![ip("192.0.2.100")])
    }

    fn advert(ttl_ok: bool) -> (ReceivedDatagram, Vec<u8>) {
        let config = config();
        let advert = Advertisement {
            version: Version::V3,
            vrid: 51,
            priority: 200,
            interval: config.advert_interval,
            addresses: AddressList::from_ip_addrs(&config.virtual_addresses).expect("list"),
            authentication: Authentication::None,
        };
        let context = ChecksumContext {
            source: ip("192.0.2.2"),
            destination: ip("224.0.0.18"),
            v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
        };
        let payload = encode(&advert, &context).expect("encodes");
        let datagram = ReceivedDatagram {
            source: context.source,
            destination: context.destination,
            ttl: if ttl_ok { 255 } else { 64 },
            payload: 0..payload.len(),
        };
        (datagram, payload)
    }

    /// Issue 15: a flood of junk with the instance's VRID filled its bounded inbox, and the
    /// real advert behind it was dropped as `inbox_full`. Now the junk is screened out before
    /// the inbox (counted under the instance's reason, one let through to be logged) and the
    /// real advert gets in.
    #[test]
    fn junk_with_the_right_vrid_does_not_crowd_real_adverts_out_of_the_inbox() {
        let (inbox, mut inbox_rx) = mpsc::channel(8);
        let drops = Arc::new(EarlyDrops::default());
        let gate = Arc::new(Gate::new(&Screen::new(&config()), drops.clone()));
        let routes = HashMap::from([(51, vec![Route { inbox, gate }])]);
        let counters = ReceiveCounters::default();
        let (junk, junk_payload) = advert(false);
        for _ in 0..1000 {
            route(&junk_payload, &junk, &routes, &counters);
        }
        let (good, good_payload) = advert(true);
        route(&good_payload, &good, &routes, &counters);

        assert_eq!(counters.inbox_full.load(Relaxed), 0);
        assert_eq!(
            drops.get(DropReason::IpTtl),
            999,
            "one junk packet goes on to be logged"
        );
        let mut queued = Vec::new();
        while let Ok(Control::Packet(packet)) = inbox_rx.try_recv() {
            queued.push(packet.ttl);
        }
        assert_eq!(
            queued,
            vec![64, 255],
            "the logged junk, then the real advert"
        );
    }
}
