//! Small helpers shared by the socket modules: socket options that socket2 does not wrap, and
//! the Linux control-message (cmsg) layout as pure functions over bytes.
//!
//! Control messages are built and walked by hand instead of with `CMSG_*` pointer arithmetic so
//! that the code is safe and unit-testable; the layout is Linux's `struct cmsghdr { size_t
//! cmsg_len; int cmsg_level; int cmsg_type; }` with header and data each aligned to `size_t`
//! (`CMSG_ALIGN`). A test checks it against libc's `CMSG_*` functions.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `CMSG_ALIGN`: the kernel aligns control messages to `sizeof(long)`.
const CMSG_ALIGN_TO: usize = mem::size_of::<usize>();
/// `sizeof(struct cmsghdr)`.
const CMSG_HEADER_LEN: usize = mem::size_of::<libc::cmsghdr>();

const fn cmsg_align(len: usize) -> usize {
    (len + CMSG_ALIGN_TO - 1) & !(CMSG_ALIGN_TO - 1)
}

/// `CMSG_LEN`: header plus `data_len` bytes, without trailing padding.
pub(crate) const fn cmsg_len(data_len: usize) -> usize {
    cmsg_align(CMSG_HEADER_LEN) + data_len
}

/// `CMSG_SPACE`: what one control message with `data_len` bytes occupies in the buffer.
pub(crate) const fn cmsg_space(data_len: usize) -> usize {
    cmsg_align(CMSG_HEADER_LEN) + cmsg_align(data_len)
}

/// Appends one control message to `buf`.
pub(crate) fn push_cmsg(buf: &mut Vec<u8>, level: i32, kind: i32, data: &[u8]) {
    let start = buf.len();
    buf.extend_from_slice(&cmsg_len(data.len()).to_ne_bytes());
    buf.extend_from_slice(&level.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.resize(start + cmsg_align(CMSG_HEADER_LEN), 0);
    buf.extend_from_slice(data);
    buf.resize(start + cmsg_space(data.len()), 0);
}

/// The control messages in `buf` (the first `msg_controllen` bytes after `recvmsg`), as
/// `(level, type, data)`. A malformed tail ends the walk.
pub(crate) fn control_messages(buf: &[u8]) -> ControlMessages<'_> {
    ControlMessages { rest: buf }
}

pub(crate) struct ControlMessages<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ControlMessages<'a> {
    type Item = (i32, i32, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let len = usize::from_ne_bytes(*self.rest.first_chunk::<CMSG_ALIGN_TO>()?);
        let level = i32::from_ne_bytes(*self.rest.get(CMSG_ALIGN_TO..)?.first_chunk::<4>()?);
        let kind = i32::from_ne_bytes(*self.rest.get(CMSG_ALIGN_TO + 4..)?.first_chunk::<4>()?);
        let data_start = cmsg_align(CMSG_HEADER_LEN);
        if len < data_start {
            self.rest = &[];
            return None;
        }
        let data = self.rest.get(data_start..len)?;
        self.rest = self.rest.get(cmsg_align(len)..).unwrap_or_default();
        Some((level, kind, data))
    }
}

/// `setsockopt` with a plain-old-data value.
pub(crate) fn set_option<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live, initialised `T` of exactly the length passed; the kernel
    // only reads it. The descriptor is borrowed, so it is open for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `getsockopt(SO_MEMINFO)`: the socket's memory counters, indexed by `SK_MEMINFO_*`.
pub(crate) fn socket_meminfo(fd: BorrowedFd<'_>) -> io::Result<[u32; 9]> {
    let mut info = [0u32; 9];
    let mut len = mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is a live array of `len` bytes the kernel writes into (at most `len`, and
    // it sets `len` to what it wrote); the descriptor is borrowed, so open for the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(info)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setsockopt` with an `int`.
pub(crate) fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    set_option(fd, level, name, &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmsg_layout_matches_libc() {
        for data_len in [0usize, 1, 4, 20, 21, 64] {
            let n = data_len as libc::c_uint;
            // SAFETY: CMSG_LEN and CMSG_SPACE are arithmetic on their argument.
            let (len, space) = unsafe { (libc::CMSG_LEN(n), libc::CMSG_SPACE(n)) };
            assert_eq!(cmsg_len(data_len), len as usize, "CMSG_LEN({data_len})");
            assert_eq!(
                cmsg_space(data_len),
                space as usize,
                "CMSG_SPACE({data_len})"
            );
        }
    }

    #[test]
    fn built_control_messages_walk_with_libc_macros() {
        let mut buf = Vec::new();
        push_cmsg(&mut buf, 41, 50, &[7u8; 20]);
        push_cmsg(&mut buf, 41, 52, &255i32.to_ne_bytes());
        assert_eq!(buf.len(), cmsg_space(20) + cmsg_space(4));

        // Walk the same bytes with libc's macros over an aligned copy.
        let mut aligned = vec![0u64; buf.len().div_ceil(8)];
        // SAFETY: `aligned` has at least `buf.len()` bytes; u64 has no invalid bit patterns.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr(), aligned.as_mut_ptr().cast(), buf.len())
        };
        // SAFETY: all-zero is a valid msghdr.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_control = aligned.as_mut_ptr().cast();
        msg.msg_controllen = buf.len() as _;
        let mut seen = Vec::new();
        // SAFETY: msg describes a valid, aligned control buffer of msg_controllen bytes.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !cmsg.is_null() {
            // SAFETY: CMSG_FIRSTHDR/NXTHDR returned a header inside the buffer.
            let (level, kind, len) =
                unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
            // cmsg_len is size_t on glibc but socklen_t on musl.
            #[allow(clippy::unnecessary_cast)]
            seen.push((level, kind, len as usize));
            // SAFETY: as above.
            cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
        }
        assert_eq!(seen, vec![(41, 50, cmsg_len(20)), (41, 52, cmsg_len(4))]);

        let ours: Vec<_> = control_messages(&buf).collect();
        assert_eq!(ours.len(), 2);
        assert_eq!(ours[0], (41, 50, &[7u8; 20][..]));
        assert_eq!(ours[1], (41, 52, &255i32.to_ne_bytes()[..]));
    }

    #[test]
    fn malformed_control_messages_end_the_walk() {
        assert_eq!(control_messages(&[]).count(), 0);
        assert_eq!(control_messages(&[1, 2, 3]).count(), 0);
        let mut buf = Vec::new();
        push_cmsg(&mut buf, 41, 52, &[1, 2, 3, 4]);
        // A length that points past the end.
        let mut long = buf.clone();
        long[..CMSG_ALIGN_TO].copy_from_slice(&1000usize.to_ne_bytes());
        assert_eq!(control_messages(&long).count(), 0);
        // A length shorter than the header.
        let mut short = buf.clone();
        short[..CMSG_ALIGN_TO].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(control_messages(&short).count(), 0);
        // A truncated buffer.
        assert_eq!(control_messages(&buf[..buf.len() - 5]).count(), 0);
    }
}
