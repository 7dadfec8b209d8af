//! [`Environment`]: one snapshot of the process environment, taken once when a program starts
//! and handed to every configuration parser of dbapp (this crate's [`crate::Config`], the store's
//! database settings, the server's settings, `dbapp doctor`).
//!
//! [`Environment::capture`] is the only place in this crate that reads the process environment.
//! Everything after it reads the snapshot, so every part of a program sees the same values, a
//! test can hand any parser the variables it wants without touching the process (changing the
//! environment of a running multi-threaded process is not sound), and a value cannot change
//! under a running server. An empty or blank value counts as unset everywhere, and values are
//! trimmed: whitespace around a variable is never meant.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A snapshot of environment variables. Cloning it is cheap (one `Arc`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment(Arc<BTreeMap<String, String>>);

impl Environment {
    /// The process environment, now. Variables whose name or value is not UTF-8 are skipped:
    /// none of the variables dbapp reads can be such.
    #[must_use]
    pub fn capture() -> Self {
        Self(Arc::new(
            std::env::vars_os()
                .filter_map(|(name, value)| {
                    Some((name.into_string().ok()?, value.into_string().ok()?))
                })
                .collect(),
        ))
    }

    /// A snapshot holding exactly these variables (tests, embedders).
    ///
    /// ```
    /// use dbapp_databricks::Environment;
    ///
    /// let env = Environment::from_pairs([("DATABRICKS_HOST", " example.com "), ("PGHOST", "")]);
    /// assert_eq!(env.get("DATABRICKS_HOST").as_deref(), Some("example.com"));
    /// assert_eq!(env.get("PGHOST"), None);
    /// ```
    #[must_use]
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self(Arc::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// The trimmed value of `name`; `None` when it is unset, empty or blank.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// Whether `name` has a value (see [`Environment::get`]).
    #[must_use]
    pub fn is_set(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|v| !v.trim().is_empty())
    }

    /// This snapshot as the lookup function [`crate::Config::resolve`] and
    /// [`crate::Context::detect`] take.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.get(name)
    }

    /// Every variable with a value, in name order (blank ones left out).
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str(), v.trim()))
            .filter(|(_, v)| !v.is_empty())
    }

    /// A copy without the variables named.
    #[must_use]
    pub fn without(&self, names: &[&str]) -> Self {
        let mut vars = (*self.0).clone();
        for name in names {
            vars.remove(*name);
        }
        Self(Arc::new(vars))
    }
}

/// Names only: values may be secrets.
impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.vars().map(|(k, _)| k)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset_and_values_are_trimmed() {
        let env = Environment::from_pairs([("A", "  "), ("B", " x "), ("C", "")]);
        assert_eq!(env.get("A"), None);
        assert!(!env.is_set("C"));
        assert_eq!(env.get("B").as_deref(), Some("x"));
        assert_eq!(env.vars().collect::<Vec<_>>(), [("B", "x")]);
    }

    #[test]
    fn debug_shows_names_never_values() {
        let env = Environment::from_pairs([("DATABRICKS_TOKEN", "dapi-secret")]);
        let shown = format!("{env:?}");
        assert!(shown.contains("DATABRICKS_TOKEN"), "{shown}");
        assert!(!shown.contains("dapi-secret"), "{shown}");
    }

    #[test]
    fn without_copies_and_leaves_the_original_alone() {
        let env = Environment::from_pairs([("A", "1"), ("B", "2")]);
        let changed = env.without(&["B"]);
        assert_eq!(changed.get("A").as_deref(), Some("1"));
        assert_eq!(changed.get("B"), None);
        assert_eq!(env.get("A").as_deref(), Some("1"));
        assert_eq!(env.get("B").as_deref(), Some("2"));
    }
}
