//! A calendar day in UTC, without a date crate: parsing `YYYY-MM-DD` and day arithmetic
//! (waiver expiry in scan, dated rebuild tags in publish). Pure.

use std::fmt;

/// A calendar day (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub y: i64,
    pub m: u32,
    pub d: u32,
}

impl Date {
    /// `YYYY-MM-DD`, a real calendar day.
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            s.get(r).filter(|x| x.bytes().all(|c| c.is_ascii_digit()))?.parse().ok()
        };
        let date = Date {
            y: num(0..4)?,
            m: num(5..7)? as u32,
            d: num(8..10)? as u32,
        };
        (Date::from_days(date.days()) == date).then_some(date)
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    pub fn days(self) -> i64 {
        let y = if self.m <= 2 { self.y - 1 } else { self.y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (self.m as i64 + 9) % 12;
        let doy = (153 * mp + 2) / 5 + self.d as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    pub fn from_days(z: i64) -> Date {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Date {
            y: yoe + era * 400 + i64::from(m <= 2),
            m,
            d,
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.y, self.m, self.d)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC) of a Unix time: the provenance's start and finish times.
pub fn rfc3339(unix_secs: u64) -> String {
    let day = day_of(unix_secs);
    let s = unix_secs % 86_400;
    format!("{day}T{:02}:{:02}:{:02}Z", s / 3600, s % 3600 / 60, s % 60)
}

/// The UTC calendar day of a Unix time.
pub fn day_of(unix_secs: u64) -> Date {
    Date::from_days((unix_secs / 86_400) as i64)
}

/// Now, as Unix seconds (the only clock reader).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_907_109), "2026-11-28T23:05:09Z");
    }

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn dates_round_trip_and_reject_nonsense() {
        assert_eq!(d("1970-01-01").days(), 0);
        assert_eq!(d("2000-03-01").days(), 11_017);
        assert_eq!(Date::from_days(d("2024-02-29").days()), d("2024-02-29"));
        assert_eq!(d("2026-12-31").days() - d("2026-12-17").days(), 14);
        for bad in [
            "2026-02-30",
            "2025-02-29",
            "2026-13-01",
            "26-01-01",
            "2026-1-01",
            "2026/01/01",
            "tomorrow",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
        assert_eq!(d("2026-01-05").to_string(), "2026-01-05");
    }
}
