//! hookgate: a webhook receiver for code hosts. See docs/architecture.md for the map; `app` builds the whole
//! service, and `main` and the integration tests both start it through there.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod db;
pub mod deliveries;
pub mod entity;
pub mod hosts;
pub mod ingress;
pub mod logging;
pub mod metrics;
pub mod receivers;
pub mod secret_key;
pub mod store;
pub mod sync;
pub mod text;
pub mod time;
