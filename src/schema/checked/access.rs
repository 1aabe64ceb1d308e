//! Objects and arrays of the one-pass reader: member names checked and kept apart as they are
//! read, each value passed on with its member's plan.

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::{outside, CheckedSeed};
use crate::schema::plan::{ObjectRule, Plan, ANY};

/// The most names not in the object's rule one object may have (they are compared one by one;
/// an object with more is left to the validating paths).
const MAX_OTHER_NAMES: usize = 32;

/// What an object has shown so far.
struct Names<'p> {
    /// `None`: any members, each value any value.
    rule: Option<&'p ObjectRule>,
    /// Bit `i`: `rule.members[i]` was seen.
    seen: u64,
    /// Names outside the rule, seen so far.
    others: Vec<Box<str>>,
    /// The plan of the value whose name was just read.
    pending: Option<&'p Plan>,
    /// 0 before the first member of the rule; `i + 1` after `rule.members[i]`.
    after: usize,
    ended: bool,
}

impl<'p> Names<'p> {
    /// Takes one member name: refused if repeated, or not certainly allowed.
    fn name<E: de::Error>(&mut self, name: &str) -> Result<(), E> {
        let plan = match self.rule.map(|r| (r, r.find_after(self.after, name))) {
            Some((rule, Some(i))) => {
                let bit = 1u64 << i;
                if self.seen & bit != 0 {
                    return Err(outside());
                }
                self.seen |= bit;
                self.after = i + 1;
                &rule.members[i].plan
            }
            Some((rule, None)) if !rule.admits_other(name) => return Err(outside()),
            _ => {
                if self.others.len() >= MAX_OTHER_NAMES || self.others.iter().any(|o| **o == *name)
                {
                    return Err(outside());
                }
                self.others.push(name.into());
                &ANY
            }
        };
        self.pending = Some(plan);
        Ok(())
    }

    /// The object ended: every required member must have been there.
    fn end<E: de::Error>(&mut self) -> Result<(), E> {
        self.ended = true;
        match self.rule {
            Some(rule) if rule.required & !self.seen != 0 => Err(outside()),
            _ => Ok(()),
        }
    }
}

/// An object's members, checked.
pub struct CheckMap<'p, A> {
    map: A,
    names: Names<'p>,
}

impl<'p, A> CheckMap<'p, A> {
    pub fn new(rule: Option<&'p ObjectRule>, map: A) -> CheckMap<'p, A> {
        CheckMap {
            map,
            names: Names {
                rule,
                seen: 0,
                others: Vec::new(),
                pending: None,
                after: 0,
                ended: false,
            },
        }
    }

    /// After the typed read took the object: it must have read it to its end.
    pub fn finished<E: de::Error>(&self) -> Result<(), E> {
        if self.names.ended {
            Ok(())
        } else {
            Err(outside())
        }
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for CheckMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let key = self.map.next_key_seed(KeySeed {
            names: &mut self.names,
            seed,
        })?;
        if key.is_none() {
            self.names.end()?;
        }
        Ok(key)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let plan = self.names.pending.take().ok_or_else(outside)?;
        self.map.next_value_seed(CheckedSeed { plan, seed })
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// Reads a member name, checks it, then gives it to the typed read's seed.
struct KeySeed<'n, 'p, K> {
    names: &'n mut Names<'p>,
    seed: K,
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<'_, '_, K> {
    type Value = K::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<K::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for KeySeed<'_, '_, K> {
    type Value = K::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<K::Value, E> {
        self.names.name(name)?;
        self.seed.deserialize(name.into_deserializer())
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<K::Value, E> {
        self.names.name(name)?;
        self.seed
            .deserialize(de::value::BorrowedStrDeserializer::new(name))
    }

    fn visit_string<E: de::Error>(self, name: String) -> Result<K::Value, E> {
        self.names.name(&name)?;
        self.seed.deserialize(name.into_deserializer())
    }
}

/// An array's items, each following `items`.
pub struct CheckSeq<'p, A> {
    items: &'p Plan,
    seq: A,
}

impl<'p, A> CheckSeq<'p, A> {
    pub fn new(items: &'p Plan, seq: A) -> CheckSeq<'p, A> {
        CheckSeq { items, seq }
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for CheckSeq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        self.seq.next_element_seed(CheckedSeed {
            plan: self.items,
            seed,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}
