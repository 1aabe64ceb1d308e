//! The document operations input normalisation needs ([`super::normalise`]), for both
//! representations: [`Value`] (the reference path) and [`Tree`] (the fast path).

use std::borrow::Cow;

use serde_json::Value;

use super::tree::Tree;

/// Removes the `null` members of an event envelope and of its `data` object. Returns whether
/// anything was removed.
pub fn drop_nulls<D: Doc>(event: &mut D) -> bool {
    let mut changed = event.retain_non_null();
    if let Some(data) = event.member_mut("data") {
        changed |= data.retain_non_null();
    }
    changed
}

/// The operations normalisation needs from a JSON document representation.
pub trait Doc {
    /// The member `name`, if this is an object that has it.
    fn member_mut(&mut self, name: &str) -> Option<&mut Self>;
    /// Calls `f` on every element, if this is an array.
    fn for_each_item(&mut self, f: &mut dyn FnMut(&mut Self));
    /// The string, if this is one.
    fn string(&self) -> Option<&str>;
    /// Replaces this value by a string.
    fn set_string(&mut self, s: String);
    /// Removes the members whose value is `null`, if this is an object; whether any was.
    fn retain_non_null(&mut self) -> bool;
}

impl Doc for Value {
    fn member_mut(&mut self, name: &str) -> Option<&mut Self> {
        self.as_object_mut()?.get_mut(name)
    }
    fn for_each_item(&mut self, f: &mut dyn FnMut(&mut Self)) {
        if let Value::Array(items) = self {
            items.iter_mut().for_each(f);
        }
    }
    fn string(&self) -> Option<&str> {
        self.as_str()
    }
    fn set_string(&mut self, s: String) {
        *self = Value::String(s);
    }
    fn retain_non_null(&mut self) -> bool {
        let Value::Object(members) = self else {
            return false;
        };
        let before = members.len();
        members.retain(|_, v| !v.is_null());
        members.len() != before
    }
}

impl Doc for Tree<'_> {
    fn member_mut(&mut self, name: &str) -> Option<&mut Self> {
        match self {
            Tree::Object(members) => members
                .iter_mut()
                .rev()
                .find(|(k, _)| k == name)
                .map(|m| &mut m.1),
            _ => None,
        }
    }
    fn for_each_item(&mut self, f: &mut dyn FnMut(&mut Self)) {
        if let Tree::Array(items) = self {
            items.iter_mut().for_each(f);
        }
    }
    fn string(&self) -> Option<&str> {
        self.as_str()
    }
    fn set_string(&mut self, s: String) {
        *self = Tree::String(Cow::Owned(s));
    }
    fn retain_non_null(&mut self) -> bool {
        let Tree::Object(members) = self else {
            return false;
        };
        let before = members.len();
        members.retain(|(_, v)| !matches!(v, Tree::Null));
        members.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nulls_are_dropped_from_the_envelope_and_data_only() {
        let mut v = json!({"subject": null, "id": "e", "data": {"previousMessageStatus": null,
            "routingPlan": {"id": null}, "channels": [null]}});
        assert!(drop_nulls(&mut v));
        assert_eq!(
            v,
            json!({"id": "e", "data": {"routingPlan": {"id": null}, "channels": [null]}})
        );
        assert!(!drop_nulls(&mut v));
    }
}
