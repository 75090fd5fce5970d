//! The client of a lab: connection attempts to a target (a VIP) at a fixed rate from the
//! client namespace, each recorded with when it was due, when it started, when the service
//! answered and what it said, so that failover gaps are measured from timestamps.
//!
//! Each attempt runs on its own task, started on its tick whatever the earlier attempts are
//! doing, so an attempt that hangs (a SYN sent to a node that just lost the VIP) never delays
//! the next one and the resolution stays one tick during an outage. That lets the timeouts be
//! long enough for a loaded two-core machine ([`ProbeTimeouts::default`]): a slow connect is
//! still a success, while a SYN that was lost (the kernel retransmits it only after a second)
//! is still a failure.
//!
//! What a gap is: the service is shown up at the moment it answered an attempt (the TCP
//! connect completed), and shown down at the start of an attempt that failed. An attempt that
//! started during an outage and was answered right after it (its SYN waited for the address
//! to be resolved) counts at its answer, so it cannot hide the outage.
//!
//! Lifecycle: the prober runs on a lab background thread until its duration has passed, it is
//! stopped, or the lab shuts down (then attempts under way are abandoned); otherwise it waits
//! for the attempts under way before it ends.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;

use crate::lab::Lab;
use crate::wait::wait_for_every;

/// How long one TCP attempt may take.
#[derive(Debug, Clone, Copy)]
pub struct ProbeTimeouts {
    /// The connect. Below the kernel's first SYN retransmission (1 s): a lost SYN fails.
    pub connect: Duration,
    /// Reading the answer after the connect.
    pub read: Duration,
}

impl Default for ProbeTimeouts {
    /// 500 ms to connect, 1 s to read: a loaded machine meets both, a lost SYN misses the
    /// first.
    fn default() -> Self {
        ProbeTimeouts {
            connect: Duration::from_millis(500),
            read: Duration::from_secs(1),
        }
    }
}

/// A successful attempt's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// When the service answered (the TCP connect completed).
    pub at: Instant,
    /// What identifies who served it (a node name, or more).
    pub answer: String,
}

/// One attempt of the client.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When it was due (its tick).
    pub scheduled: Instant,
    /// When it started (later than `scheduled` only when the client itself was held up).
    pub started: Instant,
    /// When it ended; None while it is under way.
    pub done: Option<Instant>,
    /// Its outcome once done: who answered, or why it failed.
    pub outcome: Option<Result<Served, String>>,
}

impl Attempt {
    /// The answer, if it succeeded.
    pub fn answer(&self) -> Option<&str> {
        match &self.outcome {
            Some(Ok(served)) => Some(&served.answer),
            _ => None,
        }
    }

    /// When the service answered it, if it succeeded.
    pub fn served_at(&self) -> Option<Instant> {
        match &self.outcome {
            Some(Ok(served)) => Some(served.at),
            _ => None,
        }
    }

    /// Where it stands on the service's timeline: its answer for a success, its start for
    /// a failure (or while under way).
    pub fn at(&self) -> Instant {
        self.served_at().unwrap_or(self.started)
    }

    fn failed(&self) -> bool {
        matches!(self.outcome, Some(Err(_)))
    }
}

type Log = Arc<Mutex<Vec<Attempt>>>;
type Custom = Arc<dyn Fn(SocketAddr) -> Result<Served, String> + Send + Sync>;

#[derive(Clone)]
enum Kind {
    Tcp(ProbeTimeouts),
    /// A blocking attempt, run on tokio's blocking pool (threads of the client namespace).
    Custom(Custom),
}

/// A running (or finished) client; see the module documentation.
pub struct Prober {
    log: Log,
    stop: Arc<AtomicBool>,
    running: Arc<AtomicBool>,
    /// How long an attempt can take at most (for waiting until attempts are settled).
    longest: Duration,
}

impl Lab {
    /// Connect to `target` every `every` for `duration`, from the client namespace; an
    /// attempt succeeds when the target answers with some text (a lab name server's
    /// `node<i>`) and closes. Timeouts: [`ProbeTimeouts::default`].
    pub fn start_prober(&self, target: SocketAddr, every: Duration, duration: Duration) -> Prober {
        self.start_prober_timeouts(target, every, duration, ProbeTimeouts::default())
    }

    /// [`Lab::start_prober`] with other timeouts.
    pub fn start_prober_timeouts(
        &self,
        target: SocketAddr,
        every: Duration,
        duration: Duration,
        timeouts: ProbeTimeouts,
    ) -> Prober {
        let longest = timeouts.connect + timeouts.read;
        self.prober(target, every, duration, Kind::Tcp(timeouts), longest)
    }

    /// Like [`Lab::start_prober`] with the attempt supplied: `attempt(target)` blocks (e.g. a
    /// TLS request) and returns when and what the service answered, or why it failed. It must
    /// bound itself in time; `longest` is the most it can take.
    pub fn start_prober_with(
        &self,
        target: SocketAddr,
        every: Duration,
        duration: Duration,
        longest: Duration,
        attempt: impl Fn(SocketAddr) -> Result<Served, String> + Send + Sync + 'static,
    ) -> Prober {
        self.prober(
            target,
            every,
            duration,
            Kind::Custom(Arc::new(attempt)),
            longest,
        )
    }

    fn prober(
        &self,
        target: SocketAddr,
        every: Duration,
        duration: Duration,
        kind: Kind,
        longest: Duration,
    ) -> Prober {
        let log: Log = Arc::new(Mutex::new(Vec::with_capacity(16 * 1024)));
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::new(AtomicBool::new(true));
        let (out, own_stop, alive) = (log.clone(), stop.clone(), running.clone());
        self.background(&self.client.clone(), move |lab_stop| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("prober runtime");
            let stops = Stops {
                own: own_stop,
                lab: lab_stop,
            };
            runtime.block_on(run(target, every, duration, kind, out, stops));
            alive.store(false, Ordering::Relaxed);
        });
        Prober {
            log,
            stop,
            running,
            longest,
        }
    }
}

/// What ends a prober: its owner (the attempts under way still finish) or the lab shutting
/// down (they are abandoned).
struct Stops {
    own: Arc<AtomicBool>,
    lab: Arc<AtomicBool>,
}

async fn run(
    target: SocketAddr,
    every: Duration,
    duration: Duration,
    kind: Kind,
    log: Log,
    stops: Stops,
) {
    let stopped = || stops.own.load(Ordering::Relaxed) || stops.lab.load(Ordering::Relaxed);
    let mut tick = tokio::time::interval(every);
    // A held-up client catches up with the attempts it owes (their `scheduled` tells).
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let begin = Instant::now();
    let mut attempts = JoinSet::new();
    while !stopped() && begin.elapsed() < duration {
        let scheduled = tick.tick().await.into_std();
        let started = Instant::now();
        let index = {
            let mut log = log.lock().unwrap();
            log.push(Attempt {
                scheduled,
                started,
                done: None,
                outcome: None,
            });
            log.len() - 1
        };
        let (kind, log) = (kind.clone(), log.clone());
        attempts.spawn(async move {
            let outcome = match kind {
                Kind::Tcp(timeouts) => tcp_attempt(target, timeouts).await,
                Kind::Custom(attempt) => tokio::task::spawn_blocking(move || attempt(target))
                    .await
                    .unwrap_or_else(|e| Err(format!("attempt panicked: {e}"))),
            };
            let mut log = log.lock().unwrap();
            log[index].done = Some(Instant::now());
            log[index].outcome = Some(outcome);
        });
        while attempts.try_join_next().is_some() {}
    }
    if stops.lab.load(Ordering::Relaxed) {
        attempts.shutdown().await;
        let now = Instant::now();
        for attempt in log.lock().unwrap().iter_mut().filter(|a| a.done.is_none()) {
            attempt.done = Some(now);
            attempt.outcome = Some(Err("abandoned: the lab shut down".into()));
        }
    } else {
        while attempts.join_next().await.is_some() {}
    }
}

async fn tcp_attempt(target: SocketAddr, timeouts: ProbeTimeouts) -> Result<Served, String> {
    let connect = tokio::net::TcpStream::connect(target);
    let mut stream = tokio::time::timeout(timeouts.connect, connect)
        .await
        .map_err(|_| format!("connect: no answer within {:?}", timeouts.connect))?
        .map_err(|e| format!("connect: {e}"))?;
    let at = Instant::now();
    let mut text = String::new();
    tokio::time::timeout(timeouts.read, stream.read_to_string(&mut text))
        .await
        .map_err(|_| format!("read: nothing within {:?}", timeouts.read))?
        .map_err(|e| format!("read: {e}"))?;
    let answer = text.trim().to_string();
    if answer.is_empty() {
        return Err("closed without an answer".into());
    }
    Ok(Served { at, answer })
}

/// One blocking TCP attempt from the calling thread: the text `target` answers with before it
/// closes (a lab name server's `node<i>`), or None. Connect within `timeout`; the answer
/// within a second more.
pub fn probe_once(target: SocketAddr, timeout: Duration) -> Option<String> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect_timeout(&target, timeout).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

impl Prober {
    /// Every attempt so far, under way or done, in the order they started.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.log.lock().unwrap().clone()
    }

    /// Every attempt started so far, once each has ended (waits for those under way, at most
    /// as long as one attempt can take; panics if one outlives that).
    pub fn settled(&self) -> Vec<Attempt> {
        let now = Instant::now();
        let limit = self.longest + Duration::from_secs(2);
        let settled = wait_for_every(Duration::from_millis(5), limit, || {
            let log = self.log.lock().unwrap();
            let pending = log.iter().any(|a| a.started <= now && a.done.is_none());
            (!pending).then(|| log.iter().filter(|a| a.started <= now).cloned().collect())
        });
        settled.unwrap_or_else(|| panic!("probe attempts still under way after {limit:?}"))
    }

    /// Every settled attempt on the service's timeline ([`Attempt::at`]), in time order: when,
    /// and who answered (None: it failed).
    pub fn results(&self) -> Vec<(Instant, Option<String>)> {
        timeline(&self.settled())
            .into_iter()
            .map(|a| (a.at(), a.answer().map(str::to_owned)))
            .collect()
    }

    /// Whether the prober has ended (its duration passed, or it was stopped).
    pub fn finished(&self) -> bool {
        !self.running.load(Ordering::Relaxed)
    }

    /// Start no more attempts.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The longest client-visible gap after `from`: over each run of failed attempts, from
    /// the last answer before it to the first answer after it. A run still open at the end
    /// counts until the last failure seen (as much of it as is known). Settles first.
    pub fn longest_gap_after(&self, from: Instant) -> Duration {
        longest_gap(&timeline(&self.settled()), from)
    }

    /// When `node` first answered at or after `from` (does not wait for attempts under way).
    pub fn first_answer_from(&self, node: &str, from: Instant) -> Option<Instant> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|a| match &a.outcome {
                Some(Ok(s)) if s.at >= from && s.answer == node => Some(s.at),
                _ => None,
            })
            .min()
    }

    /// Failed attempts that started at or after `from`. Settles first.
    pub fn failures_after(&self, from: Instant) -> usize {
        self.settled()
            .iter()
            .filter(|a| a.started >= from && a.failed())
            .count()
    }

    /// Why the attempts that started in [`from`, `to`] failed, in order. Settles first.
    pub fn errors_between(&self, from: Instant, to: Instant) -> Vec<String> {
        self.settled()
            .into_iter()
            .filter(|a| a.started >= from && a.started <= to)
            .filter_map(|a| match a.outcome {
                Some(Err(why)) => Some(why),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The attempts in the order of [`Attempt::at`].
fn timeline(attempts: &[Attempt]) -> Vec<Attempt> {
    let mut sorted = attempts.to_vec();
    sorted.sort_by_key(Attempt::at);
    sorted
}

fn longest_gap(timeline: &[Attempt], from: Instant) -> Duration {
    let mut last_ok = timeline
        .iter()
        .filter(|a| a.at() < from)
        .filter_map(Attempt::served_at)
        .max();
    let mut longest = Duration::ZERO;
    // The start of the failure run under way, and its last failure.
    let mut run: Option<(Instant, Instant)> = None;
    for attempt in timeline.iter().filter(|a| a.at() >= from) {
        match attempt.served_at() {
            Some(at) => {
                if let Some((first, _)) = run.take() {
                    longest = longest.max(at.duration_since(last_ok.unwrap_or(first)));
                }
                last_ok = Some(at);
            }
            None if attempt.failed() => {
                let started = attempt.started;
                run = Some(run.map_or((started, started), |(first, _)| (first, started)));
            }
            None => {}
        }
    }
    if let Some((first, last)) = run {
        longest = longest.max(last.duration_since(last_ok.unwrap_or(first)));
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(t0: Instant, start_ms: u64, served_ms: Option<u64>) -> Attempt {
        let started = t0 + Duration::from_millis(start_ms);
        let outcome = match served_ms {
            Some(ms) => Ok(Served {
                at: t0 + Duration::from_millis(ms),
                answer: "node1".into(),
            }),
            None => Err("connect: no answer".into()),
        };
        Attempt {
            scheduled: started,
            started,
            done: Some(started),
            outcome: Some(outcome),
        }
    }

    #[test]
    fn a_gap_runs_from_the_last_answer_to_the_next_one() {
        let t0 = Instant::now();
        let log = [
            attempt(t0, 0, Some(1)),
            attempt(t0, 10, Some(11)),
            attempt(t0, 20, None),
            attempt(t0, 30, None),
            attempt(t0, 40, Some(41)),
            attempt(t0, 50, Some(51)),
        ];
        assert_eq!(longest_gap(&timeline(&log), t0), Duration::from_millis(30));
        // No failure, no gap: a held-up client is not an outage.
        assert_eq!(longest_gap(&timeline(&log[..2]), t0), Duration::ZERO);
    }

    #[test]
    fn an_attempt_answered_after_the_outage_counts_at_its_answer() {
        let t0 = Instant::now();
        // Started at 20 during the outage, its SYN waited and was answered at 45.
        let log = [
            attempt(t0, 0, Some(1)),
            attempt(t0, 20, Some(45)),
            attempt(t0, 30, None),
            attempt(t0, 50, Some(51)),
        ];
        assert_eq!(longest_gap(&timeline(&log), t0), Duration::from_millis(44));
    }

    #[test]
    fn an_open_outage_counts_as_far_as_it_is_known() {
        let t0 = Instant::now();
        let log = [
            attempt(t0, 0, Some(1)),
            attempt(t0, 10, None),
            attempt(t0, 200, None),
        ];
        assert_eq!(longest_gap(&timeline(&log), t0), Duration::from_millis(199));
    }
}
