//! Where log lines go and how they look. Everything logs through `tracing`; this module only
//! installs the subscriber `main` asks for. What is logged at `info` is chosen so that no
//! secret, token, trigger path or delivery body ever reaches the log at the default level
//! (`tests/observability.rs` checks it).

use tracing_subscriber::EnvFilter;

/// The shape of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (`key=value` fields), coloured on a terminal.
    Pretty,
    /// One JSON object per line, with the event's fields and the current span's (such as the
    /// delivery's `request_id`), for log collectors.
    Json,
}

/// Installs the process's subscriber: `RUST_LOG` filters when set, else `info`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
