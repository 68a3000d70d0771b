//! The memory allocator's settings. `hookgate` allocates with mimalloc (see `main.rs`), whose
//! version 3 keeps memory a thread has freed for a second (its `purge_delay`, 1,000 ms) before it
//! gives it back to the system, in case it is asked for again. The delivery worker frees a whole
//! claimed batch at a time (bodies of up to `--worker-batch-bytes`, their parsed payloads and the
//! rows read for them) and claims the next at once, often on another thread: with a second's delay
//! several batches' memory stays resident, and the peak RSS with it (a closed loop of 16
//! connections for 10 s, one body over 1,000 pull requests, the worker on: a peak of 104 to 131 MB
//! against 96 to 98 MB with the delay at 100 ms). [`tune`] shortens the delay.

use std::os::raw::c_long;

/// How long freed memory is kept before it is given back: long enough that a batch's memory is
/// reused by the next request or batch on the same thread, short enough that several batches'
/// worth is never resident at once. (At 10 ms, mimalloc version 2's delay, the closed loop lost
/// about 5 % of its rate to the system calls that give memory back; at 100 ms, nothing
/// measurable.)
pub const PURGE_DELAY_MS: c_long = 100;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, version 3): the crate names only some of
/// its options.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`], unless the operator set
/// `MIMALLOC_PURGE_DELAY` (mimalloc reads its options from the environment at start): their
/// setting stands. Returns the delay in force.
pub fn tune() -> c_long {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mimalloc's options may be set at any time, from any thread; the purge delay
        // is read each time freed memory is scheduled to be given back.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    purge_delay_ms()
}

/// mimalloc's purge delay in force, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    // SAFETY: reading an option has no precondition.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tune_shortens_mimallocs_purge_delay_from_its_default() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            panic!("this test reads mimalloc's default: run it without MIMALLOC_PURGE_DELAY");
        }
        // The option read is the purge delay: version 3's default for it.
        assert_eq!(purge_delay_ms(), 1000);
        assert_eq!(tune(), PURGE_DELAY_MS);
        assert_eq!(purge_delay_ms(), 100);
    }
}
