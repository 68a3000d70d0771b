//! hookgate: a webhook receiver for code hosts. See DESIGN.md for the map; `app` builds the whole
//! service, and `main` and the integration tests both start it through there.

pub mod admin;
pub mod app;
pub mod config;
pub mod db;
pub mod entity;
pub mod ingress;
pub mod receivers;
pub mod time;
