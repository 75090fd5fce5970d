//! A watch on the VRRP adverts the client namespace sees: each one of a VRID with its arrival
//! time, source and priority, the ground truth that failover times are measured from. It runs
//! on a lab background thread until the lab shuts down.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::lab::{interface_index, Lab};

/// One advert seen by the client.
#[derive(Debug, Clone, Copy)]
pub struct Advert {
    /// When it arrived.
    pub at: Instant,
    /// The sender's address.
    pub source: IpAddr,
    /// Its priority (0: the master is stopping).
    pub priority: u8,
}

/// The adverts seen so far; see the module documentation.
pub struct AdvertWatch {
    seen: Arc<Mutex<Vec<Advert>>>,
}

impl Lab {
    /// Record every VRRP advert of `vrid` the client sees on its `eth0` (multicast, and the
    /// unicast adverts addressed to the client), from now on.
    pub fn start_advert_watch(&self, vrid: u8, ipv6: bool) -> AdvertWatch {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = seen.clone();
        let client = self.client.clone();
        let ifindex = self.in_ns(&client, || interface_index("eth0"));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        self.background(&client, move |stop| {
            use havip_sys::vrrp_socket::{Family, VrrpReceiver};
            let family = if ipv6 { Family::V6 } else { Family::V4 };
            let receiver =
                VrrpReceiver::open(ifindex, "eth0", family, true).expect("advert watch socket");
            let _ = ready_tx.send(());
            let mut buf = vec![0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                match receiver.recv(&mut buf) {
                    Ok(d) => {
                        let payload = &buf[d.payload.clone()];
                        if payload.len() >= 3 && payload[1] == vrid {
                            out.lock().unwrap().push(Advert {
                                at: Instant::now(),
                                source: d.source,
                                priority: payload[2],
                            });
                        }
                    }
                    // A non-blocking socket: poll it finely, arrival times are the point.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_micros(500))
                    }
                    Err(e) => {
                        eprintln!("advert watch: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("advert watch started");
        AdvertWatch { seen }
    }
}

impl AdvertWatch {
    /// Every advert so far, in order of arrival.
    pub fn adverts(&self) -> Vec<Advert> {
        self.seen.lock().unwrap().clone()
    }

    /// The last advert from `source`.
    pub fn last_from(&self, source: IpAddr) -> Option<Advert> {
        self.adverts()
            .into_iter()
            .rev()
            .find(|a| a.source == source)
    }

    /// The first advert from `source` that arrived after `after`.
    pub fn first_from_after(&self, source: IpAddr, after: Instant) -> Option<Advert> {
        self.adverts()
            .into_iter()
            .find(|a| a.source == source && a.at > after)
    }

    /// How many adverts from `source` arrived after `after`.
    pub fn count_from_after(&self, source: IpAddr, after: Instant) -> usize {
        self.adverts()
            .iter()
            .filter(|a| a.source == source && a.at > after)
            .count()
    }
}
