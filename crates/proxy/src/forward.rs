//! Bidirectional forwarding between a client and a backend: the proxy's data path.
//!
//! Each direction is a `Half`: read from one socket, write everything read to the other,
//! and when the reader sees EOF, pass it on with `shutdown(SHUT_WR)`; the other direction
//! keeps going until it sees its own EOF (a correct half-close). The connection ends when
//! both directions have passed their EOF on, when either socket fails, or when an idle limit
//! expires.
//!
//! Bytes in flight sit in a *lease* taken only when the source is readable and given back as
//! soon as it has been written out: a buffer, or a pipe for `splice(2)` (the kernel moves the
//! bytes, user space never copies them). Leases come from small per-thread pools, so an idle
//! connection holds neither pipes nor buffers.
//!
//! In splice mode each direction adapts, like HAProxy's `splice-auto`: small messages (API
//! requests, watch events) go through a buffer, where a read and a write are the cheapest way
//! to move a few hundred bytes; once a read fills the buffer the direction is carrying bulk
//! data and switches to splice, and a splice that moves less than a buffer's worth switches
//! it back.
//!
//! Idle limits are checked lazily: activity only records a timestamp, and the single timer
//! of a connection is re-armed when it fires early, so a busy stream never touches the timer
//! wheel per chunk.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use havip_sys::Pipe;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant, Sleep};

use havip_config::copy_mode::{CopyMode, DEFAULT_BUFFER_SIZE};

/// Idle limits of an established connection (see [`havip_config::service::Timeouts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleLimits {
    /// No bytes from the client for this long ends the connection ([`End::ClientIdle`]).
    pub client: Duration,
    /// No bytes from the backend for this long ends the connection ([`End::ServerIdle`]).
    pub server: Duration,
    /// While both directions are open, no bytes either way for this long ends it
    /// ([`End::TunnelIdle`]) and replaces the two limits above; `None` keeps them.
    pub tunnel: Option<Duration>,
}

/// Why forwarding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both sides closed their sending half; every byte was delivered.
    Closed,
    /// Reading from or writing to the client failed (reset, broken pipe…).
    ClientError(io::ErrorKind),
    /// Reading from or writing to the backend failed (reset, broken pipe…).
    ServerError(io::ErrorKind),
    /// The client sent nothing for `client_idle`.
    ClientIdle,
    /// The backend sent nothing for `server_idle`.
    ServerIdle,
    /// Neither side sent anything for `tunnel`.
    TunnelIdle,
}

impl End {
    /// Short, stable name for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::ClientError(_) => "client_error",
            End::ServerError(_) => "server_error",
            End::ClientIdle => "client_idle_timeout",
            End::ServerIdle => "server_idle_timeout",
            End::TunnelIdle => "tunnel_idle_timeout",
        }
    }
}

/// How a service forwards: built once per service and shared by its connections, so a
/// connection's state holds a reference instead of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Buffered copies with a buffer size, or splice(2) with a pipe size.
    pub copy_mode: CopyMode,
    /// When an idle connection is closed.
    pub limits: IdleLimits,
}

/// Where a connection adds its bytes as they move (service and backend totals), so long-lived
/// watches show up in metrics while they run, not only when they end.
pub trait Meter {
    /// `bytes` more were written from the client to the backend.
    fn to_server(&self, bytes: u64);
    /// `bytes` more were written from the backend to the client.
    fn to_client(&self, bytes: u64);
    /// Of those bytes, how many went through splice(2) (either direction).
    fn spliced(&self, bytes: u64);
}

/// A meter that adds to a list of counters, for tests and simple callers.
#[derive(Debug, Clone, Copy)]
pub struct Counters<'a> {
    /// Each gets every byte sent from the client to the backend.
    pub to_server: &'a [&'a AtomicU64],
    /// Each gets every byte sent from the backend to the client.
    pub to_client: &'a [&'a AtomicU64],
}

impl Meter for Counters<'_> {
    fn to_server(&self, bytes: u64) {
        for counter in self.to_server {
            counter.fetch_add(bytes, Relaxed);
        }
    }
    fn to_client(&self, bytes: u64) {
        for counter in self.to_client {
            counter.fetch_add(bytes, Relaxed);
        }
    }
    fn spliced(&self, _bytes: u64) {}
}

/// Bytes moved so far by one connection. Lives outside the forwarding future so the caller
/// can still read it after cancelling the future (shutdown grace over, backend down).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes written from the client to the backend.
    pub to_server: u64,
    /// Bytes written from the backend to the client.
    pub to_client: u64,
}

/// Forward bytes both ways until the connection ends. `transfer` is kept current while the
/// future runs, so it is right even if the caller drops the future to cut the connection.
pub fn forward<'a, M: Meter>(
    client: &'a TcpStream,
    server: &'a TcpStream,
    settings: &'a Settings,
    meter: &'a M,
    transfer: &'a mut Transfer,
) -> Forward<'a, M> {
    let start = Instant::now();
    Forward {
        client,
        server,
        settings,
        meter,
        transfer,
        start,
        upstream: Half::new(),
        downstream: Half::new(),
        timer: sleep_until(start + first_deadline(&settings.limits)),
    }
}

pin_project_lite::pin_project! {
    /// The forwarding of one connection, as an explicit future: its fields are exactly what
    /// an open connection keeps, with no hidden captures. Leases go back to the pool when the
    /// halves drop; bytes still in a lease are lost, which is what closing a connection means.
    pub struct Forward<'a, M> {
        client: &'a TcpStream,
        server: &'a TcpStream,
        settings: &'a Settings,
        meter: &'a M,
        transfer: &'a mut Transfer,
        start: Instant,
        upstream: Half,
        downstream: Half,
        // The single idle timer of the connection, re-armed lazily (see the module docs).
        #[pin]
        timer: Sleep,
    }
}

impl<M: Meter> Future for Forward<'_, M> {
    type Output = End;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<End> {
        let this = self.project();
        let (client, server, settings, meter) =
            (*this.client, *this.server, *this.settings, *this.meter);
        let (transfer, start, upstream, downstream) =
            (this.transfer, *this.start, this.upstream, this.downstream);
        let mut timer = this.timer;
        let mode = settings.copy_mode;
        let mut failed = None;
        if !upstream.done {
            let other_done = downstream.done;
            match upstream.poll(cx, client, server, mode, other_done, start) {
                Poll::Ready(Ok(())) => upstream.done = true,
                Poll::Ready(Err(Failure::Read(kind))) => failed = Some(End::ClientError(kind)),
                Poll::Ready(Err(Failure::Write(kind))) => failed = Some(End::ServerError(kind)),
                Poll::Pending => {}
            }
        }
        if failed.is_none() && !downstream.done {
            let other_done = upstream.done;
            match downstream.poll(cx, server, client, mode, other_done, start) {
                Poll::Ready(Ok(())) => downstream.done = true,
                Poll::Ready(Err(Failure::Read(kind))) => failed = Some(End::ServerError(kind)),
                Poll::Ready(Err(Failure::Write(kind))) => failed = Some(End::ClientError(kind)),
                Poll::Pending => {}
            }
        }
        // Count what moved in this poll (the halves hold it only until here), also when the
        // poll ends in a failure.
        let up = std::mem::take(&mut upstream.unmetered);
        if up > 0 {
            meter.to_server(up);
            transfer.to_server += up;
        }
        let down = std::mem::take(&mut downstream.unmetered);
        if down > 0 {
            meter.to_client(down);
            transfer.to_client += down;
        }
        let spliced = std::mem::take(&mut upstream.unmetered_spliced)
            + std::mem::take(&mut downstream.unmetered_spliced);
        if spliced > 0 {
            meter.spliced(spliced);
        }
        if let Some(end) = failed {
            return Poll::Ready(end);
        }
        if upstream.done && downstream.done {
            return Poll::Ready(End::Closed);
        }
        // Lazy idle check: only when the timer fires do we look at the activity stamps.
        while timer.as_mut().poll(cx).is_ready() {
            let (deadline, end) = idle_deadline(&settings.limits, start, upstream, downstream);
            if deadline <= Instant::now() {
                return Poll::Ready(end);
            }
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

fn first_deadline(limits: &IdleLimits) -> Duration {
    limits.tunnel.unwrap_or(limits.client.min(limits.server))
}

/// When the connection next expires, and why, from the last activity of each open direction.
fn idle_deadline(
    limits: &IdleLimits,
    start: Instant,
    upstream: &Half,
    downstream: &Half,
) -> (Instant, End) {
    let up_last = upstream.last_activity(start);
    let down_last = downstream.last_activity(start);
    let client_rule = (up_last + limits.client, End::ClientIdle);
    let server_rule = (down_last + limits.server, End::ServerIdle);
    match (upstream.done, downstream.done) {
        // Both directions open: the tunnel limit, when set, replaces the per-side ones.
        (false, false) => match limits.tunnel {
            Some(tunnel) => {
                let last = up_last.max(down_last);
                (last + tunnel, End::TunnelIdle)
            }
            None => {
                if client_rule.0 <= server_rule.0 {
                    client_rule
                } else {
                    server_rule
                }
            }
        },
        // The backend has closed its half: only the client's direction is left to wait for.
        (false, true) => client_rule,
        // The client has closed its half: waiting on the backend.
        (true, false) => server_rule,
        (true, true) => (Instant::now(), End::Closed),
    }
}

enum Failure {
    Read(io::ErrorKind),
    Write(io::ErrorKind),
}

/// Where the bytes of one direction wait between read and write.
enum Lease {
    None,
    Pipe(Pipe),
    Buffer(Box<[u8]>),
}

/// One direction of a connection. Kept small: every open connection has two.
struct Half {
    lease: Lease,
    /// Bytes in the lease not yet written; for a buffer they are `buffer[start..start+pending]`.
    pending: u32,
    start: u32,
    /// Bytes read since the forwarder last added them to the meters, and how many of them
    /// were spliced.
    unmetered: u64,
    unmetered_spliced: u64,
    /// Milliseconds from the connection's start to the last byte read.
    last_activity_ms: u64,
    /// The source sent EOF; once `pending` is 0 the destination's write side is shut down.
    eof: bool,
    done: bool,
    /// The last read filled its lease: bulk data, splice the next chunk (in splice mode).
    bulk: bool,
}

/// Chunks moved per poll before yielding, so one hot connection cannot starve the others
/// sharing its worker thread.
const CHUNKS_PER_POLL: u32 = 16;

impl Half {
    fn new() -> Self {
        Half {
            lease: Lease::None,
            pending: 0,
            start: 0,
            unmetered: 0,
            unmetered_spliced: 0,
            last_activity_ms: 0,
            eof: false,
            done: false,
            bulk: false,
        }
    }

    fn last_activity(&self, start: Instant) -> Instant {
        start + Duration::from_millis(self.last_activity_ms)
    }

    /// Move bytes until the source has nothing more for now (Pending) or this direction is
    /// finished (Ready). `other_done`: the opposite direction has passed its EOF on already.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        dst: &TcpStream,
        mode: CopyMode,
        other_done: bool,
        start: Instant,
    ) -> Poll<Result<(), Failure>> {
        for _ in 0..CHUNKS_PER_POLL {
            if self.pending > 0 {
                ready!(self.poll_write(cx, dst)).map_err(|e| Failure::Write(e.kind()))?;
                continue;
            }
            if self.eof {
                if other_done {
                    // Both sides have sent their FIN: the connection closes next, and close(2)
                    // sends our FIN (nothing is left unread), so shutdown(2) would be a wasted
                    // syscall on every connection.
                    return Poll::Ready(Ok(()));
                }
                // Pass the half-close on; the other direction is unaffected.
                return match socket2::SockRef::from(dst).shutdown(std::net::Shutdown::Write) {
                    Ok(()) => Poll::Ready(Ok(())),
                    // The peer already went away entirely; nothing left to tell it.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
                    Err(e) => Poll::Ready(Err(Failure::Write(e.kind()))),
                };
            }
            let read =
                ready!(self.poll_read(cx, src, mode)).map_err(|e| Failure::Read(e.kind()))?;
            if read == 0 {
                self.eof = true;
                release(&mut self.lease);
            } else {
                self.pending = read as u32;
                self.start = 0;
                self.unmetered += read as u64;
                self.last_activity_ms = start.elapsed().as_millis() as u64;
            }
        }
        // Budget used up with work left: come back after the other tasks had a turn.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Read one chunk into a fresh lease; `Ok(0)` is EOF.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        mode: CopyMode,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(src.poll_read_ready(cx))?;
            if matches!(self.lease, Lease::None) {
                self.lease = acquire(mode, self.bulk);
            }
            let result = match &mut self.lease {
                Lease::Pipe(pipe) => src
                    .try_io(Interest::READABLE, || {
                        pipe.fill_from(src.as_raw_fd(), SPLICE_CHUNK)
                    })
                    .inspect(|&n| {
                        self.bulk = n >= DEFAULT_BUFFER_SIZE;
                        self.unmetered_spliced += n as u64;
                    }),
                Lease::Buffer(buf) => {
                    let capacity = buf.len();
                    // A short read emptied the socket's receive queue: rather than ask again
                    // just to hear EAGAIN, report WouldBlock from inside `try_io` (keeping the
                    // bytes), so tokio clears the readiness it saw before this read and no
                    // other. An event that arrived during the read has a newer tick and
                    // survives; clearing in a second `try_io` call could drop it and stall
                    // the connection.
                    let mut short = None;
                    src.try_io(Interest::READABLE, || {
                        let read = (&*socket2::SockRef::from(src)).read(buf)?;
                        if read > 0 && read < capacity {
                            short = Some(read);
                            return Err(io::ErrorKind::WouldBlock.into());
                        }
                        Ok(read)
                    })
                    .or_else(|e| short.ok_or(e))
                    .inspect(|&n| self.bulk = n == capacity)
                }
                Lease::None => unreachable!("a lease was just acquired"),
            };
            match result {
                Ok(n) => return Poll::Ready(Ok(n)),
                // Spurious readiness: give the lease back while we wait.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => release(&mut self.lease),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Write pending bytes out; the lease goes back to the pool once they are all out.
    fn poll_write(&mut self, cx: &mut Context<'_>, dst: &TcpStream) -> Poll<io::Result<()>> {
        while self.pending > 0 {
            ready!(dst.poll_write_ready(cx))?;
            let pending = self.pending as usize;
            let result = match &self.lease {
                Lease::Pipe(pipe) => dst.try_io(Interest::WRITABLE, || {
                    pipe.drain_to(dst.as_raw_fd(), pending)
                }),
                Lease::Buffer(buf) => {
                    let from = self.start as usize;
                    // A short write filled the socket's send buffer: clear writability inside
                    // the same `try_io`, for the reason given in `poll_read`.
                    let mut short = None;
                    dst.try_io(Interest::WRITABLE, || {
                        let written =
                            (&*socket2::SockRef::from(dst)).write(&buf[from..from + pending])?;
                        if written > 0 && written < pending {
                            short = Some(written);
                            return Err(io::ErrorKind::WouldBlock.into());
                        }
                        Ok(written)
                    })
                    .or_else(|e| short.ok_or(e))
                }
                Lease::None => unreachable!("pending bytes always sit in a lease"),
            };
            match result {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.pending -= n as u32;
                    self.start += n as u32;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        release(&mut self.lease);
        Poll::Ready(Ok(()))
    }
}

impl Drop for Half {
    fn drop(&mut self) {
        // A pipe with bytes still in it cannot be reused; dropping it closes it.
        if self.pending == 0 {
            release(&mut self.lease);
        }
    }
}

/// Upper bound for one splice into a pipe; the kernel moves at most the pipe's free space, so
/// asking for more than any pipe holds just means "as much as fits".
const SPLICE_CHUNK: usize = 1 << 20;

/// Per-thread pools of leases. Bounded so a burst does not pin memory or descriptors for
/// ever; beyond the bound, returned leases are freed.
const POOL_LIMIT: usize = 64;

thread_local! {
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
    static BUFFERS: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A lease for the next chunk: a pipe when splicing bulk data, otherwise a buffer.
fn acquire(mode: CopyMode, bulk: bool) -> Lease {
    match mode {
        CopyMode::Splice { pipe_size } if bulk => {
            if let Some(pipe) = PIPES.with(|pipes| pipes.borrow_mut().pop()) {
                return Lease::Pipe(pipe);
            }
            match Pipe::new(pipe_size) {
                Ok(pipe) => Lease::Pipe(pipe),
                // Out of descriptors: this chunk goes through a buffer instead.
                Err(_) => Lease::Buffer(take_buffer(DEFAULT_BUFFER_SIZE)),
            }
        }
        CopyMode::Splice { .. } => Lease::Buffer(take_buffer(DEFAULT_BUFFER_SIZE)),
        CopyMode::Buffered { buffer_size } => Lease::Buffer(take_buffer(buffer_size)),
    }
}

fn take_buffer(size: usize) -> Box<[u8]> {
    BUFFERS
        .with(|buffers| {
            let mut pool = buffers.borrow_mut();
            match pool.last() {
                Some(buf) if buf.len() == size => pool.pop(),
                _ => None,
            }
        })
        .unwrap_or_else(|| vec![0u8; size].into_boxed_slice())
}

fn release(lease: &mut Lease) {
    match std::mem::replace(lease, Lease::None) {
        Lease::None => {}
        Lease::Pipe(pipe) => PIPES.with(|pipes| {
            let mut pool = pipes.borrow_mut();
            if pool.len() < POOL_LIMIT {
                pool.push(pipe);
            }
        }),
        Lease::Buffer(buf) => BUFFERS.with(|buffers| {
            let mut pool = buffers.borrow_mut();
            if pool.len() < POOL_LIMIT {
                pool.push(buf);
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(tunnel: Option<u64>) -> IdleLimits {
        IdleLimits {
            client: Duration::from_secs(10),
            server: Duration::from_secs(20),
            tunnel: tunnel.map(Duration::from_secs),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_deadline_follows_the_open_directions() {
        let start = Instant::now();
        let mut up = Half::new();
        let mut down = Half::new();
        up.last_activity_ms = 5000;
        // Both open, no tunnel: the earlier of the per-side limits.
        assert_eq!(
            idle_deadline(&limits(None), start, &up, &down),
            (start + Duration::from_secs(15), End::ClientIdle)
        );
        // Both open, tunnel: from the latest activity of either side.
        assert_eq!(
            idle_deadline(&limits(Some(30)), start, &up, &down),
            (start + Duration::from_secs(35), End::TunnelIdle)
        );
        // Client half-closed: only the backend's silence counts, even with a tunnel limit.
        up.done = true;
        assert_eq!(
            idle_deadline(&limits(Some(30)), start, &up, &down),
            (start + Duration::from_secs(20), End::ServerIdle)
        );
        up.done = false;
        down.done = true;
        assert_eq!(
            idle_deadline(&limits(Some(30)), start, &up, &down),
            (start + Duration::from_secs(15), End::ClientIdle)
        );
    }
}
