//! Who may change things: a bearer token for every mutation, compared in constant time.
//!
//! The token comes from `FICUS_ADMIN_TOKEN`, else from `[admin] token_file`, else (loopback
//! admin addresses only) ficus makes one at startup and writes it, readable by its owner
//! only, beside the config file, where the CLI finds it. A non-loopback admin address
//! without a configured token is refused at startup.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment variable holding the admin token.
pub const TOKEN_ENV: &str = "FICUS_ADMIN_TOKEN";
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
            return Ok((t, TokenSource::Env));
        }
    }
    if let Some(path) = token_file {
        return Ok((read_token(path)?, TokenSource::File(path.to_path_buf())));
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
        std::fs::write(&file, "  abc \n").unwrap();
        let (t, src) =
            load_token("0.0.0.0:9901".parse().unwrap(), Some(&file), dir.path()).unwrap();
        assert_eq!((t.as_str(), src), ("abc", TokenSource::File(file)));
    }
}
