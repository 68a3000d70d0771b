//! [`Id`]: a row's UUID as the entities hold it. The id columns were made as text (`VARCHAR(36)`
//! on both engines) holding the hyphenated lower-case form, and a bare [`Uuid`] would not bind
//! as that: sqlx binds one as a 16-byte BLOB on SQLite and as the `uuid` type on PostgreSQL,
//! which a text column neither matches nor equals. So an id is bound and read as its text here,
//! once, and the rest of the code holds a parsed UUID.

use std::fmt;
use std::str::FromStr;

use sea_orm::DeriveValueType;
use uuid::Uuid;

/// The id of a row: a UUID, stored as its hyphenated lower-case text (`VARCHAR(36)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, DeriveValueType)]
#[sea_orm(
    value_type = "String",
    column_type = "String(sea_orm::sea_query::StringLen::N(36))"
)]
pub struct Id(Uuid);

impl Id {
    /// The UUID.
    pub const fn uuid(self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for Id {
    fn from(id: Uuid) -> Self {
        Id(id)
    }
}

/// A primary key sea-orm could take from an auto-increment counter; an id never is one.
impl sea_orm::TryFromU64 for Id {
    fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
        Err(sea_orm::DbErr::ConvertFromU64("Id"))
    }
}

/// The stored text, as written: hyphenated, lower-case.
impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// Reads the stored text back.
impl FromStr for Id {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Id)
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
}
