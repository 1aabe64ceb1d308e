//! A schema `pattern` as a dense DFA (regex-automata), stepped byte by byte.

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::primitives::StateID;
use regex_automata::util::{start, syntax};
use regex_automata::Anchored;

use super::runs::Runs;
use super::PlanError;

/// A compiled pattern. It answers for ASCII strings only, where the ECMA-262 and the
/// regex-automata readings of the schemas' classes (`\s`, ranges) coincide; a string with any
/// other character is not admitted (left to the validator, which reads the pattern its way).
#[derive(Clone)]
pub struct Pattern {
    source: Box<str>,
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
    /// The same pattern as byte-class runs, when it is one ([`Runs`]).
    runs: Option<Runs>,
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl Pattern {
    pub fn new(source: &str) -> Result<Pattern, PlanError> {
        let fail = |source: dense::BuildError, pattern: &str| PlanError::Pattern {
            pattern: pattern.into(),
            source: Box::new(source),
        };
        let syntax = syntax::Config::new().unicode(false).utf8(false);
        let runs = syntax::parse_with(source, &syntax)
            .ok()
            .and_then(|hir| Runs::of(&hir));
        let dfa = dense::Builder::new()
            .configure(dense::Config::new().start_kind(StartKind::Anchored))
            .syntax(syntax)
            .build(source)
            .map_err(|e| fail(e, source))?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| PlanError::Unsupported(format!("pattern {source:?}: {e}")))?;
        Ok(Pattern {
            source: source.into(),
            dfa,
            start,
            runs,
        })
    }

    /// Whether a match of the pattern starts at the beginning of `s` and ends at its end
    /// (which implies the schema's unanchored search finds one); `false` for a non-ASCII `s`.
    pub fn matches(&self, s: &str) -> bool {
        s.is_ascii() && self.matches_ascii(s.as_bytes())
    }

    /// [`Pattern::matches`] for bytes the caller knows are ASCII.
    pub fn matches_ascii(&self, s: &[u8]) -> bool {
        match &self.runs {
            Some(runs) => runs.matches(s),
            None => self.dfa_ascii(s),
        }
    }

    /// Whether [`Pattern::matches`] takes the byte-class runs rather than the DFA.
    pub fn uses_runs(&self) -> bool {
        self.runs.is_some()
    }

    /// [`Pattern::matches`] by the DFA alone.
    pub fn dfa_matches(&self, s: &str) -> bool {
        s.is_ascii() && self.dfa_ascii(s.as_bytes())
    }

    fn dfa_ascii(&self, s: &[u8]) -> bool {
        let mut state = self.start;
        for &b in s {
            state = self.dfa.next_state(state, b);
            if self.dfa.is_dead_state(state) {
                return false;
            }
        }
        self.dfa.is_match_state(self.dfa.next_eoi_state(state))
    }
}
