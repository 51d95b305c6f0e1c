//! UTC timestamps: RFC 3339 with milliseconds for lines, a compact form
//! for rotated file names. Hand-written: formatting the date of every line
//! is on the hot path, and the date changes once per second at most, so
//! the date and time up to the second are cached per thread.

use std::time::{SystemTime, UNIX_EPOCH};

/// RFC 3339 UTC timestamps with milliseconds, `2026-01-21T10:30:00.123Z`.
/// The date and time up to the second are cached per thread, so most
/// events only format the milliseconds.
#[derive(Debug, Default)]
pub(crate) struct TimestampCache {
    secs: u64,
    prefix: [u8; 19],
    valid: bool,
}

impl TimestampCache {
    /// Appends `now` as a quoted timestamp.
    pub(crate) fn write(&mut self, out: &mut Vec<u8>, now: SystemTime) {
        out.push(b'"');
        self.write_raw(out, now);
        out.push(b'"');
    }

    /// Appends `now` without quotes.
    pub(crate) fn write_raw(&mut self, out: &mut Vec<u8>, now: SystemTime) {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        if !self.valid || secs != self.secs {
            self.prefix = format_secs(secs);
            self.secs = secs;
            self.valid = true;
        }
        let ms = since.subsec_millis();
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&[
            b'.',
            b'0' + (ms / 100) as u8,
            b'0' + (ms / 10 % 10) as u8,
            b'0' + (ms % 10) as u8,
            b'Z',
        ]);
    }
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch (UTC), for file
/// names.
pub(crate) fn compact_utc(secs: u64) -> String {
    let full = format_secs(secs);
    let mut out = String::with_capacity(16);
    for &b in &full {
        if b.is_ascii_digit() || b == b'T' {
            out.push(b as char);
        }
    }
    out.push('Z');
    out
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since the Unix epoch (UTC).
fn format_secs(secs: u64) -> [u8; 19] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    let mut b = [0u8; 19];
    let y = y.clamp(0, 9999) as u64;
    let digits = |b: &mut [u8], v: u64| {
        let n = b.len();
        let mut v = v;
        for i in (0..n).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(&mut b[0..4], y);
    b[4] = b'-';
    digits(&mut b[5..7], u64::from(m));
    b[7] = b'-';
    digits(&mut b[8..10], u64::from(d));
    b[10] = b'T';
    digits(&mut b[11..13], hh);
    b[13] = b':';
    digits(&mut b[14..16], mm);
    b[16] = b':';
    digits(&mut b[17..19], ss);
    b
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), by
/// the era-based method: 400-year eras of 146,097 days.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_millis() {
        let mut c = TimestampCache::default();
        let mut out = Vec::new();
        let t = UNIX_EPOCH + Duration::from_millis(1_768_991_400_123);
        c.write(&mut out, t);
        assert_eq!(out, b"\"2026-01-21T10:30:00.123Z\"");
        out.clear();
        c.write(
            &mut out,
            UNIX_EPOCH + Duration::from_millis(951_782_400_007),
        );
        assert_eq!(out, b"\"2000-02-29T00:00:00.007Z\"");
        out.clear();
        c.write(&mut out, UNIX_EPOCH);
        assert_eq!(out, b"\"1970-01-01T00:00:00.000Z\"");
    }

    /// What the `time` crate says the line timestamp for `millis` since
    /// the epoch is.
    fn reference(millis: u64) -> String {
        let secs = i64::try_from(millis / 1000).unwrap();
        let t = ::time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
        format!(
            "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\"",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            millis % 1000
        )
    }

    fn ours(cache: &mut TimestampCache, millis: u64) -> String {
        let mut out = Vec::new();
        cache.write(&mut out, UNIX_EPOCH + Duration::from_millis(millis));
        String::from_utf8(out).unwrap()
    }

    /// Every day from 1970 to 2500 at its first and last millisecond, and
    /// the day boundaries around every leap day, century and the end of
    /// year 9999, checked against a well-kept date crate.
    #[test]
    fn agrees_with_the_time_crate_over_a_wide_range() {
        const DAY_MS: u64 = 86_400_000;
        let mut cache = TimestampCache::default();
        let last = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        let mut check = |millis: u64| {
            if millis <= last {
                assert_eq!(ours(&mut cache, millis), reference(millis));
            }
        };
        for day in 0..(2500 - 1970) * 366 {
            check(day * DAY_MS);
            check(day * DAY_MS + DAY_MS - 1);
        }
        // Around Feb 29 and Jan 1 of every year up to 9999.
        for year in 1970..=9999_i32 {
            let jan1 = ::time::Date::from_calendar_date(year, ::time::Month::January, 1).unwrap();
            let days = u64::try_from(jan1.to_julian_day() - 2_440_588).unwrap();
            for offset in [0, 58, 59, 60, 364, 365] {
                let at = (days + offset) * DAY_MS;
                check(at);
                check(at.saturating_sub(1));
            }
        }
        check(last);
        // Random instants, out of order (the per-second cache must not leak).
        for _ in 0..100_000 {
            check(fastrand::u64(0..=last));
        }
        assert_eq!(
            ours(&mut TimestampCache::default(), last),
            "\"9999-12-31T23:59:59.999Z\""
        );
    }

    #[test]
    fn compact_stamps_for_file_names() {
        assert_eq!(compact_utc(1_768_991_400), "20260121T103000Z");
        assert_eq!(compact_utc(0), "19700101T000000Z");
    }
}
