//! Diagnostics on stderr: the library's `tracing` events (recovery repairs, refusals,
//! compaction, view rebuilds, checkpoint failures) reach the operator as
//! `reel: warning: ...` lines. `RUST_LOG` filters them in `target=level,...` form
//! (`RUST_LOG=debug`, `RUST_LOG=reel_log=debug,warn`); the default is `warn` (`info` for
//! `reel serve`).

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the stderr subscriber. A malformed `RUST_LOG` is reported and ignored.
/// `default` is the level without `RUST_LOG` (`reel serve` logs its start and stop).
pub fn init(default: Level) {
    let default = || Targets::new().with_default(default);
    let mut bad = None;
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => s.parse::<Targets>().unwrap_or_else(|e| {
            bad = Some(format!(
                "ignoring RUST_LOG={s:?} ({e}); expected target=level,..."
            ));
            default()
        }),
        _ => default(),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .event_format(Lines);
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
    if let Some(msg) = bad {
        tracing::warn!("{msg}");
    }
}

/// `reel: warning: message (field=value ...)`; below info level with the target too.
struct Lines;

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(w, "reel: {level}: ")?;
        if *meta.level() > Level::INFO {
            write!(w, "[{}] ", meta.target())?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(w, "{}", span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(w, "{{{fields}}}")?;
                }
                write!(w, ": ")?;
            }
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}
