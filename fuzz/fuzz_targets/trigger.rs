//! A call to a generic trigger: `hookgate::ingress::trigger::scope` on the body and the `?repository=`
//! parameter (see `hookgate_fuzz::trigger`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hookgate_fuzz::trigger(data));
