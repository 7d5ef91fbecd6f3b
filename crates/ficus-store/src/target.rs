//! Turns a store URL into sqlx connect options for one backend, and a printable form of it
//! without the password.
//!
//! Accepted: `sqlite://PATH`, `sqlite:PATH`, a bare file path (SQLite), `sqlite::memory:`
//! (one process only, for tests), `postgres://...` and `postgresql://...` (libpq-style,
//! plus `?schema=NAME`).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::{StoreError, StoreOptions};

pub(crate) enum Target {
    // Boxed: both option structs are large and this enum is moved around once.
    Sqlite {
        options: Box<SqliteConnectOptions>,
        in_memory: bool,
    },
    Postgres {
        options: Box<PgConnectOptions>,
        schema: Option<String>,
    },
}

pub(crate) struct Parsed {
    pub target: Target,
    /// The URL as given, password replaced by `***`.
    pub display: String,
}

const FORMS: &str = "use sqlite://PATH, sqlite:PATH, a file path, or postgres://USER@HOST:PORT/DB";

pub(crate) fn parse(url: &str, opts: &StoreOptions) -> Result<Parsed, StoreError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(StoreError::Invalid(format!(
            "the store URL is empty; {FORMS}"
        )));
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return postgres(url, opts);
    }
    if let Some(rest) =
        strip_prefix_ci(url, "sqlite://").or_else(|| strip_prefix_ci(url, "sqlite:"))
    {
        if rest.is_empty() {
            return Err(StoreError::Invalid(format!(
                "the store URL {url} names no file; {FORMS}"
            )));
        }
        if rest.contains('?') {
            return Err(StoreError::Invalid(format!(
                "the store URL {url} has query parameters; ficus sets the SQLite options \
                 itself (WAL, busy_timeout, foreign keys), so remove them"
            )));
        }
        return Ok(sqlite(url, rest, opts));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(StoreError::Invalid(format!(
            "the store URL scheme `{scheme}` is not supported: ficus keeps its state in \
             SQLite or PostgreSQL; {FORMS}"
        )));
    }
    Ok(sqlite(url, url, opts))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn sqlite(display: &str, path: &str, opts: &StoreOptions) -> Parsed {
    let in_memory = path == ":memory:";
    let options = if in_memory {
        // sqlx gives the database a unique name and a shared cache, so every connection of
        // this pool sees the same data.
        SqliteConnectOptions::from_str("sqlite::memory:").unwrap_or_default()
    } else {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL: readers never block the writer nor it them; a commit is one append.
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: the WAL is fsynced at every commit, so an acknowledged commit survives
            // a power cut, not only a crash of ficus (NORMAL would lose the last ones).
            .synchronous(SqliteSynchronous::Full)
    };
    let options = options.busy_timeout(opts.busy_timeout).foreign_keys(true);
    Parsed {
        target: Target::Sqlite {
            options: Box::new(options),
            in_memory,
        },
        display: display.to_string(),
    }
}

fn postgres(raw: &str, opts: &StoreOptions) -> Result<Parsed, StoreError> {
    let mut url = url::Url::parse(raw).map_err(|e| {
        StoreError::Invalid(format!(
            "the store URL is not a valid PostgreSQL URL ({e}); {FORMS}"
        ))
    })?;
    let display = redact(&url);
    if url.host_str().is_none_or(str::is_empty) {
        return Err(StoreError::Invalid(format!(
            "the store URL {display} names no host; {FORMS}"
        )));
    }
    // `schema` is ours, not libpq's: take it out before sqlx sees the URL.
    let mut url_schema = None;
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "schema" {
                url_schema = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let schema = match (url_schema, &opts.pg_schema) {
        (Some(a), Some(b)) if &a != b => {
            return Err(StoreError::Invalid(format!(
                "the store URL {display} asks for schema {a} but the options say {b}; give \
                 one of them"
            )))
        }
        (Some(a), _) => Some(a),
        (None, b) => b.clone(),
    };
    if let Some(s) = &schema {
        check_schema(s, &display)?;
    }
    let options = PgConnectOptions::from_str(url.as_str()).map_err(|e| {
        StoreError::Invalid(format!(
            "the store URL {display} is not usable: {e}; {FORMS}"
        ))
    })?;
    let mut settings = vec![
        (
            "statement_timeout",
            opts.statement_timeout.as_millis().to_string(),
        ),
        ("lock_timeout", opts.busy_timeout.as_millis().to_string()),
    ];
    if let Some(s) = &schema {
        settings.push(("search_path", s.clone()));
    }
    let options = options.application_name("ficus").options(settings);
    Ok(Parsed {
        target: Target::Postgres {
            options: Box::new(options),
            schema,
        },
        display,
    })
}

/// A schema name goes into `-c search_path=` and `CREATE SCHEMA`, so only plain
/// identifiers are accepted (lower-case, since PostgreSQL folds unquoted names).
fn check_schema(s: &str, display: &str) -> Result<(), StoreError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "the schema name {s:?} for {display} is not allowed; use lower-case letters, \
             digits and _ (at most 63, not starting with a digit)"
        )))
    }
}

/// The URL with its password (in the user part or a `password=` parameter) replaced.
fn redact(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        // Only fails for URLs that cannot have a password, which this one has.
        let _ = url.set_password(Some("***"));
    }
    if url.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "***".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(url: &str) -> Parsed {
        match parse(url, &StoreOptions::default()) {
            Ok(p) => p,
            Err(e) => panic!("{url}: {e}"),
        }
    }

    fn sqlite_file(url: &str) -> String {
        match parse_ok(url).target {
            Target::Sqlite { options, in_memory } => {
                assert!(!in_memory);
                options.get_filename().display().to_string()
            }
            Target::Postgres { .. } => panic!("{url} parsed as PostgreSQL"),
        }
    }

    #[test]
    fn sqlite_forms() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/ficus/state.db"),
            "/var/lib/ficus/state.db"
        );
        assert_eq!(sqlite_file("sqlite://state.db"), "state.db");
        assert_eq!(sqlite_file("sqlite:state.db"), "state.db");
        assert_eq!(sqlite_file("SQLite:state.db"), "state.db");
        assert_eq!(sqlite_file("./data/ficus.db"), "./data/ficus.db");
        assert_eq!(sqlite_file("/tmp/x.db"), "/tmp/x.db");
        assert!(matches!(
            parse_ok("sqlite::memory:").target,
            Target::Sqlite {
                in_memory: true,
                ..
            }
        ));
    }

    #[test]
    fn bad_urls_are_invalid_with_the_forms() {
        for url in [
            "",
            "  ",
            "sqlite:",
            "sqlite://",
            "mysql://u@h/db",
            "sqlite://x.db?mode=ro",
        ] {
            match parse(url, &StoreOptions::default()) {
                Err(StoreError::Invalid(msg)) => assert!(
                    msg.contains("sqlite") || msg.contains("SQLite"),
                    "{url}: {msg}"
                ),
                Err(e) => panic!("{url}: wrong error {e}"),
                Ok(_) => panic!("{url}: accepted"),
            }
        }
    }

    #[test]
    fn postgres_forms_schema_and_redaction() {
        for url in [
            "postgres://ficus:s3cret@db.example:5433/ficus?schema=ficus_a&password=other",
            "postgresql://ficus:s3cret@db.example:5433/ficus?schema=ficus_a",
        ] {
            let p = parse_ok(url);
            assert!(!p.display.contains("s3cret"), "{}", p.display);
            assert!(!p.display.contains("other"), "{}", p.display);
            assert!(p.display.contains("db.example:5433"), "{}", p.display);
            match p.target {
                Target::Postgres { options, schema } => {
                    assert_eq!(schema.as_deref(), Some("ficus_a"));
                    assert_eq!(options.get_host(), "db.example");
                    assert_eq!(options.get_port(), 5433);
                    assert_eq!(options.get_database(), Some("ficus"));
                }
                Target::Sqlite { .. } => panic!("parsed as SQLite"),
            }
        }
    }

    #[test]
    fn schema_from_options_and_conflicts() {
        let opts = StoreOptions {
            pg_schema: Some("t1".into()),
            ..StoreOptions::default()
        };
        let p = parse("postgres://u@h/db", &opts).unwrap();
        assert!(matches!(p.target, Target::Postgres { schema: Some(ref s), .. } if s == "t1"));
        assert!(parse("postgres://u@h/db?schema=t1", &opts).is_ok());
        assert!(matches!(
            parse("postgres://u@h/db?schema=t2", &opts),
            Err(StoreError::Invalid(_))
        ));
        for bad in ["Upper", "1x", "a;drop", "a b", ""] {
            let opts = StoreOptions {
                pg_schema: Some(bad.into()),
                ..StoreOptions::default()
            };
            assert!(
                matches!(
                    parse("postgres://u@h/db", &opts),
                    Err(StoreError::Invalid(_))
                ),
                "{bad:?} accepted"
            );
        }
    }
}
