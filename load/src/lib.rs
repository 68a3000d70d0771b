//! hookgate-load: the load generator and the ceiling of issue 7's benchmark. `hosts` knows what
//! each code host sends, `bodies` builds and signs the request bodies once before a run (`mix`
//! builds the realistic mix of issue 16 per request), `run`
//! sends them over keep-alive connections at a fixed concurrency or a fixed rate, `stats`
//! measures and reports, and `ceiling` is the bare HMAC-check-and-202 server hookgate is
//! compared with. `bench/run.sh` drives the binary; the tests drive these modules in-process.

pub mod bodies;
pub mod ceiling;
pub mod hosts;
pub mod mix;
pub mod run;
pub mod stats;
