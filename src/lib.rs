//! hookgate: a webhook receiver for code hosts. `app` builds the whole service; `main` and the
//! integration tests both start it there. docs/architecture.md is the longer map (one delivery's
//! path, the storage, the locks and gates the code relies on).
//!
//! # Layout
//!
//! A delivery enters at [`ingress`] (the HTTP side: routes and status codes, the delivery and
//! trigger handlers, the limits that keep it fair per client, the server loop, per-request
//! observation), which asks [`receivers`] (the registry and its cache) who it is for and
//! [`hosts`] (pure: headers and bytes in, a verdict, the event and its effects out) whether it is
//! genuine and what it means, then commits it to [`deliveries`] (the delivery log, group commit,
//! and the worker that processes it). The worker hands each delivery's effects to [`sync`]
//! (repositories, changesets and their timeline, sync requests, and the event feed `Watch`
//! streams). [`health`] reads a receiver's health from the delivery log and from what the ingress
//! answered without storing anything (duplicates, rate-limited requests, unknown receiver ids),
//! and words its diagnosis. [`admin`] maps the gRPC API onto those stores and nothing else;
//! [`cli`] is the same binary as a client of that API, and [`console`] serves web pages over the
//! same services, called in-process. Beneath them: [`entity`] (the typed tables), [`db`] (connecting,
//! migrating, SQLite's write lock), [`store`] (errors and paging every store shares),
//! [`secret_key`] (receiver secrets sealed at rest), [`config`] (every setting and its default),
//! [`time`] (the one time type). Private to the crate: `metrics` (counting and `/metrics`),
//! `text` (the cap of every stored text), `data_dir` (the private data directory).
//!
//! Public are the modules the binary, the integration tests, the load generator and the fuzz
//! targets use.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod console;
mod data_dir;
pub mod db;
pub mod deliveries;
pub mod entity;
pub mod health;
pub mod hosts;
pub mod ingress;
pub mod logging;
pub mod memory;
mod metrics;
pub mod receivers;
pub mod secret_key;
pub mod sqlite_writer;
pub mod store;
pub mod sync;
mod text;
pub mod time;
