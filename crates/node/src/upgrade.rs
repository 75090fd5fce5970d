//! Binary upgrade: a new havip process takes over from the running one on the same node with
//! no failed connect, no cut connection and no VRRP transition.
//!
//! The sequence, started by SIGUSR2 or `POST /api/upgrade` on the running (old) process:
//!
//! 1. The old process listens on an abstract Unix socket of its own (`havip-upgrade-<pid>-<n>`,
//!    named in [`ENV`]) and starts its binary again (the path it was started from, with the
//!    same arguments).
//! 2. The new process reads and validates its config first: an invalid one makes it exit
//!    with the problems in the log, and the old one runs on. It connects and says
//!    [`Message::Hello`].
//! 3. The old process checks that the peer is the child it started (`SO_PEERCRED`) and sends
//!    [`Message::Offer`]: its listening sockets (the descriptors themselves, `SCM_RIGHTS`),
//!    its admin listener and the state of every VRRP instance.
//! 4. The new process adopts the sockets (the kernel's accept queues never close, so no
//!    connect fails), resumes its instances (a master stays master: it advertises at once and
//!    keeps the addresses, without an announcement burst), says [`Message::Ready`], and tells
//!    systemd it is the main process now (`MAINPID=`, `READY=1`; the unit needs
//!    `NotifyAccess=all`).
//! 5. The old process stops its instances without a word on the wire (no priority 0, the
//!    addresses stay), stops accepting, lets open connections finish for up to `grace`, and
//!    exits 0.
//!
//! Until step 5 nothing in the old process has changed: any failure (the new binary does not
//! start, its config is invalid, it cannot bind a new address, it says nothing for
//! [`HANDOVER_TIMEOUT`]) leaves the old process serving as before, and the child is ended.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use havip_sys::fd_passing::{peer_pid, recv_with_fds, send_with_fds, MAX_FDS};
use serde::{Deserialize, Serialize};

use crate::vrrp::Resumed;
use havip_proxy::BackendKey;

/// The environment variable that names the predecessor's socket in the new process.
pub const ENV: &str = "HAVIP_UPGRADE_FROM";

/// How long the old process waits for the new one to be ready (its start includes reading
/// TLS files and binding new addresses; a VRRP instance's start is immediate).
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest message either side accepts.
const MAX_MESSAGE: usize = 1 << 20;

/// What the two processes say to each other, as length-prefixed JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// New to old: I am up and my config is valid.
    Hello {
        /// The new process's ID (checked against the socket's peer credentials).
        pid: u32,
        /// Its version, for the log.
        version: String,
    },
    /// Old to new, with the descriptors attached in order: each listener, then the admin
    /// listener when `admin` is set.
    Offer {
        /// The listening sockets, by the address configured for them.
        listeners: Vec<SocketAddr>,
        /// The admin endpoint's configured address, when it runs.
        admin: Option<SocketAddr>,
        /// The VRRP instances' states.
        vrrp: Vec<Resumed>,
        /// The backends known as down, which start down (not up on probation).
        #[serde(default)]
        down: Vec<BackendKey>,
    },
    /// New to old: everything runs; stop now.
    Ready,
    /// Either way: giving up, and why.
    Failed {
        /// Why.
        error: String,
    },
}

/// Why an upgrade did not happen (the old process runs on).
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The handover socket could not be made.
    #[error("cannot open the handover socket: {0}")]
    Socket(#[source] io::Error),
    /// The new binary did not start.
    #[error("cannot start {path}: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The new process ended before it took over.
    #[error("the new process exited before it took over ({status}); see its log lines above")]
    Exited {
        /// How it ended.
        status: std::process::ExitStatus,
    },
    /// Something else connected to the handover socket.
    #[error("a process other than the one started (pid {peer}) connected; refused")]
    Stranger {
        /// Who connected.
        peer: u32,
    },
    /// The new process said it cannot take over.
    #[error("the new process could not start: {0}")]
    Refused(String),
    /// The exchange broke.
    #[error("handover: {0}")]
    Io(#[from] io::Error),
    /// Nothing for too long.
    #[error("the new process was not ready within {0:?}")]
    Timeout(Duration),
    /// More listening sockets than one message carries.
    #[error("{0} listening sockets; a handover carries at most {max}", max = MAX_FDS - 1)]
    TooManySockets(usize),
}

/// What the old process offers: descriptors and states.
pub struct Offer {
    /// The listening sockets by configured address (duplicated descriptors).
    pub listeners: Vec<(SocketAddr, OwnedFd)>,
    /// The admin listener by configured address.
    pub admin: Option<(SocketAddr, OwnedFd)>,
    /// The VRRP instances' states.
    pub vrrp: Vec<Resumed>,
    /// The backends known as down.
    pub down: Vec<BackendKey>,
}

/// Start the successor and hand everything over; `Ok(pid)` once it is ready. On `Err` the
/// child (if any) has been ended and nothing here changed.
pub async fn hand_over(
    exe: PathBuf,
    args: Vec<OsString>,
    offer: Offer,
) -> Result<u32, UpgradeError> {
    let fds = offer.listeners.len() + usize::from(offer.admin.is_some());
    if fds > MAX_FDS {
        return Err(UpgradeError::TooManySockets(offer.listeners.len()));
    }
    let name = format!("havip-upgrade-{}-{}", std::process::id(), fastrand_id());
    let listener = UnixListener::bind_addr(
        &UnixAddr::from_abstract_name(name.as_bytes()).map_err(UpgradeError::Socket)?,
    )
    .map_err(UpgradeError::Socket)?;
    listener
        .set_nonblocking(true)
        .map_err(UpgradeError::Socket)?;
    let listener = tokio::net::UnixListener::from_std(listener).map_err(UpgradeError::Socket)?;
    let mut child = tokio::process::Command::new(&exe)
        .args(&args)
        .env(ENV, &name)
        .spawn()
        .map_err(|source| UpgradeError::Spawn {
            path: exe.clone(),
            source,
        })?;
    let child_pid = child.id().unwrap_or(0);
    tracing::info!(binary = %exe.display(), pid = child_pid, "upgrade: new process started");
    let result = tokio::time::timeout(HANDOVER_TIMEOUT, async {
        let stream = tokio::select! {
            accepted = listener.accept() => accepted?.0,
            status = child.wait() => return Err(UpgradeError::Exited { status: status? }),
        };
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        let peer = peer_pid(&stream)?;
        if peer != child_pid {
            return Err(UpgradeError::Stranger { peer });
        }
        let exchange = tokio::task::spawn_blocking(move || offer_to(stream, offer));
        tokio::select! {
            done = exchange => done.map_err(|e| UpgradeError::Io(io::Error::other(e)))?,
            status = child.wait() => Err(UpgradeError::Exited { status: status? }),
        }
    })
    .await
    .unwrap_or(Err(UpgradeError::Timeout(HANDOVER_TIMEOUT)));
    match result {
        Ok(()) => Ok(child_pid),
        Err(error) => {
            // We started it, so we end it, by its PID (through the handle).
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(error)
        }
    }
}

/// The old side of the exchange, blocking: Hello, Offer, Ready.
fn offer_to(mut stream: UnixStream, offer: Offer) -> Result<(), UpgradeError> {
    stream.set_read_timeout(Some(HANDOVER_TIMEOUT))?;
    match read_message(&mut stream)?.0 {
        Message::Hello { pid, version } => {
            tracing::info!(pid, %version, "upgrade: new process connected");
        }
        other => return Err(unexpected(&other)),
    }
    let message = Message::Offer {
        listeners: offer.listeners.iter().map(|(addr, _)| *addr).collect(),
        admin: offer.admin.as_ref().map(|(addr, _)| *addr),
        vrrp: offer.vrrp,
        down: offer.down,
    };
    let fds: Vec<_> = offer
        .listeners
        .iter()
        .map(|(_, fd)| fd.as_fd())
        .chain(offer.admin.as_ref().map(|(_, fd)| fd.as_fd()))
        .collect();
    send_with_fds(&stream, &frame(&message)?, &fds)?;
    match read_message(&mut stream)?.0 {
        Message::Ready => Ok(()),
        Message::Failed { error } => Err(UpgradeError::Refused(error)),
        other => Err(unexpected(&other)),
    }
}

/// What the new process received from its predecessor: the sockets and states to start
/// with, and the channel to answer on.
pub struct Inheritance {
    /// What to start with.
    pub inherited: Inherited,
    /// Where to say ready (or failed).
    pub handshake: Handshake,
}

/// The sockets and states a predecessor handed over.
#[derive(Debug, Default)]
pub struct Inherited {
    /// The listening sockets by configured address.
    pub listeners: HashMap<SocketAddr, std::net::TcpListener>,
    /// The admin listener by configured address.
    pub admin: Option<(SocketAddr, std::net::TcpListener)>,
    /// The VRRP instances' states.
    pub vrrp: Vec<Resumed>,
    /// The backends the predecessor knew as down.
    pub down: Vec<BackendKey>,
}

/// The new process's end of the handover socket.
pub struct Handshake(UnixStream);

impl Inheritance {
    /// When this process was started by a predecessor ([`ENV`] is set): connect, say Hello
    /// and receive the offer. `None` for an ordinary start.
    pub fn receive() -> Option<Result<Inheritance, UpgradeError>> {
        let name = std::env::var_os(ENV)?;
        Some(Inheritance::receive_from(name.as_encoded_bytes()))
    }

    fn receive_from(name: &[u8]) -> Result<Inheritance, UpgradeError> {
        let address = UnixAddr::from_abstract_name(name).map_err(UpgradeError::Socket)?;
        let mut channel = UnixStream::connect_addr(&address).map_err(UpgradeError::Socket)?;
        channel.set_read_timeout(Some(HANDOVER_TIMEOUT))?;
        let hello = Message::Hello {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        send_with_fds(&channel, &frame(&hello)?, &[])?;
        let (message, fds) = read_message(&mut channel)?;
        let Message::Offer {
            listeners,
            admin,
            vrrp,
            down,
        } = message
        else {
            return Err(unexpected(&message));
        };
        if fds.len() != listeners.len() + usize::from(admin.is_some()) {
            return Err(UpgradeError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "offer names {} sockets but carries {}",
                    listeners.len(),
                    fds.len()
                ),
            )));
        }
        let mut fds = fds.into_iter();
        let listeners = listeners
            .into_iter()
            .zip(fds.by_ref())
            .map(|(addr, fd)| (addr, std::net::TcpListener::from(fd)))
            .collect();
        let admin = admin.zip(fds.next().map(std::net::TcpListener::from));
        Ok(Inheritance {
            inherited: Inherited {
                listeners,
                admin,
                vrrp,
                down,
            },
            handshake: Handshake(channel),
        })
    }
}

impl Handshake {
    /// Tell the predecessor that everything runs here now; it stops after this. Blocks until
    /// the predecessor has read the answer (it closes its end).
    pub fn ready(mut self) -> Result<(), UpgradeError> {
        send_with_fds(&self.0, &frame(&Message::Ready)?, &[])?;
        let mut rest = [0u8; 1];
        let _ = self.0.read(&mut rest);
        Ok(())
    }

    /// Tell the predecessor this process cannot take over (it runs on).
    pub fn fail(self, error: &str) {
        let message = Message::Failed {
            error: error.to_string(),
        };
        if let Ok(bytes) = frame(&message) {
            let _ = send_with_fds(&self.0, &bytes, &[]);
        }
    }
}

/// Tell systemd this process is the service's main process now and ready (a no-op outside
/// systemd: without `NOTIFY_SOCKET`).
pub fn notify_systemd_main_pid() {
    let pid = std::process::id();
    if let Err(error) = sd_notify::notify(&[
        sd_notify::NotifyState::MainPid(pid),
        sd_notify::NotifyState::Ready,
    ]) {
        tracing::warn!(%error, "cannot tell systemd the new main PID");
    }
}

fn frame(message: &Message) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(message)?;
    let mut bytes = u32::try_from(json.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))?
        .to_be_bytes()
        .to_vec();
    bytes.extend(json);
    Ok(bytes)
}

/// One framed message and the descriptors that came with its first bytes.
fn read_message(stream: &mut UnixStream) -> io::Result<(Message, Vec<OwnedFd>)> {
    let mut header = [0u8; 4];
    let (mut got, fds) = recv_with_fds(stream, &mut header)?;
    if got == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the other process closed the handover socket",
        ));
    }
    while got < header.len() {
        let read = stream.read(&mut header[got..])?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += read;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a handover message of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    let message = serde_json::from_slice(&body)?;
    Ok((message, fds))
}

fn unexpected(message: &Message) -> UpgradeError {
    UpgradeError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected handover message {message:?}"),
    ))
}

/// A number that makes the socket's name hard to guess ahead of time (the peer check is what
/// refuses strangers; this only avoids clashes between two upgrades).
fn fastrand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failed test

    use super::*;

    #[test]
    fn messages_round_trip_with_their_descriptors() {
        let (mut left, mut right) = UnixStream::pair().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let offer = Message::Offer {
            listeners: vec![addr],
            admin: None,
            vrrp: vec![Resumed {
                name: "VI_1".into(),
                vrid: 51,
                interface: "eth0".into(),
                master: true,
            }],
            down: vec![("api".into(), "b2".into(), addr)],
        };
        send_with_fds(&left, &frame(&offer).unwrap(), &[listener.as_fd()]).unwrap();
        send_with_fds(&right, &frame(&Message::Ready).unwrap(), &[]).unwrap();
        let (got, fds) = read_message(&mut right).unwrap();
        assert_eq!(got, offer);
        assert_eq!(fds.len(), 1);
        let adopted = std::net::TcpListener::from(fds.into_iter().next().unwrap());
        assert_eq!(adopted.local_addr().unwrap(), addr);
        assert_eq!(read_message(&mut left).unwrap().0, Message::Ready);
    }

    #[test]
    fn a_closed_socket_or_an_oversized_message_is_an_error() {
        let (left, mut right) = UnixStream::pair().unwrap();
        drop(left);
        assert!(read_message(&mut right).is_err());
        let (left, mut right) = UnixStream::pair().unwrap();
        send_with_fds(&left, &u32::MAX.to_be_bytes(), &[]).unwrap();
        assert!(read_message(&mut right).is_err());
    }
}
