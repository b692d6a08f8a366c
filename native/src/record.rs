//! Input records read straight from their Avro body into engine Events: the reading of
//! `streams/fastdecode.py`, step for step, for the worker's one-call path
//! (`PartitionEngine.on_record`).
//!
//! Like the Python module it only answers for what it reads with certainty: a body written
//! the way Avro encoders write it (minimal varints, arrays in one block) with every field
//! valid. Anything else is None, and the caller's checked path decides (and names the bad
//! field). An order_id that is not printable ASCII is None here too (the Python fast path
//! checks it with `schemas.limits.order_id_problem`).

use crate::model::{Event, Item, Source, Step};

const MAX_INT: i64 = 2_147_483_647;
/// `schemas.limits.MAX_EVENT_TIME`
const MAX_EVENT_TIME: i64 = 221_845_391_999_999;
/// `schemas.limits.MAX_ORDER_ID_LENGTH`
const MAX_ORDER_ID_LENGTH: usize = 256;

// the Avro enums' symbols, in their schemas' order (fastdecode's tuples)
const ORDER_TYPES: [&str; 3] = ["PLACED", "CANCELLED", "PAID"];
const PAYMENT_TYPES: [&str; 3] = ["SUCCEEDED", "FAILED", "REFUNDED"];
const INVENTORY_TYPES: [&str; 3] = ["RESERVED", "CONFIRMED", "RELEASED"];
const SHIPPING_TYPES: [&str; 4] = ["CREATED", "DISPATCHED", "DELIVERED", "CANCELLED"];

/// A position in an Avro body; every read is None once something is not certain.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A zigzag varint of a signed 64-bit value (at most 10 bytes), minimally encoded.
    fn long(&mut self) -> Option<i64> {
        let mut acc: u64 = 0;
        let mut shift: u32 = 0;
        let mut pos = self.pos;
        let b = loop {
            let b = *self.data.get(pos)?;
            pos += 1;
            acc |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                break b;
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        };
        if (b == 0 && shift > 0) || (shift == 63 && b > 1) {
            return None; // a trailing zero group, or past 64 bits
        }
        self.pos = pos;
        Some(((acc >> 1) as i64) ^ -((acc & 1) as i64))
    }

    /// A UTF-8 string (a lone surrogate is not valid UTF-8: refused).
    fn string(&mut self) -> Option<&'a str> {
        let size = usize::try_from(self.long()?).ok()?;
        let start = self.pos;
        let end = start.checked_add(size)?;
        let bytes = self.data.get(start..end)?;
        self.pos = end;
        std::str::from_utf8(bytes).ok()
    }

    /// A non-empty string (an id or a sku).
    fn text(&mut self) -> Option<String> {
        self.string().filter(|s| !s.is_empty()).map(str::to_string)
    }

    fn symbol(&mut self, symbols: &[&'static str]) -> Option<&'static str> {
        let index = usize::try_from(self.long()?).ok()?;
        symbols.get(index).copied()
    }

    /// A long >= 0.
    fn amount(&mut self) -> Option<i64> {
        self.long().filter(|v| *v >= 0)
    }

    /// An int from 1 to 2**31 - 1.
    fn quantity(&mut self) -> Option<i64> {
        self.long().filter(|v| (1..=MAX_INT).contains(v))
    }

    /// Epoch milliseconds from 0 to MAX_EVENT_TIME.
    fn event_time(&mut self) -> Option<i64> {
        self.long().filter(|v| (0..=MAX_EVENT_TIME).contains(v))
    }

    /// A valid order id of printable ASCII: not empty, not too long, not only spaces.
    fn order_id(&mut self) -> Option<String> {
        let value = self.string()?;
        let printable = value.bytes().all(|b| (0x20..0x7F).contains(&b));
        if !printable || value.is_empty() || value.len() > MAX_ORDER_ID_LENGTH
            || value.bytes().all(|b| b == b' ') {
            return None;
        }
        Some(value.to_string())
    }

    /// An array of items written in one block: (sku, quantity) and, when `priced`, unit_price.
    fn items(&mut self, priced: bool) -> Option<Vec<Item>> {
        let count = usize::try_from(self.long()?).ok()?;
        if count > self.data.len() - self.pos {
            return None; // each item takes a byte or more
        }
        let mut found = Vec::with_capacity(count);
        for _ in 0..count {
            let sku = self.text()?;
            let quantity = self.quantity()?;
            let unit_price = if priced { Some(self.amount()?) } else { None };
            found.push(Item { sku, quantity, unit_price });
        }
        if count > 0 && self.long()? != 0 {
            return None; // the zero block that ends a non-empty array
        }
        Some(found)
    }
}

/// Three capital letters A-Z (ISO-4217's form).
fn is_currency(value: &str) -> bool {
    value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase())
}

/// The Event and order_id of an input record's Avro body (from `start`); None when it is not
/// certainly a valid record written canonically.
pub fn read_event(source: Source, data: &[u8], start: usize) -> Option<(Event, String)> {
    let mut r = Reader { data, pos: start };
    let event_id = r.text()?;
    let order_id = r.order_id()?;
    let symbols: &[&'static str] = match source {
        Source::Orders => &ORDER_TYPES,
        Source::Payments => &PAYMENT_TYPES,
        Source::Inventory => &INVENTORY_TYPES,
        Source::Shipping => &SHIPPING_TYPES,
    };
    let kind = r.symbol(symbols)?;
    let time = r.event_time()?;
    let rank = source.rank_of(kind)?;
    let mut s = Step::new(time, rank, event_id);
    let entity_id = match source {
        Source::Payments => {
            let payment_id = r.text()?;
            s.amount = Some(r.amount()?);
            let currency = r.string()?;
            let channel = r.string()?;
            if !is_currency(currency) {
                return None;
            }
            s.currency = Some(currency.to_string());
            s.channel = Some(channel.to_string());
            payment_id
        }
        Source::Inventory => {
            let reservation_id = r.text()?;
            s.sku = Some(r.text()?);
            s.quantity = Some(r.quantity()?);
            reservation_id
        }
        Source::Shipping => {
            let shipment_id = r.text()?;
            s.items = r.items(false)?;
            if kind == "CREATED" && s.items.is_empty() {
                return None;
            }
            shipment_id
        }
        Source::Orders => {
            let user_id = r.string()?;
            s.items = r.items(true)?;
            s.total_amount = Some(r.amount()?);
            let currency = r.string()?;
            r.string()?; // payment_id (PAID): no rule reads it, the state does not keep it
            if kind == "PLACED" {
                if user_id.is_empty() || s.items.is_empty() || !is_currency(currency) {
                    return None;
                }
            } else if !currency.is_empty() && !is_currency(currency) {
                return None;
            }
            s.currency = (!currency.is_empty()).then(|| currency.to_string());
            s.user_id = Some(user_id.to_string());
            order_id.clone()
        }
    };
    if r.pos != data.len() {
        return None;
    }
    Some((Event { source, entity_id, kind: kind.to_string(), step: s }, order_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        long(out, s.len() as i64);
        out.extend_from_slice(s.as_bytes());
    }

    /// A payments body: event_id, order_id, type, event_time, payment_id, amount, currency,
    /// channel (the schema's order).
    fn payment(kind: i64, amount: i64, currency: &str) -> Vec<u8> {
        let mut out = vec![0, 0, 0, 0, 7]; // Confluent framing, schema id 7
        string(&mut out, "e1");
        string(&mut out, "o1");
        long(&mut out, kind);
        long(&mut out, 1_795_219_200_000);
        string(&mut out, "p1");
        long(&mut out, amount);
        string(&mut out, currency);
        string(&mut out, "card");
        out
    }

    #[test]
    fn reads_a_valid_payment() {
        let (event, order_id) = read_event(Source::Payments, &payment(2, 3000, "CNY"), 5)
            .expect("valid");
        assert_eq!(order_id, "o1");
        assert_eq!((event.source, event.entity_id.as_str(), event.kind.as_str()),
                   (Source::Payments, "p1", "REFUNDED"));
        let s = &event.step;
        assert_eq!((s.event_time, s.rank, s.event_id.as_str()), (1_795_219_200_000, 2, "e1"));
        assert_eq!((s.amount, s.currency.as_deref(), s.channel.as_deref()),
                   (Some(3000), Some("CNY"), Some("card")));
    }

    #[test]
    fn declines_what_it_does_not_read_with_certainty() {
        assert!(read_event(Source::Payments, &payment(3, 3000, "CNY"), 5).is_none(), "no type 3");
        assert!(read_event(Source::Payments, &payment(0, -1, "CNY"), 5).is_none(), "negative");
        assert!(read_event(Source::Payments, &payment(0, 1, "cny"), 5).is_none(), "currency");
        let mut trailing = payment(0, 1, "CNY");
        trailing.push(0);
        assert!(read_event(Source::Payments, &trailing, 5).is_none(), "trailing bytes");
        let valid = payment(0, 1, "CNY");
        assert!(read_event(Source::Payments, &valid[..valid.len() - 1], 5).is_none(), "truncated");
        // a varint with a trailing zero group (not minimal): amount 1 as 0x82 0x00
        let mut loose = payment(0, 1, "CNY");
        let at = loose.iter().rposition(|b| *b == 2).expect("amount 1 is 0x02");
        loose.splice(at..=at, [0x82, 0x00]);
        assert!(read_event(Source::Payments, &loose, 5).is_none(), "not minimal");
    }
}
