//! The receive path of one interface and family: read every VRRP packet from the raw socket
//! and hand it to the instance of its VRID, so that several instances on one interface each
//! see a packet once (issue #4 item 1). What no instance can take is counted here; everything
//! else is checked by the instance's core.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use arc_swap::ArcSwap;
use havip_sys::vrrp_socket::{ReceivedDatagram, VrrpReceiver};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::instance::{Control, OwnedPacket};
use super::status::ReceiveCounters;

/// How many packets one wakeup drains at most, so that other tasks keep running.
const DRAIN_PER_WAKEUP: usize = 256;

/// A socket overflow is logged at most once per this period (RFC 9568 7.1: rate-limited).
const OVERFLOW_LOG_HOLDOFF: Duration = Duration::from_secs(60);

/// The instances' inboxes by VRID. Usually one per VRID; two while a reload replaces an
/// instance (the old one hands over while the new one starts). Swapped whole by a reload.
pub type Routes = ArcSwap<HashMap<u8, Vec<mpsc::Sender<Control>>>>;

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
    routes: &HashMap<u8, Vec<mpsc::Sender<Control>>>,
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
    for inbox in inboxes {
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
