//! The one way the tests wait for something to happen: ask `f` again and again, a fixed step
//! apart, until it returns `Some` or the time is up. Every wait is bounded. The blocking form
//! is for tests driving real processes; the async form sleeps on tokio's clock, so it also
//! works (exactly) under a paused clock.
//!
//! Waiting for the event is the rule; a plain sleep in a test is only right where time
//! passing is the point (a timeout that must run out, a state that must hold for a while),
//! and says so in a comment.

use std::time::{Duration, Instant};

/// How often [`wait_for`] asks: often enough for millisecond measurements of processes that
/// are polled through `ip` or HTTP, rarely enough not to load a two-core machine.
pub const STEP: Duration = Duration::from_millis(20);

/// Ask `f` every [`STEP`] until it returns `Some` (returned) or `timeout` has passed (None).
/// `f` is asked at least once, and once more at the deadline.
pub fn wait_for<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    wait_for_every(STEP, timeout, f)
}

/// [`wait_for`] with another step (e.g. 2 ms for kernel events read without a subprocess).
pub fn wait_for_every<T>(
    step: Duration,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(step.min(deadline - now));
    }
}

/// [`wait_for_every`] in async code, on tokio's clock.
pub async fn wait_for_async<T>(
    step: Duration,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::time::sleep(step.min(deadline - now)).await;
    }
}

/// Watch for `duration` (time passing is the point: a state that must hold), asking `f` every
/// `every`; every answer `f` gave, with when it gave it (since the start). `f` returns Some
/// for what breaks the expectation, so an empty result means it held throughout.
pub fn watch<T>(
    duration: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Vec<(Duration, T)> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < duration {
        if let Some(value) = f() {
            seen.push((start.elapsed(), value));
        }
        std::thread::sleep(every);
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_for_returns_the_first_answer_and_gives_up_at_the_deadline() {
        let mut asked = 0;
        let got = wait_for_every(Duration::from_millis(1), Duration::from_secs(5), || {
            asked += 1;
            (asked == 3).then_some(asked)
        });
        assert_eq!(got, Some(3));
        let start = Instant::now();
        let mut asked = 0;
        let got: Option<()> =
            wait_for_every(Duration::from_millis(5), Duration::from_millis(50), || {
                asked += 1;
                None
            });
        assert_eq!(got, None);
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert!(
            asked >= 2,
            "asked at the start and at the deadline: {asked}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_async_wait_runs_on_tokios_clock() {
        let start = tokio::time::Instant::now();
        let got: Option<()> =
            wait_for_async(Duration::from_secs(1), Duration::from_secs(60), || None).await;
        assert_eq!(got, None);
        // Paused: exactly the timeout passed, in no real time at all.
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }

    #[test]
    fn watch_reports_what_broke_the_expectation_and_when() {
        let mut n = 0;
        let seen = watch(Duration::from_millis(30), Duration::from_millis(1), || {
            n += 1;
            (n == 2).then_some("second look")
        });
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].1, "second look");
    }
}
