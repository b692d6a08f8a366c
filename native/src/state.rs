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
