//! What a delivery's body is read into. The worker needs what its effects read: all of it
//! ([`Value`]), or for GitHub only the keys its effects read ([`Kept`]); the ingress needs only to know that the body is the JSON object its event
//! must be and the action that names the event ([`Outline`]). Reading an outline checks the
//! whole body, with the same nesting limit, but builds nothing but the action (and the few
//! top-level fields Azure DevOps names its event and its delivery by): it costs a fraction of
//! building the value, which is what keeps intake fast.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::ClassifyError;

/// Visitor methods taking every scalar (string, number, boolean, null) to `$value`.
macro_rules! scalars_are {
    ($value:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// A body read as its event needs it.
pub trait Payload: Sized {
    /// Reads the body of an `event` delivery, which must be a JSON object.
    fn parse(event: &str, body: &[u8]) -> Result<Self, ClassifyError>;
    /// Reads a body that need not be JSON (a ping's): what it holds if it is JSON, else nothing.
    fn lenient(body: &[u8]) -> Self;
    /// The body's top-level `action`, when it is a string (GitHub).
    fn action(&self) -> Option<&str>;
    /// The body's `object_attributes.action`, when it is a string (GitLab).
    fn attributes_action(&self) -> Option<&str>;
    /// The body's top-level `eventType`, when it is a string (Azure DevOps, which sends no
    /// event header).
    fn event_type(&self) -> Option<&str>;
    /// The body's top-level field `name`, one of [`KEY_FIELDS`], as text: a string as it is, an
    /// integer in decimal; `None` for anything else (Azure DevOps keys a delivery by them).
    fn key_field(&self, name: &str) -> Option<String>;
}

/// The top-level fields [`Payload::key_field`] reads: Azure DevOps' `subscriptionId`,
/// `notificationId` and `id`.
pub const KEY_FIELDS: [&str; 3] = ["subscriptionId", "notificationId", "id"];

/// The message of a body that is not the JSON object its event must be.
fn not_json(event: &str, e: &serde_json::Error) -> ClassifyError {
    ClassifyError::BadBody(format!("body of a {event} event must be JSON: {e}"))
}

fn not_an_object(event: &str) -> ClassifyError {
    ClassifyError::BadBody(format!("body of a {event} event must be a JSON object"))
}

impl Payload for Value {
    fn parse(event: &str, body: &[u8]) -> Result<Self, ClassifyError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| not_json(event, &e))?;
        if !value.is_object() {
            return Err(not_an_object(event));
        }
        Ok(value)
    }

    fn lenient(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    }

    fn action(&self) -> Option<&str> {
        self.get("action").and_then(Value::as_str)
    }

    fn attributes_action(&self) -> Option<&str> {
        self.get("object_attributes")
            .and_then(|attributes| attributes.get("action"))
            .and_then(Value::as_str)
    }

    fn event_type(&self) -> Option<&str> {
        self.get("eventType").and_then(Value::as_str)
    }

    fn key_field(&self, name: &str) -> Option<String> {
        if !KEY_FIELDS.contains(&name) {
            return None;
        }
        match self.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            _ => None,
        }
    }
}

/// A body checked to be a JSON object, of which only what names the event (and keys an Azure
/// DevOps delivery) is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    action: Option<String>,
    attributes_action: Option<String>,
    event_type: Option<String>,
    /// The [`KEY_FIELDS`], in that order, as [`Payload::key_field`] reads them.
    key_fields: [Option<String>; 3],
}

impl Payload for Outline {
    fn parse(event: &str, body: &[u8]) -> Result<Self, ClassifyError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let outline = match de.deserialize_any(OutlineVisitor) {
            Ok(Some(outline)) => outline,
            Ok(None) => return Err(not_an_object(event)),
            Err(e) => return Err(not_json(event, &e)),
        };
        // Nothing but whitespace may follow, as `serde_json::from_slice` insists.
        de.end().map_err(|e| not_json(event, &e))?;
        Ok(outline)
    }

    fn lenient(_: &[u8]) -> Self {
        Outline::default()
    }

    fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    fn attributes_action(&self) -> Option<&str> {
        self.attributes_action.as_deref()
    }

    fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    fn key_field(&self, name: &str) -> Option<String> {
        let index = KEY_FIELDS.iter().position(|field| *field == name)?;
        self.key_fields[index].clone()
    }
}

/// Reads a top-level value: `Some(outline)` for an object, `None` for any other JSON value.
struct OutlineVisitor;

impl<'de> Visitor<'de> for OutlineVisitor {
    type Value = Option<Outline>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut outline = Outline::default();
        while let Some(key) = map.next_key_seed(KeyName)? {
            match key {
                Key::Action => outline.action = map.next_value_seed(MAYBE_STRING)?,
                Key::ObjectAttributes => {
                    outline.attributes_action = map.next_value_seed(AttributesAction)?
                }
                Key::EventType => outline.event_type = map.next_value_seed(MAYBE_STRING)?,
                Key::DeliveryField(i) => outline.key_fields[i] = map.next_value_seed(MAYBE_TEXT)?,
                Key::Other => map.next_value_seed(Skip)?,
            }
        }
        Ok(Some(outline))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip.visit_seq(seq).map(|()| None)
    }

    scalars_are!(None);
}

/// The keys an outline keeps, and the rest.
enum Key {
    Action,
    ObjectAttributes,
    EventType,
    /// One of [`KEY_FIELDS`], by its index.
    DeliveryField(usize),
    Other,
}

/// Reads an object key without keeping it.
struct KeyName;

impl<'de> DeserializeSeed<'de> for KeyName {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyName {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "action" => Key::Action,
            "object_attributes" => Key::ObjectAttributes,
            "eventType" => Key::EventType,
            other => match KEY_FIELDS.iter().position(|field| *field == other) {
                Some(i) => Key::DeliveryField(i),
                None => Key::Other,
            },
        })
    }
}

/// Reads `object_attributes`, keeping its `action` when that is a string.
struct AttributesAction;

impl<'de> DeserializeSeed<'de> for AttributesAction {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttributesAction {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut action = None;
        while let Some(key) = map.next_key_seed(KeyName)? {
            match key {
                Key::Action => action = map.next_value_seed(MAYBE_STRING)?,
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(action)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip.visit_seq(seq).map(|()| None)
    }

    scalars_are!(None);
}

/// Reads any value, keeping it only if it is a string, or (with `integers`) an integer, in
/// decimal (as [`Payload::key_field`] of a [`Value`] does).
#[derive(Clone, Copy)]
struct MaybeText {
    integers: bool,
}

/// A string, and nothing else.
const MAYBE_STRING: MaybeText = MaybeText { integers: false };
/// A string as it is, or an integer in decimal.
const MAYBE_TEXT: MaybeText = MaybeText { integers: true };

impl<'de> DeserializeSeed<'de> for MaybeText {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MaybeText {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.integers.then(|| v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.integers.then(|| v.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Skip.visit_map(map).map(|()| None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip.visit_seq(seq).map(|()| None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Reads any value and keeps nothing. Unlike [`IgnoredAny`] on its own, it goes into arrays and
/// objects through the deserializer, so serde_json's nesting limit (128) applies as it does to
/// [`Value`]: a body the worker could not read is refused at the ingress too.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    scalars_are!(());
}

/// The names of the object keys a host's effects read, at any depth: what a [`Kept`] body keeps.
pub trait Vocabulary {
    /// Sorted and without repeats (those sharing a first byte are then side by side).
    const KEYS: &'static [&'static str];
    /// For each first byte, where the keys of [`Vocabulary::KEYS`] that start with it are.
    const BY_FIRST_BYTE: [(u8, u8); 256] = by_first_byte(Self::KEYS);

    /// Whether `key` is one of [`Vocabulary::KEYS`]: a look at the few that share its first
    /// byte, of its length (every key of a body is looked up, so this is kept cheap).
    fn names(key: &str) -> bool {
        let Some(&first) = key.as_bytes().first() else {
            return false;
        };
        let (start, end) = Self::BY_FIRST_BYTE[usize::from(first)];
        Self::KEYS[usize::from(start)..usize::from(end)]
            .iter()
            .any(|k| k.len() == key.len() && k.as_bytes() == key.as_bytes())
    }
}

/// For each first byte, the range of `keys` (sorted, at most 255) that start with it.
const fn by_first_byte(keys: &[&str]) -> [(u8, u8); 256] {
    assert!(keys.len() < 256, "a vocabulary has fewer than 256 keys");
    let mut ranges = [(0u8, 0u8); 256];
    let mut i = 0;
    while i < keys.len() {
        let bytes = keys[i].as_bytes();
        assert!(!bytes.is_empty(), "no key of a vocabulary is empty");
        let first = bytes[0] as usize;
        if ranges[first].1 == 0 {
            ranges[first].0 = i as u8;
        }
        ranges[first].1 = i as u8 + 1;
        i += 1;
    }
    ranges
}

/// A body read as a [`Value`] that keeps, at any depth, only the object keys its host's
/// effects read (`V`), with all they hold but keys of other names. The rest is skipped as
/// serde_json skips what it ignores, building nothing and checking only its syntax: a pull
/// request event of 28 KB is mostly URLs and counts of its repositories and users that no effect
/// reads. What is skipped was read in full when the delivery arrived (the ingress's
/// [`Outline`], as strictly as a [`Value`]: the same nesting limit, strings of valid UTF-8 and
/// escapes, numbers in range), so the worker does not check it again. A key is matched by name
/// alone, wherever it is, so a host module that reads a key by a name it spells out keeps it:
/// the host's test of its vocabulary checks that every name its source spells is in `V`.
pub struct Kept<V> {
    pub value: Value,
    vocabulary: PhantomData<V>,
}

impl<V: Vocabulary> Kept<V> {
    /// Reads `body` keeping what `V` names; nothing but whitespace may follow the value, as
    /// `serde_json::from_slice` insists.
    fn read(body: &[u8]) -> Result<Value, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let value = de.deserialize_any(Keep::<V>(PhantomData))?;
        de.end()?;
        Ok(value)
    }
}

impl<V: Vocabulary> Payload for Kept<V> {
    fn parse(event: &str, body: &[u8]) -> Result<Self, ClassifyError> {
        let value = Self::read(body).map_err(|e| not_json(event, &e))?;
        if !value.is_object() {
            return Err(not_an_object(event));
        }
        Ok(Self::from(value))
    }

    fn lenient(body: &[u8]) -> Self {
        Self::from(Self::read(body).unwrap_or(Value::Null))
    }

    fn action(&self) -> Option<&str> {
        self.value.action()
    }

    fn attributes_action(&self) -> Option<&str> {
        self.value.attributes_action()
    }

    fn event_type(&self) -> Option<&str> {
        self.value.event_type()
    }

    fn key_field(&self, name: &str) -> Option<String> {
        self.value.key_field(name)
    }
}

impl<V> From<Value> for Kept<V> {
    fn from(value: Value) -> Self {
        Self {
            value,
            vocabulary: PhantomData,
        }
    }
}

/// Reads any value into a [`Value`], keeping only the object keys `V` names.
struct Keep<V>(PhantomData<V>);

impl<V> Clone for Keep<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for Keep<V> {}

impl<'de, V: Vocabulary> DeserializeSeed<'de> for Keep<V> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, V: Vocabulary> Visitor<'de> for Keep<V> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = serde_json::Map::new();
        while let Some(key) = map.next_key_seed(KeptName::<V>(PhantomData))? {
            match key {
                Some(key) => {
                    kept.insert(key, map.next_value_seed(self)?);
                }
                // Skipped at serde_json's fastest: its syntax is checked, not every rule the
                // ingress checked it by (see `Kept`).
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // As `Value` reads one: a float JSON cannot hold is null.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// Reads an object key: `Some(key)` when `V` names it, else `None`, without making a `String`
/// of it.
struct KeptName<V>(PhantomData<V>);

impl<'de, V: Vocabulary> DeserializeSeed<'de> for KeptName<V> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, V: Vocabulary> Visitor<'de> for KeptName<V> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(V::names(key).then(|| key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What reading `body` as a value says: the action, the attributes' action, or the error.
    fn by_value(body: &[u8]) -> Result<(Option<String>, Option<String>), ClassifyError> {
        let v = Value::parse("e", body)?;
        Ok((
            v.action().map(str::to_owned),
            v.attributes_action().map(str::to_owned),
        ))
    }

    fn by_outline(body: &[u8]) -> Result<(Option<String>, Option<String>), ClassifyError> {
        let o = Outline::parse("e", body)?;
        Ok((
            o.action().map(str::to_owned),
            o.attributes_action().map(str::to_owned),
        ))
    }

    /// The `eventType` and the [`KEY_FIELDS`] a payload reads.
    fn azure_fields<P: Payload>(p: &P) -> (Option<String>, Vec<Option<String>>) {
        (
            p.event_type().map(str::to_owned),
            KEY_FIELDS.iter().map(|f| p.key_field(f)).collect(),
        )
    }

    #[test]
    fn an_outline_says_what_the_value_says_of_every_fixture() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut seen = 0;
        for host in std::fs::read_dir(&dir).unwrap() {
            let host = host.unwrap().path();
            if !host.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&host).unwrap() {
                let body = std::fs::read(file.unwrap().path()).unwrap();
                assert_eq!(by_outline(&body), by_value(&body));
                if let (Ok(o), Ok(v)) = (Outline::parse("e", &body), Value::parse("e", &body)) {
                    assert_eq!(azure_fields(&o), azure_fields(&v));
                }
                seen += 1;
            }
        }
        assert!(seen > 40, "{seen} fixtures");
    }

    #[test]
    fn an_outline_refuses_what_the_value_refuses_with_the_same_message() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        let cases: [&[u8]; 12] = [
            b"",
            b"not json",
            b"[1, 2]",
            b"\"a string\"",
            b"42",
            b"null",
            b"{\"action\": \"opened\"",
            b"{\"action\": \"opened\"} trailing",
            b"{\"a\": 1,}",
            b"{\"action\": \"\\ud800\"}",
            b"\xff\xfe{}",
            deep.as_bytes(),
        ];
        for body in cases {
            let (outline, value) = (by_outline(body), by_value(body));
            assert!(outline.is_err(), "{:?}", String::from_utf8_lossy(body));
            assert_eq!(outline, value, "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn only_string_actions_name_an_event() {
        let body =
            br#"{"action": 3, "object_attributes": {"action": ["open"]}, "x": {"action": "no"}}"#;
        assert_eq!(by_outline(body).unwrap(), (None, None));
        let body = br#"{"object_attributes": {"iid": 1, "action": "merge"}, "action": "closed"}"#;
        assert_eq!(
            by_outline(body).unwrap(),
            (Some("closed".into()), Some("merge".into()))
        );
    }

    #[test]
    fn azure_fields_are_read_as_text_only_from_strings_and_integers() {
        let body = br#"{"eventType": "git.push", "subscriptionId": "s-1", "notificationId": 7,
            "id": 1.5, "x": {"eventType": "no"}}"#;
        let expected = (
            Some("git.push".to_owned()),
            vec![Some("s-1".to_owned()), Some("7".to_owned()), None],
        );
        assert_eq!(azure_fields(&Outline::parse("e", body).unwrap()), expected);
        assert_eq!(azure_fields(&Value::parse("e", body).unwrap()), expected);
        let body = br#"{"eventType": 3, "subscriptionId": ["a"], "notificationId": null}"#;
        let none = (None, vec![None, None, None]);
        assert_eq!(azure_fields(&Outline::parse("e", body).unwrap()), none);
        assert_eq!(azure_fields(&Value::parse("e", body).unwrap()), none);
    }
}
