//! [`StoreError`], and the one place that decides which database failures mean "unavailable".
//!
//! The server maps the variants to its error codes: `NotFound` to the `*_NOT_FOUND` of its
//! [`Resource`], `Conflict` to a 409, `InvalidInput` to `INVALID_REQUEST`, `Unavailable` to
//! `DATABASE_UNAVAILABLE` (503, `retry_after` 5), everything else to `INTERNAL_ERROR`.

/// What a [`StoreError::NotFound`] did not find. Deliberately not `#[non_exhaustive]`: the
/// server matches on it to choose the `*_NOT_FOUND` code, so a new resource does not compile
/// until it has one, rather than being reported as some other resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// One of a user's preferences, by key.
    Preference,
    /// One of a user's conversations, by id.
    Conversation,
}

impl Resource {
    /// The resource in words, e.g. `preference`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preference => "preference",
            Self::Conversation => "conversation",
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a store operation failed. Messages never contain SQL, values or credentials.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named row does not exist for this user (the server answers `*_NOT_FOUND`).
    #[error("{0} not found")]
    NotFound(Resource),
    /// A row with the same unique key exists (e.g. an inference log's `request_id`).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// An argument is out of the store's bounds; the message says which and why.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The database cannot be reached: connection refused or lost, pool timeout, server shutting
    /// down, login refused. Retrying later may succeed (`DATABASE_UNAVAILABLE`).
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Applying the migrations failed.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A stored row cannot be read back as its model (a value written by something else).
    #[error("a stored row is not valid: {0}")]
    Corrupt(String),
    /// Any other database failure.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    /// Whether the server should answer `DATABASE_UNAVAILABLE`.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Migrate(sqlx::migrate::MigrateError::Execute(e)) => is_unavailable(e),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            return Self::Unavailable(error);
        }
        if let sqlx::Error::Database(db) = &error {
            match db.code().as_deref() {
                // Postgres: a NUL in text or JSON (checked before writing; this is the net).
                Some("22021" | "22P05") => {
                    return Self::InvalidInput(
                        "text and JSON values cannot contain NUL characters".into(),
                    );
                }
                _ if db.is_unique_violation() => return Self::Conflict("row"),
                _ => {}
            }
        }
        Self::Database(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(e) if is_unavailable(&e) => Self::Unavailable(e),
            other => Self::Migrate(other),
        }
    }
}

/// Failures that say "the database is not there right now" rather than "this statement is wrong".
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db)
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() =>
        {
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with or without extended codes, once the
            // busy timeout has run out.
            db.code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| matches!(c & 0xff, 5 | 6))
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // Postgres class 08 (connection exception), 57P01..57P03 (admin or crash shutdown,
            // cannot connect now), 53300 (too many connections), 28P01/28000 (login refused:
            // for Lakebase an expired or wrong token, which the refresher repairs).
            Some(code) if code.starts_with("08") => true,
            Some(code) => matches!(
                code,
                "57P01" | "57P02" | "57P03" | "53300" | "28P01" | "28000"
            ),
            None => false,
        },
        _ => false,
    }
}
