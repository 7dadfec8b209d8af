//! What a permission denial says is missing: Unity Catalog and the SQL warehouses answer a
//! refused call with a sentence such as `User does not have USE SCHEMA on Schema 'main.sales'.`
//! or `User x does not have CAN_USE permission on warehouse abc.` [`MissingGrant::parse`] reads
//! the privilege, the kind of securable and its name out of it, so the error envelope can name
//! them (`detail.privilege`, `detail.securable_type`, `detail.securable`) in its own words. Each
//! part must look like what it claims to be (upper-case privilege words, a one-word type, an
//! identifier-like name); anything else yields `None`, and the envelope stays generic: the
//! upstream sentence itself is never passed on.

/// The privilege a denial names, and what it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingGrant {
    /// E.g. `USE SCHEMA`, `SELECT`, `CAN_USE`.
    pub privilege: String,
    /// Lower case: `catalog`, `schema`, `table`, `volume`, `warehouse`, …
    pub securable_type: String,
    /// E.g. `main.sales`.
    pub securable: String,
}

const MAX_PRIVILEGE: usize = 40;
const MAX_TYPE: usize = 30;
/// Three identifiers of at most 255 characters, and their dots.
const MAX_NAME: usize = 3 * 255 + 2;

impl MissingGrant {
    /// Reads the grant out of a denial's message; `None` when it does not have the expected
    /// shape.
    #[must_use]
    pub fn parse(message: &str) -> Option<Self> {
        let (_, rest) = message.split_once("does not have ")?;
        let (privilege, rest) = rest.split_once(" on ")?;
        let privilege = privilege
            .strip_suffix(" permission")
            .unwrap_or(privilege)
            .trim();
        let privilege_ok = !privilege.is_empty()
            && privilege.len() <= MAX_PRIVILEGE
            && privilege.starts_with(|c: char| c.is_ascii_uppercase())
            && privilege
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c == ' ');
        if !privilege_ok {
            return None;
        }
        let (securable_type, name) = rest.trim_start().split_once(' ')?;
        let type_ok = !securable_type.is_empty()
            && securable_type.len() <= MAX_TYPE
            && securable_type.chars().all(|c| c.is_ascii_alphabetic());
        if !type_ok {
            return None;
        }
        let securable = securable_name(name)?;
        Some(Self {
            privilege: privilege.to_owned(),
            securable_type: securable_type.to_ascii_lowercase(),
            securable,
        })
    }
}

/// The name at the start of `text`: quoted (`'…'`, `` `…` ``) or bare up to a space, without a
/// sentence's final period.
fn securable_name(text: &str) -> Option<String> {
    let text = text.trim_start();
    let name = match text.chars().next()? {
        quote @ ('\'' | '`' | '"') => {
            let inner = &text[1..];
            &inner[..inner.find(quote)?]
        }
        _ => {
            let bare = text.split_whitespace().next()?;
            bare.strip_suffix('.').unwrap_or(bare)
        }
    };
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '`'));
    ok.then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::MissingGrant;

    fn grant(privilege: &str, securable_type: &str, securable: &str) -> Option<MissingGrant> {
        Some(MissingGrant {
            privilege: privilege.to_owned(),
            securable_type: securable_type.to_owned(),
            securable: securable.to_owned(),
        })
    }

    #[test]
    fn unity_catalog_denials_name_the_privilege_and_the_securable() {
        assert_eq!(
            MissingGrant::parse("User does not have USE SCHEMA on Schema 'main.sales'."),
            grant("USE SCHEMA", "schema", "main.sales")
        );
        assert_eq!(
            MissingGrant::parse(
                "PERMISSION_DENIED: User does not have SELECT on Table 'main.sales.orders'."
            ),
            grant("SELECT", "table", "main.sales.orders")
        );
        assert_eq!(
            MissingGrant::parse("User does not have USE CATALOG on Catalog 'samples'."),
            grant("USE CATALOG", "catalog", "samples")
        );
    }

    #[test]
    fn warehouse_denials_drop_the_word_permission() {
        assert_eq!(
            MissingGrant::parse(
                "User bob@example.com does not have CAN_USE permission on warehouse abc123."
            ),
            grant("CAN_USE", "warehouse", "abc123")
        );
    }

    #[test]
    fn anything_else_is_not_parsed() {
        for message in [
            "x",
            "",
            "You shall not pass",
            "User does not have select on Table 'a'.",
            "User does not have SELECT on Table 'a; DROP TABLE b'.",
            "User does not have SELECT on Table 'unterminated",
            "User does not have SELECT on <script> 'a'.",
            "User does not have SELECT",
        ] {
            assert_eq!(MissingGrant::parse(message), None, "{message}");
        }
    }
}
