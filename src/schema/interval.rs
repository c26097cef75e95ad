//! [`Interval`]: PostgreSQL's `interval`, months, days and microseconds
//! kept apart as the server keeps them.

use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{accepts, to_sql_checked, FromSql, IsNull, ToSql, Type};

use crate::error::{Error, Result};

const MICROS_PER_SECOND: i64 = 1_000_000;

/// A PostgreSQL `interval`: months, days and microseconds, each kept apart
/// as the server keeps them (a month is not a fixed number of days, nor a
/// day of hours across a daylight-saving change), so a value reads back
/// exactly as written.
///
/// Its text ([`Display`](fmt::Display), [`FromStr`], serde, JSON) is ISO
/// 8601's duration format, which PostgreSQL reads too:
/// `P1Y2M3DT4H5M6.5S` (1 year 2 months, 3 days, 4 h 5 min 6.5 s). A
/// negative part carries its sign (`P-1DT2H`). Years are 12 months and
/// weeks 7 days when read; hours and minutes are 3,600 and 60 seconds.
///
/// ```
/// use pgactor::Interval;
/// use std::time::Duration;
///
/// let renewal = Interval::new(1, 0, 0);
/// assert_eq!(renewal.to_string(), "P1M");
/// let timeout: Interval = "PT1M30S".parse()?;
/// assert_eq!(timeout, Interval::new(0, 0, 90_000_000));
/// assert_eq!(Duration::try_from(timeout)?, Duration::from_secs(90));
/// assert_eq!(Interval::try_from(Duration::from_millis(1500))?, Interval::new(0, 0, 1_500_000));
/// # Ok::<(), pgactor::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interval {
    /// Whole months (a year is 12).
    pub months: i32,
    /// Whole days.
    pub days: i32,
    /// Microseconds (an hour is 3,600,000,000).
    pub microseconds: i64,
}

impl Interval {
    /// An interval of `months`, `days` and `microseconds`.
    pub const fn new(months: i32, days: i32, microseconds: i64) -> Interval {
        Interval {
            months,
            days,
            microseconds,
        }
    }
}

/// A [`Duration`] as an interval of microseconds only; refused with
/// [`crate::ErrorKind::InvalidInput`] when it has a part finer than a
/// microsecond or is longer than `i64::MAX` microseconds (292,471 years).
impl TryFrom<Duration> for Interval {
    type Error = Error;

    fn try_from(duration: Duration) -> Result<Interval> {
        if !duration.subsec_nanos().is_multiple_of(1_000) {
            return Err(Error::invalid_input(
                "an interval holds whole microseconds and the duration has a finer part",
            ));
        }
        let micros = i64::try_from(duration.as_micros())
            .map_err(|_| Error::invalid_input("the duration is longer than an interval holds"))?;
        Ok(Interval::new(0, 0, micros))
    }
}

/// An interval of microseconds only as a [`Duration`]; refused with
/// [`crate::ErrorKind::InvalidInput`] when it has months or days (whose
/// length depends on the calendar and the time zone) or is negative.
impl TryFrom<Interval> for Duration {
    type Error = Error;

    fn try_from(interval: Interval) -> Result<Duration> {
        if interval.months != 0 || interval.days != 0 {
            return Err(Error::invalid_input(
                "an interval with months or days has no fixed length: it is no Duration",
            ));
        }
        let micros = u64::try_from(interval.microseconds)
            .map_err(|_| Error::invalid_input("a negative interval is no Duration"))?;
        Ok(Duration::from_micros(micros))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (years, months) = (self.months / 12, self.months % 12);
        let micros = self.microseconds;
        let hours = micros / (3_600 * MICROS_PER_SECOND);
        let minutes = micros % (3_600 * MICROS_PER_SECOND) / (60 * MICROS_PER_SECOND);
        let rest = micros % (60 * MICROS_PER_SECOND);
        f.write_str("P")?;
        for (n, unit) in [(years, 'Y'), (months, 'M'), (self.days, 'D')] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        if micros != 0 {
            f.write_str("T")?;
            for (n, unit) in [(hours, 'H'), (minutes, 'M')] {
                if n != 0 {
                    write!(f, "{n}{unit}")?;
                }
            }
            if rest != 0 {
                let sign = if rest < 0 { "-" } else { "" };
                let (whole, fraction) = (
                    rest.abs() / MICROS_PER_SECOND,
                    rest.abs() % MICROS_PER_SECOND,
                );
                write!(f, "{sign}{whole}")?;
                if fraction != 0 {
                    let digits = format!("{fraction:06}");
                    write!(f, ".{}", digits.trim_end_matches('0'))?;
                }
                f.write_str("S")?;
            }
        } else if self.months == 0 && self.days == 0 {
            // The empty interval: ISO 8601 needs one part.
            f.write_str("T0S")?;
        }
        Ok(())
    }
}

/// Parses ISO 8601's duration format, as [`Interval`]'s `Display` writes
/// it: `P[nY][nM][nW][nD][T[nH][nM][n[.f]S]]`, each `n` an integer that may
/// be negative, seconds with up to 6 decimals. Anything else (PostgreSQL's
/// own `1 day 02:00:00` style included) is refused with
/// [`crate::ErrorKind::InvalidInput`], without the text.
impl FromStr for Interval {
    type Err = Error;

    fn from_str(text: &str) -> Result<Interval> {
        let bad = || {
            Error::invalid_input(
                "an interval is written in ISO 8601's duration format, such as P1Y2M3DT4H5M6.5S",
            )
        };
        let rest = text.strip_prefix('P').ok_or_else(bad)?;
        let (date, time) = match rest.split_once('T') {
            Some((date, time)) if !time.is_empty() => (date, Some(time)),
            Some(_) => return Err(bad()),
            None => (rest, None),
        };
        if date.is_empty() && time.is_none() {
            return Err(bad());
        }
        let (mut months, mut days, mut micros) = (0_i64, 0_i64, 0_i128);
        for (number, unit) in parts(date).ok_or_else(bad)? {
            let n: i64 = number.parse().map_err(|_| bad())?;
            let (slot, scale) = match unit {
                'Y' => (&mut months, 12),
                'M' => (&mut months, 1),
                'W' => (&mut days, 7),
                'D' => (&mut days, 1),
                _ => return Err(bad()),
            };
            *slot = n
                .checked_mul(scale)
                .and_then(|n| slot.checked_add(n))
                .ok_or_else(bad)?;
        }
        let time_parts = match time {
            Some(time) => parts(time).ok_or_else(bad)?,
            None => Vec::new(),
        };
        let mut last_unit = None;
        for (number, unit) in time_parts {
            let seconds = match unit {
                'H' => 3_600,
                'M' => 60,
                'S' => 1,
                _ => return Err(bad()),
            };
            // Units in order, each once: H, M, S.
            if last_unit.is_some_and(|last| last <= seconds) {
                return Err(bad());
            }
            last_unit = Some(seconds);
            let part = if unit == 'S' {
                seconds_to_micros(number).ok_or_else(bad)?
            } else {
                number
                    .parse::<i128>()
                    .ok()
                    .and_then(|n| n.checked_mul(seconds * i128::from(MICROS_PER_SECOND)))
                    .ok_or_else(bad)?
            };
            micros = micros.checked_add(part).ok_or_else(bad)?;
        }
        Ok(Interval {
            months: i32::try_from(months).map_err(|_| bad())?,
            days: i32::try_from(days).map_err(|_| bad())?,
            microseconds: i64::try_from(micros).map_err(|_| bad())?,
        })
    }
}

/// `1Y-2M3D` as `[("1", 'Y'), ("-2", 'M'), ("3", 'D')]`: each number (an
/// optional `-`, digits, and a fraction only before `S`) and its unit.
fn parts(text: &str) -> Option<Vec<(&str, char)>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (at, c) in text.char_indices() {
        if c.is_ascii_uppercase() {
            let number = &text[start..at];
            let digits = number.strip_prefix('-').unwrap_or(number);
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
            let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            let fraction_ok =
                fraction.is_empty() || (c == 'S' && !fraction.is_empty() && plain(fraction));
            if whole.is_empty()
                || !plain(whole)
                || !fraction_ok
                || (digits.contains('.') && fraction.is_empty())
            {
                return None;
            }
            out.push((number, c));
            start = at + 1;
        }
    }
    (start == text.len()).then_some(out)
}

/// `6.5` seconds as microseconds; at most 6 decimals.
fn seconds_to_micros(number: &str) -> Option<i128> {
    let (negative, digits) = match number.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, number),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.len() > 6 {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let fraction: i128 = format!("{fraction:0<6}").parse().ok()?;
    let micros = whole
        .checked_mul(i128::from(MICROS_PER_SECOND))?
        .checked_add(fraction)?;
    Some(if negative { -micros } else { micros })
}

impl ToSql for Interval {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_i64(self.microseconds);
        out.put_i32(self.days);
        out.put_i32(self.months);
        Ok(IsNull::No)
    }

    accepts!(INTERVAL);
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Interval {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Interval, Box<dyn StdError + Sync + Send>> {
        let raw: [u8; 16] = raw
            .try_into()
            .map_err(|_| "an interval's binary form is 16 bytes")?;
        let [m0, m1, m2, m3, m4, m5, m6, m7, d0, d1, d2, d3, n0, n1, n2, n3] = raw;
        Ok(Interval {
            microseconds: i64::from_be_bytes([m0, m1, m2, m3, m4, m5, m6, m7]),
            days: i32::from_be_bytes([d0, d1, d2, d3]),
            months: i32::from_be_bytes([n0, n1, n2, n3]),
        })
    }

    accepts!(INTERVAL);
}

impl serde::Serialize for Interval {
    /// Its ISO 8601 text, as [`fmt::Display`] writes it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Interval {
    /// Its ISO 8601 text, as [`FromStr`] reads it.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Interval, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_reads_iso_8601() {
        for (interval, text) in [
            (Interval::new(14, 3, 14_706_500_000), "P1Y2M3DT4H5M6.5S"),
            (Interval::new(0, 0, 0), "PT0S"),
            (Interval::new(1, 0, 0), "P1M"),
            (Interval::new(0, -1, 7_200_000_000), "P-1DT2H"),
            (Interval::new(0, 0, -1_500_000), "PT-1.5S"),
            (Interval::new(0, 0, -61_000_001), "PT-1M-1.000001S"),
            (Interval::new(-13, 0, 0), "P-1Y-1M"),
        ] {
            assert_eq!(interval.to_string(), text);
            assert_eq!(text.parse::<Interval>().unwrap(), interval, "{text}");
        }
        assert_eq!("P2W".parse::<Interval>().unwrap(), Interval::new(0, 14, 0));
        assert_eq!(
            "PT90M".parse::<Interval>().unwrap(),
            Interval::new(0, 0, 5_400_000_000)
        );
    }

    #[test]
    fn bad_text_is_refused_without_the_text() {
        for text in [
            "",
            "P",
            "PT",
            "1 day",
            "P1",
            "P1X",
            "PT1D",
            "P1.5D",
            "PT1.1234567S",
            "PT1S1M",
            "P--1D",
            "P99999999999Y",
            "SECRET",
            "PT.5S",
            "PT5.S",
        ] {
            let err = text.parse::<Interval>().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{text}");
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn durations_convert_where_exact() {
        let d = Duration::from_micros(1_234_567);
        assert_eq!(
            Duration::try_from(Interval::try_from(d).unwrap()).unwrap(),
            d
        );
        assert!(Interval::try_from(Duration::from_nanos(1)).is_err());
        assert!(Interval::try_from(Duration::MAX).is_err());
        assert!(Duration::try_from(Interval::new(0, 1, 0)).is_err());
        assert!(Duration::try_from(Interval::new(1, 0, 0)).is_err());
        assert!(Duration::try_from(Interval::new(0, 0, -1)).is_err());
    }

    #[test]
    fn binary_round_trips() {
        let interval = Interval::new(-3, 40, i64::MIN + 1);
        let mut raw = BytesMut::new();
        interval.to_sql(&Type::INTERVAL, &mut raw).unwrap();
        assert_eq!(raw.len(), 16);
        assert_eq!(Interval::from_sql(&Type::INTERVAL, &raw).unwrap(), interval);
        assert!(Interval::from_sql(&Type::INTERVAL, &raw[..15]).is_err());
        assert!(<Interval as ToSql>::accepts(&Type::INTERVAL));
        assert!(!<Interval as ToSql>::accepts(&Type::TEXT));
    }

    #[test]
    fn serde_writes_the_text() {
        let interval = Interval::new(0, 2, 0);
        assert_eq!(
            serde_json::to_value(interval).unwrap(),
            serde_json::json!("P2D")
        );
        assert_eq!(
            serde_json::from_value::<Interval>(serde_json::json!("P2D")).unwrap(),
            interval
        );
        assert!(serde_json::from_value::<Interval>(serde_json::json!("2 days")).is_err());
    }
}
