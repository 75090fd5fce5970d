//! Packets as an independent judge: tcpdump capturing in a lab namespace into a pcap file,
//! the frames read back from that file, and tshark (Wireshark's dissectors) decoding them,
//! every run bounded in time. Tests that use it need [`Need::Tcpdump`] and [`Need::Tshark`].
//!
//! Lifecycle: [`Lab::start_capture`] returns once tcpdump is listening; [`Capture::finish`]
//! waits until the frames the test expects are in the file (not a fixed sleep), stops tcpdump
//! with SIGINT (which flushes the file) and hands back the file. tcpdump is a lab process, so
//! the lab kills it if the test ends first.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::guard::Need;
use crate::lab::Lab;
use crate::tools::run_bounded;
use crate::wait::{wait_for, wait_for_every};

static CAPTURES: AtomicU32 = AtomicU32::new(0);

/// How long one tshark run may take.
pub const TSHARK_LIMIT: Duration = Duration::from_secs(60);

/// A tcpdump running in a lab namespace; see the module documentation.
pub struct Capture<'lab> {
    lab: &'lab Lab,
    pid: u32,
    /// The pcap file it writes.
    pub file: PathBuf,
    log: String,
}

impl Lab {
    /// Capture on `interface` in namespace `ns` what matches the BPF `filter`.
    pub fn start_capture(&self, ns: &str, interface: &str, filter: &str) -> Capture<'_> {
        let n = CAPTURES.fetch_add(1, Ordering::Relaxed);
        let file = self.dir.join(format!("capture-{n}.pcap"));
        let log = format!("tcpdump-{n}.log");
        let file_arg = file.display().to_string();
        let pid = self.spawn(
            ns,
            &Need::Tcpdump.path().display().to_string(),
            &[
                "-Z",
                "root",
                "-U",
                "--immediate-mode",
                "-n",
                "-i",
                interface,
                "-w",
                &file_arg,
                filter,
            ],
            &log,
            &[],
        );
        // tcpdump says "listening on" once the capture is armed.
        let armed = wait_for(Duration::from_secs(10), || {
            self.log_of(&log).contains("listening on").then_some(())
        });
        assert!(
            armed.is_some(),
            "tcpdump did not start:\n{}",
            self.log_of(&log)
        );
        Capture {
            lab: self,
            pid,
            file,
            log,
        }
    }
}

impl Capture<'_> {
    /// The frames captured so far (complete records of the file).
    pub fn frames(&self) -> Vec<Vec<u8>> {
        pcap_frames(&std::fs::read(&self.file).unwrap_or_default())
    }

    /// Wait (up to 5 s) until `enough(frames)` holds, then stop tcpdump; the pcap file. When
    /// the frames never come, it stops anyway: the test's own checks then say what is missing.
    pub fn finish(self, enough: impl Fn(&[Vec<u8>]) -> bool) -> PathBuf {
        let _ = wait_for_every(Duration::from_millis(5), Duration::from_secs(5), || {
            enough(&self.frames()).then_some(())
        });
        self.lab.signal(self.pid, "INT");
        let exit = self.lab.wait(self.pid, Duration::from_secs(5));
        assert!(exit.is_some(), "tcpdump stops on SIGINT");
        self.file
    }

    /// [`Capture::finish`], then tshark's verbose decode of the frames matching the display
    /// filter `display` (followed by one line per captured frame and tcpdump's log, for
    /// failure messages) and the `fields` of each of those frames.
    pub fn finish_and_decode(
        self,
        enough: impl Fn(&[Vec<u8>]) -> bool,
        display: &str,
        fields: &[&str],
    ) -> (String, Vec<Vec<String>>) {
        let (lab, log) = (self.lab, self.log.clone());
        let file = self.finish(enough);
        let mut verbose = tshark(&["-n", "-r", &file.display().to_string(), "-V", "-Y", display]);
        verbose.push_str("\n--- all captured packets ---\n");
        verbose.push_str(&tshark(&["-n", "-r", &file.display().to_string()]));
        verbose.push_str("--- tcpdump ---\n");
        verbose.push_str(&lab.log_of(&log));
        (verbose, tshark_fields(&file, display, fields))
    }
}

/// Run tshark with `args` (bounded by [`TSHARK_LIMIT`]); its standard output. Panics when it
/// fails.
pub fn tshark(args: &[&str]) -> String {
    let out = run_bounded(&Need::Tshark.path(), args, TSHARK_LIMIT);
    assert!(
        out.status.success(),
        "tshark {} failed: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `fields` of every frame of `file` that matches the display filter `display`.
pub fn tshark_fields(file: &Path, display: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let file = file.display().to_string();
    let mut args = vec![
        "-n",
        "-r",
        &file,
        "-Y",
        display,
        "-T",
        "fields",
        "-E",
        "separator=|",
    ];
    for field in fields {
        args.extend(["-e", field]);
    }
    tshark(&args)
        .lines()
        .map(|line| line.split('|').map(str::to_owned).collect())
        .collect()
}

/// The frames of a pcap file (libpcap format, either byte order); a record cut short at the
/// end (still being written) is left out.
pub fn pcap_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let Some(magic) = bytes.get(..4) else {
        return Vec::new();
    };
    let little = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Vec::new(),
    };
    let word = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        let v = if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        };
        usize::try_from(v).ok()
    };
    let mut frames = Vec::new();
    // A 24-byte file header, then records: 16 bytes (seconds, fraction, captured length,
    // original length) and the captured bytes.
    let mut at = 24;
    while let Some(len) = word(at + 8) {
        let Some(frame) = bytes.get(at + 16..at + 16 + len) else {
            break;
        };
        frames.push(frame.to_vec());
        at += 16 + len;
    }
    frames
}

/// The EtherType of an Ethernet frame.
pub fn ethertype(frame: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?))
}

/// The IP protocol (IPv4) or next header (IPv6, without extension headers) of a frame.
pub fn ip_protocol(frame: &[u8]) -> Option<u8> {
    match ethertype(frame)? {
        0x0800 => frame.get(14 + 9).copied(),
        0x86dd => frame.get(14 + 6).copied(),
        _ => None,
    }
}

/// The ICMPv6 type of a frame, if it is ICMPv6 right after the IPv6 header.
pub fn icmpv6_type(frame: &[u8]) -> Option<u8> {
    (ethertype(frame)? == 0x86dd && ip_protocol(frame)? == 58)
        .then(|| frame.get(14 + 40).copied())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_back_and_a_cut_record_is_left_out() {
        let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1];
        file.extend_from_slice(&[0; 20]);
        for frame in [&[1u8, 2, 3][..], &[4, 5]] {
            file.extend_from_slice(&[0; 8]);
            file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            file.extend_from_slice(frame);
        }
        assert_eq!(pcap_frames(&file), vec![vec![1, 2, 3], vec![4, 5]]);
        assert_eq!(pcap_frames(&file[..file.len() - 1]), vec![vec![1, 2, 3]]);
        assert!(pcap_frames(b"not a pcap file at all....").is_empty());
    }

    #[test]
    fn protocols_are_read_from_the_headers() {
        let mut v6 = vec![0u8; 14 + 40 + 4];
        v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        v6[14 + 6] = 58;
        v6[14 + 40] = 136;
        assert_eq!(icmpv6_type(&v6), Some(136));
        let mut v4 = vec![0u8; 14 + 20];
        v4[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        v4[14 + 9] = 112;
        assert_eq!((ip_protocol(&v4), icmpv6_type(&v4)), (Some(112), None));
    }
}
