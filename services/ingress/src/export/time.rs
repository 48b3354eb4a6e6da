//! Time arguments of exports and audits: RFC 3339 (`2026-11-25T10:00:00Z`,
//! `2026-11-25T10:00:00.5+01:00`), a date (`2026-11-25`, midnight UTC), microseconds since the
//! Unix epoch (`1764064800000000`, what `GET /v1/decisions` takes), `now`, or an offset from now
//! (`-24h`, `-30m`, `-7d`, `-90s`).

use switchyard_events::Timestamp;

/// Parses a time argument; `now_micros` anchors `now` and offsets.
pub fn parse_time(text: &str, now_micros: i64) -> Result<Timestamp, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(Timestamp::from_micros(now_micros));
    }
    if let Some(offset) = t.strip_prefix('-').and_then(parse_duration_micros) {
        return Ok(Timestamp::from_micros(now_micros.saturating_sub(offset)));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .map(Timestamp::from_micros)
            .map_err(|e| format!("`{t}`: {e}"));
    }
    rfc3339_micros(t).map(Timestamp::from_micros).ok_or_else(|| {
        format!(
            "`{t}` is not a time: use RFC 3339 (2026-11-25T10:00:00Z), a date (2026-11-25), microseconds since the epoch, `now` or an offset like -24h"
        )
    })
}

fn parse_duration_micros(text: &str) -> Option<i64> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(unit_at);
    let n: i64 = n.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(secs)?.checked_mul(1_000_000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let part = s.get(range)?;
    part.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| part.parse().ok())
        .flatten()
}

fn rfc3339_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (digits(s, 0..4)?, digits(s, 5..7)?, digits(s, 8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if b.len() == 10 {
        return days.checked_mul(86_400_000_000);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (digits(s, 11..13)?, digits(s, 14..16)?, digits(s, 17..19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if end == 0 {
            return None;
        }
        let mut digits6: String = frac[..end].chars().take(6).collect();
        while digits6.len() < 6 {
            digits6.push('0');
        }
        micros = digits6.parse().ok()?;
        rest = &frac[end..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let oh = digits(rest, 1..3)?;
            let om = digits(rest, 4..6)?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let now = 1_764_064_800_000_000; // 2025-11-25T10:00:00Z
        assert_eq!(
            parse_time("2025-11-25T10:00:00Z", 0).unwrap().as_micros(),
            now
        );
        assert_eq!(
            parse_time("2025-11-25T11:00:00+01:00", 0)
                .unwrap()
                .as_micros(),
            now
        );
        assert_eq!(
            parse_time("2025-11-25T10:00:00.25Z", 0)
                .unwrap()
                .as_micros(),
            now + 250_000
        );
        assert_eq!(
            parse_time("2025-11-25", 0).unwrap().as_micros(),
            now - 10 * 3_600_000_000
        );
        assert_eq!(
            parse_time("1970-01-01T00:00:00Z", 0).unwrap().as_micros(),
            0
        );
        assert_eq!(parse_time("1764064800000000", 0).unwrap().as_micros(), now);
        assert_eq!(parse_time("now", now).unwrap().as_micros(), now);
        assert_eq!(
            parse_time("-1h", now).unwrap().as_micros(),
            now - 3_600_000_000
        );
        assert_eq!(
            parse_time("-7d", now).unwrap().as_micros(),
            now - 7 * 86_400_000_000
        );
        for bad in [
            "",
            "yesterday",
            "2025-13-01",
            "2025-11-25T10:00",
            "-5x",
            "2025-11-25T10:00:00+0100",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}
