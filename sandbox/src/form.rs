//! Form-urlencoded name/value pairs, as a query string or a form body carries them: parsed in
//! order, duplicates kept, so each handler decides what a repeated name means.

/// A query's or a form body's pairs, in order.
pub(crate) type Pairs = Vec<(String, String)>;

pub(crate) fn pairs(raw: &[u8]) -> Pairs {
    form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn first<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
