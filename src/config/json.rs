//! Reading a JSON object field by field, with every error naming the field's JSON path.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind};

/// A configuration error at `path`.
pub(crate) fn error(path: &str, what: impl std::fmt::Display) -> Error {
    if path.is_empty() {
        Error::new(ErrorKind::InvalidConfig, what.to_string())
    } else {
        Error::new(ErrorKind::InvalidConfig, format!("{path}: {what}"))
    }
}

/// The path of `field` inside the object at `path`.
pub(crate) fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") }
}

/// A JSON object being read, and where it sits in the document.
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    pub(crate) path: String,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(value: &'a Value, path: String) -> Result<Self, Error> {
        match value {
            Value::Object(map) => Ok(Self { map, path }),
            _ => Err(error(&path, "expected an object")),
        }
    }

    fn at(&self, field: &str) -> String {
        join(&self.path, field)
    }

    /// Fails on a field that is neither `known` (read by the caller) nor `ignored` (Caddy
    /// fields that do not matter to selection).
    pub(crate) fn only(&self, known: &[&str], ignored: &[&str]) -> Result<(), Error> {
        for field in self.map.keys() {
            if !known.contains(&field.as_str()) && !ignored.contains(&field.as_str()) {
                return Err(error(&self.at(field), "unknown field"));
            }
        }
        Ok(())
    }

    pub(crate) fn has(&self, field: &str) -> bool {
        self.map.get(field).is_some_and(|v| !v.is_null())
    }

    pub(crate) fn value(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub(crate) fn str(&self, field: &str) -> Result<Option<&'a str>, Error> {
        match self.value(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(error(&self.at(field), "expected a string")),
        }
    }

    pub(crate) fn required_str(&self, field: &str) -> Result<&'a str, Error> {
        self.str(field)?.ok_or_else(|| error(&self.at(field), "required"))
    }

    pub(crate) fn bool(&self, field: &str) -> Result<Option<bool>, Error> {
        match self.value(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(error(&self.at(field), "expected true or false")),
        }
    }

    pub(crate) fn u32(&self, field: &str) -> Result<Option<u32>, Error> {
        match self.value(field) {
            None => Ok(None),
            Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Ok(Some(n)),
                None => Err(error(&self.at(field), "expected an integer from 0 to 4294967295")),
            },
        }
    }

    pub(crate) fn duration(&self, field: &str) -> Result<Option<Duration>, Error> {
        match self.value(field) {
            None => Ok(None),
            Some(v) => duration(v).map(Some).map_err(|why| error(&self.at(field), why)),
        }
    }

    pub(crate) fn obj(&self, field: &str) -> Result<Option<Obj<'a>>, Error> {
        self.value(field).map(|v| Obj::new(v, self.at(field))).transpose()
    }

    /// The elements of an array field, each with its path.
    pub(crate) fn array(&self, field: &str) -> Result<Vec<(String, &'a Value)>, Error> {
        match self.value(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(list)) => {
                Ok(list.iter().enumerate().map(|(i, v)| (format!("{}[{i}]", self.at(field)), v)).collect())
            }
            Some(_) => Err(error(&self.at(field), "expected an array")),
        }
    }

    /// An array of strings.
    pub(crate) fn strings(&self, field: &str) -> Result<Vec<String>, Error> {
        self.array(field)?
            .into_iter()
            .map(|(path, v)| v.as_str().map(str::to_owned).ok_or_else(|| error(&path, "expected a string")))
            .collect()
    }
}

/// A duration as Caddy writes it: an integer of nanoseconds, or a Go duration string
/// (`"30s"`, `"1m30s"`, `"500ms"`, `"1.5h"`, `"2d"`; units ns, us, µs, ms, s, m, h, d).
pub(crate) fn duration(v: &Value) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration: nanoseconds, or a string such as \"30s\" or \"1m30s\"";
    match v {
        Value::Number(n) => n.as_u64().map(Duration::from_nanos).ok_or_else(|| EXPECTED.to_owned()),
        Value::String(s) => parse_duration(s).ok_or_else(|| format!("{s:?}: {EXPECTED}")),
        _ => Err(EXPECTED.to_owned()),
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_caddy_writes_them() {
        let d = |v: Value| duration(&v);
        assert_eq!(d(Value::from(30_000_000_000u64)), Ok(Duration::from_secs(30)));
        assert_eq!(d(Value::from("30s")), Ok(Duration::from_secs(30)));
        assert_eq!(d(Value::from("1m30s")), Ok(Duration::from_secs(90)));
        assert_eq!(d(Value::from("500ms")), Ok(Duration::from_millis(500)));
        assert_eq!(d(Value::from("1.5h")), Ok(Duration::from_secs(5400)));
        assert_eq!(d(Value::from("2d")), Ok(Duration::from_secs(172_800)));
        assert_eq!(d(Value::from("250us")), Ok(Duration::from_micros(250)));
        assert_eq!(d(Value::from("0")), Ok(Duration::ZERO));
        for bad in ["", "30", "s", "3x", "-1s", "1..2s"] {
            assert!(d(Value::from(bad)).is_err(), "{bad}");
        }
        assert!(d(Value::from(-1)).is_err());
        assert!(d(Value::from(true)).is_err());
    }
}
