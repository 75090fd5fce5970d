//! Bidirectional forwarding between a client and a backend: the proxy's data path.
//!
//! Each direction is a [`Half`]: read from one socket, write everything read to the other,
//! and when the reader sees EOF, pass it on with `shutdown(SHUT_WR)`; the other direction
//! keeps going until it sees its own EOF (a correct half-close). The connection ends when
//! both directions have passed their EOF on, when either socket fails, or when an idle limit
//! expires.
//!
//! Bytes in flight sit in a *lease* taken only when the source is readable and given back as
//! soon as it has been written out: a pipe for `splice(2)` (the kernel moves the bytes, user
//! space never copies them) or, in buffered mode or when no pipe can be had, a buffer. Leases
//! come from small per-thread pools, so an idle connection holds neither pipes nor buffers.
//!
//! Idle limits are checked lazily: activity only records a timestamp, and the single timer
//! of a connection is re-armed when it fires early, so a busy stream never touches the timer
//! wheel per chunk.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use havip_sys::Pipe;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant};

/// How bytes move through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMode {
    /// Zero-copy through a pipe with `splice(2)`; `pipe_size` asks for a larger pipe.
    Splice { pipe_size: Option<usize> },
    /// read(2)/write(2) through a user-space buffer of this size.
    Buffered { buffer_size: usize },
}

impl Default for CopyMode {
    fn default() -> Self {
        CopyMode::Splice { pipe_size: None }
    }
}

/// Buffer size of the buffered mode and of the fallback when no pipe is available; HAProxy's
/// default `tune.bufsize` is 16 KiB.
pub const DEFAULT_BUFFER_SIZE: usize = 16 * 1024;

/// Idle limits of an established connection (see [`crate::spec::Timeouts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleLimits {
    pub client: Duration,
    pub server: Duration,
    pub tunnel: Option<Duration>,
}

/// Why forwarding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both sides closed their sending half; every byte was delivered.
    Closed,
    /// Reading from or writing to the client failed (reset, broken pipe…).
    ClientError(io::ErrorKind),
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

/// Counters a connection adds its bytes to as they move (service and backend totals), so
/// long-lived watches show up in metrics while they run, not only when they end.
#[derive(Debug, Clone, Copy)]
pub struct Meters<'a> {
    pub to_server: [&'a AtomicU64; 2],
    pub to_client: [&'a AtomicU64; 2],
}

/// Bytes moved so far by one connection. Lives outside the forwarding future so the caller
/// can still read it after cancelling the future (shutdown grace over, backend down).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    pub to_server: u64,
    pub to_client: u64,
}

/// Forward bytes both ways until the connection ends. `transfer` is kept current while the
/// future runs, so it is right even if the caller drops the future to cut the connection.
pub async fn forward(
    client: &TcpStream,
    server: &TcpStream,
    mode: CopyMode,
    limits: IdleLimits,
    meters: Meters<'_>,
    transfer: &mut Transfer,
) -> End {
    let start = Instant::now();
    let mut upstream = Half::new(start);
    let mut downstream = Half::new(start);
    let timer = sleep_until(start + first_deadline(limits));
    tokio::pin!(timer);
    let end = poll_fn(|cx| {
        if !upstream.done {
            match upstream.poll(cx, client, server, mode, &meters.to_server) {
                Poll::Ready(Ok(())) => upstream.done = true,
                Poll::Ready(Err(Failure::Read(kind))) => {
                    return Poll::Ready(End::ClientError(kind))
                }
                Poll::Ready(Err(Failure::Write(kind))) => {
                    return Poll::Ready(End::ServerError(kind))
                }
                Poll::Pending => {}
            }
        }
        if !downstream.done {
            match downstream.poll(cx, server, client, mode, &meters.to_client) {
                Poll::Ready(Ok(())) => downstream.done = true,
                Poll::Ready(Err(Failure::Read(kind))) => {
                    return Poll::Ready(End::ServerError(kind))
                }
                Poll::Ready(Err(Failure::Write(kind))) => {
                    return Poll::Ready(End::ClientError(kind))
                }
                Poll::Pending => {}
            }
        }
        transfer.to_server = upstream.moved;
        transfer.to_client = downstream.moved;
        if upstream.done && downstream.done {
            return Poll::Ready(End::Closed);
        }
        // Lazy idle check: only when the timer fires do we look at the activity stamps.
        while timer.as_mut().poll(cx).is_ready() {
            let (deadline, end) = idle_deadline(limits, &upstream, &downstream);
            if deadline <= Instant::now() {
                return Poll::Ready(end);
            }
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    })
    .await;
    transfer.to_server = upstream.moved;
    transfer.to_client = downstream.moved;
    // Leases go back to the pool when the halves drop; bytes still in a lease are lost, which
    // is what closing a connection means.
    end
}

fn first_deadline(limits: IdleLimits) -> Duration {
    limits.tunnel.unwrap_or(limits.client.min(limits.server))
}

/// When the connection next expires, and why, from the last activity of each open direction.
fn idle_deadline(limits: IdleLimits, upstream: &Half, downstream: &Half) -> (Instant, End) {
    let client_rule = (upstream.last_activity + limits.client, End::ClientIdle);
    let server_rule = (downstream.last_activity + limits.server, End::ServerIdle);
    match (upstream.done, downstream.done) {
        // Both directions open: the tunnel limit, when set, replaces the per-side ones.
        (false, false) => match limits.tunnel {
            Some(tunnel) => {
                let last = upstream.last_activity.max(downstream.last_activity);
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

/// One direction of a connection.
struct Half {
    lease: Lease,
    /// Bytes in the lease not yet written; for a buffer they are `buffer[start..start+pending]`.
    pending: usize,
    start: usize,
    /// The source sent EOF; once `pending` is 0 we shut down the destination's write side.
    eof: bool,
    done: bool,
    moved: u64,
    last_activity: Instant,
}

/// Chunks moved per poll before yielding, so one hot connection cannot starve the others
/// sharing its worker thread.
const CHUNKS_PER_POLL: u32 = 16;

impl Half {
    fn new(now: Instant) -> Self {
        Half {
            lease: Lease::None,
            pending: 0,
            start: 0,
            eof: false,
            done: false,
            moved: 0,
            last_activity: now,
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        dst: &TcpStream,
        mode: CopyMode,
        meters: &[&AtomicU64; 2],
    ) -> Poll<Result<(), Failure>> {
        for _ in 0..CHUNKS_PER_POLL {
            if self.pending > 0 {
                ready!(self.poll_write(cx, dst)).map_err(|e| Failure::Write(e.kind()))?;
                continue;
            }
            if self.eof {
                // Pass the half-close on; the other direction is unaffected.
                return match socket2::SockRef::from(dst).shutdown(std::net::Shutdown::Write) {
                    Ok(()) => Poll::Ready(Ok(())),
                    // The peer already went away entirely; nothing left to tell it.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
                    Err(e) => Poll::Ready(Err(Failure::Write(e.kind()))),
                };
            }
            let n = ready!(self.poll_read(cx, src, mode)).map_err(|e| Failure::Read(e.kind()))?;
            if n == 0 {
                self.eof = true;
                release(&mut self.lease);
            } else {
                self.pending = n;
                self.start = 0;
                self.moved += n as u64;
                self.last_activity = Instant::now();
                for m in meters {
                    m.fetch_add(n as u64, Relaxed);
                }
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
                self.lease = acquire(mode);
            }
            let result = match &mut self.lease {
                Lease::Pipe(pipe) => src.try_io(Interest::READABLE, || {
                    pipe.fill_from(src.as_raw_fd(), SPLICE_CHUNK)
                }),
                Lease::Buffer(buf) => src.try_read(buf),
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
            let result = match &self.lease {
                Lease::Pipe(pipe) => dst.try_io(Interest::WRITABLE, || {
                    pipe.drain_to(dst.as_raw_fd(), self.pending)
                }),
                Lease::Buffer(buf) => dst.try_write(&buf[self.start..self.start + self.pending]),
                Lease::None => unreachable!("pending bytes always sit in a lease"),
            };
            match result {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.pending -= n;
                    self.start += n;
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

fn acquire(mode: CopyMode) -> Lease {
    match mode {
        CopyMode::Splice { pipe_size } => {
            if let Some(pipe) = PIPES.with(|p| p.borrow_mut().pop()) {
                return Lease::Pipe(pipe);
            }
            match Pipe::new(pipe_size) {
                Ok(pipe) => Lease::Pipe(pipe),
                // Out of descriptors: this chunk goes through a buffer instead.
                Err(_) => Lease::Buffer(take_buffer(DEFAULT_BUFFER_SIZE)),
            }
        }
        CopyMode::Buffered { buffer_size } => Lease::Buffer(take_buffer(buffer_size)),
    }
}

fn take_buffer(size: usize) -> Box<[u8]> {
    BUFFERS
        .with(|b| {
            let mut pool = b.borrow_mut();
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
        Lease::Pipe(pipe) => PIPES.with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOL_LIMIT {
                pool.push(pipe);
            }
        }),
        Lease::Buffer(buf) => BUFFERS.with(|b| {
            let mut pool = b.borrow_mut();
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
        let t0 = Instant::now();
        let mut up = Half::new(t0);
        let mut down = Half::new(t0);
        up.last_activity = t0 + Duration::from_secs(5);
        // Both open, no tunnel: the earlier of the per-side limits.
        assert_eq!(
            idle_deadline(limits(None), &up, &down),
            (t0 + Duration::from_secs(15), End::ClientIdle)
        );
        // Both open, tunnel: from the latest activity of either side.
        assert_eq!(
            idle_deadline(limits(Some(30)), &up, &down),
            (t0 + Duration::from_secs(35), End::TunnelIdle)
        );
        // Client half-closed: only the backend's silence counts, even with a tunnel limit.
        up.done = true;
        assert_eq!(
            idle_deadline(limits(Some(30)), &up, &down),
            (t0 + Duration::from_secs(20), End::ServerIdle)
        );
        up.done = false;
        down.done = true;
        assert_eq!(
            idle_deadline(limits(Some(30)), &up, &down),
            (t0 + Duration::from_secs(15), End::ClientIdle)
        );
    }
}
