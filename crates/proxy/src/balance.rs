//! Backend selection: which backend gets the next connection. Pure logic, no I/O and no
//! clock: the caller describes every backend as a [`Candidate`] (available? full? effective
//! weight, active connections) and asks for a [`Pick`]; a retry asks again with the failed
//! backends in `tried`, so redispatch is just the next pick.
//!
//! Rules shared by every algorithm:
//! - A backend is *available* when it is up, its administrative state is `ready` and its
//!   weight is above 0 ([`crate::backend::Backend::is_available`]). `drain`, `maint` and
//!   weight 0 take no new connections; existing ones are untouched (they are not the
//!   balancer's business).
//! - Backup backends are considered only while no primary backend is available. A primary
//!   that is available but full makes clients wait (queue) rather than spill to backups, as
//!   HAProxy does.
//! - A backend at its connection limit is skipped; if every available backend of the tier is
//!   full the answer is [`Pick::AllBusy`] and the caller queues the client.
//! - Backends in `tried` are skipped unless every available, non-full backend has been tried,
//!   in which case they are tried again (a retry on a single backend retries that backend).

use std::net::IpAddr;

use havip_config::service::Algorithm;

/// One backend as the balancer sees it at the moment of a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Up, `ready` and weight above 0.
    pub available: bool,
    /// At its `max_conns`.
    pub full: bool,
    /// A backup backend: picked only while no primary backend is available.
    pub backup: bool,
    /// Weight in effect now (after slow start); only meaningful when available.
    pub weight: u32,
    /// Connections assigned to the backend now.
    pub active: u32,
}

/// The answer to [`Balancer::pick`]: a backend, or why there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Connect to the backend at this index.
    Backend(usize),
    /// Some backends are available but all are at their connection limit: queue.
    AllBusy,
    /// No backend is available at all.
    NoneAvailable,
}

/// A small set of backend indices, used for the backends a connection already tried.
#[derive(Debug, Clone, Default)]
pub struct Tried {
    // Retries are few, so a linear list beats a bitmap that would need the backend count.
    indices: Vec<usize>,
}

impl Tried {
    /// Nothing tried yet: the state of a connection's first pick.
    pub fn new() -> Self {
        Tried::default()
    }
    /// Records that the backend at `index` was tried; recording it twice changes nothing.
    pub fn insert(&mut self, index: usize) {
        if !self.contains(index) {
            self.indices.push(index);
        }
    }
    /// Whether the backend at `index` was tried already.
    pub fn contains(&self, index: usize) -> bool {
        self.indices.contains(&index)
    }
    /// How many distinct backends were tried: the connection's attempts so far.
    pub fn len(&self) -> usize {
        self.indices.len()
    }
    /// Whether no backend was tried yet.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Selection state of one service. Not thread-safe by itself: the service keeps it behind a
/// mutex and updates active counts under the same lock, so `max_conns` is exact.
#[derive(Debug)]
pub struct Balancer {
    algorithm: Algorithm,
    /// Smooth weighted round robin: each backend's current weight (nginx's `current_weight`).
    current: Vec<i64>,
    /// Rotates the starting point among equally loaded backends (least-conn ties).
    next_start: usize,
    ring: HashRing,
    rng: fastrand::Rng,
}

impl Balancer {
    /// `keys` names each backend (stable across restarts and reloads, so every havip node
    /// hashes a client to the same backend) with its configured weight.
    pub fn new(algorithm: Algorithm, keys: &[(&str, u32)]) -> Self {
        Self::with_seed(algorithm, keys, fastrand::u64(..))
    }

    /// Like [`Balancer::new`] with a fixed seed for the random choices (tests).
    pub fn with_seed(algorithm: Algorithm, keys: &[(&str, u32)], seed: u64) -> Self {
        let ring = if algorithm == Algorithm::SourceHash {
            HashRing::new(keys)
        } else {
            HashRing::default()
        };
        Balancer {
            algorithm,
            current: vec![0; keys.len()],
            next_start: 0,
            ring,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The configured balancing algorithm, for status and metrics.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Choose a backend for a new connection from `client`.
    pub fn pick(&mut self, candidates: &[Candidate], client: IpAddr, tried: &Tried) -> Pick {
        debug_assert_eq!(candidates.len(), self.current.len());
        let any_primary = candidates.iter().any(|c| c.available && !c.backup);
        let in_tier = |c: &Candidate| c.available && c.backup != any_primary;
        if !candidates.iter().any(in_tier) {
            return Pick::NoneAvailable;
        }
        let open = |i: usize, c: &Candidate| in_tier(c) && !c.full && !tried.contains(i);
        let untried_exists = candidates.iter().enumerate().any(|(i, c)| open(i, c));
        let eligible = |index: usize| {
            let candidate = &candidates[index];
            if untried_exists {
                open(index, candidate)
            } else {
                in_tier(candidate) && !candidate.full
            }
        };
        let chosen = match self.algorithm {
            Algorithm::RoundRobin => self.smooth_round_robin(candidates, eligible),
            Algorithm::LeastConn => self.least_conn(candidates, eligible),
            Algorithm::SourceHash => self.ring.lookup(hash_ip(client), eligible),
            Algorithm::RandomTwo => self.random_two(candidates, eligible),
        };
        match chosen {
            Some(index) => Pick::Backend(index),
            None => Pick::AllBusy,
        }
    }

    /// nginx's smooth weighted round robin: every pick adds each eligible backend's weight to
    /// its current weight, takes the largest, and subtracts the total from the winner. Over
    /// any cycle of `sum(weights)` picks each backend gets exactly its weight, interleaved.
    fn smooth_round_robin(
        &mut self,
        candidates: &[Candidate],
        eligible: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (index, candidate) in candidates.iter().enumerate() {
            if !eligible(index) {
                continue;
            }
            let weight = i64::from(candidate.weight.max(1));
            self.current[index] += weight;
            total += weight;
            if best.is_none_or(|leader| self.current[index] > self.current[leader]) {
                best = Some(index);
            }
        }
        let winner = best?;
        self.current[winner] -= total;
        Some(winner)
    }

    /// Fewest active connections per unit of weight; ties rotate so equal backends share.
    fn least_conn(
        &mut self,
        candidates: &[Candidate],
        eligible: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let count = candidates.len();
        let mut best: Option<usize> = None;
        for offset in 0..count {
            let index = (self.next_start + offset) % count;
            if !eligible(index) {
                continue;
            }
            if best.is_none_or(|leader| less_loaded(&candidates[index], &candidates[leader])) {
                best = Some(index);
            }
        }
        let winner = best?;
        self.next_start = (winner + 1) % count;
        Some(winner)
    }

    /// Power of two choices: two backends drawn at random in proportion to weight, the less
    /// loaded one wins. Nearly as even as least-conn with far less herding after a restart.
    fn random_two(
        &mut self,
        candidates: &[Candidate],
        eligible: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let total: u64 = (0..candidates.len())
            .filter(|&i| eligible(i))
            .map(|i| u64::from(candidates[i].weight.max(1)))
            .sum();
        if total == 0 {
            return None;
        }
        let draw = |rng: &mut fastrand::Rng| {
            let mut point = rng.u64(0..total);
            for (index, candidate) in candidates.iter().enumerate() {
                if !eligible(index) {
                    continue;
                }
                let weight = u64::from(candidate.weight.max(1));
                if point < weight {
                    return index;
                }
                point -= weight;
            }
            unreachable!("point is below the total weight of eligible candidates")
        };
        let first = draw(&mut self.rng);
        let second = draw(&mut self.rng);
        if less_loaded(&candidates[second], &candidates[first]) {
            Some(second)
        } else {
            Some(first)
        }
    }
}

/// `a.active / a.weight < b.active / b.weight`, without division.
fn less_loaded(a: &Candidate, b: &Candidate) -> bool {
    let (weight_a, weight_b) = (u64::from(a.weight.max(1)), u64::from(b.weight.max(1)));
    u64::from(a.active) * weight_b < u64::from(b.active) * weight_a
}

/// Ketama-style consistent hash ring. Each backend owns points in proportion to its configured
/// weight, placed by hashing its name; a client hashes to a point and takes the first backend
/// clockwise that is eligible. A backend that leaves (down, drained or removed from the
/// config) therefore only moves its own clients, about 1/N of them, to the next points.
#[derive(Debug, Default)]
struct HashRing {
    /// (point, backend index), sorted by point.
    points: Vec<(u64, usize)>,
}

/// Points per backend of average weight: ~160 keeps each backend's share within a few percent
/// of its weight (ketama's choice).
const POINTS_PER_BACKEND: u64 = 160;

impl HashRing {
    fn new(keys: &[(&str, u32)]) -> Self {
        let backends = keys.len() as u64;
        let total_weight: u64 = keys.iter().map(|(_, w)| u64::from((*w).max(1))).sum();
        let mut points = Vec::new();
        for (index, (name, weight)) in keys.iter().enumerate() {
            // A drained backend keeps its points (weight counts as 1) so that undraining it
            // gives back the same clients.
            let weight = u64::from((*weight).max(1));
            let count = (POINTS_PER_BACKEND * backends * weight / total_weight.max(1)).max(1);
            for replica in 0..count {
                let mut key = Vec::with_capacity(name.len() + 9);
                key.extend_from_slice(name.as_bytes());
                key.push(b'#');
                key.extend_from_slice(&replica.to_be_bytes());
                points.push((stable_hash(&key), index));
            }
        }
        points.sort_unstable();
        HashRing { points }
    }

    fn lookup(&self, hash: u64, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self.points.partition_point(|&(p, _)| p < hash);
        let len = self.points.len();
        (0..len)
            .map(|k| self.points[(start + k) % len].1)
            .find(|&i| eligible(i))
    }
}

/// The client key of the source hash: the address bytes, IPv4-mapped IPv6 folded to IPv4 so a
/// dual-stack listener hashes a client the same either way.
pub fn hash_ip(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => stable_hash(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => stable_hash(&v4.octets()),
            None => stable_hash(&v6.octets()),
        },
    }
}

/// FNV-1a followed by a 64-bit finalizer (from MurmurHash3). Fixed forever: two havip nodes,
/// or one before and after an upgrade, must map a client to the same backend, which rules out
/// std's `DefaultHasher` (its algorithm may change between Rust releases).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    hash
}

/// Weight in effect during slow start: grows linearly from ~0 to `weight` over `ramp`,
/// never below 1 so a freshly up backend still gets a trickle.
pub fn slow_start_weight(
    weight: u32,
    up_for: std::time::Duration,
    ramp: std::time::Duration,
) -> u32 {
    if weight == 0 || ramp.is_zero() || up_for >= ramp {
        return weight;
    }
    let scaled = u128::from(weight) * up_for.as_millis() / ramp.as_millis().max(1);
    (scaled as u32).clamp(1, weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn up(weight: u32) -> Candidate {
        Candidate {
            available: true,
            full: false,
            backup: false,
            weight,
            active: 0,
        }
    }

    fn keys(n: usize) -> Vec<(String, u32)> {
        (0..n).map(|i| (format!("backend-{i}"), 100)).collect()
    }

    fn balancer_for(algorithm: Algorithm, candidates: &[Candidate]) -> Balancer {
        let names: Vec<String> = (0..candidates.len()).map(|i| format!("b{i}")).collect();
        let keys: Vec<(&str, u32)> = names
            .iter()
            .zip(candidates)
            .map(|(n, c)| (n.as_str(), c.weight))
            .collect();
        Balancer::with_seed(algorithm, &keys, 7)
    }

    fn client(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    fn picks(balancer: &mut Balancer, candidates: &[Candidate], count: usize) -> Vec<usize> {
        (0..count)
            .map(
                |k| match balancer.pick(candidates, client(k as u32), &Tried::new()) {
                    Pick::Backend(i) => i,
                    other => panic!("expected a backend, got {other:?}"),
                },
            )
            .collect()
    }

    #[test]
    fn smooth_round_robin_interleaves_5_1_1_like_nginx() {
        // nginx's documented example: weights 5, 1, 1 give a a balancer a c a a.
        let candidates = [up(5), up(1), up(1)];
        let mut balancer = balancer_for(Algorithm::RoundRobin, &candidates);
        assert_eq!(
            picks(&mut balancer, &candidates, 7),
            vec![0, 0, 1, 0, 2, 0, 0]
        );
        // The state is back at zero after a full cycle, so the next cycle repeats it.
        assert_eq!(
            picks(&mut balancer, &candidates, 7),
            vec![0, 0, 1, 0, 2, 0, 0]
        );
    }

    #[test]
    fn equal_weights_rotate() {
        let candidates = [up(100), up(100), up(100)];
        let mut balancer = balancer_for(Algorithm::RoundRobin, &candidates);
        assert_eq!(picks(&mut balancer, &candidates, 6), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn weight_zero_drains_and_down_is_skipped() {
        let mut candidates = [up(100), up(100), up(100)];
        candidates[1].available = false; // weight 0 or down: the service marks both unavailable
        for algo in [
            Algorithm::RoundRobin,
            Algorithm::LeastConn,
            Algorithm::SourceHash,
            Algorithm::RandomTwo,
        ] {
            let mut balancer = balancer_for(algo, &candidates);
            let got = picks(&mut balancer, &candidates, 300);
            assert!(!got.contains(&1), "{algo:?} picked an unavailable backend");
            assert!(got.contains(&0) && got.contains(&2), "{algo:?}");
        }
    }

    #[test]
    fn backups_only_when_no_primary_available() {
        let mut candidates = [up(100), up(100), up(100)];
        candidates[2].backup = true;
        let mut balancer = balancer_for(Algorithm::RoundRobin, &candidates);
        assert!(!picks(&mut balancer, &candidates, 10).contains(&2));
        // A full primary queues the client instead of spilling to the backup.
        candidates[0].full = true;
        candidates[1].full = true;
        assert_eq!(
            balancer.pick(&candidates, client(1), &Tried::new()),
            Pick::AllBusy
        );
        candidates[0].available = false;
        candidates[1].available = false;
        assert_eq!(picks(&mut balancer, &candidates, 3), vec![2, 2, 2]);
        candidates[2].available = false;
        assert_eq!(
            balancer.pick(&candidates, client(1), &Tried::new()),
            Pick::NoneAvailable
        );
    }

    #[test]
    fn retries_skip_tried_backends_then_reuse_them() {
        let candidates = [up(100), up(100)];
        for algo in [
            Algorithm::RoundRobin,
            Algorithm::LeastConn,
            Algorithm::SourceHash,
            Algorithm::RandomTwo,
        ] {
            let mut balancer = balancer_for(algo, &candidates);
            let mut tried = Tried::new();
            let Pick::Backend(first) = balancer.pick(&candidates, client(9), &tried) else {
                panic!("no pick")
            };
            tried.insert(first);
            let Pick::Backend(second) = balancer.pick(&candidates, client(9), &tried) else {
                panic!("no pick")
            };
            assert_ne!(first, second, "{algo:?} retried the same backend");
            tried.insert(second);
            // Everything tried: try again rather than fail.
            assert!(matches!(
                balancer.pick(&candidates, client(9), &tried),
                Pick::Backend(_)
            ));
        }
    }

    #[test]
    fn least_conn_prefers_lowest_load_per_weight() {
        let mut candidates = [up(100), up(200), up(100)];
        candidates[0].active = 10;
        candidates[1].active = 15; // 7.5 per 100 of weight
        candidates[2].active = 9;
        let mut balancer = balancer_for(Algorithm::LeastConn, &candidates);
        assert_eq!(picks(&mut balancer, &candidates, 1), vec![1]);
        candidates[1].active = 20; // 10 per 100
        assert_eq!(picks(&mut balancer, &candidates, 1), vec![2]);
    }

    #[test]
    fn least_conn_ties_rotate() {
        let candidates = [up(100), up(100), up(100)];
        let mut balancer = balancer_for(Algorithm::LeastConn, &candidates);
        assert_eq!(picks(&mut balancer, &candidates, 3), vec![0, 1, 2]);
    }

    #[test]
    fn random_two_avoids_the_loaded_backend() {
        let mut candidates = [up(100), up(100), up(100)];
        candidates[0].active = 50;
        let mut balancer = balancer_for(Algorithm::RandomTwo, &candidates);
        let got = picks(&mut balancer, &candidates, 3000);
        let share0 = got.iter().filter(|&&i| i == 0).count();
        // Backend 0 wins only when drawn twice: probability 1/9.
        assert!(
            (200..=470).contains(&share0),
            "backend 0 got {share0} of 3000"
        );
    }

    #[test]
    fn source_hash_is_sticky_and_stable() {
        let candidates = [up(100), up(100), up(100)];
        let mut first = balancer_for(Algorithm::SourceHash, &candidates);
        let mut second = balancer_for(Algorithm::SourceHash, &candidates);
        for k in 0..200 {
            let pick = first.pick(&candidates, client(k), &Tried::new());
            assert_eq!(pick, first.pick(&candidates, client(k), &Tried::new()));
            assert_eq!(pick, second.pick(&candidates, client(k), &Tried::new()));
        }
    }

    #[test]
    fn ipv4_mapped_clients_hash_like_ipv4() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(hash_ip(v4), hash_ip(mapped));
    }

    #[test]
    fn stable_hash_is_pinned() {
        // Changing the hash remaps every client on upgrade; this pins it.
        // Values computed independently (Python) from the definition above.
        assert_eq!(stable_hash(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(stable_hash(&[192, 0, 2, 7]), 0x22eb_cd15_a5d3_7b69);
    }

    #[test]
    fn slow_start_ramps_linearly() {
        let ramp = Duration::from_secs(60);
        assert_eq!(slow_start_weight(100, Duration::ZERO, ramp), 1);
        assert_eq!(slow_start_weight(100, Duration::from_secs(30), ramp), 50);
        assert_eq!(slow_start_weight(100, Duration::from_secs(60), ramp), 100);
        assert_eq!(slow_start_weight(100, Duration::MAX, ramp), 100);
        assert_eq!(slow_start_weight(0, Duration::from_secs(1), ramp), 0);
        assert_eq!(
            slow_start_weight(100, Duration::from_secs(1), Duration::ZERO),
            100
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Over one cycle of sum(weights) picks, smooth WRR gives each backend exactly
            /// its weight.
            #[test]
            fn swrr_exact_proportions(weights in prop::collection::vec(1u32..20, 1..8)) {
                let candidates: Vec<Candidate> = weights.iter().map(|&w| up(w)).collect();
                let mut balancer = balancer_for(Algorithm::RoundRobin, &candidates);
                let total: u32 = weights.iter().sum();
                for _cycle in 0..2 {
                    let mut counts = vec![0u32; candidates.len()];
                    for i in picks(&mut balancer, &candidates, total as usize) {
                        counts[i] += 1;
                    }
                    prop_assert_eq!(&counts, &weights);
                }
            }

            /// When one of N backends leaves, only its clients move, and they are about 1/N.
            #[test]
            fn consistent_hash_remaps_only_the_leaver(backend_count in 3usize..10, leaver_seed in 0usize..100) {
                let names = keys(backend_count);
                let key_refs: Vec<(&str, u32)> = names.iter().map(|(k, w)| (k.as_str(), *w)).collect();
                let mut ring = Balancer::with_seed(Algorithm::SourceHash, &key_refs, 1);
                let all: Vec<Candidate> = vec![up(100); backend_count];
                let leaver = leaver_seed % backend_count;
                let mut without = all.clone();
                without[leaver].available = false;
                // The same backend removed from the config instead: the ring is rebuilt.
                let rebuilt_keys: Vec<(&str, u32)> =
                    key_refs.iter().enumerate().filter(|(i, _)| *i != leaver).map(|(_, k)| *k).collect();
                let mut rebuilt = Balancer::with_seed(Algorithm::SourceHash, &rebuilt_keys, 1);
                let rebuilt_candidates = vec![up(100); backend_count - 1];
                let clients = 20_000u32;
                let mut moved = 0u32;
                for k in 0..clients {
                    let ip = IpAddr::V4(Ipv4Addr::from(k.wrapping_mul(2_654_435_761)));
                    let Pick::Backend(before) = ring.pick(&all, ip, &Tried::new()) else { unreachable!() };
                    let Pick::Backend(after) = ring.pick(&without, ip, &Tried::new()) else { unreachable!() };
                    let Pick::Backend(picked) = rebuilt.pick(&rebuilt_candidates, ip, &Tried::new()) else { unreachable!() };
                    let after_rebuilt = if picked >= leaver { picked + 1 } else { picked };
                    prop_assert_eq!(after, after_rebuilt, "down and removed must agree");
                    if before == leaver {
                        moved += 1;
                        prop_assert_ne!(after, leaver);
                    } else {
                        prop_assert_eq!(before, after, "a client of a staying backend moved");
                    }
                }
                let expected = f64::from(clients) / backend_count as f64;
                let ratio = f64::from(moved) / expected;
                prop_assert!((0.6..1.4).contains(&ratio), "moved {} of {} clients, expected about {}", moved, clients, expected);
            }
        }
    }
}
