//! Logging set up the way the Go services configure logrus.
//!
//! - `logging.level` takes logrus level names: `debug`, `info`, `warn`/`warning`, `error`,
//!   `fatal`, `panic` (the last two map to tracing's `ERROR`). A number is rejected, as Go
//!   rejects it. The default is `error`, as in Go.
//! - `-logf` selects the format: `json` (Go's default: `{"level":..,"msg":..,"time":..}`),
//!   `logfmt` (`time=... level=info msg="..." key=value`) or `text` (tracing's own).
//! - Output goes to stderr, like logrus, through a buffered writer on its own thread
//!   (`tracing_appender::non_blocking`): formatting stays on the request's thread, the write
//!   does not, so a slow or blocked stderr never stalls a worker. When the buffer of
//!   [`LOG_BUFFER_LINES`] lines is full, lines are dropped and counted
//!   ([`dropped_log_lines`]) rather than waited for. [`flush`] writes out the rest at exit.
//!
//! - Fields of the spans an event happens in (e.g. the server's `request_id`) are printed
//!   with the event's own, innermost span last; a field the event itself sets wins.
//!
//! [`init`] returns a [`LogHandle`] that can raise or lower the level at run time, which the
//! binaries wire to SIGUSR1/SIGUSR2 as Go does.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Layer, Registry};

/// Errors from [`parse_level`], [`LogFormat::from_str`] and [`init`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// Not a logrus level name (message as Go prints it).
    #[error("not a valid logrus Level: {0:?}")]
    InvalidLevel(String),
    /// Unknown `-logf` value.
    #[error("invalid log format {0:?}: expected json, logfmt or text")]
    InvalidFormat(String),
    /// A global subscriber was already installed.
    #[error("logging already initialised: {0}")]
    AlreadyInitialised(String),
}

/// Parses a logrus level name (case-insensitive) into a tracing level filter.
pub fn parse_level(name: &str) -> Result<LevelFilter, LoggingError> {
    match name.to_ascii_lowercase().as_str() {
        "trace" => Ok(LevelFilter::TRACE),
        "debug" => Ok(LevelFilter::DEBUG),
        "info" => Ok(LevelFilter::INFO),
        "warn" | "warning" => Ok(LevelFilter::WARN),
        "error" | "fatal" | "panic" => Ok(LevelFilter::ERROR),
        _ => Err(LoggingError::InvalidLevel(name.to_string())),
    }
}

/// Log line format, chosen by `-logf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line with logrus' keys `level`, `msg`, `time` (Go's default).
    #[default]
    Json,
    /// logrus' text format: `time="..." level=info msg="..." key=value`.
    Logfmt,
    /// tracing-subscriber's human-readable format.
    Text,
}

impl FromStr for LogFormat {
    type Err = LoggingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "logfmt" => Ok(Self::Logfmt),
            "text" => Ok(Self::Text),
            _ => Err(LoggingError::InvalidFormat(s.to_string())),
        }
    }
}

/// Lines the log writer's buffer holds before it drops (and counts) new ones.
pub const LOG_BUFFER_LINES: usize = 128_000;

/// The installed writer's drop counter, for the metrics of whichever binary installed it.
static DROPPED: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter> =
    std::sync::OnceLock::new();

/// Log lines dropped so far because the writer's buffer was full (0 before [`init`]).
pub fn dropped_log_lines() -> u64 {
    DROPPED.get().map_or(0, |d| d.dropped_lines() as u64)
}

/// The writer thread's guard: dropping it writes out what is buffered and stops the thread.
/// Global rather than in [`LogHandle`], so that the binaries log their final error after
/// everything else is gone, then call [`flush`].
static GUARD: std::sync::Mutex<Option<tracing_appender::non_blocking::WorkerGuard>> =
    std::sync::Mutex::new(None);

/// Writes out the buffered log lines and stops the writer thread. The binaries call it last,
/// just before they exit; lines logged after it are dropped (and counted).
pub fn flush() {
    let guard = GUARD.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(guard);
}

/// Changes the level of the installed subscriber at run time.
#[derive(Clone)]
pub struct LogHandle {
    handle: reload::Handle<LevelFilter, Registry>,
}

impl fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogHandle")
            .field("level", &self.current())
            .finish()
    }
}

// Most verbose last; raising moves right, lowering moves left.
const LADDER: [LevelFilter; 5] = [
    LevelFilter::ERROR,
    LevelFilter::WARN,
    LevelFilter::INFO,
    LevelFilter::DEBUG,
    LevelFilter::TRACE,
];

impl LogHandle {
    /// The current level.
    pub fn current(&self) -> LevelFilter {
        self.handle.clone_current().unwrap_or(LevelFilter::ERROR)
    }

    /// Sets the level.
    pub fn set(&self, level: LevelFilter) {
        let _ = self.handle.reload(level);
    }

    /// One step more verbose (Go: SIGUSR1). Returns the new level.
    pub fn raise(&self) -> LevelFilter {
        self.step(1)
    }

    /// One step less verbose (Go: SIGUSR2). Returns the new level.
    pub fn lower(&self) -> LevelFilter {
        self.step(-1)
    }

    fn step(&self, delta: isize) -> LevelFilter {
        let next = step_level(self.current(), delta);
        self.set(next);
        next
    }
}

fn step_level(current: LevelFilter, delta: isize) -> LevelFilter {
    let pos = LADDER.iter().position(|l| *l == current).unwrap_or(0) as isize;
    LADDER[(pos + delta).clamp(0, LADDER.len() as isize - 1) as usize]
}

/// Installs the global subscriber writing to stderr.
///
/// Chatty transport crates (h2, hyper, tower, rustls) are capped at `info` so that `debug`
/// shows the service's own events.
pub fn init(level: LevelFilter, format: LogFormat) -> Result<LogHandle, LoggingError> {
    let (filter, handle) = reload::Layer::new(level);
    let noise = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("h2", LevelFilter::INFO)
        .with_target("hyper", LevelFilter::INFO)
        .with_target("hyper_util", LevelFilter::INFO)
        .with_target("tower", LevelFilter::INFO)
        .with_target("rustls", LevelFilter::INFO)
        .with_target("tokio_util", LevelFilter::INFO);
    let base = tracing_subscriber::registry()
        .with(filter)
        .with(noise)
        .with(SpanFieldsLayer);
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .lossy(true)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    let dropped = writer.error_counter();
    let _ = DROPPED.set(dropped);
    let out = tracing_subscriber::fmt::layer().with_writer(writer);
    let result = match format {
        LogFormat::Json => base
            .with(out.event_format(GoFormat { json: true }).boxed())
            .try_init(),
        LogFormat::Logfmt => base
            .with(out.event_format(GoFormat { json: false }).boxed())
            .try_init(),
        LogFormat::Text => base.with(out.with_ansi(false).boxed()).try_init(),
    };
    result.map_err(|e| LoggingError::AlreadyInitialised(e.to_string()))?;
    *GUARD.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard);
    Ok(LogHandle { handle })
}

/// logrus-style event formatter, JSON or logfmt.
#[derive(Debug, Clone, Copy)]
pub struct GoFormat {
    /// JSON (true) or logfmt (false).
    pub json: bool,
}

impl<S, N> FormatEvent<S, N> for GoFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(SpanFields(recorded)) = span.extensions().get::<SpanFields>() {
                    for (k, v) in recorded {
                        if !fields.others.iter().any(|(own, _)| own == k) {
                            fields.others.push((k.clone(), v.clone()));
                        }
                    }
                }
            }
        }
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let level = logrus_level(*event.metadata().level());
        let line = if self.json {
            render_json(&time, level, &fields)
        } else {
            render_logfmt(&time, level, &fields)
        };
        writeln!(writer, "{line}")
    }
}

fn logrus_level(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warning",
        Level::ERROR => "error",
    }
}

/// A span's fields, kept in its extensions by [`SpanFieldsLayer`].
struct SpanFields(Vec<(String, serde_json::Value)>);

/// Records every span's fields so that [`GoFormat`] can print them with the events inside
/// the span (tracing-subscriber keeps them only pre-formatted in its own text format).
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanFieldsLayer;

impl<S> Layer<S> for SpanFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.others));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(SpanFields(recorded)) => {
                for (k, v) in fields.others {
                    match recorded.iter_mut().find(|(own, _)| *own == k) {
                        Some(slot) => slot.1 = v,
                        None => recorded.push((k, v)),
                    }
                }
            }
            None => extensions.insert(SpanFields(fields.others)),
        }
    }
}

/// The fields of one event; `message` becomes logrus' `msg`.
#[derive(Debug, Default)]
struct Fields {
    msg: String,
    others: Vec<(String, serde_json::Value)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.others
                .push((field.name().to_string(), serde_json::Value::from(value)));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.others
            .push((field.name().to_string(), serde_json::Value::from(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.others
            .push((field.name().to_string(), serde_json::Value::from(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.others
            .push((field.name().to_string(), serde_json::Value::from(value)));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &value.to_string());
    }
}

fn render_json(time: &str, level: &str, fields: &Fields) -> String {
    let mut map = serde_json::Map::new();
    map.insert("level".into(), level.into());
    map.insert("msg".into(), fields.msg.clone().into());
    map.insert("time".into(), time.into());
    for (k, v) in &fields.others {
        // logrus puts clashing user fields under "fields.<name>".
        let key = if map.contains_key(k) {
            format!("fields.{k}")
        } else {
            k.clone()
        };
        map.insert(key, v.clone());
    }
    serde_json::Value::Object(map).to_string()
}

fn render_logfmt(time: &str, level: &str, fields: &Fields) -> String {
    let mut line = format!(
        "time={} level={} msg={}",
        logfmt_value(time),
        level,
        logfmt_value(&fields.msg)
    );
    for (k, v) in &fields.others {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = write!(line, " {k}={}", logfmt_value(&text));
    }
    line
}

/// Quotes a value unless it consists only of characters logrus leaves bare.
fn logfmt_value(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+' | ':')
        });
    if bare {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logrus_level_names() {
        assert_eq!(parse_level("debug").unwrap(), LevelFilter::DEBUG);
        assert_eq!(parse_level("INFO").unwrap(), LevelFilter::INFO);
        assert_eq!(parse_level("warn").unwrap(), LevelFilter::WARN);
        assert_eq!(parse_level("warning").unwrap(), LevelFilter::WARN);
        assert_eq!(parse_level("error").unwrap(), LevelFilter::ERROR);
        assert_eq!(parse_level("fatal").unwrap(), LevelFilter::ERROR);
        assert_eq!(parse_level("panic").unwrap(), LevelFilter::ERROR);
        let err = parse_level("2").unwrap_err();
        assert_eq!(err.to_string(), r#"not a valid logrus Level: "2""#);
    }

    #[test]
    fn log_formats() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("logfmt".parse::<LogFormat>().unwrap(), LogFormat::Logfmt);
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert!("xml".parse::<LogFormat>().is_err());
    }

    #[test]
    fn level_steps_clamp_at_the_ends() {
        assert_eq!(step_level(LevelFilter::ERROR, 1), LevelFilter::WARN);
        assert_eq!(step_level(LevelFilter::ERROR, -1), LevelFilter::ERROR);
        assert_eq!(step_level(LevelFilter::DEBUG, 1), LevelFilter::TRACE);
        assert_eq!(step_level(LevelFilter::TRACE, 1), LevelFilter::TRACE);
        assert_eq!(step_level(LevelFilter::INFO, -1), LevelFilter::WARN);
    }

    fn sample() -> Fields {
        Fields {
            msg: "listening on 127.0.0.1:7899".into(),
            others: vec![
                ("key_id".into(), "abc".into()),
                ("count".into(), 3.into()),
                ("level".into(), "x".into()),
                ("reason".into(), "bad \"cert\"".into()),
            ],
        }
    }

    #[test]
    fn json_lines_use_logrus_keys() {
        let line = render_json("2024-01-01T00:00:00.000Z", "info", &sample());
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "info");
        assert_eq!(v["msg"], "listening on 127.0.0.1:7899");
        assert_eq!(v["time"], "2024-01-01T00:00:00.000Z");
        assert_eq!(v["count"], 3);
        assert_eq!(v["fields.level"], "x");
    }

    /// Collects what the formatter writes.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn span_fields_are_printed_with_events_and_event_fields_win() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(SpanFieldsLayer).with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .event_format(GoFormat { json: true }),
        );
        tracing::subscriber::with_default(subscriber, || {
            let outer =
                tracing::error_span!("request", request_id = "r-1", gun = tracing::field::Empty);
            let _o = outer.enter();
            outer.record("gun", "example.com/app");
            let inner = tracing::error_span!("sign", key_id = "k");
            let _i = inner.enter();
            tracing::error!(attempt = 2, "inside");
            tracing::error!(request_id = "own", "overridden");
        });
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {});
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["msg"], "inside");
        assert_eq!(lines[0]["request_id"], "r-1");
        assert_eq!(lines[0]["gun"], "example.com/app");
        assert_eq!(lines[0]["key_id"], "k");
        assert_eq!(lines[0]["attempt"], 2);
        assert_eq!(lines[1]["request_id"], "own");
    }

    #[test]
    fn logfmt_lines_quote_when_needed() {
        let line = render_logfmt("2024-01-01T00:00:00.000Z", "warning", &sample());
        assert_eq!(
            line,
            r#"time=2024-01-01T00:00:00.000Z level=warning msg="listening on 127.0.0.1:7899" key_id=abc count=3 level=x reason="bad \"cert\"""#
        );
        assert_eq!(logfmt_value(""), r#""""#);
    }
}
