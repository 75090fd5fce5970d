//! Small TCP servers for the tests: the backends behind a balancer, on loopback or inside a
//! lab namespace. Each runs on its own thread with its own tokio runtime, so blocking tests
//! and async tests (on any runtime flavour) use them alike; each connection is served on its
//! own task, so one slow client never holds up another.
//!
//! Lifecycle: [`Server::start`] returns once the listener is bound; [`Server::stop`] (or
//! dropping it) closes the listener and every open connection and returns when they are
//! closed, like a crashed process, so the port can be bound again at once.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// What a server does with each connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Accept and close at once (a TCP health check's target).
    Close,
    /// Write this text, then close: who answered (the lab's node backends).
    Text(String),
    /// Echo everything until the client closes, then close.
    Echo,
    /// Write `name` and a newline, then echo until the client closes, then close.
    GreetThenEcho(String),
    /// Read until the client's FIN, then answer `got <bytes read>\n` and close.
    CountUntilEof,
    /// Read everything, never answer (a backend that hangs).
    Sink,
    /// Send one byte every so often (200 in all) and never read (a `kubectl logs -f`).
    Tick(std::time::Duration),
}

/// A running server; stopped on drop.
#[derive(Debug)]
pub struct Server {
    /// The bound address (with the port the system chose for port 0).
    pub addr: SocketAddr,
    /// The name it greets with (`Text` without the newline, `GreetThenEcho`), else empty.
    pub name: String,
    accepted: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// A server on `bind` in the caller's network namespace; panics when it cannot bind.
    pub fn start(bind: SocketAddr, reply: Reply) -> Server {
        Server::try_start(None, bind, reply)
            .unwrap_or_else(|e| panic!("test server on {bind}: {e}"))
    }

    /// A server on `bind` inside the network namespace at `netns` (e.g. `/run/netns/NAME`).
    pub fn start_in(netns: &Path, bind: SocketAddr, reply: Reply) -> Server {
        Server::try_start(Some(netns.to_path_buf()), bind, reply)
            .unwrap_or_else(|e| panic!("test server on {bind} in {}: {e}", netns.display()))
    }

    fn try_start(netns: Option<PathBuf>, bind: SocketAddr, reply: Reply) -> io::Result<Server> {
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<SocketAddr>>();
        let (stop_tx, stop_rx) = oneshot::channel();
        let name = match &reply {
            Reply::Text(text) => text.trim_end().to_string(),
            Reply::GreetThenEcho(name) => name.clone(),
            _ => String::new(),
        };
        let thread = std::thread::spawn(move || {
            let setup = || -> io::Result<(tokio::runtime::Runtime, TcpListener)> {
                if let Some(path) = &netns {
                    havip_sys::enter_netns(path)?;
                }
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let listener = runtime.block_on(async { listen(bind) })?;
                Ok((runtime, listener))
            };
            let (runtime, listener) = match setup() {
                Ok(ok) => ok,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(listener.local_addr());
            runtime.block_on(serve(listener, reply, counter, stop_rx));
        });
        let addr = ready_rx
            .recv()
            .map_err(|_| io::Error::other("server thread ended before binding"))??;
        Ok(Server {
            addr,
            name,
            accepted,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Close the listener and every connection; returns once they are closed. Idempotent.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a TCP socket of this network namespace listens on `addr` (or on the unspecified
/// address of its family with that port), from `/proc/net/tcp` and `/proc/net/tcp6`: a way
/// to see a listener open or close without connecting to it.
pub fn listening(addr: SocketAddr) -> bool {
    let table = if addr.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let text = std::fs::read_to_string(table).unwrap_or_default();
    text.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let (Some(local), Some(state)) = (fields.nth(1), fields.nth(1)) else {
            return false;
        };
        // 0A: TCP_LISTEN.
        state == "0A"
            && parse_proc_address(local).is_some_and(|(ip, port)| {
                port == addr.port() && (ip == addr.ip() || ip.is_unspecified())
            })
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): each 32-bit word as the kernel
/// holds it, printed in this machine's byte order.
fn parse_proc_address(text: &str) -> Option<(std::net::IpAddr, u16)> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..address.len() / 8)
        .map(|i| u32::from_str_radix(address.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let ip = match bytes.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some((ip, port))
}

/// Bind like `TcpListener::bind` (SO_REUSEADDR, so a stopped server's port can be reused at
/// once, as a restarted process would).
fn listen(bind: SocketAddr) -> io::Result<TcpListener> {
    let socket = if bind.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(bind)?;
    socket.listen(1024)
}

async fn serve(
    listener: TcpListener,
    reply: Reply,
    accepted: Arc<AtomicU64>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            conn = listener.accept() => {
                let Ok((stream, _)) = conn else { continue };
                accepted.fetch_add(1, Ordering::Relaxed);
                connections.spawn(answer(stream, reply.clone()));
                // Reap finished connections so a long run does not keep their results.
                while connections.try_join_next().is_some() {}
            }
        }
    }
    // Dropping the set aborts every connection task, which closes its socket.
    drop(listener);
    connections.shutdown().await;
}

async fn answer(mut stream: TcpStream, reply: Reply) {
    match reply {
        Reply::Close => {}
        Reply::Text(text) => {
            let _ = stream.write_all(text.as_bytes()).await;
        }
        Reply::Echo => echo(&mut stream).await,
        Reply::CountUntilEof => {
            let mut all = Vec::new();
            if stream.read_to_end(&mut all).await.is_ok() {
                let _ = stream
                    .write_all(format!("got {}\n", all.len()).as_bytes())
                    .await;
            }
        }
        Reply::Sink => {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }
        Reply::Tick(every) => {
            for _ in 0..200 {
                if stream.write_all(b".").await.is_err() {
                    return;
                }
                // Time passing is the point: the stream's pace.
                tokio::time::sleep(every).await;
            }
        }
        Reply::GreetThenEcho(name) => {
            if stream
                .write_all(format!("{name}\n").as_bytes())
                .await
                .is_ok()
            {
                echo(&mut stream).await;
            }
        }
    }
    let _ = stream.shutdown().await;
}

async fn echo(stream: &mut TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn each_reply_does_what_it_says_and_stop_frees_the_port() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut text = Server::start(loopback, Reply::Text("node0\n".into()));
        let mut got = String::new();
        std::net::TcpStream::connect(text.addr)
            .unwrap()
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!((got.as_str(), text.name.as_str()), ("node0\n", "node0"));

        let echo = Server::start(loopback, Reply::GreetThenEcho("b1".into()));
        let mut s = std::net::TcpStream::connect(echo.addr).unwrap();
        s.write_all(b"ping").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(got, "b1\nping");
        assert_eq!(echo.accepted(), 1);

        let addr = text.addr;
        assert!(listening(addr));
        text.stop();
        assert!(!listening(addr), "listener closed");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "listener closed"
        );
        let again = Server::start(addr, Reply::Close);
        assert_eq!(again.addr, addr, "the port is free at once");
    }
}
