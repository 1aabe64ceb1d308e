//! A schema `pattern` as a dense DFA (regex-automata), stepped byte by byte; or, faster, as the
//! byte-class runs it is or starts with ([`Runs`]), the rest of it then by its own DFA.

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::nfa::thompson;
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
    whole: Dfa,
    /// The same pattern as byte-class runs, or the runs of fixed lengths it starts with
    /// ([`Runs`]) and a DFA of the rest.
    runs: Option<(Runs, Option<Tail>)>,
}

/// The rest of a pattern after the fixed-length runs it starts with.
#[derive(Clone)]
struct Tail {
    /// Where it starts: the length of the runs before it.
    at: usize,
    dfa: Dfa,
}

/// An anchored DFA and its start state.
#[derive(Clone)]
struct Dfa {
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
}

impl Dfa {
    fn new(dfa: dense::DFA<Vec<u32>>, source: &str) -> Result<Dfa, PlanError> {
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| PlanError::Unsupported(format!("pattern {source:?}: {e}")))?;
        Ok(Dfa { dfa, start })
    }

    fn config() -> dense::Config {
        dense::Config::new().start_kind(StartKind::Anchored)
    }

    /// Whether all of `s` is a match.
    fn matches(&self, s: &[u8]) -> bool {
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
        let whole = dense::Builder::new()
            .configure(Dfa::config())
            .syntax(syntax)
            .build(source)
            .map_err(|e| fail(e, source))?;
        let whole = Dfa::new(whole, source)?;
        let runs = match syntax::parse_with(source, &syntax)
            .ok()
            .and_then(|hir| Runs::split(&hir))
        {
            Some((runs, None)) => Some((runs, None)),
            Some((runs, Some(tail))) => {
                // The tail's own DFA; if it cannot be built, the whole pattern's DFA answers.
                let tail = thompson::Compiler::new()
                    .build_from_hir(&tail)
                    .ok()
                    .and_then(|nfa| {
                        dense::Builder::new()
                            .configure(Dfa::config())
                            .build_from_nfa(&nfa)
                            .ok()
                    })
                    .and_then(|dfa| Dfa::new(dfa, source).ok());
                match (tail, runs.fixed_len()) {
                    (Some(dfa), Some(at)) => Some((runs, Some(Tail { at, dfa }))),
                    _ => None,
                }
            }
            None => None,
        };
        Ok(Pattern {
            source: source.into(),
            whole,
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
            Some((runs, None)) => runs.matches(s),
            Some((runs, Some(tail))) => {
                s.get(..tail.at).is_some_and(|head| runs.matches(head))
                    && s.get(tail.at..).is_some_and(|rest| tail.dfa.matches(rest))
            }
            None => self.whole.matches(s),
        }
    }

    /// Whether [`Pattern::matches`] takes byte-class runs for the whole pattern.
    pub fn uses_runs(&self) -> bool {
        matches!(self.runs, Some((_, None)))
    }

    /// Whether [`Pattern::matches`] takes byte-class runs for the start of the pattern and a
    /// DFA for the rest.
    pub fn uses_runs_then_dfa(&self) -> bool {
        matches!(self.runs, Some((_, Some(_))))
    }

    /// [`Pattern::matches`] by the DFA alone.
    pub fn dfa_matches(&self, s: &str) -> bool {
        s.is_ascii() && self.whole.matches(s.as_bytes())
    }
}
