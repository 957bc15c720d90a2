//! Search parameters, checked in two steps as on the real service: first as Blue Button
//! validates them (`apps/fhir/bluebutton/views/search.py`, voluptuous: its 400s carry its
//! messages verbatim), then as its backend (BFD, on HAPI FHIR) applies them; the backend's
//! 400s reach the client as `An error occurred contacting the upstream server:<diagnostics>`.
//!
//! - `_count` (or `count`, which wins) 0–50, default 10; `startIndex` ≥ 0, default 0;
//! - `_lastUpdated` (every search) and `service-date` (ExplanationOfBenefit): repeatable,
//!   each value `lt|le|gt|ge` + a FHIR date or dateTime; two values make an interval;
//! - `type` (ExplanationOfBenefit): Blue Button's case-insensitive pattern of claim types,
//!   then the backend's reading of it (a comma list of codes or `eob-type|code`, unknown
//!   codes ignored, a bare `eob-type|` meaning every type);
//! - every other parameter is dropped.

use connect_medicare_protocol::EobType;

use crate::clock::{days_from_civil, days_in_month};

/// Blue Button's default and largest page sizes.
pub(crate) const DEFAULT_COUNT: usize = 10;
pub(crate) const MAX_COUNT: i64 = 50;

/// Why a search was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SearchError {
    /// Refused by Blue Button itself: `400 {"detail": <message>}`.
    Invalid(String),
    /// Refused by the backend: `400 {"detail": "An error occurred contacting the upstream
    /// server:<diagnostics>"}`.
    Backend(String),
}

/// A `[lower, upper)` range of unix milliseconds; either side may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Range {
    lower: Option<i64>,
    upper: Option<i64>,
}

impl Range {
    /// Whether `at` (unix milliseconds) lies in the range.
    pub(crate) fn contains(&self, at: i64) -> bool {
        self.lower.is_none_or(|l| at >= l) && self.upper.is_none_or(|u| at < u)
    }
}

/// A checked search.
#[derive(Debug, Clone, Default)]
pub(crate) struct Search {
    pub(crate) start: usize,
    pub(crate) count: usize,
    pub(crate) last_updated: Range,
    pub(crate) service_date: Range,
    /// The claim types asked for; `None` when `type` was not given.
    pub(crate) types: Option<Vec<EobType>>,
    /// The parameters the backend received besides paging and the patient, in order: they
    /// are carried into the Bundle links.
    pub(crate) carried: Vec<(String, String)>,
}

type Pairs = [(String, String)];

/// The last value of `name`, as Django's `QueryDict.dict()` keeps it.
fn last<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn all<'a>(pairs: &'a Pairs, name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// voluptuous's `Coerce(int)`: Python's `int()`, which allows surrounding blanks and a sign.
fn coerce_int(raw: &str) -> Result<i64, SearchError> {
    raw.trim()
        .parse::<i64>()
        .map_err(|_| SearchError::Invalid("expected int".to_owned()))
}

/// `^((lt)|(le)|(gt)|(ge)).+`
fn has_operator(raw: &str) -> bool {
    raw.len() > 2 && ["lt", "le", "gt", "ge"].iter().any(|p| raw.starts_with(p))
}

/// Blue Button's `REGEX_TYPE_VALUES_LIST`, case-insensitive: one or more claim-type codes or
/// `https://bluebutton.cms.gov/resources/codesystem/eob-type|`, each followed by blanks,
/// commas, blanks.
fn type_pattern_matches(raw: &str) -> bool {
    let prefix = format!("{}|", EobType::SYSTEM);
    let lower = raw.to_lowercase();
    let mut rest = lower.as_str();
    let mut tokens = 0;
    while !rest.is_empty() {
        let token = EobType::ALL
            .iter()
            .map(|t| t.as_str())
            .chain(std::iter::once(prefix.as_str()))
            .find(|t| rest.starts_with(t));
        let Some(token) = token else {
            return false;
        };
        tokens += 1;
        rest = rest[token.len()..].trim_start();
        rest = rest.trim_start_matches(',');
        rest = rest.trim_start();
    }
    tokens > 0
}

/// The backend's reading of `type` (`parseTypeParam`): a comma list of tokens, each a code
/// or `system|code`; an unknown code is ignored, `eob-type|` alone means every type.
fn backend_types(raw: &str) -> Vec<EobType> {
    let mut out = Vec::new();
    for token in raw.split(',') {
        let (system, code) = match token.split_once('|') {
            Some((system, code)) => (Some(system), code),
            None => (None, token),
        };
        let kind = EobType::ALL
            .into_iter()
            .find(|t| t.as_str() == code.to_lowercase());
        match (system, kind) {
            (Some(EobType::SYSTEM), None) => out.extend(EobType::ALL),
            (None | Some(EobType::SYSTEM), Some(kind)) => out.push(kind),
            _ => {}
        }
    }
    out.sort_by_key(|t| t.as_str());
    out.dedup();
    out
}

/// A FHIR `date` or `dateTime` as the `[start, end)` milliseconds of its precision.
pub(crate) fn parse_fhir_time(raw: &str) -> Option<(i64, i64)> {
    let num = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, time) = match raw.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (raw, None),
    };
    let mut parts = date.split('-');
    let year = num(parts.next()?, 4)?;
    let month = match parts.next() {
        Some(m) => Some(num(m, 2)?),
        None => None,
    };
    let day = match parts.next() {
        Some(d) => Some(num(d, 2)?),
        None => None,
    };
    if parts.next().is_some() || (day.is_some() && month.is_none()) {
        return None;
    }
    let month_u = u32::try_from(month.unwrap_or(1)).ok()?;
    if !(1..=12).contains(&month_u) {
        return None;
    }
    let day_u = u32::try_from(day.unwrap_or(1)).ok()?;
    if day_u < 1 || day_u > days_in_month(year, month_u) {
        return None;
    }
    let start_day = days_from_civil(year, month_u, day_u) * 86_400_000;
    let Some(time) = time else {
        let end_day = match (month, day) {
            (None, _) => days_from_civil(year + 1, 1, 1),
            (Some(_), None) if month_u == 12 => days_from_civil(year + 1, 1, 1),
            (Some(_), None) => days_from_civil(year, month_u + 1, 1),
            (Some(_), Some(_)) => days_from_civil(year, month_u, day_u) + 1,
        };
        return Some((start_day, end_day * 86_400_000));
    };
    day?;
    // hh:mm[:ss[.fff]] then Z or ±hh:mm (UTC when absent).
    let (clock, zone) = match time.find(['Z', '+', '-']) {
        Some(at) => (&time[..at], &time[at..]),
        None => (time, ""),
    };
    let offset_ms = match zone {
        "" | "Z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':')?;
            sign * (num(h, 2)? * 3600 + num(m, 2)? * 60) * 1000
        }
    };
    let mut fields = clock.split(':');
    let hour = num(fields.next()?, 2)?;
    let minute = num(fields.next()?, 2)?;
    let (second, millis, width) = match fields.next() {
        None => (0, 0, 60_000),
        Some(s) => match s.split_once('.') {
            None => (num(s, 2)?, 0, 1000),
            Some((s, frac)) => {
                if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
                (num(s, 2)?, ms, 1)
            }
        },
    };
    if fields.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let at = start_day + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset_ms;
    Some((at, at + width))
}

/// Combines `lt|le|gt|ge` values into one range, as HAPI's `DateRangeParam` does.
fn date_range(values: &[&str]) -> Result<Range, SearchError> {
    let mut range = Range::default();
    for value in values {
        let (op, time) = value.split_at(2);
        let (start, end) = parse_fhir_time(time)
            .ok_or_else(|| SearchError::Backend(format!("Invalid date/time format: \"{time}\"")))?;
        let (lower, upper) = match op {
            "ge" => (Some(start), None),
            "gt" => (Some(end), None),
            "le" => (None, Some(end)),
            _ => (None, Some(start)),
        };
        if lower.is_some() {
            if range.lower.is_some() {
                return Err(SearchError::Backend(
                    "Can not have multiple date range parameters for the same param that specify a lower bound".to_owned(),
                ));
            }
            range.lower = lower;
        }
        if upper.is_some() {
            if range.upper.is_some() {
                return Err(SearchError::Backend(
                    "Can not have multiple date range parameters for the same param that specify an upper bound".to_owned(),
                ));
            }
            range.upper = upper;
        }
    }
    Ok(range)
}

impl Search {
    /// Checks a search's parameters; `eob` adds `type` and `service-date`.
    pub(crate) fn parse(pairs: &Pairs, eob: bool) -> Result<Search, SearchError> {
        // Blue Button's own checks, in the order the parameters first appear.
        let mut names: Vec<&str> = Vec::new();
        for (k, _) in pairs {
            if !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
        let count_name = if last(pairs, "count").is_some() {
            "count"
        } else {
            "_count"
        };
        let mut count = DEFAULT_COUNT as i64;
        let mut start = 0;
        for name in names {
            match name {
                "startIndex" => start = coerce_int(last(pairs, name).unwrap_or_default())?,
                "count" | "_count" if name == count_name => {
                    count = coerce_int(last(pairs, name).unwrap_or_default())?;
                    if count > MAX_COUNT {
                        return Err(SearchError::Invalid(format!(
                            "value must be at most {MAX_COUNT}"
                        )));
                    }
                    if count < 0 {
                        return Err(SearchError::Invalid("value must be at least 0".to_owned()));
                    }
                }
                "_lastUpdated" if !all(pairs, name).iter().all(|v| has_operator(v)) => {
                    return Err(SearchError::Invalid(
                        "the _lastUpdated operator is not valid".to_owned(),
                    ));
                }
                "service-date" if eob && !all(pairs, name).iter().all(|v| has_operator(v)) => {
                    return Err(SearchError::Invalid(
                        "the service-date operator is not valid".to_owned(),
                    ));
                }
                "type" if eob && !type_pattern_matches(last(pairs, name).unwrap_or_default()) => {
                    return Err(SearchError::Invalid(
                        "the type parameter value is not valid".to_owned(),
                    ));
                }
                _ => {}
            }
        }
        // What the backend receives, and its own checks.
        if start < 0 {
            return Err(SearchError::Backend(format!(
                "Value for startIndex cannot be negative: {start}"
            )));
        }
        let mut carried = Vec::new();
        let updated = all(pairs, "_lastUpdated");
        let last_updated = date_range(&updated)?;
        carried.extend(
            updated
                .iter()
                .map(|v| ("_lastUpdated".to_owned(), (*v).to_owned())),
        );
        let (service_date, types) = if eob {
            let types = last(pairs, "type");
            if let Some(raw) = types {
                carried.push(("type".to_owned(), raw.to_owned()));
            }
            let dates = all(pairs, "service-date");
            carried.extend(
                dates
                    .iter()
                    .map(|v| ("service-date".to_owned(), (*v).to_owned())),
            );
            (date_range(&dates)?, types.map(backend_types))
        } else {
            (Range::default(), None)
        };
        Ok(Search {
            start: usize::try_from(start).unwrap_or(usize::MAX),
            count: usize::try_from(count).unwrap_or(DEFAULT_COUNT),
            last_updated,
            service_date,
            types,
            carried,
        })
    }

    /// The backend's check of `startIndex` against the result size.
    pub(crate) fn check_start(&self, total: usize) -> Result<(), SearchError> {
        if total > 0 && self.start >= total {
            return Err(SearchError::Backend(format!(
                "Value for startIndex ({}) must be less than than result size ({total})",
                self.start
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn check(query: &str) -> Result<Search, SearchError> {
        Search::parse(&pairs(query), true)
    }

    fn invalid(message: &str) -> Result<Search, SearchError> {
        Err(SearchError::Invalid(message.to_owned()))
    }

    #[test]
    fn paging_defaults_and_limits() {
        let s = check("").unwrap();
        assert_eq!((s.start, s.count), (0, 10));
        let s = check("_count=5&count=7&startIndex=20").unwrap();
        assert_eq!((s.start, s.count), (20, 7));
        assert_eq!(
            check("_count=51").err(),
            invalid("value must be at most 50").err()
        );
        assert_eq!(
            check("_count=-1").err(),
            invalid("value must be at least 0").err()
        );
        assert_eq!(check("_count=ten").err(), invalid("expected int").err());
        assert_eq!(check("startIndex=x").err(), invalid("expected int").err());
        assert_eq!(
            check("startIndex=-3").err(),
            Some(SearchError::Backend(
                "Value for startIndex cannot be negative: -3".to_owned()
            ))
        );
    }

    #[test]
    fn operators_are_required() {
        for bad in ["2020-01-01", "eq2020-01-01", "gt", ""] {
            assert_eq!(
                check(&format!("_lastUpdated={bad}")).err(),
                invalid("the _lastUpdated operator is not valid").err(),
                "{bad}"
            );
            assert_eq!(
                check(&format!("service-date=ge2020-01-01&service-date={bad}")).err(),
                invalid("the service-date operator is not valid").err(),
                "{bad}"
            );
        }
        // Not an ExplanationOfBenefit search: service-date and type are dropped.
        assert!(Search::parse(&pairs("service-date=bad&type=nope"), false).is_ok());
        assert_eq!(
            check("service-date=gtfoo").err(),
            Some(SearchError::Backend(
                "Invalid date/time format: \"foo\"".to_owned()
            ))
        );
        assert!(matches!(
            check("service-date=ge2020&service-date=gt2021").err(),
            Some(SearchError::Backend(m)) if m.contains("lower bound")
        ));
    }

    #[test]
    fn date_ranges_follow_precision() {
        let day = |y, m, d| days_from_civil(y, m, d) * 86_400_000;
        let s = check("service-date=ge2020-01-01&service-date=lt2020-03").unwrap();
        assert!(s.service_date.contains(day(2020, 1, 1)));
        assert!(s.service_date.contains(day(2020, 2, 29)));
        assert!(!s.service_date.contains(day(2020, 3, 1)));
        assert!(!s.service_date.contains(day(2019, 12, 31)));
        let s = check("service-date=gt2020-01-01&service-date=le2020").unwrap();
        assert!(!s.service_date.contains(day(2020, 1, 1)));
        assert!(s.service_date.contains(day(2020, 1, 2)));
        assert!(s.service_date.contains(day(2020, 12, 31)));
        assert!(!s.service_date.contains(day(2021, 1, 1)));
        let s = check("_lastUpdated=gt2020-11-09T22:52:58.934%2B00:00").unwrap();
        let at = day(2020, 11, 9) + 82_378_934;
        assert!(!s.last_updated.contains(at));
        assert!(s.last_updated.contains(at + 1));
        let s = check("_lastUpdated=lt2020-11-09T23:52:58.934%2B01:00").unwrap();
        assert!(!s.last_updated.contains(at));
        assert!(s.last_updated.contains(at - 1));
        assert_eq!(
            parse_fhir_time("2020-11-09T22:52Z"),
            Some((day(2020, 11, 9) + 82_320_000, day(2020, 11, 9) + 82_380_000))
        );
        for bad in [
            "2020-13",
            "2020-02-30",
            "20",
            "2020-01-01T25:00Z",
            "2020-01-01T10",
        ] {
            assert_eq!(parse_fhir_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn types_as_blue_button_matches_and_the_backend_reads_them() {
        for ok in [
            "carrier",
            "PDE,Inpatient",
            "carrier , pde",
            "https://bluebutton.cms.gov/resources/codesystem/eob-type|dme,snf",
            "carrierpde",
            "carrier,,",
        ] {
            assert!(type_pattern_matches(ok), "{ok}");
        }
        for bad in ["", "claims", "carrier,claims", "carrier, ,pde", ",carrier"] {
            assert!(!type_pattern_matches(bad), "{bad}");
        }
        assert_eq!(
            backend_types("PDE,inpatient"),
            [EobType::Inpatient, EobType::Pde]
        );
        assert_eq!(
            backend_types("https://bluebutton.cms.gov/resources/codesystem/eob-type|"),
            {
                let mut all = EobType::ALL.to_vec();
                all.sort_by_key(|t| t.as_str());
                all
            }
        );
        // The backend does not trim, and reads run-together codes as one unknown code.
        assert_eq!(backend_types("carrier, pde"), [EobType::Carrier]);
        assert!(backend_types("carrierpde").is_empty());
    }
}
