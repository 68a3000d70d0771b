//! SQLite's memory from mimalloc, the allocator the rest of the process uses, instead of the C
//! library's `malloc`.
//!
//! SQLite allocates as it goes: every value of every row sqlx copies out of a statement, and a
//! page-sized buffer for each temporary b-tree a statement opens (an `IN (...)` list, a sort,
//! the statement journal of a multi-row `INSERT`). Profiling a worker draining a backlog showed
//! glibc's `malloc`, `free` and `malloc_consolidate` under those calls, on the one thread every
//! SQLite statement runs on, at several per cent of the process's CPU; mimalloc does the same
//! for less.
//!
//! SQLite takes its allocator only before it first starts (`sqlite3_config` must precede
//! `sqlite3_initialize`, which opening a connection does), and only while no other thread uses
//! SQLite: so [`use_mimalloc`] is called by the `hookgate` command first thing, before it opens a
//! database. A process that opened SQLite before keeps the C library's allocator; it is told so.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

use libmimalloc_sys as mi;
use libsqlite3_sys as ffi;

/// Blocks SQLite has asked of mimalloc ([`allocations`]).
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// How many blocks SQLite has asked of mimalloc: 0 while it uses the C library's allocator.
/// It is how a test sees that SQLite took this one.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

unsafe extern "C" fn malloc(n: c_int) -> *mut c_void {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    // SQLite never asks for a negative size; a zero-sized answer is still a distinct pointer.
    unsafe { mi::mi_malloc(usize::try_from(n).unwrap_or(0)) }
}

unsafe extern "C" fn free(p: *mut c_void) {
    unsafe { mi::mi_free(p) }
}

unsafe extern "C" fn realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    unsafe { mi::mi_realloc(p, usize::try_from(n).unwrap_or(0)) }
}

unsafe extern "C" fn size(p: *mut c_void) -> c_int {
    // SQLite asks only of its own allocations, which are under 2 GiB (its own limit).
    c_int::try_from(unsafe { mi::mi_usable_size(p) }).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn roundup(n: c_int) -> c_int {
    let n = usize::try_from(n).unwrap_or(0);
    c_int::try_from(unsafe { mi::mi_good_size(n) }).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

/// Gives SQLite mimalloc as its allocator. `Err` with SQLite's code when it refuses (it has
/// started already: a database was opened first): it then keeps the one it has, and works as
/// before.
///
/// Call it before any thread opens an SQLite database: SQLite's configuration is not guarded
/// against another thread starting SQLite at the same time.
pub fn use_mimalloc() -> Result<(), c_int> {
    // The methods SQLite calls; it copies them before `sqlite3_config` returns.
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(malloc),
        xFree: Some(free),
        xRealloc: Some(realloc),
        xSize: Some(size),
        xRoundup: Some(roundup),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: `methods` is a valid `sqlite3_mem_methods` whose functions keep SQLite's
    // contract (8-byte aligned blocks, `size` of a live block, `free`/`realloc` of blocks they
    // made), and SQLite copies it. SQLite refuses, rather than
    // misbehaves, when it has started already. That no other thread is starting SQLite
    // meanwhile is the caller's part (see above).
    let code = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &raw const methods) };
    if code == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(code)
    }
}
