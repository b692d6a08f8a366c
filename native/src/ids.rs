//! Stable ids of mismatches and commands, and event times as text (`streams.rules.ids`,
//! `streams.rules.spec.iso`).

use sha2::{Digest, Sha256};

fn digest(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(32);
    for b in &hash[..16] {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// sha256 of "{type}|{order_id}|{subject_id}", first 32 hex digits.
pub fn mismatch_id(kind: &str, order_id: &str, subject_id: &str) -> String {
    digest(&format!("{kind}|{order_id}|{subject_id}"))
}

/// sha256 of "{command_type}|{target_id}", first 32 hex digits.
pub fn command_id(kind: &str, target_id: &str) -> String {
    digest(&format!("{kind}|{target_id}"))
}

/// Epoch milliseconds as ISO-8601 UTC with milliseconds and Z.
pub fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_contract_hashes() {
        // sha256("a|b|c") and sha256("REFUND_PAYMENT|p1"), first 32 hex digits
        assert_eq!(mismatch_id("a", "b", "c"), "a52dd81bfd5e4e66d96b9f598382f6cb");
        assert_eq!(command_id("REFUND_PAYMENT", "p1"), "2007ca0e04d4e3c98ad81c51db719354");
        assert_ne!(command_id("REFUND_PAYMENT", "p1"), command_id("REFUND_PAYMENT", "p2"));
    }

    #[test]
    fn iso_writes_utc_with_milliseconds() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_795_219_200_123), "2026-11-21T00:00:00.123Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59.999Z");
    }
}
