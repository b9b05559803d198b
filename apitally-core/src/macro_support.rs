//! What the code `#[apitally::consumer]` generates calls, for every adapter: values of any
//! `Display` type or `Option` of one, as text. Not public API.

use std::fmt::Display;

use crate::Consumer;

/// Wraps a borrowed value so that method resolution picks [`OptionValue`] for `Option`s and
/// [`DisplayValue`] for everything else that is `Display` (autoref specialisation).
pub struct Value<'a, T: ?Sized>(pub &'a T);

/// `Option<T: Display>`: `None` stays `None`.
pub trait OptionValue {
    /// The value as text.
    fn __apitally_value(&self) -> Option<String>;
}

impl<T: Display> OptionValue for Value<'_, Option<T>> {
    fn __apitally_value(&self) -> Option<String> {
        self.0.as_ref().map(ToString::to_string)
    }
}

/// Any `Display` value: `&str`, `String`, numbers, `Uuid`, ...
pub trait DisplayValue {
    /// The value as text.
    fn __apitally_value(&self) -> Option<String>;
}

impl<T: Display + ?Sized> DisplayValue for &Value<'_, T> {
    fn __apitally_value(&self) -> Option<String> {
        Some(self.0.to_string())
    }
}

/// The consumer the macro's arguments name, `None` when the identifier is `None` (the request
/// then stays anonymous).
pub fn consumer_of(
    identifier: Option<String>,
    name: Option<String>,
    group: Option<String>,
    attributes: &[(&str, Option<String>)],
) -> Option<Consumer> {
    let mut consumer = Consumer::new(identifier?);
    if let Some(name) = name {
        consumer = consumer.name(name);
    }
    if let Some(group) = group {
        consumer = consumer.group(group);
    }
    for (key, value) in attributes {
        consumer = consumer.attribute(*key, value.clone());
    }
    Some(consumer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // The generated code always borrows, as here, whichever impl applies.
    #[allow(clippy::needless_borrow)]
    fn values_of_every_kind() {
        let s = String::from("s");
        assert_eq!((&Value(&s)).__apitally_value(), Some("s".into()));
        assert_eq!((&Value(&"x")).__apitally_value(), Some("x".into()));
        assert_eq!((&Value(&42u64)).__apitally_value(), Some("42".into()));
        assert_eq!((&Value(&Some(7i32))).__apitally_value(), Some("7".into()));
        assert_eq!((&Value(&None::<String>)).__apitally_value(), None);
        assert_eq!((&Value(&Some("y"))).__apitally_value(), Some("y".into()));
    }
}
