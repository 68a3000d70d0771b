//! A delivery to a receiver of kind Azure DevOps: verify (Basic password or `X-Hook-Secret`),
//! classify (the event and key from the body) and, for a verified `Handled` event, effects (see
//! `hookgate_fuzz::deliver`).
#![no_main]

use hookgate_fuzz_input::HostKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hookgate_fuzz::deliver(HostKind::AzureDevOps, data));
