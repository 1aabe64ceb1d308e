//! Reading plans: an event schema compiled into the checks of each member, for the one-pass
//! reader ([`super::checked`]), which checks every value against its plan as the typed read
//! takes it from the bytes.
//!
//! A plan is only ever *stricter* than its schema: it admits a value only when the schema
//! certainly accepts it, and anything it does not admit is left to the validating paths (the
//! borrowed tree, then the `serde_json::Value` reference, which explains a refusal). So a plan
//! may refuse more than the schema does (a non-ASCII string under a pattern, a `null`, a status
//! in another case, an object where the schema would let any type through), never less.
//! Compiling ([`compile`]) refuses a schema that uses a keyword it does not understand.

mod compile;
mod head;
mod names;
mod pattern;
mod runs;
mod successors;

pub use compile::{event_plan, PlanError};
use names::same_name;
pub use names::NameIndex;
pub use pattern::Pattern;
use successors::Successors;

/// What a value must be.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Any JSON value (objects in it must still repeat no member name).
    Any,
    Str(StrRule),
    Int(IntRule),
    /// An array whose every item follows the plan.
    Array(Box<Plan>),
    Object(ObjectRule),
}

/// The plan of a value about which the schema says nothing.
pub static ANY: Plan = Plan::Any;

/// A string's rule: all of its parts hold.
#[derive(Debug, Clone, Default)]
pub struct StrRule {
    /// The values allowed; `None` when any value is.
    pub values: Option<NameIndex>,
    /// Bounds on the length in characters (Unicode scalar values, as JSON Schema counts).
    pub min_chars: u64,
    pub max_chars: Option<u64>,
    pub patterns: Vec<Pattern>,
}

impl StrRule {
    /// Whether the schema certainly accepts `s` (`false` also when unsure).
    #[inline]
    pub fn admits(&self, s: &str) -> bool {
        if self
            .values
            .as_ref()
            .is_some_and(|values| !values.contains(s))
        {
            return false;
        }
        let bounded = self.min_chars > 0 || self.max_chars.is_some();
        !bounded && self.patterns.is_empty() || self.admits_bounded(s, bounded)
    }

    /// [`StrRule::admits`] for a rule with bounds or patterns, after its values.
    #[inline(never)]
    fn admits_bounded(&self, s: &str, bounded: bool) -> bool {
        let ascii = s.is_ascii();
        if bounded {
            // Bytes bound characters from above, and equal them for ASCII.
            let chars = if ascii {
                s.len() as u64
            } else {
                s.chars().count() as u64
            };
            if chars < self.min_chars || self.max_chars.is_some_and(|max| chars > max) {
                return false;
            }
        }
        // A pattern answers for ASCII strings only ([`Pattern`]).
        self.patterns.is_empty()
            || (ascii && self.patterns.iter().all(|p| p.matches_ascii(s.as_bytes())))
    }

    /// Both rules (a value must satisfy each).
    fn and(mut self, other: StrRule) -> StrRule {
        self.values = match (self.values.take(), other.values) {
            (Some(a), Some(b)) => Some(NameIndex::new(
                a.names().iter().filter(|v| b.contains(v)).cloned(),
            )),
            (a, b) => a.or(b),
        };
        self.min_chars = self.min_chars.max(other.min_chars);
        self.max_chars = match (self.max_chars, other.max_chars) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.patterns.extend(other.patterns);
        self
    }
}

/// An integer's rule (`type: integer`; numbers with a fraction or an exponent are not admitted).
#[derive(Debug, Clone, Copy, Default)]
pub struct IntRule {
    pub minimum: Option<i64>,
}

impl IntRule {
    pub fn admits(&self, n: i128) -> bool {
        self.minimum.is_none_or(|min| n >= i128::from(min))
    }
}

/// One member an object's schema names.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: Box<str>,
    pub plan: Plan,
    pub required: bool,
}

/// An object's rule.
#[derive(Debug, Clone, Default)]
pub struct ObjectRule {
    /// At most [`MAX_MEMBERS`]; a member whose name the name rules refuse is never here
    /// (compiling refuses such a schema).
    pub members: Vec<Member>,
    /// Bit `i` set: `members[i]` is required.
    pub required: u64,
    /// `additionalProperties: false`: no names but the members'.
    pub closed: bool,
    /// Rules every member name must satisfy (`propertyNames`).
    pub names: Vec<StrRule>,
    /// The members' names, in their order (made by [`ObjectRule::seal`]).
    index: NameIndex,
    /// The order members were last seen in (made by [`ObjectRule::seal`]).
    successors: Successors,
}

/// The most members an object rule holds (the required set is a 64-bit mask).
pub const MAX_MEMBERS: usize = 64;

impl ObjectRule {
    /// The index of the member called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        if self.index.len() != self.members.len() {
            // Not sealed (while compiling).
            return self.members.iter().position(|m| *m.name == *name);
        }
        self.index.find(name)
    }

    /// [`ObjectRule::find`] for the name read after member `after - 1` (`after` 0: the first
    /// name of the object): the member that came next last time is tried first.
    #[inline]
    pub fn find_after(&self, after: usize, name: &str) -> Option<usize> {
        if let Some(g) = self.successors.guess(after) {
            if self
                .members
                .get(g)
                .is_some_and(|m| same_name(m.name.as_bytes(), name.as_bytes()))
            {
                return Some(g);
            }
        }
        let found = self.find(name)?;
        self.successors.learn(after, found);
        Some(found)
    }

    /// Whether a name no member has is certainly allowed here.
    pub fn admits_other(&self, name: &str) -> bool {
        !self.closed && self.names.iter().all(|r| r.admits(name))
    }

    fn and(mut self, other: ObjectRule) -> Result<ObjectRule, PlanError> {
        self.index = NameIndex::default();
        let closed_out = |rule: &ObjectRule, name: &str| rule.closed && rule.find(name).is_none();
        for m in &other.members {
            if closed_out(&self, &m.name) {
                return Err(PlanError::Unsupported(format!(
                    "member {} of a closed object",
                    m.name
                )));
            }
        }
        for m in &self.members {
            if closed_out(&other, &m.name) {
                return Err(PlanError::Unsupported(format!(
                    "member {} of a closed object",
                    m.name
                )));
            }
        }
        for m in other.members {
            match self.find(&m.name) {
                Some(i) => {
                    let mine = &mut self.members[i];
                    mine.plan = std::mem::replace(&mut mine.plan, Plan::Any).and(m.plan)?;
                    mine.required |= m.required;
                }
                None => self.members.push(m),
            }
        }
        self.closed |= other.closed;
        self.names.extend(other.names);
        self.seal()
    }

    /// Checks the member count and recomputes the required mask.
    pub(crate) fn seal(mut self) -> Result<ObjectRule, PlanError> {
        if self.members.len() > MAX_MEMBERS {
            return Err(PlanError::Unsupported(format!(
                "an object of more than {MAX_MEMBERS} members"
            )));
        }
        for m in &self.members {
            if !self.names.iter().all(|r| r.admits(&m.name)) {
                return Err(PlanError::Unsupported(format!(
                    "member {} refused by its object's propertyNames",
                    m.name
                )));
            }
        }
        self.index = NameIndex::new(self.members.iter().map(|m| m.name.clone()));
        self.successors = Successors::new(self.members.len());
        self.required = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.required)
            .fold(0, |mask, (i, _)| mask | (1 << i));
        Ok(self)
    }
}

impl Plan {
    /// The plan of a value that must satisfy both.
    pub fn and(self, other: Plan) -> Result<Plan, PlanError> {
        Ok(match (self, other) {
            (Plan::Any, p) | (p, Plan::Any) => p,
            (Plan::Str(a), Plan::Str(b)) => Plan::Str(a.and(b)),
            (Plan::Int(a), Plan::Int(b)) => Plan::Int(IntRule {
                minimum: a.minimum.max(b.minimum),
            }),
            (Plan::Array(a), Plan::Array(b)) => Plan::Array(Box::new(a.and(*b)?)),
            (Plan::Object(a), Plan::Object(b)) => Plan::Object(a.and(b)?),
            (a, b) => {
                return Err(PlanError::Unsupported(format!(
                    "a value both {} and {}",
                    a.kind(),
                    b.kind()
                )))
            }
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Plan::Any => "anything",
            Plan::Str(_) => "a string",
            Plan::Int(_) => "an integer",
            Plan::Array(_) => "an array",
            Plan::Object(_) => "an object",
        }
    }
}

#[cfg(test)]
#[path = "plan/tests.rs"]
mod tests;
