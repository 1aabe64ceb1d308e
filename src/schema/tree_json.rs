//! How `jsonschema` reads a [`Tree`]: the crate's `json::{Json, Node, Object, Array}` extension
//! traits, so the schemas compiled for `serde_json::Value` apply to the borrowed tree as they are.

use std::borrow::Cow;
use std::ops::ControlFlow;

use jsonschema::json::{Array, Json, JsonNumber, Node, NodeIdentity, Object};
use jsonschema::JsonType;
use serde_json::{Number, Value};

use super::tree::Tree;

/// The `jsonschema` representation marker for [`Tree`].
pub struct TreeJson;

impl Json for TreeJson {
    type Node<'a> = &'a Tree<'a>;
    type PreparedKey = String;
    type StringBuffer = ();

    // A lookup is a scan of the member list, so a members pass is worth several lookups.
    const KEYS_PER_LOOKUP: usize = 4;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(Self::Node<'_>) -> T) -> T {
        f(&Tree::String(Cow::Borrowed(string)))
    }
}

/// A number of a [`Tree`].
pub struct TreeNumber<'a>(&'a Number);

impl JsonNumber for TreeNumber<'_> {
    fn as_u64(&self) -> Option<u64> {
        self.0.as_u64()
    }
    fn as_i64(&self) -> Option<i64> {
        self.0.as_i64()
    }
    fn as_f64(&self) -> Option<f64> {
        self.0.as_f64()
    }
    fn as_str(&self) -> Cow<'_, str> {
        Cow::Owned(self.0.to_string())
    }
    fn to_number(&self) -> Cow<'_, Number> {
        Cow::Borrowed(self.0)
    }
    fn is_written_as_integer(&self) -> bool {
        // `serde_json::Number` keeps integers as integers: a literal with a fraction or an
        // exponent is an f64.
        !self.0.is_f64()
    }
}

impl<'a> Node<'a, TreeJson> for &'a Tree<'a> {
    type Object = &'a [(Cow<'a, str>, Tree<'a>)];
    type Array = &'a [Tree<'a>];
    type Number = TreeNumber<'a>;

    fn as_object(&self) -> Option<Self::Object> {
        match self {
            Tree::Object(members) => Some(members),
            _ => None,
        }
    }
    fn as_array(&self) -> Option<Self::Array> {
        match self {
            Tree::Array(items) => Some(items),
            _ => None,
        }
    }
    fn as_string(&self) -> Option<Cow<'a, str>> {
        match *self {
            Tree::String(s) => Some(Cow::Borrowed(s.as_ref())),
            _ => None,
        }
    }
    fn as_number(&self) -> Option<TreeNumber<'a>> {
        match *self {
            Tree::Number(n) => Some(TreeNumber(n)),
            _ => None,
        }
    }
    fn is_number(&self) -> bool {
        matches!(self, Tree::Number(_))
    }
    fn as_boolean(&self) -> Option<bool> {
        match self {
            Tree::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn is_null(&self) -> bool {
        matches!(self, Tree::Null)
    }
    fn json_type(&self) -> JsonType {
        match self {
            Tree::Null => JsonType::Null,
            Tree::Bool(_) => JsonType::Boolean,
            Tree::Number(_) => JsonType::Number,
            Tree::String(_) => JsonType::String,
            Tree::Array(_) => JsonType::Array,
            Tree::Object(_) => JsonType::Object,
        }
    }
    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(Tree::to_value(self))
    }
    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(
            std::ptr::from_ref::<Tree<'a>>(*self) as usize
        ))
    }
}

impl<'a> Object<'a, TreeJson> for &'a [(Cow<'a, str>, Tree<'a>)] {
    type Node = &'a Tree<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        <[_]>::len(self)
    }
    fn get(&self, key: &String) -> Option<&'a Tree<'a>> {
        self.iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }
    fn members(&self) -> Members<'a> {
        Members(self.iter())
    }
    fn try_for_each_name_node<B>(
        &self,
        (): &mut (),
        mut f: impl FnMut(<TreeJson as Json>::Node<'_>) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        for (name, _) in self.iter() {
            f(&Tree::String(Cow::Borrowed(name)))?;
        }
        ControlFlow::Continue(())
    }
}

/// The members of a [`Tree`] object, in document order.
pub struct Members<'a>(std::slice::Iter<'a, (Cow<'a, str>, Tree<'a>)>);

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a Tree<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(name, value)| (name.as_ref(), value))
    }
}

impl<'a> Array<'a, TreeJson> for &'a [Tree<'a>] {
    type Node = &'a Tree<'a>;
    type ElementsIter = std::slice::Iter<'a, Tree<'a>>;

    fn len(&self) -> usize {
        <[_]>::len(self)
    }
    fn elements(&self) -> std::slice::Iter<'a, Tree<'a>> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meets_the_jsonschema_representation_contract() {
        let text = serde_json::to_vec(&jsonschema::json::conformance::document()).expect("json");
        let tree = Tree::parse(&text).expect("json");
        jsonschema::json::conformance::assert_conformance::<TreeJson>(&&tree);
    }
}
