//! State format 2 in msgpack, byte for byte as msgspec encodes `streams.engine.state.OrderState`
//! (an array led by the format number); decoding takes any valid msgpack form of it.

use crate::model::{Book, Item, LedgerEntry, Logs, OrderState, Ordered, Step};
use crate::msgpack::{Reader, Writer, R};

pub const ORDER_FORMAT: i64 = 2;

fn write_step(w: &mut Writer, s: &Step) {
    w.array(11);
    w.int(s.event_time);
    w.int(s.rank);
    w.str(&s.event_id);
    w.opt_str(&s.sku);
    w.opt_int(s.quantity);
    w.opt_int(s.amount);
    w.opt_str(&s.currency);
    w.array(s.items.len());
    for item in &s.items {
        w.array(3);
        w.str(&item.sku);
        w.int(item.quantity);
        w.opt_int(item.unit_price);
    }
    w.opt_int(s.total_amount);
    w.opt_str(&s.channel);
    w.opt_str(&s.user_id);
}

fn write_log(w: &mut Writer, log: &[Step]) {
    w.array(log.len());
    for s in log {
        write_step(w, s);
    }
}

fn write_logs(w: &mut Writer, logs: &Ordered<Vec<Step>>) {
    w.map(logs.len());
    for (id, log) in logs {
        w.str(id);
        write_log(w, log);
    }
}

fn write_entry(w: &mut Writer, e: &LedgerEntry) {
    w.array(15);
    w.str(&e.mismatch_id);
    w.str(&e.kind);
    w.int(e.rule);
    w.str(&e.subject_id);
    w.str(&e.key);
    w.str(&e.severity);
    w.int(e.decided_at);
    w.int(e.trigger_time);
    w.array(e.evidence.len());
    for id in &e.evidence {
        w.str(id);
    }
    w.map(e.details.len());
    for (k, v) in &e.details {
        w.str(k);
        w.str(v);
    }
    w.opt_str(&e.command_id);
    w.str(&e.status);
    w.opt_int(e.resolved_at);
    w.opt_str(&e.resolved_by);
    w.boolean(e.frozen);
}

pub fn encode_order(state: &OrderState) -> Vec<u8> {
    let mut w = Writer::new();
    w.array(10);
    w.int(ORDER_FORMAT);
    w.str(&state.order_id);
    write_log(&mut w, &state.logs.orders);
    write_logs(&mut w, &state.logs.payments);
    write_logs(&mut w, &state.logs.reservations);
    write_logs(&mut w, &state.logs.shipments);
    let book = &state.book;
    w.array(book.dues.len());
    for d in &book.dues {
        w.int(*d);
    }
    w.opt_int(book.expire_at);
    w.map(book.ledger.len());
    for (mid, entry) in &book.ledger {
        w.str(mid);
        write_entry(&mut w, entry);
    }
    w.array(book.commands.len());
    for c in &book.commands {
        w.str(c);
    }
    w.buf
}

fn read_step(r: &mut Reader) -> R<Step> {
    let n = r.array()?;
    if !(3..=11).contains(&n) {
        return Err(format!("a step of {n} fields"));
    }
    let mut s = Step::new(r.int()?, r.int()?, r.str()?);
    for field in 3..n {
        match field {
            3 => s.sku = r.opt_str()?,
            4 => s.quantity = r.opt_int()?,
            5 => s.amount = r.opt_int()?,
            6 => s.currency = r.opt_str()?,
            7 => {
                let count = r.array()?;
                for _ in 0..count {
                    let k = r.array()?;
                    if !(2..=3).contains(&k) {
                        return Err(format!("an item of {k} fields"));
                    }
                    let sku = r.str()?;
                    let quantity = r.int()?;
                    let unit_price = if k == 3 { r.opt_int()? } else { None };
                    s.items.push(Item { sku, quantity, unit_price });
                }
            }
            8 => s.total_amount = r.opt_int()?,
            9 => s.channel = r.opt_str()?,
            _ => s.user_id = r.opt_str()?,
        }
    }
    Ok(s)
}

fn read_log(r: &mut Reader) -> R<Vec<Step>> {
    let n = r.array()?;
    (0..n).map(|_| read_step(r)).collect()
}

fn read_logs(r: &mut Reader) -> R<Ordered<Vec<Step>>> {
    let n = r.map()?;
    (0..n).map(|_| Ok((r.str()?, read_log(r)?))).collect()
}

fn read_entry(r: &mut Reader) -> R<LedgerEntry> {
    let n = r.array()?;
    if !(11..=15).contains(&n) {
        return Err(format!("a ledger entry of {n} fields"));
    }
    let mut e = LedgerEntry {
        mismatch_id: r.str()?,
        kind: r.str()?,
        rule: r.int()?,
        subject_id: r.str()?,
        key: r.str()?,
        severity: r.str()?,
        decided_at: r.int()?,
        trigger_time: r.int()?,
        evidence: {
            let k = r.array()?;
            (0..k).map(|_| r.str()).collect::<R<Vec<_>>>()?
        },
        details: {
            let k = r.map()?;
            (0..k).map(|_| Ok((r.str()?, r.str()?))).collect::<R<Vec<_>>>()?
        },
        command_id: r.opt_str()?,
        status: "OPEN".to_string(),
        resolved_at: None,
        resolved_by: None,
        frozen: false,
    };
    for field in 11..n {
        match field {
            11 => e.status = r.str()?,
            12 => e.resolved_at = r.opt_int()?,
            13 => e.resolved_by = r.opt_str()?,
            _ => e.frozen = r.boolean()?,
        }
    }
    Ok(e)
}

/// Format 2 bytes -> OrderState (an error for anything else; format 1 is upgraded by the
/// caller, through the Python decoder).
pub fn decode_order(data: &[u8]) -> R<OrderState> {
    let mut r = Reader::new(data);
    let n = r.array()?;
    if !(2..=10).contains(&n) {
        return Err(format!("an order state of {n} fields"));
    }
    let format = r.int()?;
    if format != ORDER_FORMAT {
        return Err(format!("state format {format}"));
    }
    let mut state = OrderState { order_id: r.str()?, logs: Logs::default(), book: Book::default() };
    for field in 2..n {
        match field {
            2 => state.logs.orders = read_log(&mut r)?,
            3 => state.logs.payments = read_logs(&mut r)?,
            4 => state.logs.reservations = read_logs(&mut r)?,
            5 => state.logs.shipments = read_logs(&mut r)?,
            6 => {
                let k = r.array()?;
                state.book.dues = (0..k).map(|_| r.int()).collect::<R<Vec<_>>>()?;
            }
            7 => state.book.expire_at = r.opt_int()?,
            8 => {
                let k = r.map()?;
                state.book.ledger =
                    (0..k).map(|_| Ok((r.str()?, read_entry(&mut r)?))).collect::<R<Vec<_>>>()?;
            }
            _ => {
                let k = r.array()?;
                state.book.commands = (0..k).map(|_| r.str()).collect::<R<Vec<_>>>()?;
            }
        }
    }
    if !r.at_end() {
        return Err("trailing bytes after an order state".into());
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OPEN;

    /// `streams.engine.state.encode_order` of an order (PLACED, a SUCCEEDED payment of
    /// another amount, a CREATED shipment) after its AMOUNT_MISMATCH was decided
    const PYTHON_BYTES: [&str; 9] = [
        "9a02a16f919bce000f424000a86f72643030303030c0c0c0a3434e599193a141010505c0a2753181a27031919bce",
        "000f424100a87061793030303031c0c004a3434e5990c0c0c08081a27331919bce000f424300a873687030303030",
        "32c0c0c0c09193a14102c0c0c0c092ce000f55c9ce000f4dfbce000f59b181d92038636361363130336363343937",
        "663266346263376166356132313738316566629fd920386363613631303363633439376632663462633761663561",
        "3231373831656662af414d4f554e545f4d49534d4154434806a27031a27031a448494748ce000f4241ce000f4241",
        "92a87061793030303031a86f7264303030303086aa7061796d656e745f6964a27031a6616d6f756e74a134a86375",
        "7272656e6379a3434e59af65787065637465645f616d6f756e74a135b165787065637465645f63757272656e6379",
        "a3434e59ac747269676765725f74696d65b8313937302d30312d30315430303a31363a34302e3030315ac0a44f50",
        "454ec0c0c290",
    ];

    fn python_bytes() -> Vec<u8> {
        let text: String = PYTHON_BYTES.concat();
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn reads_and_writes_pythons_bytes() {
        let data = python_bytes();
        let state = decode_order(&data).expect("format 2");
        assert_eq!(state.order_id, "o");
        assert_eq!(state.logs.orders[0].total_amount, Some(5));
        assert_eq!(state.logs.orders[0].items[0].unit_price, Some(5));
        assert_eq!(state.logs.payments[0].0, "p1");
        assert_eq!(state.logs.shipments[0].1[0].items[0].quantity, 2);
        assert_eq!(state.book.dues, vec![1_005_001, 1_003_003]);
        assert_eq!(state.book.expire_at, Some(1_006_001));
        let (_, entry) = &state.book.ledger[0];
        assert_eq!((entry.kind.as_str(), entry.rule, entry.status.as_str()), ("AMOUNT_MISMATCH", 6, OPEN));
        assert_eq!(entry.evidence, vec!["pay00001", "ord00000"]);
        assert_eq!(crate::model::get(&entry.details, "expected_amount").map(String::as_str), Some("5"));
        assert!(state.book.commands.is_empty());
        assert_eq!(encode_order(&state), data, "byte for byte what msgspec wrote");
    }

    #[test]
    fn reads_shorter_forms_and_refuses_others() {
        // an order written before its later fields existed: only the format and the order_id
        let mut w = Writer::new();
        w.array(2);
        w.int(ORDER_FORMAT);
        w.str("o9");
        let state = decode_order(&w.buf).expect("a short form");
        assert_eq!(state, OrderState::new("o9"));
        let mut data = encode_order(&state);
        assert_eq!(decode_order(&data), Ok(state));
        data.push(0xc0);
        assert!(decode_order(&data).is_err(), "trailing bytes");
        let mut w = Writer::new();
        w.array(2);
        w.int(1);
        w.str("o9");
        assert!(decode_order(&w.buf).is_err(), "format 1 is the Python decoder's");
        assert!(decode_order(&python_bytes()[..100]).is_err(), "truncated");
    }
}
