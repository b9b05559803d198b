//! Which requests' logs are kept: the sample rate, the two callbacks that override it, and the
//! W3C trace id the decision is made on. See [`ApitallyConfig::sample_rate`].
//!
//! [`ApitallyConfig::sample_rate`]: crate::ApitallyConfig::sample_rate

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use crate::{AttributeValue, Consumer};

/// A request's headers, as the sampling callbacks (and the pipeline) read them: the first value
/// of a header by its lowercase name, when it is text. Adapters implement it for their
/// framework's header map.
pub trait RequestHeaders {
    /// The first value of the header `name` (lowercase), when it is visible ASCII or UTF-8.
    fn get(&self, name: &str) -> Option<&str>;
}

pub(crate) type RequestCallback = Arc<dyn Fn(&SampleRequest<'_>) -> Option<f64> + Send + Sync>;
pub(crate) type ResponseCallback = Arc<dyn Fn(&SampleResponse<'_>) -> Option<f64> + Send + Sync>;

/// The request a [`sample_on_request`](crate::ApitallyConfig::sample_on_request) callback
/// decides on, before the handler runs.
pub struct SampleRequest<'a> {
    method: &'a str,
    path: &'a str,
    headers: &'a dyn RequestHeaders,
    consumer: &'a dyn Fn() -> Option<Consumer>,
}

impl<'a> SampleRequest<'a> {
    /// The view an adapter hands the callback: the method, the path as requested, the headers,
    /// and how to read the consumer an outer middleware set.
    #[doc(hidden)]
    pub fn new(
        method: &'a str,
        path: &'a str,
        headers: &'a dyn RequestHeaders,
        consumer: &'a dyn Fn() -> Option<Consumer>,
    ) -> Self {
        Self {
            method,
            path,
            headers,
            consumer,
        }
    }

    /// The method.
    pub fn method(&self) -> &str {
        self.method
    }

    /// The path, as requested (no route is known before the handler).
    pub fn path(&self) -> &str {
        self.path
    }

    /// The first value of the request's header `name` (lowercase), when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The consumer an outer middleware set on the request so far, if any.
    pub fn consumer(&self) -> Option<Consumer> {
        (self.consumer)()
    }
}

/// The request a [`sample_on_response`](crate::ApitallyConfig::sample_on_response) callback
/// decides on, once its status is known.
pub struct SampleResponse<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) route: Option<&'a str>,
    pub(crate) status: u16,
    pub(crate) duration: Duration,
    pub(crate) consumer: Option<&'a Consumer>,
    pub(crate) headers: Option<&'a dyn RequestHeaders>,
    pub(crate) attributes: Option<&'a super::attributes::RequestAttributes>,
}

impl SampleResponse<'_> {
    /// The method.
    pub fn method(&self) -> &str {
        self.method
    }

    /// The path, as requested.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The route template, when routing matched one.
    pub fn route(&self) -> Option<&str> {
        self.route
    }

    /// The response's status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The time to the response head.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The request's consumer, if any.
    pub fn consumer(&self) -> Option<&Consumer> {
        self.consumer
    }

    /// The first value of the request's header `name` (lowercase), when it is text; `None`
    /// too for a request whose headers are gone (in actix-web, one that an inner middleware
    /// rejected with an `Err` or whose handler panicked).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers?.get(name)
    }

    /// The value of the request attribute `key` the app set (`set_request_attribute`), if any.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
    /// use apitally::AttributeValue;
    ///
    /// // Every request of the tenants on trial, and 1 % of the others.
    /// let config = ApitallyConfig::from_env().sample_rate(0.01).sample_on_response(|res| {
    ///     (res.attribute("plan") == Some(&AttributeValue::from("trial"))).then_some(1.0)
    /// });
    /// # let _ = config;
    /// ```
    pub fn attribute(&self, key: &str) -> Option<&AttributeValue> {
        self.attributes?.get(key)
    }
}

/// A request's W3C trace context: the incoming `traceparent`'s trace id and parent span id, or
/// a random trace id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub(crate) trace_id: u128,
    pub(crate) parent_span_id: Option<u64>,
}

impl TraceContext {
    /// From the value of the `traceparent` header when it is valid, else a new random trace id.
    pub fn of(traceparent: Option<&[u8]>) -> Self {
        traceparent
            .and_then(parse_traceparent)
            .unwrap_or_else(|| Self {
                trace_id: fastrand::u128(1..),
                parent_span_id: None,
            })
    }

    /// The trace id.
    pub fn trace_id(&self) -> u128 {
        self.trace_id
    }
}

/// `version-traceid-parentid-flags` (W3C Trace Context): 2, 32, 16 and 2 lowercase hex digits;
/// version `ff` and all-zero ids are invalid. Later versions may append fields after a `-`.
fn parse_traceparent(value: &[u8]) -> Option<TraceContext> {
    let hex = |part: &[u8]| -> Option<u128> {
        part.iter().try_fold(0u128, |acc, &b| {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => return None,
            };
            Some(acc << 4 | u128::from(digit))
        })
    };
    let value = value.trim_ascii();
    if value.len() < 55 || (value.len() > 55 && value.get(55) != Some(&b'-')) {
        return None;
    }
    if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let version = hex(&value[..2])?;
    if version == 0xff || (version == 0 && value.len() != 55) {
        return None;
    }
    let trace_id = hex(&value[3..35])?;
    let parent = u64::try_from(hex(&value[36..52])?).ok()?;
    hex(&value[53..55])?;
    (trace_id != 0 && parent != 0).then_some(TraceContext {
        trace_id,
        parent_span_id: Some(parent),
    })
}

/// Whether a trace is sampled in at `rate`: its trace id's low 64 bits (its last 8 bytes, read
/// big-endian) below `round(rate × 2^64)`, as OpenTelemetry's trace-id-ratio sampler and the
/// official Apitally SDKs decide. The same trace id gives the same answer at the same rate, in
/// this service and in any other that samples the same trace this way.
pub(crate) fn is_sampled(trace_id: u128, rate: f64) -> bool {
    if rate.is_nan() || rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let bound = (rate * 18_446_744_073_709_551_616.0).round() as u64;
    (trace_id as u64) < bound
}

/// The sampling options of a config.
#[derive(Clone, Default)]
pub(crate) struct Sampling {
    pub(crate) rate: f64,
    pub(crate) on_request: Option<RequestCallback>,
    pub(crate) on_response: Option<ResponseCallback>,
}

/// What the request stage decided for a request that is captured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Kept: nothing is left to decide.
    Keep,
    /// Kept so far; the response callback decides, at this rate when it gives none.
    AtResponse(f64),
}

/// Calls a sampling callback: `None` when it panicked (with one error log per process).
fn call(f: impl FnOnce() -> Option<f64>, what: &str) -> Result<Option<f64>, ()> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        if !WARNED.swap(true, Ordering::Relaxed) {
            log::error!(
                target: "apitally",
                "apitally: the {what} callback panicked; the request is counted but not logged"
            );
        }
    })
}

/// A rate a callback gave, in `[0, 1]` (not a number: kept).
fn clamp(rate: f64) -> f64 {
    if rate.is_nan() {
        1.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

impl Sampling {
    pub(crate) fn new(rate: f64) -> Self {
        Self {
            rate,
            on_request: None,
            on_response: None,
        }
    }

    /// Whether every request's log is dropped whatever its trace id (a zero rate and no
    /// callback): then no trace id is looked up at all.
    #[inline]
    pub(crate) fn drops_all(&self) -> bool {
        self.rate <= 0.0 && self.on_request.is_none() && self.on_response.is_none()
    }

    /// The request stage, before the handler: `None` drops the request's log here (nothing is
    /// captured). The request callback's rate, when it gives one, decides at once; otherwise
    /// the sample rate does, unless a response callback may still keep the request.
    pub(crate) fn on_request(&self, view: &SampleRequest<'_>, trace_id: u128) -> Option<Decision> {
        let mut rate = self.rate;
        if let Some(callback) = &self.on_request {
            match call(|| callback(view), "sample_on_request") {
                Ok(Some(given)) => {
                    let given = clamp(given);
                    if !is_sampled(trace_id, given) {
                        return None;
                    }
                    rate = given;
                    if self.on_response.is_none() {
                        return Some(Decision::Keep);
                    }
                }
                Ok(None) => {}
                Err(()) => return None,
            }
        }
        if self.on_response.is_some() {
            return Some(Decision::AtResponse(rate));
        }
        is_sampled(trace_id, rate).then_some(Decision::Keep)
    }

    /// The response stage: whether a request kept so far is logged. The response callback's
    /// rate, when it gives one, overrides the sample rate (so that `sample_rate(0.0)` with a
    /// callback keeping every 5xx logs exactly the 5xx requests).
    pub(crate) fn on_response(
        &self,
        decision: Decision,
        trace_id: u128,
        view: &SampleResponse<'_>,
    ) -> bool {
        let Decision::AtResponse(rate) = decision else {
            return true;
        };
        let Some(callback) = &self.on_response else {
            return is_sampled(trace_id, rate);
        };
        match call(|| callback(view), "sample_on_response") {
            Ok(Some(given)) => is_sampled(trace_id, clamp(given)),
            Ok(None) => is_sampled(trace_id, rate),
            Err(()) => false,
        }
    }
}

#[cfg(test)]
mod tests;
