//! Logging set up the way the Go services configure logrus.
//!
//! - `logging.level` takes logrus level names: `debug`, `info`, `warn`/`warning`, `error`,
//!   `fatal`, `panic` (the last two map to tracing's `ERROR`). A number is rejected, as Go
//!   rejects it. The default is `error`, as in Go.
//! - `-logf` selects the format: `json` (Go's default: `{"level":..,"msg":..,"time":..}`),
//!   `logfmt` (`time=... level=info msg="..." key=value`) or `text` (tracing's own).
//! - Output goes to stderr, like logrus, through a buffered writer on its own thread
//!   (`tracing_appender::non_blocking`): formatting stays on the request's thread, the write
//!   does not, so a slow or blocked stderr never stalls a worker. Lines reach that thread in
//!   batches ([`batch`]), at the latest [`batch::BATCH_INTERVAL`] after they were logged.
//!   When its queue of [`LOG_BUFFER_BATCHES`] batches is full, lines are dropped and counted
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

pub mod batch;

/// Batches (of about [`batch::BATCH_BYTES`]) the log writer's queue holds before it drops
/// (and counts) new lines: 16 MiB.
pub const LOG_BUFFER_BATCHES: usize = 1024;

/// The installed batcher, for the drop count and [`flush`].
static BATCHER: std::sync::OnceLock<std::sync::Arc<batch::Batcher>> = std::sync::OnceLock::new();

/// Log lines dropped so far because the writer's queue was full (0 before [`init`]).
pub fn dropped_log_lines() -> u64 {
    BATCHER.get().map_or(0, |b| b.dropped_lines())
}

/// The writer thread's guard: dropping it writes out what is buffered and stops the thread.
/// Global rather than in [`LogHandle`], so that the binaries log their final error after
/// everything else is gone, then call [`flush`].
static GUARD: std::sync::Mutex<Option<tracing_appender::non_blocking::WorkerGuard>> =
    std::sync::Mutex::new(None);

/// Writes out the buffered log lines and stops the writer thread. The binaries call it last,
/// just before they exit; lines logged after it are dropped (and counted).
pub fn flush() {
    if let Some(batcher) = BATCHER.get() {
        batcher.stop();
    }
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
        .buffered_lines_limit(LOG_BUFFER_BATCHES)
        .lossy(true)
        .thread_name("log-writer")
        // Buffered: the writer thread drains its queue into one write(2) (tracing-appender
        // flushes whenever the queue is empty) instead of one per line.
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let batcher = batch::Batcher::start(writer);
    let _ = BATCHER.set(batcher.clone());
    let out = tracing_subscriber::fmt::layer().with_writer(batch::MakeBatchWriter(batcher));
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
///
/// It writes straight into the fmt layer's per-thread buffer: the event's fields go into a
/// per-thread scratch buffer that is reused, so an access-log line costs no allocation of
/// its own (no map, no per-field strings), only the copy into the writer's queue.
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
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let Scratch { fields, seen } = &mut *scratch;
            fields.clear();
            seen.clear();
            event.record(fields);
            let level = logrus_level(*event.metadata().level());
            let line = Line { json: self.json };
            TIME.with(|time| line.head(&mut writer, time.borrow_mut().now(), level, fields.msg()))?;
            for (k, v) in fields.iter() {
                line.field(&mut writer, seen, k, v)?;
            }
            // Span fields after the event's, outermost span first; a name already printed
            // (by the event or an outer span) is skipped.
            if let Some(scope) = ctx.event_scope() {
                for span in scope.from_root() {
                    let extensions = span.extensions();
                    let Some(SpanFields(recorded)) = extensions.get::<SpanFields>() else {
                        continue;
                    };
                    for (k, v) in recorded {
                        if !seen.contains(k) {
                            line.field(&mut writer, seen, k, v.as_ref())?;
                        }
                    }
                }
            }
            line.tail(&mut writer)
        })
    }
}

/// Per-thread buffers of [`GoFormat`], reused from event to event.
#[derive(Default)]
struct Scratch {
    fields: Fields,
    /// Field names already on the line.
    seen: Vec<&'static str>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
    static TIME: std::cell::RefCell<TimeCache> = std::cell::RefCell::new(TimeCache::default());
}

/// logrus' timestamp (RFC 3339, milliseconds, UTC), with the part up to the second
/// formatted once per second per thread.
#[derive(Default)]
struct TimeCache {
    second: i64,
    text: String,
}

impl TimeCache {
    fn now(&mut self) -> &str {
        let now = chrono::Utc::now();
        let second = now.timestamp();
        if self.text.is_empty() || second != self.second {
            self.second = second;
            self.text.clear();
            let _ = write!(self.text, "{}", now.format("%Y-%m-%dT%H:%M:%S"));
            self.text.push_str(".000Z");
        }
        let millis = now.timestamp_subsec_millis().min(999);
        let digits = [
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
        ];
        let at = self.text.len() - 4;
        self.text
            .replace_range(at..at + 3, std::str::from_utf8(&digits).unwrap_or("000"));
        &self.text
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

/// One field value as recorded.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    I64(i64),
    U64(u64),
    Bool(bool),
}

/// A field value borrowed for writing: span fields own their strings, the event's live in
/// the scratch buffer.
#[derive(Debug, Clone, Copy)]
enum ValueRef<'a> {
    Str(&'a str),
    I64(i64),
    U64(u64),
    Bool(bool),
}

impl Value {
    fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Str(s) => ValueRef::Str(s),
            Value::I64(n) => ValueRef::I64(*n),
            Value::U64(n) => ValueRef::U64(*n),
            Value::Bool(b) => ValueRef::Bool(*b),
        }
    }
}

/// A span's fields, kept in its extensions by [`SpanFieldsLayer`].
struct SpanFields(Vec<(&'static str, Value)>);

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
            span.extensions_mut()
                .insert(SpanFields(fields.into_owned()));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(SpanFields(recorded)) => {
                for (k, v) in fields.into_owned() {
                    match recorded.iter_mut().find(|(own, _)| *own == k) {
                        Some(slot) => slot.1 = v,
                        None => recorded.push((k, v)),
                    }
                }
            }
            None => extensions.insert(SpanFields(fields.into_owned())),
        }
    }
}

/// A recorded field: strings are ranges of [`Fields::text`].
#[derive(Debug, Clone)]
enum Slot {
    Str(std::ops::Range<usize>),
    I64(i64),
    U64(u64),
    Bool(bool),
}

/// The fields of one event; `message` becomes logrus' `msg`. All text goes into one
/// buffer, so recording needs no allocation once the buffer has grown.
#[derive(Debug, Default)]
struct Fields {
    text: String,
    msg: std::ops::Range<usize>,
    others: Vec<(&'static str, Slot)>,
}

impl Fields {
    fn clear(&mut self) {
        self.text.clear();
        self.msg = 0..0;
        self.others.clear();
    }

    fn msg(&self) -> &str {
        &self.text[self.msg.clone()]
    }

    fn get(&self, slot: &Slot) -> ValueRef<'_> {
        match slot {
            Slot::Str(r) => ValueRef::Str(&self.text[r.clone()]),
            Slot::I64(n) => ValueRef::I64(*n),
            Slot::U64(n) => ValueRef::U64(*n),
            Slot::Bool(b) => ValueRef::Bool(*b),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&'static str, ValueRef<'_>)> + '_ {
        self.others.iter().map(|(k, slot)| (*k, self.get(slot)))
    }

    /// The fields with their own strings, to keep beyond the event (span fields).
    fn into_owned(self) -> Vec<(&'static str, Value)> {
        self.others
            .iter()
            .map(|(k, slot)| {
                let v = match slot {
                    Slot::Str(r) => Value::Str(self.text[r.clone()].to_string()),
                    Slot::I64(n) => Value::I64(*n),
                    Slot::U64(n) => Value::U64(*n),
                    Slot::Bool(b) => Value::Bool(*b),
                };
                (*k, v)
            })
            .collect()
    }

    fn push_text(&mut self, field: &Field, range: std::ops::Range<usize>) {
        if field.name() == "message" {
            self.msg = range;
        } else {
            self.others.push((field.name(), Slot::Str(range)));
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let start = self.text.len();
        let _ = write!(self.text, "{value:?}");
        let end = self.text.len();
        self.push_text(field, start..end);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let start = self.text.len();
        self.text.push_str(value);
        let end = self.text.len();
        self.push_text(field, start..end);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.others.push((field.name(), Slot::I64(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.others.push((field.name(), Slot::U64(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.others.push((field.name(), Slot::Bool(value)));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let start = self.text.len();
        let _ = write!(self.text, "{value}");
        let end = self.text.len();
        self.push_text(field, start..end);
    }
}

/// Lets serde_json's string escaper write into a `fmt::Write`. serde_json writes the
/// unescaped runs of a `&str` between ASCII escape points, so every chunk is UTF-8.
struct FmtIo<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> std::io::Write for FmtIo<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let s = std::str::from_utf8(buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.0
            .write_str(s)
            .map_err(|_| std::io::Error::other("log writer refused the line"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_str<W: fmt::Write + ?Sized>(w: &mut W, s: &str) -> fmt::Result {
    serde_json::to_writer(FmtIo(w), s).map_err(|_| fmt::Error)
}

/// Writes one line, JSON (`{"level":..,"msg":..,"time":..,<fields>}`) or logfmt
/// (`time=... level=... msg=... key=value ...`).
#[derive(Clone, Copy)]
struct Line {
    json: bool,
}

impl Line {
    fn head<W: fmt::Write + ?Sized>(
        self,
        w: &mut W,
        time: &str,
        level: &str,
        msg: &str,
    ) -> fmt::Result {
        if self.json {
            w.write_str("{\"level\":")?;
            json_str(w, level)?;
            w.write_str(",\"msg\":")?;
            json_str(w, msg)?;
            w.write_str(",\"time\":")?;
            json_str(w, time)
        } else {
            w.write_str("time=")?;
            logfmt_value(w, time)?;
            write!(w, " level={level} msg=")?;
            logfmt_value(w, msg)
        }
    }

    /// One field. In JSON a name like one of logrus' own keys, or one already on the line,
    /// goes under `fields.<name>`, as logrus does.
    fn field<W: fmt::Write + ?Sized>(
        self,
        w: &mut W,
        seen: &mut Vec<&'static str>,
        key: &'static str,
        value: ValueRef<'_>,
    ) -> fmt::Result {
        let clash = seen.contains(&key);
        seen.push(key);
        if self.json {
            w.write_char(',')?;
            if clash || matches!(key, "level" | "msg" | "time") {
                w.write_str("\"fields.")?;
                // Field names are Rust identifiers: nothing to escape.
                w.write_str(key)?;
                w.write_char('"')?;
            } else {
                json_str(w, key)?;
            }
            w.write_char(':')?;
            match value {
                ValueRef::Str(s) => json_str(w, s),
                ValueRef::I64(n) => write!(w, "{n}"),
                ValueRef::U64(n) => write!(w, "{n}"),
                ValueRef::Bool(b) => write!(w, "{b}"),
            }
        } else {
            write!(w, " {key}=")?;
            match value {
                ValueRef::Str(s) => logfmt_value(w, s),
                // Digits, '-', "true" and "false" are all bare for logrus.
                ValueRef::I64(n) => write!(w, "{n}"),
                ValueRef::U64(n) => write!(w, "{n}"),
                ValueRef::Bool(b) => write!(w, "{b}"),
            }
        }
    }

    fn tail<W: fmt::Write + ?Sized>(self, w: &mut W) -> fmt::Result {
        if self.json {
            w.write_char('}')?;
        }
        w.write_char('\n')
    }
}

/// Whether logrus prints the value without quotes.
fn logfmt_bare(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+' | ':')
        })
}

/// Writes a value, quoted unless it consists only of characters logrus leaves bare.
fn logfmt_value<W: fmt::Write + ?Sized>(w: &mut W, s: &str) -> fmt::Result {
    if logfmt_bare(s) {
        w.write_str(s)
    } else {
        write!(w, "{s:?}")
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
        let mut f = Fields::default();
        let text = |f: &mut Fields, s: &str| {
            let start = f.text.len();
            f.text.push_str(s);
            Slot::Str(start..f.text.len())
        };
        if let Slot::Str(r) = text(&mut f, "listening on 127.0.0.1:7899") {
            f.msg = r;
        }
        let key_id = text(&mut f, "abc");
        let level = text(&mut f, "x");
        let reason = text(&mut f, "bad \"cert\"");
        f.others = vec![
            ("key_id", key_id),
            ("count", Slot::I64(3)),
            ("level", level),
            ("reason", reason),
        ];
        f
    }

    fn render(json: bool, time: &str, level: &str, fields: &Fields) -> String {
        let line = Line { json };
        let mut out = String::new();
        let mut seen = Vec::new();
        line.head(&mut out, time, level, fields.msg()).unwrap();
        for (k, v) in fields.iter() {
            line.field(&mut out, &mut seen, k, v).unwrap();
        }
        line.tail(&mut out).unwrap();
        assert!(out.ends_with('\n'));
        out.pop();
        out
    }

    fn render_json(time: &str, level: &str, fields: &Fields) -> String {
        render(true, time, level, fields)
    }

    fn render_logfmt(time: &str, level: &str, fields: &Fields) -> String {
        render(false, time, level, fields)
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
        // Byte for byte what logrus' JSON formatter (and our earlier serde_json map) wrote.
        assert_eq!(
            line,
            r#"{"level":"info","msg":"listening on 127.0.0.1:7899","time":"2024-01-01T00:00:00.000Z","key_id":"abc","count":3,"fields.level":"x","reason":"bad \"cert\""}"#
        );
    }

    #[test]
    fn json_strings_are_escaped_whole() {
        let mut f = Fields::default();
        f.text
            .push_str("tab\there \u{1} \"q\" \\ caf\u{e9} \u{1F512}");
        f.msg = 0..f.text.len();
        let line = render_json("t", "info", &f);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["msg"], "tab\there \u{1} \"q\" \\ caf\u{e9} \u{1F512}");
        assert!(
            line.contains(r#"tab\there \u0001 \"q\" \\ café 🔒"#),
            "{line}"
        );
    }

    #[test]
    fn time_is_rfc3339_with_milliseconds() {
        let mut cache = TimeCache::default();
        for _ in 0..3 {
            let before = chrono::Utc::now();
            let text = cache.now().to_string();
            let after = chrono::Utc::now();
            let parsed = chrono::DateTime::parse_from_rfc3339(&text).unwrap();
            assert_eq!(text.len(), "2024-01-01T00:00:00.000Z".len(), "{text}");
            assert!(text.ends_with('Z'));
            let ms = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis();
            assert!(ms(before) <= parsed.timestamp_millis(), "{text}");
            assert!(parsed.timestamp_millis() <= ms(after), "{text}");
            std::thread::sleep(std::time::Duration::from_millis(7));
        }
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
        let mut empty = String::new();
        logfmt_value(&mut empty, "").unwrap();
        assert_eq!(empty, r#""""#);
    }
}
