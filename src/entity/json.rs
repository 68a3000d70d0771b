//! JSON columns as the tables store them: the JSON's text in a `TEXT` column (on both engines, as
//! the migrations made them). sea-orm's own JSON values bind as `jsonb` on PostgreSQL, which a
//! `TEXT` column does not take; [`Json`] binds the text, so a row reads and writes as its type
//! and the stored text stays what `serde_json` has always written.

use std::sync::Arc;

use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, IntoActiveValue, QueryResult, TryGetError, TryGetable, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value of type `T`, stored as its JSON text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: Serialize> From<Json<T>> for Value {
    fn from(json: Json<T>) -> Value {
        Value::String(Some(serde_json::to_string(&json.0).expect(
            "stored JSON is lists and maps with string keys, which always serialise",
        )))
    }
}

impl<T: DeserializeOwned> TryGetable for Json<T> {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        let text = String::try_get_by(res, idx)?;
        serde_json::from_str(&text).map(Json).map_err(|e| {
            TryGetError::DbErr(DbErr::TryIntoErr {
                from: "JSON text",
                into: std::any::type_name::<T>(),
                source: Arc::new(e),
            })
        })
    }
}

impl<T: Serialize + DeserializeOwned> ValueType for Json<T> {
    fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
        let text = <String as ValueType>::try_from(v)?;
        serde_json::from_str(&text)
            .map(Json)
            .map_err(|_| ValueTypeErr)
    }

    fn type_name() -> String {
        format!("Json<{}>", std::any::type_name::<T>())
    }

    fn array_type() -> ArrayType {
        ArrayType::String
    }

    fn column_type() -> ColumnType {
        ColumnType::Text
    }
}

impl<T> Nullable for Json<T> {
    fn null() -> Value {
        Value::String(None)
    }
}

impl<T: Serialize> IntoActiveValue<Json<T>> for Json<T> {
    fn into_active_value(self) -> sea_orm::ActiveValue<Json<T>> {
        sea_orm::ActiveValue::Set(self)
    }
}
