//! Write an imported [`Draft`] as havip TOML.
//!
//! Deterministic (same model, same bytes: no timestamps, no hash-map order), in the order of
//! `docs/config.md`, each value followed by a `# file:line` comment naming the source line it
//! came from, and a header listing the inputs and what was not carried over.

use std::fmt::Write as _;

use havip_config::duration::fmt_duration;
use havip_config::place::Place;

use crate::model::{Check, Draft, Health, OrOff, Service, Sourced, Tracker, Vip, Vrrp};
use crate::Note;

/// Values longer than this do not push the comments of their neighbours further right.
const ALIGN_MAX: usize = 44;

/// The TOML text of `draft`; `notes` are the report lines that concern it.
pub fn emit(draft: &Draft, notes: &[Note]) -> String {
    emit_placed(draft, notes).text
}

/// Emitted text, and for each of its lines the source place of what it says (a value, or
/// the section a table came from); `None` for comments and blank lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placed {
    /// The TOML text.
    pub text: String,
    /// One entry per line of `text`.
    pub places: Vec<Option<Place>>,
}

impl Placed {
    fn line(&mut self, text: &str, place: Option<&Place>) {
        self.text.push_str(text);
        self.text.push('\n');
        self.places.push(place.cloned());
    }
}

/// [`emit`], with the place of each line.
pub fn emit_placed(draft: &Draft, notes: &[Note]) -> Placed {
    let mut out = header(draft, notes);
    let mut blocks: Vec<Block> = Vec::new();
    let mut global = Block::table("global", None);
    global.num("max_conns", &draft.global.max_conns);
    global.num("workers", &draft.global.workers);
    blocks.push(global);
    let mut log = Block::table("log", None);
    if let Some(v) = &draft.log.connections {
        log.kv("connections", v.value.to_string(), origin(v));
    }
    blocks.push(log);
    if let Some(admin) = &draft.admin {
        let mut b = Block::table("admin", Some(table_origin(&admin.from)));
        b.kv("listen", quote(&admin.listen.value), origin(&admin.listen));
        if !admin.auth.is_empty() {
            let items = admin
                .auth
                .iter()
                .map(|a| (quote(&a.value), origin(a)))
                .collect();
            b.array("auth", items);
        }
        blocks.push(b);
    }
    for service in &draft.services {
        service_blocks(service, &mut blocks);
    }
    for instance in &draft.vrrp {
        vrrp_blocks(instance, &mut blocks);
    }
    for tracker in &draft.trackers {
        blocks.push(tracker_block(tracker));
    }
    for block in blocks {
        block.render(&mut out);
    }
    out
}

/// The comment on top: the inputs, how to check the file, and the report.
fn header(draft: &Draft, notes: &[Note]) -> Placed {
    let mut out = Placed::default();
    out.line(
        "# havip configuration written by `havip import` from:",
        None,
    );
    for input in &draft.inputs {
        out.line(&format!("#   {}", one_line(input)), None);
    }
    out.line(
        "# Each value names the source line it came from. Review, then validate with",
        None,
    );
    out.line("#   havip check --config <this file>", None);
    if !notes.is_empty() {
        out.line("#", None);
        out.line(
            "# Not carried over, and warnings (see docs/import.md):",
            None,
        );
        for n in notes {
            out.line(&format!("#   {}", one_line(&n.to_string())), None);
        }
    }
    out
}

fn service_blocks(service: &Service, blocks: &mut Vec<Block>) {
    let mut from = src_comment(&service.from);
    for also in &service.also_from {
        from.push_str(", ");
        from.push_str(&src_comment(also));
    }
    let mut b = Block::array_table(
        "service",
        Some(Origin {
            comment: from,
            place: service.from.clone(),
        }),
    );
    b.kv("name", quote(&service.name.value), origin(&service.name));
    b.array(
        "listen",
        service
            .listen
            .iter()
            .map(|l| (quote(&l.value), origin(l)))
            .collect(),
    );
    if let Some(v) = &service.balance {
        b.kv("balance", quote(v.value), origin(v));
    }
    b.num("retries", &service.retries);
    b.dur("slow_start", &service.slow_start);
    if let Some(v) = &service.close_on_down {
        b.kv("close_on_down", v.value.to_string(), origin(v));
    }
    blocks.push(b);

    let t = &service.timeouts;
    let mut b = Block::table("service.timeouts", None);
    b.dur("connect", &t.connect);
    b.dur("queue", &t.queue);
    b.dur("client_idle", &t.client_idle);
    b.dur("server_idle", &t.server_idle);
    if let Some(v) = &t.tunnel {
        let text = match v.value {
            OrOff::Off => "off".to_string(),
            OrOff::On(d) => fmt_duration(d),
        };
        b.kv("tunnel", quote(&text), origin(v));
    }
    blocks.push(b);

    let limits = &service.limits;
    let mut b = Block::table("service.limits", None);
    b.num("max_conns", &limits.max_conns);
    b.num("max_queue", &limits.max_queue);
    b.num("backlog", &limits.backlog);
    blocks.push(b);

    health_blocks(&service.health, blocks);

    let passive = &service.passive;
    let mut b = Block::table("service.passive", None);
    b.num("max_fails", &passive.max_fails);
    b.dur("fail_timeout", &passive.fail_timeout);
    blocks.push(b);

    for backend in &service.backends {
        let mut b = Block::array_table("service.backend", Some(table_origin(&backend.from)));
        b.string("name", &backend.name);
        b.kv(
            "address",
            quote(&backend.address.value),
            origin(&backend.address),
        );
        b.num("weight", &backend.weight);
        b.num("max_conns", &backend.max_conns);
        if let Some(v) = &backend.backup {
            b.kv("backup", v.value.to_string(), origin(v));
        }
        blocks.push(b);
    }
}

/// `[service.health]`, and `[service.health.tls]` for an HTTPS check.
fn health_blocks(health: &Health, blocks: &mut Vec<Block>) {
    let mut b = Block::table("service.health", None);
    if let Some(v) = &health.check {
        b.kv("check", quote(v.value.as_str()), origin(v));
    }
    b.string("path", &health.path);
    b.string("host", &health.host);
    if let Some(v) = &health.expect_status {
        let items: Vec<String> = v
            .value
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    quote(&format!("{lo}-{hi}"))
                }
            })
            .collect();
        b.kv(
            "expect_status",
            format!("[{}]", items.join(", ")),
            origin(v),
        );
    }
    b.dur("interval", &health.interval);
    b.dur("fast_interval", &health.fast_interval);
    b.dur("down_interval", &health.down_interval);
    b.dur("timeout", &health.timeout);
    b.num("rise", &health.rise);
    b.num("fall", &health.fall);
    b.num("port", &health.port);
    blocks.push(b);
    let https = health
        .check
        .as_ref()
        .is_some_and(|c| c.value == Check::Https);
    if https && !health.tls.is_empty() {
        let mut b = Block::table("service.health.tls", None);
        if let Some(v) = &health.tls.verify {
            b.kv("verify", v.value.to_string(), origin(v));
        }
        b.string("ca_file", &health.tls.ca_file);
        b.string("client_cert", &health.tls.client_cert);
        b.string("client_key", &health.tls.client_key);
        b.string("sni", &health.tls.sni);
        blocks.push(b);
    }
}

fn vip_value(v: &Vip) -> String {
    if v.interface.is_none() && v.label.is_none() {
        return quote(&v.cidr());
    }
    let mut s = format!("{{ address = {}", quote(&v.cidr()));
    if let Some(i) = &v.interface {
        let _ = write!(s, ", interface = {}", quote(i));
    }
    if let Some(l) = &v.label {
        let _ = write!(s, ", label = {}", quote(l));
    }
    s.push_str(" }");
    s
}

fn vrrp_blocks(instance: &Vrrp, blocks: &mut Vec<Block>) {
    let mut b = Block::array_table("vrrp", Some(table_origin(&instance.from)));
    b.kv("name", quote(&instance.name.value), origin(&instance.name));
    b.string("interface", &instance.interface);
    b.num("vrid", &instance.vrid);
    b.num("version", &instance.version);
    b.num("priority", &instance.priority);
    b.dur("advert_interval", &instance.advert_interval);
    if let Some(p) = &instance.preempt {
        b.kv("preempt", p.value.to_string(), origin(p));
    }
    b.dur("preempt_delay", &instance.preempt_delay);
    if let Some(a) = &instance.accept {
        b.kv("accept", a.value.to_string(), origin(a));
    }
    if !instance.virtual_addresses.is_empty() {
        b.array(
            "virtual_addresses",
            instance
                .virtual_addresses
                .iter()
                .map(|a| (vip_value(&a.value), origin(a)))
                .collect(),
        );
    }
    if let Some(s) = &instance.source {
        b.kv("source", quote(&s.value.to_string()), origin(s));
    }
    if let Some(p) = &instance.unicast_peers {
        let items: Vec<String> = p.value.iter().map(|a| quote(&a.to_string())).collect();
        b.kv(
            "unicast_peers",
            format!("[{}]", items.join(", ")),
            origin(p),
        );
    }
    if let Some(c) = &instance.check_unicast_source {
        b.kv("check_unicast_source", c.value.to_string(), origin(c));
    }
    b.string("auth_pass", &instance.auth_pass);
    if !instance.track.is_empty() {
        let items = instance
            .track
            .iter()
            .map(|t| {
                let text = match t.value.weight {
                    None => quote(&t.value.tracker),
                    Some(w) => format!("{{ tracker = {}, weight = {w} }}", quote(&t.value.tracker)),
                };
                (text, origin(t))
            })
            .collect();
        b.array("track", items);
    }
    blocks.push(b);
    let a = &instance.announce;
    if !a.is_empty() {
        let mut b = Block::table("vrrp.announce", None);
        b.num("burst_count", &a.burst_count);
        b.dur("burst_spacing", &a.burst_spacing);
        b.dur("second_burst_delay", &a.second_burst_delay);
        b.dur("refresh_interval", &a.refresh_interval);
        b.num("refresh_count", &a.refresh_count);
        b.num("lower_priority_burst_count", &a.lower_priority_burst_count);
        blocks.push(b);
    }
    let n = &instance.notify;
    if !n.is_empty() {
        let mut b = Block::table("vrrp.notify", None);
        b.argv("command", &n.command);
        b.argv("master", &n.master);
        b.argv("backup", &n.backup);
        b.argv("fault", &n.fault);
        b.argv("stop", &n.stop);
        b.string("user", &n.user);
        blocks.push(b);
    }
}

fn tracker_block(tracker: &Tracker) -> Block {
    let mut b = Block::array_table("tracker", Some(table_origin(&tracker.from)));
    b.kv("name", quote(&tracker.name.value), origin(&tracker.name));
    b.kv(
        "kind",
        quote(tracker.kind.value.as_str()),
        origin(&tracker.kind),
    );
    if let Some(w) = &tracker.weight {
        b.kv("weight", w.value.to_string(), origin(w));
    }
    b.num("rise", &tracker.rise);
    b.num("fall", &tracker.fall);
    b.dur("interval", &tracker.interval);
    b.argv("command", &tracker.command);
    b.dur("timeout", &tracker.timeout);
    b.string("user", &tracker.user);
    b.string("service", &tracker.service);
    b.num("min_healthy", &tracker.min_healthy);
    b.string("interface", &tracker.interface);
    b.string("process", &tracker.process);
    b.string("path", &tracker.path);
    b
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Comments must stay on one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `file:line directive`: where a table came from.
fn src_comment(place: &Place) -> String {
    one_line(&format!("{}:{} {}", place.file, place.line, place.key))
}

/// Where a line's value or table came from: the comment written beside it, and the place.
struct Origin {
    comment: String,
    place: Place,
}

/// A table's origin: the section it was made from.
fn table_origin(place: &Place) -> Origin {
    Origin {
        comment: src_comment(place),
        place: place.clone(),
    }
}

/// `file:line` and the note: where a value came from, and why it is what it is.
fn origin<T>(v: &Sourced<T>) -> Option<Origin> {
    let mut s = format!("{}:{}", v.place.file, v.place.line);
    if let Some(note) = &v.note {
        s.push_str(": ");
        s.push_str(note);
    }
    Some(Origin {
        comment: one_line(&s),
        place: v.place.clone(),
    })
}

enum Line {
    Kv {
        key: &'static str,
        value: String,
        origin: Option<Origin>,
    },
    Multi {
        key: &'static str,
        items: Vec<(String, Option<Origin>)>,
    },
}

/// One table: its header and its lines.
struct Block {
    header: String,
    origin: Option<Origin>,
    lines: Vec<Line>,
    /// Written even when empty (array-of-tables entries).
    always: bool,
}

impl Block {
    fn table(name: &str, origin: Option<Origin>) -> Block {
        Block {
            header: format!("[{name}]"),
            origin,
            lines: Vec::new(),
            always: false,
        }
    }

    fn array_table(name: &str, origin: Option<Origin>) -> Block {
        Block {
            header: format!("[[{name}]]"),
            origin,
            lines: Vec::new(),
            always: true,
        }
    }

    fn kv(&mut self, key: &'static str, value: String, origin: Option<Origin>) {
        self.lines.push(Line::Kv { key, value, origin });
    }

    fn array(&mut self, key: &'static str, items: Vec<(String, Option<Origin>)>) {
        match items.len() {
            0 => self.kv(key, "[]".to_string(), None),
            1 => {
                if let Some((value, origin)) = items.into_iter().next() {
                    self.kv(key, format!("[{value}]"), origin);
                }
            }
            _ => self.lines.push(Line::Multi { key, items }),
        }
    }

    fn num<T: ToString>(&mut self, key: &'static str, v: &Option<Sourced<T>>) {
        if let Some(v) = v {
            self.kv(key, v.value.to_string(), origin(v));
        }
    }

    fn dur(&mut self, key: &'static str, v: &Option<Sourced<std::time::Duration>>) {
        if let Some(v) = v {
            self.kv(key, quote(&fmt_duration(v.value)), origin(v));
        }
    }

    fn string(&mut self, key: &'static str, v: &Option<Sourced<String>>) {
        if let Some(v) = v {
            self.kv(key, quote(&v.value), origin(v));
        }
    }

    fn argv(&mut self, key: &'static str, v: &Option<Sourced<Vec<String>>>) {
        if let Some(v) = v {
            let items: Vec<String> = v.value.iter().map(|a| quote(a)).collect();
            self.kv(key, format!("[{}]", items.join(", ")), origin(v));
        }
    }

    fn render(&self, out: &mut Placed) {
        if self.lines.is_empty() && !self.always {
            return;
        }
        out.line("", None);
        match &self.origin {
            Some(o) => out.line(&format!("{}  # {}", self.header, o.comment), Some(&o.place)),
            None => out.line(&self.header, None),
        }
        let width = self
            .lines
            .iter()
            .map(|l| match l {
                Line::Kv { key, value, .. } => key.len() + 3 + value.len(),
                Line::Multi { items, .. } => {
                    4 + items.iter().map(|(v, _)| v.len() + 1).max().unwrap_or(0)
                }
            })
            .filter(|&w| w <= ALIGN_MAX)
            .max()
            .unwrap_or(0);
        for line in &self.lines {
            match line {
                Line::Kv { key, value, origin } => {
                    commented(out, &format!("{key} = {value}"), origin.as_ref(), width);
                }
                Line::Multi { key, items } => {
                    let first = items.first().and_then(|(_, o)| o.as_ref());
                    out.line(&format!("{key} = ["), first.map(|o| &o.place));
                    for (value, origin) in items {
                        commented(out, &format!("    {value},"), origin.as_ref(), width);
                    }
                    out.line("]", None);
                }
            }
        }
    }
}

/// A line with its origin's comment aligned at `width`.
fn commented(out: &mut Placed, text: &str, origin: Option<&Origin>, width: usize) {
    match origin {
        Some(o) => {
            let pad = width.saturating_sub(text.len());
            out.line(
                &format!("{text}{}  # {}", " ".repeat(pad), o.comment),
                Some(&o.place),
            );
        }
        None => out.line(text, None),
    }
}
