//! Open file descriptors passed between processes over a Unix stream socket (`SCM_RIGHTS`,
//! unix(7)): how a binary upgrade hands its listening sockets to the process that replaces
//! it, so the kernel's accept queues (and the connections waiting in them) never close.
//!
//! The descriptors ride on the first byte of the bytes sent with them; the receiver gets
//! them with whichever read takes that byte, so a message with descriptors must be read
//! with [`recv_with_fds`] from its start.

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{
    getsockopt, recvmsg, sendmsg, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr,
};

/// The most descriptors one message carries (the kernel allows 253, `SCM_MAX_FD`).
pub const MAX_FDS: usize = 64;

/// Send `bytes` with `fds` attached (at most [`MAX_FDS`]); blocks until all is written.
pub fn send_with_fds(socket: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} descriptors in one message, at most {MAX_FDS}",
                fds.len()
            ),
        ));
    }
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "descriptors need at least one byte to ride on",
        ));
    }
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let control = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &control };
    let sent = loop {
        match sendmsg::<UnixAddr>(
            socket.as_raw_fd(),
            &[IoSlice::new(bytes)],
            cmsgs,
            MsgFlags::empty(),
            None,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other.map_err(io::Error::from)?,
        }
    };
    // The descriptors went with the first byte; the rest is plain bytes.
    let mut rest = socket;
    rest.write_all(&bytes[sent..])
}

/// Read into `buf` (at least one byte, blocking), with the descriptors attached to what was
/// read. They are opened close-on-exec.
pub fn recv_with_fds(socket: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (read, raw, truncated) = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg::<UnixAddr>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(error) => return Err(error.into()),
            Ok(message) => {
                let mut raw = Vec::new();
                for cmsg in message.cmsgs().map_err(io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg {
                        raw.extend(fds);
                    }
                }
                let truncated = message.flags.contains(MsgFlags::MSG_CTRUNC);
                break (message.bytes, raw, truncated);
            }
        }
    };
    let fds = raw
        .into_iter()
        // SAFETY: SCM_RIGHTS installed each of these descriptors in this process for this
        // call; nothing else knows them, so each is owned exactly once from here on.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    if truncated {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than {MAX_FDS} descriptors in one message; the rest were closed"),
        ));
    }
    Ok((read, fds))
}

/// The process ID of the peer of a connected Unix socket (`SO_PEERCRED`), as the kernel
/// recorded it at connect: who is on the other end, whatever it claims.
pub fn peer_pid(socket: &UnixStream) -> io::Result<u32> {
    let credentials = getsockopt(socket, sockopt::PeerCredentials).map_err(io::Error::from)?;
    u32::try_from(credentials.pid())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "peer has no process ID"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failed test

    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_listening_socket_crosses_and_still_accepts() {
        let (left, right) = UnixStream::pair().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        send_with_fds(&left, b"one listener", &[listener.as_fd()]).unwrap();
        drop(listener);
        let mut buf = [0u8; 64];
        let (read, fds) = recv_with_fds(&right, &mut buf).unwrap();
        assert_eq!(&buf[..read], b"one listener");
        assert_eq!(fds.len(), 1);
        let received = std::net::TcpListener::from(fds.into_iter().next().unwrap());
        assert_eq!(received.local_addr().unwrap(), addr);
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        let (mut server, _) = received.accept().unwrap();
        client.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        server.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
    }

    #[test]
    fn plain_bytes_come_without_descriptors_and_the_peer_is_this_process() {
        let (left, right) = UnixStream::pair().unwrap();
        send_with_fds(&left, b"no fds", &[]).unwrap();
        let mut buf = [0u8; 16];
        let (read, fds) = recv_with_fds(&right, &mut buf).unwrap();
        assert_eq!((&buf[..read], fds.len()), (&b"no fds"[..], 0));
        assert_eq!(peer_pid(&right).unwrap(), std::process::id());
    }

    #[test]
    fn too_many_descriptors_or_no_bytes_are_refused() {
        let (left, _right) = UnixStream::pair().unwrap();
        let fd = left.as_fd();
        let many = vec![fd; MAX_FDS + 1];
        assert!(send_with_fds(&left, b"x", &many).is_err());
        assert!(send_with_fds(&left, b"", &[fd]).is_err());
    }
}
