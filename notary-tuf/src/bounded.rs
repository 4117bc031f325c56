//! JSON decoding with a budget on the number of values.
//!
//! A `serde_json::Value` costs 32 bytes per array element and about 100 per object member,
//! while the text `0,` is two bytes: an upload of 100 MiB of `[0,0,...]` would decode into
//! gigabytes. Metadata files are far sparser (a targets entry is ~190 bytes for a dozen
//! values, keys and signatures are mostly long strings), so every decode of a metadata
//! file is allowed at most [`max_json_values`] values for its size, which keeps the decoded
//! form within a small multiple of the file's size.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Most JSON values (each array element, object, member name and member value counts one)
/// that a metadata file of `len` bytes may hold: one per 8 bytes, plus 4096 so that small
/// files are never refused. Real files have one value per 15 to 40 bytes.
pub fn max_json_values(len: usize) -> usize {
    len / 8 + 4096
}

/// The error text a decode gives when the budget runs out (also recognisable through
/// [`Budget::exceeded`]).
pub const TOO_MANY_VALUES: &str = "too many JSON values";

/// A count of JSON values still allowed.
#[derive(Debug)]
pub struct Budget {
    left: Cell<usize>,
    limit: usize,
    exceeded: Cell<bool>,
}

impl Budget {
    /// A budget of `limit` values.
    pub fn new(limit: usize) -> Budget {
        Budget {
            left: Cell::new(limit),
            limit,
            exceeded: Cell::new(false),
        }
    }

    /// The budget of a metadata file of `len` bytes ([`max_json_values`]).
    pub fn for_file(len: usize) -> Budget {
        Budget::new(max_json_values(len))
    }

    /// The limit this budget started with.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// True once a decode asked for more values than the limit.
    pub fn exceeded(&self) -> bool {
        self.exceeded.get()
    }

    /// Spends one value; an error once the budget is used up.
    pub fn take<E: de::Error>(&self) -> Result<(), E> {
        match self.left.get() {
            0 => {
                self.exceeded.set(true);
                Err(E::custom(TOO_MANY_VALUES))
            }
            n => {
                self.left.set(n - 1);
                Ok(())
            }
        }
    }
}

/// Decodes the whole of `bytes` (trailing whitespace only, as `serde_json::from_slice`) into
/// a `Value` exactly as `serde_json` would, spending `budget`.
pub fn value_from_slice(bytes: &[u8], budget: &Budget) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = BoundedValue(budget).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Builds a `Value` like `serde_json::Value`'s own `Deserialize` (same number handling,
/// duplicate member names: the last value wins in the first one's place), one budget unit
/// per value and per member name.
#[derive(Clone, Copy)]
pub struct BoundedValue<'b>(pub &'b Budget);

impl<'de> DeserializeSeed<'de> for BoundedValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BoundedValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        self.0.take()?;
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::String(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.take()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.0.take()?;
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            self.0.take()?;
            let value = map.next_value_seed(self)?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

/// Skips any JSON value without keeping it, spending one budget unit per value and per
/// member name (for checks that look at a few members and ignore the rest).
#[derive(Clone, Copy)]
pub struct Skip<'b>(pub &'b Budget);

impl<'de> DeserializeSeed<'de> for Skip<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // Not `deserialize_ignored_any`: serde_json skips the text there without visiting it,
        // so nothing would be counted.
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.0.take()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.0.take()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.0.take()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.0.take()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.0.take()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.take()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.0.take()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.take()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.take()?;
        while map.next_key_seed(Skip(self.0))?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_serde_json() {
        for text in [
            r#"{"a":[1,-2,3.5,1e400,null,true,"x\u00e9"],"b":{},"a":{"c":[]}}"#,
            "[18446744073709551615, -9223372036854775808, 0.1]",
            "  \"s\"  ",
        ] {
            let budget = Budget::new(1000);
            let ours = value_from_slice(text.as_bytes(), &budget);
            let theirs: serde_json::Result<Value> = serde_json::from_slice(text.as_bytes());
            assert_eq!(ours.ok(), theirs.ok(), "{text}");
        }
        assert!(value_from_slice(b"{} x", &Budget::new(10)).is_err());
    }

    #[test]
    fn budget_counts_values_and_member_names() {
        // object, 2 names, array, 2 elements, string = 7
        let text = br#"{"a":[0,1],"b":"x"}"#;
        assert!(value_from_slice(text, &Budget::new(7)).is_ok());
        let budget = Budget::new(6);
        let err = value_from_slice(text, &budget).unwrap_err();
        assert!(budget.exceeded());
        assert!(err.to_string().contains(TOO_MANY_VALUES), "{err}");

        let skip = |limit| {
            let budget = Budget::new(limit);
            let mut de = serde_json::Deserializer::from_slice(text);
            Skip(&budget)
                .deserialize(&mut de)
                .map(|()| budget.exceeded())
        };
        assert!(!skip(7).unwrap());
        assert!(skip(6).is_err());
    }
}
