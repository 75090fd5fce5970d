//! The Linux system calls under havip: splice, raw VRRP sockets, rtnetlink, ARP / NA, a
//! child's user switch. This is the only crate with `unsafe`; every block states why it is
//! sound.
//!
//! Why these are written here rather than taken from a crate (socket2 is used wherever it
//! reaches):
//! - **rtnetlink**: `rtnetlink` is async only, with its own connection task on tokio, so every
//!   VIP add from an instance task would be a round trip through another task and its
//!   channel; the lower layers it sits on, `netlink-packet-route` and `netlink-sys`, are 0.x
//!   crates with breaking releases every few months (0.34 and 0.9 as of this writing). havip
//!   needs a few messages (get a link, dump links' addresses, add and delete an address with
//!   `IFA_F_NODAD` and a label, add, delete and dump the routes of one table, get a nexthop
//!   object, the link and address groups with lost notifications reported as
//!   [`netlink::NetEvent::Overrun`]) as a synchronous request with a timeout, plus the
//!   kernel's extended-ack error text: about 1,900 lines with their tests, fuzzed
//!   (`sys_netlink_datagram`) and tested in namespaces, against a dependency tree that would
//!   move under it.
//! - **raw VRRP sockets**: socket2 opens them and does `sendmsg` / `recvmsg`, but builds and
//!   parses no control messages; `IPV6_PKTINFO` (the source the VRRPv3 checksum was computed
//!   over) and `IPV6_HOPLIMIT` (TTL 255, RFC 5798 5.1.2.3) are written in [`vrrp_socket`].
//! - **ARP / NA**: an `AF_PACKET` socket, which socket2 does not address.
//! - **splice and pipes**: three libc calls (`pipe2`, `F_SETPIPE_SZ`, `splice`); `nix` has
//!   them, but would be a second libc wrapper for three calls.
//!
//! Everything here is synchronous and non-blocking (or, for netlink requests, a bounded kernel
//! round trip): callers drive readiness with tokio's `AsyncFd` over the `AsFd` these types
//! implement. The crate does not depend on tokio.
//!
//! - [`Pipe`]: `splice(2)` between sockets and pipes for zero-copy forwarding, and
//!   [`raise_nofile_limit`].
//! - [`vrrp_socket`]: raw IP protocol 112 sockets that send and receive VRRP advertisements
//!   with the exact IP source, destination and TTL the VRRP codec needs.
//! - [`netlink`]: rtnetlink requests (links, addresses, adding and removing VIPs, the routes
//!   of one table, nexthop objects) and a monitor of link and address changes.
//! - [`announce`]: gratuitous ARP and unsolicited Neighbor Advertisements.
//! - [`enter_netns`]: move a thread into a network namespace, for tests and tools.
//! - [`process`]: switch a child process to another user, with its supplementary groups,
//!   before exec (stable std cannot set those).
#![warn(missing_docs)]

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

pub mod announce;
pub mod fd_passing;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod netlink;
pub mod process;
mod sockopt;
pub mod vrrp_socket;

/// A non-blocking pipe used as the kernel-side buffer of a splice transfer.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// A new non-blocking, close-on-exec pipe. With `size` set, ask the kernel for that
    /// capacity (it rounds up to a power-of-two number of pages; unprivileged processes are
    /// capped at /proc/sys/fs/pipe-max-size). A refused size keeps the default (64 KiB).
    pub fn new(size: Option<usize>) -> io::Result<Pipe> {
        let mut fds: [libc::c_int; 2] = [-1, -1];
        // SAFETY: `fds` is a valid, writable array of two ints, as pipe2 requires.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let pipe = Pipe { read, write };
        if let Some(size) = size {
            let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
            // SAFETY: F_SETPIPE_SZ takes an int argument and only affects this descriptor.
            unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
        }
        Ok(pipe)
    }

    /// The pipe's capacity in bytes.
    pub fn capacity(&self) -> io::Result<usize> {
        // SAFETY: F_GETPIPE_SZ takes no argument and reads a property of the descriptor.
        let rc = unsafe { libc::fcntl(self.write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc as usize)
        }
    }

    /// Move up to `len` bytes from the socket `from` into the pipe without copying them to
    /// user space. `Ok(0)` means the peer closed its sending side (EOF).
    pub fn fill_from(&self, from: RawFd, len: usize) -> io::Result<usize> {
        splice(from, self.write.as_raw_fd(), len)
    }

    /// Move up to `len` bytes from the pipe to the socket `to`.
    pub fn drain_to(&self, to: RawFd, len: usize) -> io::Result<usize> {
        splice(self.read.as_raw_fd(), to, len)
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: null offsets are required for pipes and sockets; the kernel validates both
    // descriptors, and no user memory is passed.
    let moved = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            flags,
        )
    };
    if moved < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(moved as usize)
    }
}

/// Raise the soft open-file limit to the hard limit and return the new soft limit. A proxy
/// holds two descriptors per connection; the default soft limit (often 1024) would cap it at
/// a few hundred clients.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the hard one needs no
        // privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// Moves the calling thread into the network namespace at `path` (for example
/// `/run/netns/NAME`, as `ip netns add` creates it). For tests and tools: only this thread
/// changes namespace (setns(2) with `CLONE_NEWNET` is per thread), and sockets opened on it
/// afterwards belong to that namespace wherever they are used later. Needs CAP_SYS_ADMIN.
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let namespace = File::open(path)?;
    // SAFETY: setns takes a descriptor that stays open for the call and a flag; it changes
    // only the calling thread's network namespace and touches no memory of ours.
    let rc = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn splice_moves_bytes_between_sockets_through_a_pipe() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut src_peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (src, _) = listener.accept().unwrap();
        let dst = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut dst_peer, _) = listener.accept().unwrap();

        src_peer.write_all(b"hello splice").unwrap();
        let pipe = Pipe::new(Some(1 << 20)).unwrap();
        assert!(pipe.capacity().unwrap() >= 65536);
        let mut moved = 0;
        while moved < 12 {
            match pipe.fill_from(src.as_raw_fd(), 65536) {
                Ok(n) => moved += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(pipe.drain_to(dst.as_raw_fd(), moved).unwrap(), 12);
        let mut got = [0u8; 12];
        dst_peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello splice");

        drop(src_peer);
        let mut eof = None;
        for _ in 0..1000 {
            match pipe.fill_from(src.as_raw_fd(), 65536) {
                Ok(n) => {
                    eof = Some(n);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(eof, Some(0), "EOF reads as 0");
    }

    #[test]
    fn nofile_limit_is_raised_to_hard() {
        let soft = raise_nofile_limit().unwrap();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: valid rlimit for getrlimit to fill.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(soft, lim.rlim_max);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }
}
