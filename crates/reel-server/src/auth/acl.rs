//! Access rules, DistKV's model with default deny: a grant gives a user permission
//! letters on a store (or `*`) for a path pattern; the most specific matching grant
//! decides; no matching grant means no access.
//!
//! Patterns are DistKV paths in which the element `+` matches any one element and a
//! final `#` any number of elements (none included). Of two grants matching a request,
//! the one for the named store beats `*`; then patterns are compared element by element
//! from the left, an exact element beating `+`, which beats `#` (DistKV's order).

use reel::kv::{Element, Path};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// A set of permission letters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

/// The letters, in the order they print.
const LETTERS: [(char, &str); 6] = [
    (
        'r',
        "read values (get, read, stream, watch, list read, status)",
    ),
    ('x', "enter and list (keys, tree structure, list keys)"),
    (
        'w',
        "change what exists (overwrite a kv path, append to an existing list, append records)",
    ),
    ('c', "create (a new kv path, a new list key)"),
    ('d', "delete"),
    ('a', "admin (rewind readers, compaction, view rebuild)"),
];

impl Flags {
    /// Read values.
    pub const READ: Flags = Flags(1);
    /// Enter and list.
    pub const ENTER: Flags = Flags(2);
    /// Change what exists.
    pub const WRITE: Flags = Flags(4);
    /// Create.
    pub const CREATE: Flags = Flags(8);
    /// Delete.
    pub const DELETE: Flags = Flags(16);
    /// Admin.
    pub const ADMIN: Flags = Flags(32);

    /// No permission.
    pub const NONE: Flags = Flags(0);

    /// Both sets.
    pub const fn and(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// True when every flag of `needed` is in `self`.
    pub fn allows(self, needed: Flags) -> bool {
        self.0 & needed.0 == needed.0
    }

    /// The flags of `needed` missing from `self`.
    pub fn missing(self, needed: Flags) -> Flags {
        Flags(needed.0 & !self.0)
    }

    /// Parses letters such as `rx` (order free, each at most once).
    pub fn parse(text: &str) -> Result<Flags, String> {
        let mut bits = 0u8;
        for c in text.chars() {
            let Some(i) = LETTERS.iter().position(|(l, _)| *l == c) else {
                return Err(format!(
                    "unknown permission letter `{c}` in `{text}`; the letters are {}",
                    LETTERS
                        .iter()
                        .map(|(l, what)| format!("{l} ({what})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            bits |= 1 << i;
        }
        if bits == 0 {
            return Err("no permission letters given".into());
        }
        Ok(Flags(bits))
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (l, _)) in LETTERS.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                write!(f, "{l}")?;
            }
        }
        Ok(())
    }
}

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Exact(Element),
    /// `+`: any one element.
    One,
    /// `#` (last only): any number of elements.
    Rest,
}

impl Part {
    /// Exact beats `+` beats `#`.
    fn rank(&self) -> u8 {
        match self {
            Part::Exact(_) => 2,
            Part::One => 1,
            Part::Rest => 0,
        }
    }
}

/// A parsed path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    parts: Vec<Part>,
    text: String,
}

impl Pattern {
    /// Parses DistKV path text with `+` and a final `#`.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let path: Path = text
            .parse()
            .map_err(|e| format!("bad pattern `{text}`: {e}"))?;
        let n = path.elements().len();
        let mut parts = Vec::with_capacity(n);
        for (i, e) in path.elements().iter().enumerate() {
            parts.push(match e {
                Element::Str(s) if s == "+" => Part::One,
                Element::Str(s) if s == "#" => {
                    if i + 1 != n {
                        return Err(format!(
                            "bad pattern `{text}`: `#` must be the last element"
                        ));
                    }
                    Part::Rest
                }
                other => Part::Exact(other.clone()),
            });
        }
        Ok(Pattern {
            parts,
            text: text.to_string(),
        })
    }

    /// The pattern's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when `path` (a sequence of elements) matches.
    pub fn matches(&self, path: &[Element]) -> bool {
        let mut i = 0;
        for part in &self.parts {
            match part {
                Part::Rest => return true,
                Part::One => {
                    if i >= path.len() {
                        return false;
                    }
                }
                Part::Exact(e) => {
                    if path.get(i) != Some(e) {
                        return false;
                    }
                }
            }
            i += 1;
        }
        i == path.len()
    }

    /// Which of two patterns matching the same path is more specific (Greater: `self`).
    fn specificity(&self, other: &Pattern) -> Ordering {
        for (a, b) in self.parts.iter().zip(&other.parts) {
            match a.rank().cmp(&b.rank()) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        // Same ranks as far as both go: the longer one spells out more.
        self.parts.len().cmp(&other.parts.len())
    }
}

/// One grant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// A store name or `*`.
    pub store: String,
    /// DistKV path pattern (`#` by default).
    pub pattern: String,
    /// Permission letters.
    pub flags: String,
}

/// The flags the most specific grant matching (`store`, `path`) gives, or `None` when no
/// grant matches (no access). Grants that do not parse match nothing.
pub fn decide(grants: &[Grant], store: &str, path: &[Element]) -> Option<Flags> {
    let mut best: Option<(bool, Pattern, Flags)> = None;
    for g in grants {
        let exact_store = g.store == store;
        if !exact_store && g.store != "*" {
            continue;
        }
        let (Ok(p), Ok(f)) = (Pattern::parse(&g.pattern), Flags::parse(&g.flags)) else {
            continue;
        };
        if !p.matches(path) {
            continue;
        }
        let better = match &best {
            None => true,
            Some((best_exact, best_p, _)) => match exact_store.cmp(best_exact) {
                Ordering::Greater => true,
                Ordering::Less => false,
                Ordering::Equal => p.specificity(best_p) == Ordering::Greater,
            },
        };
        if better {
            best = Some((exact_store, p, f));
        }
    }
    best.map(|(_, _, f)| f)
}

#[cfg(test)]
mod tests;
