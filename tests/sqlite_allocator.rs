//! SQLite's allocator (`db::sqlite_alloc`). Its own test binary: SQLite takes an allocator only
//! before it first starts, once per process, so nothing else may open a database here first.

use hookgate::db::{self, sqlite_alloc};
use sea_orm::{ConnectionTrait, Statement};

#[tokio::test]
async fn sqlite_allocates_from_mimalloc_when_told_before_it_starts() {
    assert_eq!(sqlite_alloc::allocations(), 0, "nothing allocated yet");
    sqlite_alloc::use_mimalloc().expect("SQLite takes the allocator before it starts");

    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("alloc.db").display()
    );
    let conn = db::connect(&url).await.unwrap();
    let started = sqlite_alloc::allocations();
    assert!(started > 0, "opening the database allocated from mimalloc");

    // Rows of every size up to a few pages, written and read back: SQLite grows and frees
    // blocks (reallocations included) through the methods it was given.
    conn.execute_unprepared("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        .await
        .unwrap();
    let txn = conn.begin_write().await.unwrap();
    for i in 0..200i64 {
        let body: Vec<u8> = (0..i * 97).map(|j| (j * 31 + i) as u8).collect();
        txn.execute_raw(Statement::from_sql_and_values(
            conn.backend(),
            "INSERT INTO blobs (id, body) VALUES (?, ?)",
            [i.into(), body.into()],
        ))
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.backend(),
            "SELECT id, body FROM blobs ORDER BY id",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 200);
    for row in rows {
        let i: i64 = row.try_get("", "id").unwrap();
        let body: Vec<u8> = row.try_get("", "body").unwrap();
        let want: Vec<u8> = (0..i * 97).map(|j| (j * 31 + i) as u8).collect();
        assert_eq!(body, want, "row {i} reads back as written");
    }
    assert!(
        sqlite_alloc::allocations() > started + 200,
        "SQLite's work allocated from mimalloc ({} blocks)",
        sqlite_alloc::allocations() - started
    );

    // Once started, SQLite refuses a new allocator (SQLITE_MISUSE) and keeps working.
    assert_eq!(sqlite_alloc::use_mimalloc(), Err(21));
    let count = conn
        .query_one_raw(Statement::from_string(
            conn.backend(),
            "SELECT COUNT(*) AS n FROM blobs",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count.try_get::<i64>("", "n").unwrap(), 200);
    conn.close().await.unwrap();
}
