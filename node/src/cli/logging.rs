//! Logging set-up for `basalt start`: a tracing `EnvFilter` from `log_level`, plain or JSON lines per
//! `log_format`.
//!
//! The workspace's tracing-subscriber has no `json` feature, so JSON lines are produced by a small
//! [`JsonFormat`]: one object per event with `timestamp` (RFC 3339, UTC, microseconds), `level`,
//! `target`, `fields` (the event's fields, `message` included) and `spans` (names, outermost first).

use std::fmt;
use std::io::IsTerminal as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, ConfigError, LogFormat};

/// Installs the global subscriber for `config`. Fails if `log_level` is not a valid filter (naming the
/// field) or a subscriber is already installed.
pub fn init(config: &Config) -> Result<(), ConfigError> {
    let (level, format) = crate::runtime::settings::log_settings(config);
    let filter = EnvFilter::try_new(&level).map_err(|e| ConfigError::Field {
        field: "log_level".to_owned(),
        reason: format!("{level:?} is not a log filter: {e}"),
    })?;
    // Colour codes only for a terminal: logs redirected to a file or collector stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.event_format(JsonFormat).try_init(),
    };
    result.map_err(|e| ConfigError::Field {
        field: "log_format".to_owned(),
        reason: format!("cannot install the log subscriber: {e}"),
    })
}

/// Formats each event as one JSON object per line.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonFormat;

impl<S, N> FormatEvent<S, N> for JsonFormat
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
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let spans: Vec<serde_json::Value> = ctx
            .event_scope()
            .map(|scope| {
                scope
                    .from_root()
                    .map(|span| serde_json::Value::from(span.name()))
                    .collect()
            })
            .unwrap_or_default();
        let metadata = event.metadata();
        let line = serde_json::json!({
            "timestamp": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
            "level": metadata.level().as_str(),
            "target": metadata.target(),
            "fields": serde_json::Value::Object(fields.0),
            "spans": spans,
        });
        writeln!(writer, "{line}")
    }
}

/// Collects an event's fields into a JSON object (numbers and booleans stay typed).
#[derive(Default)]
struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
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
    fn json_lines_carry_level_target_and_typed_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .event_format(JsonFormat)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("height");
            let _guard = span.enter();
            tracing::warn!(height = 7u64, ok = true, peer = "p", "committed");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["message"], "committed");
        assert_eq!(line["fields"]["height"], 7);
        assert_eq!(line["fields"]["ok"], true);
        assert_eq!(line["fields"]["peer"], "p");
        assert_eq!(line["spans"][0], "height");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
