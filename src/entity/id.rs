//! Ids as the tables store them: a UUID in its hyphenated lower-case text (a `VARCHAR(36)` on
//! both engines, as the migrations made the columns). sea-orm would bind a plain [`Uuid`] as a
//! 16-byte BLOB on SQLite and as a `uuid` on PostgreSQL, neither of which the columns hold, so
//! the entities use these value types: the rows keep their text, and no caller parses it.

use std::fmt;
use std::str::FromStr;

use sea_orm::{DbErr, DeriveValueType, TryFromU64};
use uuid::Uuid;

/// A row's id, or an id that points to another row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, DeriveValueType)]
#[sea_orm(
    value_type = "String",
    column_type = "String(sea_orm::sea_query::StringLen::N(36))"
)]
pub struct Id(pub Uuid);

impl Id {
    /// A new random id (v4).
    pub fn new_v4() -> Self {
        Self(Uuid::new_v4())
    }

    /// The UUID.
    pub const fn uuid(self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for Id {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl From<Id> for Uuid {
    fn from(id: Id) -> Self {
        id.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for Id {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Ids are made by hookgate, never by the database.
impl TryFromU64 for Id {
    fn try_from_u64(_: u64) -> Result<Self, DbErr> {
        Err(DbErr::ConvertFromU64("Id"))
    }
}

/// An id that may be absent, stored as the empty text when it is (the columns are `NOT NULL`:
/// a sync request an admin asked for has no receiver).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, DeriveValueType)]
#[sea_orm(value_type = "String")]
pub struct OptionalId(pub Option<Uuid>);

impl From<Option<Uuid>> for OptionalId {
    fn from(id: Option<Uuid>) -> Self {
        Self(id)
    }
}

impl fmt::Display for OptionalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => id.hyphenated().fmt(f),
            None => Ok(()),
        }
    }
}

impl FromStr for OptionalId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" => Ok(Self(None)),
            s => Uuid::parse_str(s).map(|id| Self(Some(id))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_stored_as_hyphenated_lower_case_text() {
        let id = Id::from(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef));
        let stored = sea_orm::Value::from(id);
        assert_eq!(
            stored,
            sea_orm::Value::String(Some("01234567-89ab-cdef-0123-456789abcdef".to_owned()))
        );
        assert_eq!(
            <Id as sea_orm::sea_query::ValueType>::try_from(stored).unwrap(),
            id
        );
    }

    #[test]
    fn an_absent_id_is_stored_as_empty_text() {
        assert_eq!(
            sea_orm::Value::from(OptionalId(None)),
            sea_orm::Value::String(Some(String::new()))
        );
        assert_eq!("".parse::<OptionalId>().unwrap(), OptionalId(None));
    }
}
