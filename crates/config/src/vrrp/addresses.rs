//! Reading a `[[vrrp]]` instance's `virtual_addresses`: `"ADDRESS/PREFIX"` strings or
//! `{ address, interface, label }` tables, one family per instance (RFC 5798 7.3), each
//! address once, labels as the kernel accepts them.

use toml::de::DeValue;
use toml::Spanned;

use super::{check_interface_name, VirtualAddress};
use crate::address::parse_cidr;
use crate::keys;
use crate::reader::{Record, Span, TableReader};

pub(super) fn read_virtual_addresses(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
) -> Vec<VirtualAddress> {
    let key = t.key("virtual_addresses");
    let Some(items) = t.array(p, "virtual_addresses") else {
        if !t.has("virtual_addresses") {
            p.add(
                &t.span(),
                key,
                "missing: the floating address(es), e.g. virtual_addresses = [\"192.0.2.10/24\"]",
            );
        }
        return Vec::new();
    };
    let mut out: Vec<VirtualAddress> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        match read_entry(p, item, &item_key) {
            Ok(vip) => {
                if let Some(vip) = check_entry(p, &item.span(), &item_key, vip, &out) {
                    out.push(vip);
                }
            }
            Err(message) => p.add(&item.span(), &item_key, message),
        }
    }
    if items.is_empty() {
        p.add(&t.span(), key, "must list at least one address");
    }
    check_labels_against_interface(p, t, &out);
    out
}

/// One entry, a string or a table.
fn read_entry(
    p: &mut Record,
    item: &Spanned<DeValue<'_>>,
    item_key: &str,
) -> Result<VirtualAddress, String> {
    match item.get_ref() {
        DeValue::String(s) => parse_cidr(s.trim())
            .map(|(address, prefix_len)| VirtualAddress {
                address,
                prefix_len,
                interface: None,
                label: None,
            })
            .map_err(|e| e.to_string()),
        DeValue::Table(table) => {
            let mut vt = TableReader::new(item_key, table, item.span(), keys::VIRTUAL_ADDRESS.keys);
            let address = vt.string(p, "address");
            let interface = vt.string(p, "interface");
            if let Some(at) = &interface {
                check_interface_name(p, &vt, "interface", at);
            }
            let label = vt.string(p, "label");
            vt.finish(p);
            let address = address.ok_or_else(|| "missing: address".to_string())?;
            let (address, prefix_len) =
                parse_cidr(address.value.trim()).map_err(|e| e.to_string())?;
            Ok(VirtualAddress {
                address,
                prefix_len,
                interface: interface.map(|i| i.value),
                label: label.map(|l| l.value),
            })
        }
        other => Err(format!(
            "expected \"ADDRESS/PREFIX\" or a table, found {}",
            other.type_str()
        )),
    }
}

/// The checks of one entry against itself and the entries before it; `None` drops an
/// address of the other family.
fn check_entry(
    p: &mut Record,
    span: &Span,
    key: &str,
    vip: VirtualAddress,
    before: &[VirtualAddress],
) -> Option<VirtualAddress> {
    if let Some(label) = &vip.label {
        let device = vip.interface.clone().unwrap_or_default();
        if vip.address.is_ipv6() {
            p.add(span, key, "labels exist for IPv4 addresses only");
        } else if label.len() > 15 || (!device.is_empty() && !label.starts_with(&device)) {
            p.add(
                span,
                key,
                "a label must start with the interface name and be at most 15 bytes (a kernel rule)",
            );
        }
    }
    if vip.address.is_unspecified() || vip.address.is_multicast() || vip.address.is_loopback() {
        p.add(
            span,
            key,
            format!("{} cannot be a virtual address", vip.address),
        );
    }
    if let Some(first) = before.first() {
        if first.address.is_ipv4() != vip.address.is_ipv4() {
            let (this, other) = if vip.address.is_ipv4() {
                ("IPv4", "IPv6")
            } else {
                ("IPv6", "IPv4")
            };
            p.add(
                span,
                key,
                format!(
                    "{} is {this} but the first address is {other}: one instance carries one family (RFC 5798 7.3); add a second [[vrrp]] for the other",
                    vip.address
                ),
            );
            return None;
        }
    }
    if before.iter().any(|o| o.address == vip.address) {
        p.add(span, key, format!("{} is listed twice", vip.address));
    }
    Some(vip)
}

/// Labels of entries that leave out the interface must start with the instance's.
fn check_labels_against_interface(
    p: &mut Record,
    t: &TableReader<'_, '_>,
    vips: &[VirtualAddress],
) {
    let Some(interface) = t.peek_string("interface") else {
        return;
    };
    for vip in vips {
        if let (Some(label), None) = (&vip.label, &vip.interface) {
            if !label.starts_with(&interface) {
                p.add(
                    &t.span(),
                    t.key("virtual_addresses"),
                    format!(
                        "label {label:?} of {} must start with the interface name {interface:?} (a kernel rule)",
                        vip.address
                    ),
                );
            }
        }
    }
}
