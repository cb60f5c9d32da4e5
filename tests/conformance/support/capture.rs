//! A subscriber that records what the client traces, for one test: every
//! span's name and fields (as recorded at its start and later), every
//! event's level, message, fields and the span it belongs to.
//!
//! [`Capture::start`] sets it as the test thread's default until its guard
//! drops; the client hands it on to the tasks it spawns (connects, drivers),
//! so a test sees its own client's spans and events and no other test's.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// One span: its name and the fields it was given a value for.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    pub name: &'static str,
    pub fields: BTreeMap<String, String>,
}

impl SpanRecord {
    /// The value of field `name`, as text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// One event: its level, message, fields, and the span it belongs to (its
/// explicit parent or the span current where it happened).
#[derive(Clone, Debug)]
pub struct EventRecord {
    pub level: Level,
    pub message: String,
    pub fields: BTreeMap<String, String>,
    /// The index of its span in [`Capture::spans`].
    pub span: Option<usize>,
}

impl EventRecord {
    /// The value of field `name`, as text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Recorded {
    spans: Vec<SpanRecord>,
    /// A live span's index in `spans` (the subscriber reuses ids).
    live: HashMap<Id, usize>,
    events: Vec<EventRecord>,
}

/// What one test's client traced.
#[derive(Clone, Default)]
pub struct Capture {
    recorded: Arc<Mutex<Recorded>>,
}

impl Capture {
    /// Records what this thread, and the client's tasks it spawns, trace
    /// until the guard drops.
    pub fn start() -> (Capture, tracing::subscriber::DefaultGuard) {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        (capture, tracing::subscriber::set_default(subscriber))
    }

    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every span so far, in the order they started.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.lock().spans.clone()
    }

    /// The spans named `name`.
    pub fn spans_named(&self, name: &str) -> Vec<SpanRecord> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<EventRecord> {
        self.lock().events.clone()
    }

    /// The events whose message is `message`, with the name of their span.
    pub fn events_saying(&self, message: &str) -> Vec<(EventRecord, Option<SpanRecord>)> {
        let recorded = self.lock();
        recorded
            .events
            .iter()
            .filter(|e| e.message == message)
            .map(|e| (e.clone(), e.span.map(|i| recorded.spans[i].clone())))
            .collect()
    }
}

/// Collects fields as text.
struct Fields<'a> {
    fields: &'a mut BTreeMap<String, String>,
    message: Option<&'a mut String>,
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: String) {
        match (&mut self.message, field.name()) {
            (Some(message), "message") => **message = value,
            _ => {
                self.fields.insert(field.name().to_owned(), value);
            }
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut span = SpanRecord {
            name: attrs.metadata().name(),
            fields: BTreeMap::new(),
        };
        attrs.record(&mut Fields {
            fields: &mut span.fields,
            message: None,
        });
        let mut recorded = self.lock();
        let index = recorded.spans.len();
        recorded.spans.push(span);
        recorded.live.insert(id.clone(), index);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut recorded = self.lock();
        let Some(&index) = recorded.live.get(id) else {
            return;
        };
        values.record(&mut Fields {
            fields: &mut recorded.spans[index].fields,
            message: None,
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut record = EventRecord {
            level: *event.metadata().level(),
            message: String::new(),
            fields: BTreeMap::new(),
            span: None,
        };
        event.record(&mut Fields {
            fields: &mut record.fields,
            message: Some(&mut record.message),
        });
        let parent = ctx.event_span(event).map(|s| s.id());
        let mut recorded = self.lock();
        record.span = parent.and_then(|id| recorded.live.get(&id).copied());
        recorded.events.push(record);
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        self.lock().live.remove(&id);
    }
}
