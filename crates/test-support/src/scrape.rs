//! Reading a node's Prometheus text (`/metrics`) from inside a lab namespace: the samples
//! with their labels, so a test can assert on one counter (`value`) or a sum (`sum`).

use crate::lab::Lab;

/// One sample: the metric name, its labels in order, its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// `(label, value)` pairs as written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// A scrape: every sample of one `/metrics` answer.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// The samples in the order written.
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// Parse Prometheus text format (comments skipped; label values without escapes, as
    /// havip writes them).
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(parse_sample)
            .collect();
        Metrics { samples }
    }

    /// The samples of `name` whose labels include every pair of `labels`, summed (0 when
    /// there is none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && has_labels(s, labels))
            .map(|s| s.value)
            .sum()
    }

    /// [`Metrics::sum`] as a whole number (counters).
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.sum(name, labels) as u64
    }
}

fn has_labels(sample: &Sample, labels: &[(&str, &str)]) -> bool {
    labels
        .iter()
        .all(|(k, v)| sample.labels.iter().any(|(sk, sv)| sk == k && sv == v))
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (head, ""),
    };
    let labels = labels
        .split("\",")
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.to_string(), v.trim_matches('"').to_string()))
        })
        .collect();
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

impl Lab {
    /// `/metrics` of the admin endpoint at `admin` (e.g. `127.0.0.1:8404`) inside `ns`, read
    /// with curl; empty when it does not answer.
    pub fn scrape(&self, ns: &str, admin: &str) -> Metrics {
        let url = format!("http://{admin}/metrics");
        let (ok, text) = self.try_ns(ns, &["curl", "-sf", "--max-time", "5", &url]);
        if ok {
            Metrics::parse(&text)
        } else {
            Metrics::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_labels_are_summed_by_filter() {
        let text = "# HELP x y\n# TYPE a counter\na{instance=\"v\",reason=\"ip_ttl\"} 3\n\
                    a{instance=\"v\",reason=\"checksum\"} 4\na{instance=\"w\",reason=\"ip_ttl\"} 5\nb 7\n";
        let m = Metrics::parse(text);
        assert_eq!(m.count("a", &[("instance", "v")]), 7);
        assert_eq!(m.count("a", &[("reason", "ip_ttl")]), 8);
        assert_eq!(m.count("a", &[]), 12);
        assert_eq!(m.count("b", &[]), 7);
        assert_eq!(m.count("c", &[]), 0);
    }
}
