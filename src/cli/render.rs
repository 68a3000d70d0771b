//! How the client subcommands print: aligned tables and `key: value` blocks for people, and the
//! proto3 JSON form of the API's messages for scripts. prost's types carry no serde here, so the
//! JSON is written by the small mappings of each resource's module with the helpers below,
//! following the proto3 JSON mapping (lowerCamelCase names, enums by name, int64 as strings,
//! bytes as base64, Timestamp as RFC 3339, Duration as "1.5s"); unset messages are left out,
//! every other field is always present, so a script finds the same keys every time.

use serde_json::Value;

use crate::admin::proto;

/// Columns of text, each as wide as its widest cell, two spaces apart.
pub struct Table {
    /// Column titles, upper-case.
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the table on stdout (the titles alone when there is no row).
    pub fn print(&self) {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let mut out = String::new();
            for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<width$}  "));
                }
            }
            out!("{}", out.trim_end());
        };
        line(self.headers.clone());
        for row in &self.rows {
            line(row.iter().map(String::as_str).collect());
        }
    }
}

/// One `key: value` line per field, the values aligned.
#[derive(Default)]
pub struct Fields {
    lines: Vec<(&'static str, String)>,
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    pub fn add(mut self, key: &'static str, value: impl Into<String>) -> Fields {
        self.lines.push((key, value.into()));
        self
    }

    /// Prints the fields on stdout.
    pub fn print(&self) {
        let width = self
            .lines
            .iter()
            .map(|(k, _)| k.len() + 1)
            .max()
            .unwrap_or(0);
        for (key, value) in &self.lines {
            out!("{:<width$} {value}", format!("{key}:"));
        }
    }
}

/// Writes one line on stdout. When the reader has gone (a pipe into `head`), nothing more can be
/// shown: the process ends there with success, as with any Unix tool.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// Prints a JSON document on stdout, indented.
pub fn print_json(value: &Value) {
    out!(
        "{}",
        serde_json::to_string_pretty(value).expect("a serde_json::Value always serialises")
    );
}

/// A JSON object of `fields`, leaving out the null ones (unset messages).
pub fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

/// An int64 as proto3 JSON writes it: a string, since JSON numbers lose precision past 2^53.
pub fn int64(n: i64) -> Value {
    Value::String(n.to_string())
}

/// A list of strings as a JSON array.
pub fn strings(list: &[String]) -> Value {
    Value::from(list.to_vec())
}

/// A Timestamp in RFC 3339 (UTC, fractional seconds only when there are some), or null if unset.
pub fn time_json(time: &Option<prost_types::Timestamp>) -> Value {
    match time.as_ref().and_then(datetime) {
        Some(t) => Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => Value::Null,
    }
}

/// A Timestamp for people: RFC 3339 to the second, or `-` if unset.
pub fn time(time: &Option<prost_types::Timestamp>) -> String {
    match time.as_ref().and_then(datetime) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => "-".to_owned(),
    }
}

fn datetime(time: &prost_types::Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).ok()?)
}

/// A Duration as proto3 JSON writes it ("60s", "1.500s"), or null if unset.
pub fn duration_json(duration: &Option<prost_types::Duration>) -> Value {
    match duration {
        Some(d) if d.nanos == 0 => Value::String(format!("{}s", d.seconds)),
        Some(d) => Value::String(format!("{}.{:09}s", d.seconds, d.nanos.unsigned_abs())),
        None => Value::Null,
    }
}

/// A Duration for people ("1m 30s"), `0s` if unset.
pub fn duration(duration: &Option<prost_types::Duration>) -> String {
    let d = duration.unwrap_or_default();
    let std = std::time::Duration::new(
        u64::try_from(d.seconds).unwrap_or(0),
        u32::try_from(d.nanos).unwrap_or(0),
    );
    humantime::format_duration(std).to_string()
}

/// A std duration as a protobuf Duration.
pub fn proto_duration(d: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).expect("sub-second nanos fit an i32"),
    }
}

/// A protobuf enum of `hookgate.v1`, named in JSON by its full name and in tables and flags
/// without its prefix (`CODE_HOST_KIND_GITHUB` is `GITHUB`, and `--kind github`).
pub trait ProtoEnum: Sized + TryFrom<i32> + Into<i32> + Copy {
    /// What every value's name starts with.
    const PREFIX: &'static str;
    fn name(self) -> &'static str;
    fn from_name(name: &str) -> Option<Self>;
}

macro_rules! proto_enums {
    ($($ty:ident => $prefix:literal),* $(,)?) => {
        $(
            impl ProtoEnum for proto::$ty {
                const PREFIX: &'static str = $prefix;
                fn name(self) -> &'static str {
                    self.as_str_name()
                }
                fn from_name(name: &str) -> Option<Self> {
                    Self::from_str_name(name)
                }
            }
        )*
    };
}

proto_enums!(
    CodeHostKind => "CODE_HOST_KIND_",
    DeliveryState => "DELIVERY_STATE_",
    ChangesetState => "CHANGESET_STATE_",
    ReviewState => "REVIEW_STATE_",
    CheckState => "CHECK_STATE_",
    SyncRequestState => "SYNC_REQUEST_STATE_",
    EventKind => "EVENT_KIND_",
    Diagnosis => "DIAGNOSIS_",
    ReceiverView => "RECEIVER_VIEW_",
);

/// An enum value in JSON: its full name, or its number if this build does not know it.
pub fn enum_json<E: ProtoEnum>(raw: i32) -> Value {
    match E::try_from(raw) {
        Ok(value) => Value::String(value.name().to_owned()),
        Err(_) => Value::from(raw),
    }
}

/// An enum value for people: its name without the prefix (`GITHUB`), or its number.
pub fn enum_short<E: ProtoEnum>(raw: i32) -> String {
    match E::try_from(raw) {
        Ok(value) => value
            .name()
            .strip_prefix(E::PREFIX)
            .unwrap_or(value.name())
            .to_owned(),
        Err(_) => raw.to_string(),
    }
}

/// Parses an enum flag value: `github`, `GITHUB` or `CODE_HOST_KIND_GITHUB` (dashes for
/// underscores allowed); the unspecified value is refused. For clap's `value_parser`.
pub fn parse_enum<E: ProtoEnum>(given: &str) -> Result<i32, String> {
    let upper = given.trim().to_ascii_uppercase().replace('-', "_");
    let full = if upper.starts_with(E::PREFIX) {
        upper
    } else {
        format!("{}{upper}", E::PREFIX)
    };
    match E::from_name(&full) {
        Some(value) if !full.ends_with("_UNSPECIFIED") => Ok(value.into()),
        _ => {
            let known: Vec<String> = (1..64)
                .filter_map(|raw| E::try_from(raw).ok())
                .map(|value| enum_short::<E>(value.into()).to_ascii_lowercase())
                .collect();
            Err(format!("unknown value: give one of {}", known.join(", ")))
        }
    }
}

/// Bytes as proto3 JSON writes them: standard base64.
pub fn bytes_json(bytes: &[u8]) -> Value {
    use base64::Engine as _;
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Shortens `text` to at most `max` characters, marking the cut with `…`.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `yes` or `no`.
pub fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// A list for people: comma-separated, or `fallback` when empty.
pub fn list_or(list: &[String], fallback: &str) -> String {
    if list.is_empty() {
        fallback.to_owned()
    } else {
        list.join(", ")
    }
}

/// `text`, or `-` when it is empty.
pub fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}
