//! The evaluation context: the targeting key and the attributes rules test.
//!
//! # What the caller must do
//!
//! - Build the context from the request body with [`Context::from_request_body`] (the
//!   whole OFREP body, `{"context": {...}}`) or [`Context::from_json`] (the `context`
//!   object itself). On an error, answer `400` with error code `INVALID_CONTEXT`
//!   ([`ContextError::code`]): for the single-flag endpoint an `evaluationFailure`
//!   carrying the flag key, for the bulk endpoint a `bulkEvaluationFailure` (no key).
//! - A missing `targetingKey` is **not** a context error (OFREP's schema lists it as
//!   required, but flagd and the OpenFeature SDKs send contexts without one): only a
//!   fractional rule needs it, and that flag alone resolves to `TARGETING_KEY_MISSING`.
//! - Build one context per request and evaluate every flag against it; it is read-only.
use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::eval::ErrorCode;
use crate::model::json_type_name;

/// The name of the targeting key, in OFREP bodies and as a rule attribute.
pub const TARGETING_KEY: &str = "targetingKey";

/// An evaluation context.
///
/// `targetingKey` lives in [`targeting_key`](Context::targeting_key) only; the
/// parsers remove it from `attrs`, and [`get`](Context::get) never reads it from there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// OFREP `targetingKey`, the usual randomization unit (a user, session or device id).
    pub targeting_key: Option<String>,
    /// Every other context attribute.
    pub attrs: Map<String, Value>,
}

/// Why a request's context is unusable. Every variant maps to OFREP's
/// `INVALID_CONTEXT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// The request body is not a JSON object.
    #[error("request body must be a JSON object, not {found}")]
    BodyNotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// `context` is not a JSON object.
    #[error("context must be a JSON object, not {found}")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// `targetingKey` is present but not a string.
    #[error("targetingKey must be a string, not {found}")]
    TargetingKeyNotString {
        /// The JSON type found.
        found: &'static str,
    },
}

impl ContextError {
    /// The OFREP error code: always [`ErrorCode::InvalidContext`].
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidContext
    }
}

impl Context {
    /// An empty context (no targeting key, no attributes).
    pub fn new() -> Context {
        Context::default()
    }

    /// A context with only a targeting key.
    pub fn with_targeting_key(key: impl Into<String>) -> Context {
        Context {
            targeting_key: Some(key.into()),
            attrs: Map::new(),
        }
    }

    /// Adds (or replaces) a top-level attribute; `targetingKey` sets the targeting key
    /// when `value` is a string and clears it otherwise.
    pub fn attr(mut self, name: impl Into<String>, value: impl Into<Value>) -> Context {
        let name = name.into();
        let value = value.into();
        if name == TARGETING_KEY {
            self.targeting_key = value.as_str().map(str::to_owned);
        } else {
            self.attrs.insert(name, value);
        }
        self
    }

    /// Parses an OFREP request body, `{"context": {...}}`. A body without `context` gives
    /// an empty context; other top-level fields are ignored.
    pub fn from_request_body(body: &Value) -> Result<Context, ContextError> {
        let Value::Object(body) = body else {
            return Err(ContextError::BodyNotAnObject {
                found: json_type_name(body),
            });
        };
        match body.get("context") {
            None => Ok(Context::default()),
            Some(ctx) => Context::from_json(ctx),
        }
    }

    /// Parses an OFREP context object. It must be a JSON object; `targetingKey`, when
    /// present and not `null`, must be a string (an empty one counts as absent when
    /// bucketing).
    pub fn from_json(v: &Value) -> Result<Context, ContextError> {
        let Value::Object(map) = v else {
            return Err(ContextError::NotAnObject {
                found: json_type_name(v),
            });
        };
        let mut attrs = map.clone();
        let targeting_key = match attrs.remove(TARGETING_KEY) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                return Err(ContextError::TargetingKeyNotString {
                    found: json_type_name(&other),
                })
            }
        };
        Ok(Context {
            targeting_key,
            attrs,
        })
    }

    /// The value of a rule attribute, or `None` when it is absent or `null`:
    ///
    /// - `targetingKey` is the targeting key;
    /// - a top-level attribute of exactly this name wins (so a flat `"app.version"` key
    ///   is reachable);
    /// - otherwise a dotted path walks nested objects: `user.plan` is
    ///   `attrs["user"]["plan"]`. Arrays are not indexed.
    pub fn get(&self, path: &str) -> Option<Cow<'_, Value>> {
        if path == TARGETING_KEY {
            return self
                .targeting_key
                .as_ref()
                .map(|k| Cow::Owned(Value::String(k.clone())));
        }
        let found = match self.attrs.get(path) {
            Some(v) => Some(v),
            None => {
                let mut parts = path.split('.');
                let first = parts.next()?;
                parts.try_fold(self.attrs.get(first)?, |v, part| v.as_object()?.get(part))
            }
        };
        found.filter(|v| !v.is_null()).map(Cow::Borrowed)
    }

    /// This context as canonical input to the ETag (see [`crate::etag`]).
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("attrs".to_owned(), Value::Object(self.attrs.clone()));
        m.insert(
            TARGETING_KEY.to_owned(),
            self.targeting_key
                .as_ref()
                .map_or(Value::Null, |k| Value::String(k.clone())),
        );
        Value::Object(m)
    }
}
