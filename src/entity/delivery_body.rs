//! The `delivery_bodies` table: the request body of each delivery that has one (a rejected
//! delivery keeps none), written once at intake and deleted with its delivery.

use sea_orm::entity::prelude::*;

use super::delivery::BodyEncoding;
use super::id::Id;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_bodies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub delivery_id: Id,
    /// As stored: see `encoding`.
    pub body: Vec<u8>,
    /// `NULL`: the body as received; else how it is encoded (`deliveries::body`).
    pub encoding: Option<BodyEncoding>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
