//! Who may change and read things: a bearer token for every mutation, compared in constant
//! time, and (by default whenever the admin API listens beyond loopback) a token for reads
//! too: the admin token or a read-only one.
//!
//! The token comes from `FICUS_ADMIN_TOKEN`, else from `[admin] token_file`, else (loopback
//! admin addresses only) ficus makes one at startup and writes it, readable by its owner
//! only, beside the config file, where the CLI finds it. A non-loopback admin address
//! without a configured token, or with a weak one, is refused at startup. The read-only
//! token comes from `FICUS_ADMIN_READ_TOKEN`, else `[admin] read_token_file`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment variable holding the admin token.
pub const TOKEN_ENV: &str = "FICUS_ADMIN_TOKEN";
/// Environment variable holding the read-only token.
pub const READ_TOKEN_ENV: &str = "FICUS_ADMIN_READ_TOKEN";
/// A token guarding an admin API that listens beyond loopback has at least this many
/// characters...
pub const MIN_TOKEN_CHARS: usize = 32;
/// ...of at least this many classes (lower-case letters, upper-case letters, digits,
/// other symbols). `openssl rand -hex 32` (64 characters, two classes) passes.
pub const MIN_TOKEN_CLASSES: usize = 2;
/// The file a generated token is written to, beside the config file.
pub const GENERATED_TOKEN_FILE: &str = ".ficus-admin-token";

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the admin API listens on {0}, which is not a loopback address, and no admin token is configured: set {TOKEN_ENV} or [admin] token_file, or bind the admin API to 127.0.0.1")]
    NonLoopbackWithoutToken(SocketAddr),
    #[error("cannot read the admin token file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("the admin token file {0} is empty")]
    Empty(PathBuf),
    #[error("the {what} ({source_name}) is too weak for an admin API listening on {bind}: {reason}; it needs at least {MIN_TOKEN_CHARS} characters of at least {MIN_TOKEN_CLASSES} kinds (lower-case, upper-case, digits, symbols): make one with `openssl rand -hex 32`, or bind the admin API to 127.0.0.1")]
    Weak {
        what: &'static str,
        source_name: String,
        bind: SocketAddr,
        reason: String,
    },
    #[error("cannot write the generated admin token to {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Where the token came from, for the startup log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Env,
    File(PathBuf),
    Generated(PathBuf),
}

/// The token the admin API requires, per the rules above.
pub fn load_token(
    bind: SocketAddr,
    token_file: Option<&Path>,
    config_dir: &Path,
) -> Result<(String, TokenSource), TokenError> {
    if let Ok(t) = std::env::var(TOKEN_ENV) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            check_strength(&t, bind, "admin token", TOKEN_ENV)?;
            return Ok((t, TokenSource::Env));
        }
    }
    if let Some(path) = token_file {
        let t = read_token(path)?;
        check_strength(&t, bind, "admin token", &path.display().to_string())?;
        return Ok((t, TokenSource::File(path.to_path_buf())));
    }
    if !bind.ip().is_loopback() {
        return Err(TokenError::NonLoopbackWithoutToken(bind));
    }
    let path = config_dir.join(GENERATED_TOKEN_FILE);
    let token = generate();
    write_private(&path, &token).map_err(|e| TokenError::Write {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok((token, TokenSource::Generated(path)))
}

/// What [`load_token`] and [`load_read_token`] would refuse, checked without writing a
/// generated token (`ficus validate`, and `ficus run` before anything else).
pub fn check_tokens(
    bind: SocketAddr,
    token_file: Option<&Path>,
    read_token_file: Option<&Path>,
) -> Result<(), TokenError> {
    let env = std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty());
    match (env, token_file) {
        (Some(t), _) => check_strength(t.trim(), bind, "admin token", TOKEN_ENV)?,
        (None, Some(path)) => {
            let t = read_token(path)?;
            check_strength(&t, bind, "admin token", &path.display().to_string())?;
        }
        (None, None) if !bind.ip().is_loopback() => {
            return Err(TokenError::NonLoopbackWithoutToken(bind))
        }
        (None, None) => {}
    }
    load_read_token(bind, read_token_file).map(|_| ())
}

/// The read-only token, if one is configured (`FICUS_ADMIN_READ_TOKEN`, else
/// `[admin] read_token_file`), held to the same strength as the admin token.
pub fn load_read_token(
    bind: SocketAddr,
    read_token_file: Option<&Path>,
) -> Result<Option<String>, TokenError> {
    if let Ok(t) = std::env::var(READ_TOKEN_ENV) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            check_strength(&t, bind, "read-only token", READ_TOKEN_ENV)?;
            return Ok(Some(t));
        }
    }
    match read_token_file {
        Some(path) => {
            let t = read_token(path)?;
            check_strength(&t, bind, "read-only token", &path.display().to_string())?;
            Ok(Some(t))
        }
        None => Ok(None),
    }
}

/// A token that guards an admin API beyond loopback must not be guessable: at least
/// [`MIN_TOKEN_CHARS`] characters of at least [`MIN_TOKEN_CLASSES`] kinds. On loopback any
/// token is taken (a developer's machine).
pub fn check_strength(
    token: &str,
    bind: SocketAddr,
    what: &'static str,
    source_name: &str,
) -> Result<(), TokenError> {
    if bind.ip().is_loopback() {
        return Ok(());
    }
    let chars = token.chars().count();
    let classes = [
        token.bytes().any(|b| b.is_ascii_lowercase()),
        token.bytes().any(|b| b.is_ascii_uppercase()),
        token.bytes().any(|b| b.is_ascii_digit()),
        token.bytes().any(|b| !b.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|c| **c)
    .count();
    let reason = if chars < MIN_TOKEN_CHARS {
        format!("it has {chars} characters")
    } else if classes < MIN_TOKEN_CLASSES {
        "it uses one kind of character".to_string()
    } else {
        return Ok(());
    };
    Err(TokenError::Weak {
        what,
        source_name: source_name.to_string(),
        bind,
        reason,
    })
}

/// The token of an `Authorization: Bearer TOKEN` header; the scheme is case-insensitive
/// (RFC 9110 11.1), so `bearer` and `BEARER` work too.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Reads a token file (the CLI uses the same rules as the server).
pub fn read_token(path: &Path) -> Result<String, TokenError> {
    let t = std::fs::read_to_string(path).map_err(|e| TokenError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let t = t.trim().to_string();
    if t.is_empty() {
        return Err(TokenError::Empty(path.to_path_buf()));
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::Read {
            path: path.to_path_buf(),
            reason: "a token is one line of visible ASCII characters, without spaces".into(),
        });
    }
    Ok(t)
}

/// 256 random bits, hex, from the kernel.
fn generate() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(token.as_bytes())?;
    f.write_all(b"\n")
}

/// Compares a presented token with the expected one in time that depends only on the
/// lengths (hand-written: eight lines, and the `subtle` crate would be one more dependency
/// for them).
pub fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    let mut diff = presented.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        let p = presented.get(i).copied().unwrap_or(0);
        diff |= usize::from(p ^ e);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn weak_tokens_are_refused_beyond_loopback_only() {
        let wide: SocketAddr = "0.0.0.0:9901".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:9901".parse().unwrap();
        assert!(check_strength("a", local, "admin token", "t").is_ok());
        let e = check_strength("a", wide, "admin token", "FICUS_ADMIN_TOKEN").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("it has 1 characters") && m.contains("openssl rand -hex 32"),
            "{m}"
        );
        let one_kind = "a".repeat(40);
        assert!(check_strength(&one_kind, wide, "admin token", "t")
            .unwrap_err()
            .to_string()
            .contains("one kind"));
        assert!(check_strength(&"ab12".repeat(8), wide, "admin token", "t").is_ok());
        let hex = generate();
        assert!(
            check_strength(&hex, wide, "admin token", "t").is_ok(),
            "a generated token passes"
        );
    }

    #[test]
    fn comparison() {
        assert!(token_matches(b"secret", b"secret"));
        assert!(!token_matches(b"secreT", b"secret"));
        assert!(!token_matches(b"secret!", b"secret"));
        assert!(!token_matches(b"", b"secret"));
        assert!(!token_matches(b"secret", b""));
    }

    #[test]
    fn loopback_generates_and_non_loopback_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let (t, src) = load_token("127.0.0.1:9901".parse().unwrap(), None, dir.path()).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(
            src,
            TokenSource::Generated(dir.path().join(GENERATED_TOKEN_FILE))
        );
        assert_eq!(
            read_token(&dir.path().join(GENERATED_TOKEN_FILE)).unwrap(),
            t
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(GENERATED_TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = load_token("0.0.0.0:9901".parse().unwrap(), None, dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a loopback address"), "{err}");
        let file = dir.path().join("tok");
        let strong = "0123456789abcdef0123456789abcdef";
        std::fs::write(&file, format!("  {strong} \n")).unwrap();
        let (t, src) =
            load_token("0.0.0.0:9901".parse().unwrap(), Some(&file), dir.path()).unwrap();
        assert_eq!((t.as_str(), src), (strong, TokenSource::File(file.clone())));
        // A weak token beyond loopback is refused; on loopback it is taken.
        std::fs::write(&file, "abc\n").unwrap();
        let err = load_token("0.0.0.0:9901".parse().unwrap(), Some(&file), dir.path()).unwrap_err();
        assert!(err.to_string().contains("too weak"), "{err}");
        let (t, _) =
            load_token("127.0.0.1:9901".parse().unwrap(), Some(&file), dir.path()).unwrap();
        assert_eq!(t, "abc");
    }
}
