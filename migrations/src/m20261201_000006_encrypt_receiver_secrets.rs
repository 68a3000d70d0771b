//! Receiver secrets encrypted at rest: the id of the key each sealed value is encrypted under,
//! beside it, and the record of the key in force.
//!
//! The ciphertexts themselves go into the existing `secret` and `previous_secret` columns (as
//! base64): a row whose key id is NULL still holds the plain text an older hookgate wrote, and
//! `serve` encrypts every such value at start-up, once it has the key. This migration cannot do
//! that itself, because migrations never see the key.

use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Receivers {
    Table,
    SecretKeyId,
    PreviousSecretKeyId,
}

#[derive(DeriveIden)]
enum SecretKey {
    Table,
    Id,
    KeyId,
    UpdateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [Receivers::SecretKeyId, Receivers::PreviousSecretKeyId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Receivers::Table)
                        .add_column(string_len_null(column, 16))
                        .to_owned(),
                )
                .await?;
        }
        // One row at most (id 1): the key id every secret in the database is encrypted under.
        // `serve` writes it on first start, `rotate-key` changes it; a replica holding another
        // key refuses to start.
        manager
            .create_table(
                Table::create()
                    .table(SecretKey::Table)
                    .if_not_exists()
                    .col(integer(SecretKey::Id).primary_key())
                    .col(string_len(SecretKey::KeyId, 16))
                    .col(big_integer(SecretKey::UpdateTime))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Going back would leave ciphertext where an older hookgate expects the secret itself,
        // and no migration holds the key to decrypt it.
        let sealed = manager
            .get_connection()
            .query_one_raw(Statement::from_string(
                manager.get_database_backend(),
                "SELECT 1 FROM receivers WHERE secret_key_id IS NOT NULL OR previous_secret_key_id IS NOT NULL LIMIT 1",
            ))
            .await?;
        if sealed.is_some() {
            return Err(DbErr::Migration(
                "receiver secrets are encrypted: an older hookgate cannot read them, so this \
                 migration is not undone; delete the receivers (or restore a backup from before \
                 the upgrade) first"
                    .to_owned(),
            ));
        }
        manager
            .drop_table(Table::drop().table(SecretKey::Table).to_owned())
            .await?;
        for column in [Receivers::PreviousSecretKeyId, Receivers::SecretKeyId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Receivers::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
