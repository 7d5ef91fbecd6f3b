//! The CLI over the admin API: `status`, `plan`, `apply`, `history`, `revert`, `rollback`,
//! `set`, `events`. Each change prints the events it made.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

/// The environment variable naming the admin API (as `--admin`).
pub const ADMIN_ENV: &str = "FICUS_ADMIN";
/// The environment variable naming the admin token's file (as `--token-file`).
pub const TOKEN_FILE_ENV: &str = "FICUS_ADMIN_TOKEN_FILE";

/// Where the admin API is and how to authenticate, shared by every API command.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// The config file: its [admin] bind says where the API is (unless --admin or
    /// FICUS_ADMIN does), its folder holds the generated token; plan and apply send it.
    #[arg(short, long, default_value = "ficus.toml")]
    pub config: PathBuf,
    /// The admin API: HOST:PORT or http://HOST:PORT (else the config file's [admin] bind).
    #[arg(long, env = ADMIN_ENV, value_name = "URL")]
    pub admin: Option<String>,
    /// A file holding the admin token (else FICUS_ADMIN_TOKEN, [admin] token_file, or the
    /// token ficus generated beside the config file). Reads need no token on an open admin
    /// API: the CLI sends one when it has one.
    #[arg(long, env = TOKEN_FILE_ENV, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

struct Client {
    base: String,
    target: Target,
}

/// The admin API's base URL from `--admin` / `FICUS_ADMIN`: `http://HOST:PORT`, or
/// `HOST:PORT`, which means the same (the admin API speaks plain HTTP).
fn admin_base(given: &str) -> anyhow::Result<String> {
    let s = given.trim().trim_end_matches('/');
    let url = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let ok = url.parse::<hyper::Uri>().is_ok_and(|u| {
        u.scheme_str() == Some("http")
            && u.authority().is_some_and(|a| a.port().is_some())
            && matches!(u.path(), "" | "/")
            && u.query().is_none()
    });
    if !ok {
        bail!(
            "--admin (or {ADMIN_ENV}) {given:?}: expected HOST:PORT or http://HOST:PORT, the \
             admin API's [admin] bind, e.g. 127.0.0.1:9901 (it speaks plain HTTP)"
        );
    }
    Ok(url)
}

impl Client {
    fn new(target: &Target) -> anyhow::Result<Client> {
        let base = match &target.admin {
            Some(a) => admin_base(a)?,
            None => {
                let cfg = ficus_config::load(&target.config).with_context(|| {
                    format!(
                        "cannot find the admin API: pass --admin HOST:PORT or set {ADMIN_ENV}, \
                         or -c FILE with its [admin] section"
                    )
                })?;
                let mut bind = cfg.admin.bind;
                if bind.ip().is_unspecified() {
                    bind.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{bind}")
            }
        };
        Ok(Client {
            base,
            target: target.clone(),
        })
    }

    /// The admin token, when there is one: `--token-file` / `FICUS_ADMIN_TOKEN_FILE` (an
    /// error when that file cannot be read), `FICUS_ADMIN_TOKEN`, the config file's
    /// `[admin] token_file`, or the token ficus generated beside the config file. `None`
    /// when none is found: an open endpoint needs none, and a closed one answers 401.
    fn token(&self) -> anyhow::Result<Option<String>> {
        if let Some(f) = &self.target.token_file {
            return Ok(Some(ficus_admin::auth::read_token(f)?));
        }
        if let Ok(t) = std::env::var(ficus_admin::auth::TOKEN_ENV) {
            if !t.trim().is_empty() {
                return Ok(Some(t.trim().to_string()));
            }
        }
        let configured = ficus_config::load(&self.target.config)
            .ok()
            .and_then(|c| c.admin.token_file);
        let file = configured.unwrap_or_else(|| {
            self.target
                .config
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(ficus_admin::auth::GENERATED_TOKEN_FILE)
        });
        Ok(ficus_admin::auth::read_token(&file).ok())
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>();
        let url = format!("{}{path}", self.base);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(&url)
            .header("x-ficus-actor", actor());
        // Reads beyond loopback take a read-only token too.
        let token = match self.token()? {
            Some(t) => Some(t),
            None => std::env::var(ficus_admin::auth::READ_TOKEN_ENV)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        };
        if let Some(t) = &token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(b.to_string()))),
            None => req.body(Full::new(Bytes::new())),
        }?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
            .await
            .with_context(|| format!("{url} did not answer within 30s"))?
            .with_context(|| format!("cannot reach the admin API at {url}: is `ficus run` up?"))?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let v: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        // Everything printed from here on comes from this value: for a terminal, every
        // string is escaped once, here (`--json` prints the API's JSON as it is; an error
        // is always text).
        let v = if self.target.json && status.is_success() {
            v
        } else {
            crate::safe::value(v)
        };
        if !status.is_success() {
            let detail = v["detail"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            let fix = v["fix"]
                .as_str()
                .map(|f| format!("\n  fix: {f}"))
                .unwrap_or_default();
            let no_token = if status == hyper::StatusCode::UNAUTHORIZED && token.is_none() {
                format!(
                    "\n  no admin token was found to send: pass --token-file FILE (or set {} or \
                     {}), or -c the config file beside which ficus generated {}",
                    TOKEN_FILE_ENV,
                    ficus_admin::auth::TOKEN_ENV,
                    ficus_admin::auth::GENERATED_TOKEN_FILE
                )
            } else {
                String::new()
            };
            bail!("{status}: {detail}{fix}{no_token}");
        }
        Ok(v)
    }
}

/// `cli:USER` for the audit log (which records it as `api:cli:USER`: the admin API
/// prefixes every name a client gives itself). USER, else LOGNAME, else the name of the
/// user this process runs as (`/etc/passwd`), else `uid-N`.
fn actor() -> String {
    let valid = |u: &str| {
        !u.is_empty() && u.len() <= 32 && u.chars().all(|c| c.is_ascii_graphic() && c != ':')
    };
    let from_env = ["USER", "LOGNAME"]
        .into_iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| valid(u));
    let user = from_env.or_else(|| {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the user this process runs as.
        let uid = std::fs::metadata("/proc/self").ok()?.uid();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let named = passwd.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid.to_string() && valid(name)).then(|| name.to_string())
        });
        Some(named.unwrap_or_else(|| format!("uid-{uid}")))
    });
    format!("cli:{}", user.unwrap_or_else(|| "unknown".into()))
}

fn run(f: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ficus: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ficus: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// One event as a line: `#12 2026-11-21T09:30:00Z cli:ana route.set orders: why (details)`.
fn event_line(e: &Value) -> String {
    let at = e["at"].as_i64().unwrap_or(0);
    let when = ficus_proxy::access_log::rfc3339(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(at.max(0) as u64),
    );
    let route = e["route"]
        .as_str()
        .map(|r| format!(" {r}"))
        .unwrap_or_default();
    let version = e["config_version"]
        .as_i64()
        .map(|v| format!(" v{v}"))
        .unwrap_or_default();
    let mut details = Vec::new();
    for k in ["stage", "weight"] {
        let (from, to) = (&e["data"][k]["from"], &e["data"][k]["to"]);
        if !from.is_null() && from != to {
            details.push(format!("{k} {} -> {}", show(from, k), show(to, k)));
        }
    }
    if let Some(flag) = e["data"]["flag"].as_str() {
        details.push(format!("flag {flag}"));
        // A flag override: `None` is the file's own (its rules, its switch).
        for (k, none) in [("variant", "(rules)"), ("enabled", "(file)")] {
            let (from, to) = (&e["data"][k]["from"], &e["data"][k]["to"]);
            if from != to {
                let shown = |v: &Value| match v {
                    Value::Null => none.to_string(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                details.push(format!("{k} {} -> {}", shown(from), shown(to)));
            }
        }
    }
    if let Some(changes) = e["data"]["changes"].as_array() {
        details.push(format!("{} change(s)", changes.len()));
    }
    let details = if details.is_empty() {
        String::new()
    } else {
        format!(" ({})", details.join(", "))
    };
    format!(
        "#{} {when} {} {}{route}{version}: {}{details}",
        e["id"],
        e["actor"].as_str().unwrap_or("?"),
        e["kind"].as_str().unwrap_or("?"),
        e["message"].as_str().unwrap_or("")
    )
}

/// A weight as people write it: `10%`, `12.5%`.
fn pct(v: &Value) -> String {
    format!("{}%", v.as_f64().unwrap_or(0.0))
}

/// The share of keys modern answers for a route's stage and weight: the weight on canary,
/// 100% on modern and retired, 0% on legacy and shadow (`Stage::modern_keys`).
fn keys_on_modern(stage: &Value, weight: &Value) -> String {
    let stage = stage.as_str().and_then(ficus_config::Stage::parse);
    let weight = weight.as_f64().and_then(ficus_config::Weight::from_percent);
    match (stage, weight) {
        (Some(s), Some(w)) => s.modern_keys(w).to_string(),
        _ => "?".into(),
    }
}

fn show(v: &Value, key: &str) -> String {
    match (key, v) {
        ("weight", Value::Number(_)) => pct(v),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

fn print_change(v: &Value, json: bool) {
    if json {
        return print_json(v);
    }
    for c in v["changes"].as_array().into_iter().flatten() {
        println!("{}", c.as_str().unwrap_or(""));
    }
    let events = v["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        println!("nothing to change");
    }
    for e in &events {
        println!("event {}", event_line(e));
    }
}

fn table(rows: Vec<Vec<String>>) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn side_cell(side: &Value) -> String {
    let live = &side["live"];
    if side["upstream"].is_null() {
        return "-".into();
    }
    let ms = |k: &str| {
        live[k]
            .as_f64()
            .map_or("-".to_string(), |v| format!("{v:.1}"))
    };
    format!(
        "{:.1}/s {:.1}% {}/{}ms",
        live["rate_per_s"].as_f64().unwrap_or(0.0),
        100.0 * live["error_ratio"].as_f64().unwrap_or(0.0),
        ms("p50_ms"),
        ms("p99_ms")
    )
}

pub fn status(t: Target) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let v = c.call("GET", "/api/v1/routes", None).await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        let mut rows = vec![vec![
            "#".into(),
            "ROUTE".into(),
            "MATCH".into(),
            "STAGE".into(),
            "WEIGHT".into(),
            "FILE".into(),
            "ON MODERN".into(),
            "LEGACY (req/s err p50/p99)".into(),
            "MODERN (req/s err p50/p99)".into(),
            "PROTECTION".into(),
        ]];
        for r in v["routes"].as_array().into_iter().flatten() {
            let file = if r["overridden"].as_bool().unwrap_or(false) {
                format!(
                    "{} {} (overridden)",
                    r["file"]["stage"].as_str().unwrap_or(""),
                    keys_on_modern(&r["file"]["stage"], &r["file"]["weight"])
                )
            } else {
                "=".into()
            };
            rows.push(vec![
                r["order"].to_string(),
                r["name"].as_str().unwrap_or("").into(),
                r["match"].as_str().unwrap_or("").into(),
                r["stage"].as_str().unwrap_or("").into(),
                keys_on_modern(&r["stage"], &r["weight"]),
                file,
                format!("{:.1}%", r["modern_share"].as_f64().unwrap_or(0.0)),
                side_cell(&r["legacy"]),
                side_cell(&r["modern"]),
                protection_cell(&r["protection"]),
            ]);
        }
        let fleet = &v["fleet"];
        let nodes = fleet["nodes"].as_u64().unwrap_or(1);
        let whose = if nodes > 1 {
            format!(
                ", summed over {} of {nodes} nodes up; through node {}",
                fleet["nodes_up"],
                fleet["name"].as_str().unwrap_or("?")
            )
        } else {
            String::new()
        };
        println!(
            "config version {} (live numbers over the last {}s{whose})",
            v["version"], v["window_seconds"]
        );
        print!("{}", table(rows));
        if let Some(d) = v["file_drift"].as_str() {
            println!("note: {d}");
        }
        Ok(())
    })
}

/// A route's protection in a few words: `rate 5/s (12 limited)`, `cache 93% hit`,
/// `modern breaker open`, `legacy 40/200 in flight`; `-` when none is configured.
fn protection_cell(p: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(r) = p["rate_limit"].as_object() {
        parts.push(format!(
            "rate {}/s ({} limited)",
            r["per_second"], r["limited"]
        ));
    }
    if let Some(c) = p["cache"].as_object() {
        let hits = c["hits"].as_u64().unwrap_or(0)
            + c["stale_hits"].as_u64().unwrap_or(0)
            + c["coalesced"].as_u64().unwrap_or(0);
        let all = hits + c["misses"].as_u64().unwrap_or(0);
        parts.push(if all == 0 {
            "cache (no traffic)".to_string()
        } else {
            format!("cache {:.0}% hit", 100.0 * hits as f64 / all as f64)
        });
    }
    if p["retry"].is_object() {
        parts.push(format!("retry ({} made)", p["retry"]["retries"]));
    }
    for u in p["upstreams"].as_array().into_iter().flatten() {
        let side = u["side"].as_str().unwrap_or("");
        if let Some(l) = u["limit"].as_object() {
            parts.push(format!(
                "{side} {}/{} in flight",
                l["in_flight"], l["max_in_flight"]
            ));
        }
        if let Some(b) = u["breaker"].as_object() {
            parts.push(format!(
                "{side} breaker {}",
                b["state"].as_str().unwrap_or("?")
            ));
        }
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// `ficus fleet`: every node sharing the store.
pub fn fleet(t: Target) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let v = c.call("GET", "/api/v1/fleet", None).await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        let mut rows = vec![vec![
            "NODE".into(),
            "STATE".into(),
            "LEADER".into(),
            "HOST".into(),
            "PID".into(),
            "ADMIN".into(),
            "VERSION".into(),
            "REVISION".into(),
            "LAG".into(),
            "REQ/S".into(),
            "HEARTBEAT".into(),
            "DRIFT".into(),
        ]];
        for n in v["nodes"].as_array().into_iter().flatten() {
            let me = if n["this"].as_bool().unwrap_or(false) {
                " *"
            } else {
                ""
            };
            let skew = n["revision_skew"].as_i64().unwrap_or(0);
            rows.push(vec![
                format!("{}{me}", n["name"].as_str().unwrap_or("")),
                n["state"].as_str().unwrap_or("").into(),
                if n["leader"].as_bool().unwrap_or(false) {
                    "yes".into()
                } else {
                    "".into()
                },
                n["host"].as_str().unwrap_or("").into(),
                n["pid"].to_string(),
                n["admin_url"].as_str().unwrap_or("-").into(),
                n["config_version"]
                    .as_i64()
                    .map_or("-".into(), |x| x.to_string()),
                if skew > 0 {
                    format!("{} ({skew} behind)", n["revision"])
                } else {
                    n["revision"].to_string()
                },
                format!("{} ms", n["apply_lag_ms"]),
                format!("{:.1}", n["rate"].as_f64().unwrap_or(0.0)),
                format!(
                    "{:.1}s ago",
                    n["heartbeat_age_ms"].as_i64().unwrap_or(0) as f64 / 1000.0
                ),
                n["drift"].as_str().map_or("-".to_string(), |d| clip(d, 60)),
            ]);
        }
        let leader = v["leader"]["node"].as_str().unwrap_or("nobody");
        println!(
            "store {} at revision {}; leader {leader} (epoch {})",
            v["store"].as_str().unwrap_or("?"),
            v["revision"],
            v["leader"]["epoch"]
        );
        print!("{}", table(rows));
        println!("* = the node that answered");
        if let Some(s) = v["stale"].as_str() {
            println!("note: {s}");
        }
        Ok(())
    })
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

pub fn purge(t: Target, route: &str, path: Option<String>, message: String) -> ExitCode {
    let route = route.to_string();
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call(
                "POST",
                &format!("/api/v1/cache/{}/purge", encode(&route)),
                Some(serde_json::json!({ "path": path, "message": message })),
            )
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}

pub fn plan(t: Target) -> ExitCode {
    run(async move {
        let text = std::fs::read_to_string(&t.config)
            .with_context(|| format!("cannot read {}", t.config.display()))?;
        let c = Client::new(&t)?;
        let v = c
            .call(
                "POST",
                "/api/v1/config/plan",
                Some(json!({"text": text, "origin": t.config.display().to_string()})),
            )
            .await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        let lines = v["summary"].as_array().cloned().unwrap_or_default();
        println!(
            "plan: {} against running version {}",
            t.config.display(),
            v["version"]
        );
        if lines.is_empty() {
            println!("no changes");
        }
        for l in lines {
            println!("{}", l.as_str().unwrap_or(""));
        }
        Ok(())
    })
}

pub fn apply(t: Target, message: String, expected_version: Option<i64>) -> ExitCode {
    run(async move {
        let text = std::fs::read_to_string(&t.config)
            .with_context(|| format!("cannot read {}", t.config.display()))?;
        let c = Client::new(&t)?;
        let v = c
            .call(
                "POST",
                "/api/v1/config/apply",
                Some(json!({
                    "text": text,
                    "origin": t.config.display().to_string(),
                    "message": message,
                    "expected_version": expected_version,
                })),
            )
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}

pub fn history(t: Target, limit: u32) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call(
                "GET",
                &format!("/api/v1/config/versions?limit={limit}"),
                None,
            )
            .await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        let mut rows = vec![vec![
            "VERSION".into(),
            "WHEN".into(),
            "AUTHOR".into(),
            "SHA256".into(),
            "MESSAGE".into(),
        ]];
        for r in v.as_array().into_iter().flatten() {
            let at = r["created_at"].as_i64().unwrap_or(0).max(0) as u64;
            rows.push(vec![
                r["number"].to_string(),
                ficus_proxy::access_log::rfc3339(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(at),
                ),
                r["author"].as_str().unwrap_or("").into(),
                r["sha256"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .take(12)
                    .collect(),
                r["message"].as_str().unwrap_or("").into(),
            ]);
        }
        print!("{}", table(rows));
        Ok(())
    })
}

pub fn revert(t: Target, version: i64, message: String) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call(
                "POST",
                "/api/v1/config/revert",
                Some(json!({"version": version, "message": message})),
            )
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}

pub fn rollback(t: Target, route: Option<String>, message: String) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let path = match &route {
            Some(r) => format!("/api/v1/routes/{}/rollback", encode(r)),
            None => "/api/v1/rollback".to_string(),
        };
        let v = c
            .call("POST", &path, Some(json!({"message": message})))
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}

pub fn set(
    t: Target,
    route: String,
    stage: Option<String>,
    weight: Option<f64>,
    message: String,
) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call(
                "POST",
                &format!("/api/v1/routes/{}/set", encode(&route)),
                Some(json!({"stage": stage, "weight": weight, "message": message})),
            )
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}

pub fn events(t: Target, route: Option<String>, limit: u32) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let mut path = format!("/api/v1/events?limit={limit}");
        if let Some(r) = &route {
            path.push_str(&format!("&route={}", encode(r)));
        }
        let v = c.call("GET", &path, None).await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        for e in v.as_array().into_iter().flatten().rev() {
            println!("{}", event_line(e));
        }
        Ok(())
    })
}

/// Percent-encodes a path segment or query value (route names are `[A-Za-z0-9_.-]`, so this
/// only matters for a mistyped name).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn inventory(t: Target, legacy_only: bool) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let v = c.call("GET", "/api/v1/inventory", None).await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        let mut rows = vec![vec![
            "METHOD".into(),
            "ENDPOINT".into(),
            "ROUTE".into(),
            "LEGACY".into(),
            "MODERN".into(),
            "LAST SEEN".into(),
            "".into(),
        ]];
        for e in v["endpoints"].as_array().into_iter().flatten() {
            let only = e["legacy_only"].as_bool().unwrap_or(false);
            if legacy_only && !only {
                continue;
            }
            let seen = e["last_seen"].as_u64().unwrap_or(0);
            rows.push(vec![
                e["method"].as_str().unwrap_or("").into(),
                e["template"].as_str().unwrap_or("").into(),
                e["route"].as_str().unwrap_or("").into(),
                e["legacy"].to_string(),
                e["modern"].to_string(),
                ficus_proxy::access_log::rfc3339(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(seen),
                ),
                if only {
                    "legacy only".into()
                } else {
                    String::new()
                },
            ]);
        }
        print!("{}", table(rows));
        let overflow = v["overflow"].as_u64().unwrap_or(0);
        if overflow > 0 {
            println!(
                "note: {overflow} request(s) to endpoints beyond the cap of {} were not itemized",
                v["cap"]
            );
        }
        Ok(())
    })
}

fn rate(v: &Value) -> String {
    match v.as_f64() {
        Some(r) => format!("{:.2}%", r * 100.0),
        None => "-".into(),
    }
}

/// A field's noise rate as the dashboard shows it: `-` before any legacy-vs-legacy
/// comparison, `(route)` when it is the route's pooled noise (the endpoint has too few
/// comparisons of its own).
fn noise_cell(f: &Value) -> String {
    if f["noise_compared"].as_i64().unwrap_or(0) <= 0 {
        return "-".into();
    }
    let pooled = if f["noise_scope"] == "route" {
        " (route)"
    } else {
        ""
    };
    format!("{}{pooled}", rate(&f["noise_rate"]))
}

pub fn diffs(t: Target, route: Option<String>, per_endpoint: usize) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let mut path = "/api/v1/diffs".to_string();
        if let Some(r) = &route {
            path.push_str(&format!("?route={}", encode(r)));
        }
        let v = c.call("GET", &path, None).await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        let routes = v.as_array().cloned().unwrap_or_default();
        if routes.is_empty() {
            println!("no route mirrors yet: put a route with a modern upstream on stage shadow (or canary with [route.shadow] canary = true)");
        }
        for r in &routes {
            let c = &r["counters"];
            let dropped: u64 = [
                "dropped_queue_full",
                "dropped_too_large",
                "dropped_incomplete",
                "dropped_closed",
            ]
            .iter()
            .map(|k| c[*k].as_u64().unwrap_or(0))
            .sum();
            println!(
                "route {} ({}{}): mirrored {}, compared {}, dropped {} (queue full {}, too large {}, incomplete {}), modern failed {}",
                r["route"].as_str().unwrap_or(""),
                r["stage"].as_str().unwrap_or("removed"),
                if r["mirroring"].as_bool() == Some(true) { ", mirroring" } else { "" },
                c["mirrored"],
                c["compared"],
                dropped,
                c["dropped_queue_full"],
                c["dropped_too_large"],
                c["dropped_incomplete"],
                c["failed"],
            );
            let Some(rep) = r["report"].as_object() else {
                println!("  no comparisons yet\n");
                continue;
            };
            println!(
                "  since the last reset: {} compared, {} with a difference, {} noise samples; real difference rate {}",
                rep["compared"], rep["differing"], rep["noise_compared"], rate(&rep["rate"])
            );
            for e in rep["endpoints"].as_array().into_iter().flatten() {
                println!(
                    "  {}  ({} compared, {} legacy-vs-legacy)",
                    e["endpoint"].as_str().unwrap_or(""),
                    e["compared"],
                    e["noise_compared"]
                );
                let mut rows = vec![vec![
                    "    FIELD".to_string(),
                    "KIND".into(),
                    "RATE".into(),
                    "NOISE RATE".into(),
                    "VERDICT".into(),
                    "SAMPLES".into(),
                ]];
                for f in e["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .take(per_endpoint)
                {
                    let ids: Vec<String> = f["sample_ids"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .take(3)
                        .map(|i| i.to_string())
                        .collect();
                    rows.push(vec![
                        format!("    {}", f["path"].as_str().unwrap_or("")),
                        f["kind"].as_str().unwrap_or("").into(),
                        rate(&f["rate"]),
                        noise_cell(f),
                        f["verdict"].as_str().unwrap_or("").into(),
                        ids.join(" "),
                    ]);
                }
                if rows.len() > 1 {
                    print!("{}", table(rows));
                }
            }
            println!();
        }
        Ok(())
    })
}

pub fn diff_sample(t: Target, id: &str) -> ExitCode {
    let id = id.to_string();
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call(
                "GET",
                &format!("/api/v1/diffs/samples/{}", encode(&id)),
                None,
            )
            .await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        let d = &v["data"];
        println!(
            "sample {} of route {}, {} ({} {}):",
            v["id"],
            v["route"].as_str().unwrap_or(""),
            v["endpoint"].as_str().unwrap_or(""),
            v["path"].as_str().unwrap_or(""),
            v["kind"].as_str().unwrap_or("")
        );
        let req = &d["request"];
        println!(
            "\nrequest: {} {}",
            req["method"].as_str().unwrap_or(""),
            req["uri"].as_str().unwrap_or("")
        );
        for h in req["headers"].as_array().into_iter().flatten() {
            println!(
                "  {}: {}",
                h[0].as_str().unwrap_or(""),
                h[1].as_str().unwrap_or("")
            );
        }
        if let Some(b) = req["body"].as_str().filter(|b| !b.is_empty()) {
            println!("  {b}");
        }
        println!("\ndifferences:");
        let mut rows = vec![vec![
            "  AT".to_string(),
            "KIND".into(),
            "LEGACY".into(),
            "MODERN".into(),
        ]];
        for x in v["differences"].as_array().into_iter().flatten() {
            let side = |k: &str| x[k].as_str().map_or("(absent)".to_string(), str::to_string);
            rows.push(vec![
                format!("  {}", x["at"].as_str().unwrap_or("")),
                x["kind"].as_str().unwrap_or("").into(),
                side("left"),
                side("right"),
            ]);
        }
        print!("{}", table(rows));
        for (name, key) in [("legacy", "legacy"), ("modern", "modern")] {
            let r = &d[key];
            println!("\n{name} response: {}", r["status"]);
            for h in r["headers"].as_array().into_iter().flatten() {
                println!(
                    "  {}: {}",
                    h[0].as_str().unwrap_or(""),
                    h[1].as_str().unwrap_or("")
                );
            }
            println!("  {}", r["body"].as_str().unwrap_or(""));
        }
        Ok(())
    })
}

pub fn reset_diffs(t: Target, route: &str, message: String) -> ExitCode {
    let route = route.to_string();
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call(
                "POST",
                &format!("/api/v1/diffs/{}/reset", encode(&route)),
                Some(serde_json::json!({ "message": message })),
            )
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}

pub fn rollout_status(t: Target, route: Option<String>) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let v = c.call("GET", "/api/v1/rollouts", None).await?;
        let all = v.as_array().cloned().unwrap_or_default();
        let mine: Vec<&Value> = all
            .iter()
            .filter(|r| route.as_deref().is_none_or(|n| r["route"] == n))
            .collect();
        if t.json {
            print_json(&Value::Array(mine.into_iter().cloned().collect()));
            return Ok(());
        }
        if mine.is_empty() {
            println!("no rollout: add [route.rollout] to a route (see docs/rollout.md)");
        }
        for r in mine {
            let steps: Vec<String> = r["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, s)| {
                    let w = format!("{}%", s.as_f64().unwrap_or(0.0));
                    if Some(i as u64) == r["step"].as_u64() {
                        format!("[{w}]")
                    } else {
                        w
                    }
                })
                .collect();
            println!(
                "{}: {} at step {} of {} ({}), {:.0}s in this step",
                r["route"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or(""),
                r["step"].as_u64().unwrap_or(0) + 1,
                steps.len(),
                steps.join(" -> "),
                r["in_step_s"].as_f64().unwrap_or(0.0)
            );
            let v = &r["last_verdict"];
            if v.is_object() {
                println!(
                    "  last verdict: {} ({})",
                    v["decision"].as_str().unwrap_or(""),
                    v["reason"].as_str().unwrap_or("")
                );
                for g in v["gates"].as_array().into_iter().flatten() {
                    println!(
                        "    {:<13} {:<12} {}{}",
                        g["gate"].as_str().unwrap_or(""),
                        g["outcome"].as_str().unwrap_or(""),
                        g["detail"].as_str().unwrap_or(""),
                        if g["critical"] == true {
                            ""
                        } else {
                            " (not critical)"
                        }
                    );
                }
            }
        }
        Ok(())
    })
}

/// `ficus slo [ROUTE]`
pub fn slo(t: Target, route: Option<String>) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let Some(route) = route else {
            let v = c.call("GET", "/api/v1/slo", None).await?;
            if t.json {
                print_json(&v);
                return Ok(());
            }
            let all = v.as_array().cloned().unwrap_or_default();
            if all.is_empty() {
                println!("no SLO: add [[route.slo]] or [[slo.default]] (see docs/slo.md)");
                return Ok(());
            }
            let mut rows = vec![[
                "SLO",
                "SCOPE",
                "OBJECTIVE",
                "WINDOW",
                "SLI",
                "SLI 5M",
                "BUDGET LEFT",
                "BURN 1H",
                "EXHAUSTED IN",
                "ALERTS",
            ]
            .map(String::from)
            .to_vec()];
            for s in &all {
                rows.push(slo_row(s).to_vec());
            }
            print!("{}", table(rows));
            return Ok(());
        };
        let v = c
            .call("GET", &format!("/api/v1/slo/{}", encode(&route)), None)
            .await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        let slos = v["slos"].as_array().cloned().unwrap_or_default();
        if slos.is_empty() {
            println!("{route}: no SLO: add [[route.slo]] or [[slo.default]] (see docs/slo.md)");
        }
        for s in &slos {
            let r = slo_row(s);
            println!("{} ({} scope): {} over {}", r[0], r[1], r[2], r[3]);
            let e = &s["evaluation"];
            if !e.is_object() {
                println!("  not evaluated yet (the leader evaluates every [slo] evaluate_every)");
                continue;
            }
            println!(
                "  SLI {} over the window ({} requests, {} bad), {} over the last 5 minutes",
                r[4],
                e["window"]["total"].as_u64().unwrap_or(0),
                e["window"]["bad"].as_u64().unwrap_or(0),
                r[5]
            );
            println!(
                "  error budget left: {}; spent in: {} (at the 1h burn rate)",
                r[6], r[8]
            );
            let burns: Vec<String> = e["burn_rates"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    format!(
                        "{} {}",
                        window_name(b["seconds"].as_u64().unwrap_or(0)),
                        b["burn_rate"]
                            .as_f64()
                            .map_or("-".to_string(), |x| format!("{x:.2}x"))
                    )
                })
                .collect();
            println!("  burn rate: {}", burns.join(", "));
            for rule in e["rules"].as_array().into_iter().flatten() {
                let state = if rule["firing"] == true {
                    "FIRING"
                } else if rule["guarded"] == true {
                    "too little traffic"
                } else {
                    "ok"
                };
                println!(
                    "    {:<6} {:>3} and {:>3} over {}x: {:.2}x and {:.2}x  {state}",
                    rule["severity"].as_str().unwrap_or(""),
                    window_name(rule["long_s"].as_u64().unwrap_or(0)),
                    window_name(rule["short_s"].as_u64().unwrap_or(0)),
                    rule["factor"].as_f64().unwrap_or(0.0),
                    rule["long"]["burn_rate"].as_f64().unwrap_or(0.0),
                    rule["short"]["burn_rate"].as_f64().unwrap_or(0.0),
                );
            }
            for m in s["compliance"].as_array().into_iter().flatten() {
                println!(
                    "  month from {}: SLI {} ({} requests): {}",
                    m["month_start"].as_i64().map_or(String::new(), date_of),
                    m["sli"]
                        .as_f64()
                        .map_or("-".into(), |x| format!("{:.4}%", x * 100.0)),
                    m["total"].as_u64().unwrap_or(0),
                    if m["met"] == true { "met" } else { "missed" }
                );
            }
        }
        let alerts = v["alerts"].as_array().cloned().unwrap_or_default();
        if !alerts.is_empty() {
            println!("alerts (newest first):");
            for a in alerts.iter().take(10) {
                println!(
                    "  #{} {}",
                    a["id"].as_i64().unwrap_or(0),
                    a["message"].as_str().unwrap_or("")
                );
            }
        }
        Ok(())
    })
}

/// `ficus flag list` / `ficus flag show KEY`
pub fn flags(t: Target, key: Option<String>) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let Some(key) = key else {
            let v = c.call("GET", "/api/v1/flags", None).await?;
            if t.json {
                print_json(&v);
                return Ok(());
            }
            let all = v.as_array().cloned().unwrap_or_default();
            if all.is_empty() {
                println!("no flag: add [[flag]] to the config (see docs/flags.md)");
                return Ok(());
            }
            let mut rows = vec![[
                "FLAG",
                "KIND",
                "STATE",
                "DEFAULT",
                "VARIANTS",
                "RULES",
                "OVERRIDE",
                "EVALUATIONS",
            ]
            .map(String::from)
            .to_vec()];
            for f in &all {
                rows.push(vec![
                    f["key"].as_str().unwrap_or("").to_string(),
                    f["kind"].as_str().unwrap_or("").to_string(),
                    if f["enabled"] == true {
                        "enabled"
                    } else {
                        "disabled"
                    }
                    .to_string(),
                    f["default"].as_str().unwrap_or("").to_string(),
                    f["variants"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    f["rules"].as_u64().unwrap_or(0).to_string(),
                    match f.get("override") {
                        Some(o) => override_text(o),
                        None => "-".to_string(),
                    },
                    f["evaluations"].as_u64().unwrap_or(0).to_string(),
                ]);
            }
            print!("{}", table(rows));
            return Ok(());
        };
        let v = c
            .call("GET", &format!("/api/v1/flags/{}", encode(&key)), None)
            .await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        println!(
            "{} ({}), default {}",
            v["key"].as_str().unwrap_or(""),
            if v["enabled"] == true {
                "enabled"
            } else {
                "disabled: SDKs use their code default"
            },
            v["defaultVariant"]
                .as_str()
                .or(v["default_variant"].as_str())
                .unwrap_or("")
        );
        for (name, value) in v["variants"].as_object().into_iter().flatten() {
            println!("  variant {name} = {value}");
        }
        for (i, r) in v["rules"].as_array().into_iter().flatten().enumerate() {
            println!("  rule {}: {}", i + 1, r);
        }
        if let Some(o) = v.get("override") {
            println!(
                "  overridden at runtime: {} (`ficus flag reset {}` goes back to the file)",
                override_text(o),
                v["key"].as_str().unwrap_or("")
            );
            let file = &v["file"];
            println!(
                "  in the file: default {}, {} rule(s), {}",
                file["defaultVariant"].as_str().unwrap_or(""),
                file["rules"].as_array().map_or(0, Vec::len),
                if file["enabled"] == false {
                    "disabled"
                } else {
                    "enabled"
                }
            );
        }
        let evaluations = v["evaluations"].as_array().cloned().unwrap_or_default();
        if !evaluations.is_empty() {
            println!("  evaluations on this node since it started:");
            for e in &evaluations {
                println!(
                    "    {:<16} {:<16} {}",
                    e["variant"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .unwrap_or("(none)"),
                    e["reason"].as_str().unwrap_or(""),
                    e["count"].as_u64().unwrap_or(0)
                );
            }
        }
        Ok(())
    })
}

/// `ficus flag set KEY [--variant V] [--enable|--disable] -m WHY`
pub fn flag_set(
    t: Target,
    key: &str,
    variant: Option<String>,
    enabled: Option<bool>,
    message: String,
) -> ExitCode {
    let path = format!("/api/v1/flags/{}/set", encode(key));
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call(
                "POST",
                &path,
                Some(json!({"variant": variant, "enabled": enabled, "message": message})),
            )
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}

/// POSTs `body` to the admin API (a command that is not only an API call, e.g. `ficus replay
/// --save`); the answer's JSON.
pub fn post_json(t: &Target, path: &str, body: Value) -> anyhow::Result<Value> {
    let t = t.clone();
    let path = path.to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let c = Client::new(&t)?;
        c.call("POST", &path, Some(body)).await
    })
}

/// `ficus replays [ID]`: the kept replay runs, or one with its ranked fields.
pub fn replays(t: Target, id: Option<i64>) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let Some(id) = id else {
            let v = c.call("GET", "/api/v1/replays", None).await?;
            if t.json {
                print_json(&v);
                return Ok(());
            }
            let runs = v.as_array().cloned().unwrap_or_default();
            if runs.is_empty() {
                println!("no replay run kept: `ficus replay FILE --target URL --compare --save`");
                return Ok(());
            }
            let mut rows = vec![[
                "ID",
                "WHEN",
                "BY",
                "RECORDING",
                "TARGET",
                "AGAINST",
                "SENT",
                "REAL FIELDS",
            ]
            .map(String::from)
            .to_vec()];
            for r in &runs {
                let at = r["at"].as_i64().unwrap_or(0);
                rows.push(vec![
                    r["id"].to_string(),
                    ficus_proxy::access_log::rfc3339(
                        std::time::UNIX_EPOCH + std::time::Duration::from_millis(at.max(0) as u64),
                    ),
                    r["actor"].as_str().unwrap_or("").to_string(),
                    r["file"].as_str().unwrap_or("").to_string(),
                    r["target"].as_str().unwrap_or("").to_string(),
                    r["reference"].as_str().unwrap_or("").to_string(),
                    r["sent"].to_string(),
                    r["real"].to_string(),
                ]);
            }
            print!("{}", table(rows));
            return Ok(());
        };
        let v = c
            .call("GET", &format!("/api/v1/replays/{id}"), None)
            .await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        println!(
            "replay run {} of {} against {} ({}), by {}",
            v["id"],
            v["file"].as_str().unwrap_or(""),
            v["target"].as_str().unwrap_or(""),
            v["reference"].as_str().unwrap_or(""),
            v["actor"].as_str().unwrap_or("")
        );
        crate::replay_cmd::print_report(&v["report"]);
        Ok(())
    })
}

/// `ficus record start ROUTE [--sample P] [--for D] [--max-size S] -m WHY`
pub fn record_start(
    t: Target,
    route: &str,
    sample: Option<f64>,
    for_: Option<String>,
    max_size: Option<String>,
    message: String,
) -> ExitCode {
    let path = format!("/api/v1/record/{}/start", encode(route));
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call(
                "POST",
                &path,
                Some(json!({"sample": sample, "for": for_, "max_size": max_size, "message": message})),
            )
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}

/// `ficus record stop ROUTE -m WHY`
pub fn record_stop(t: Target, route: &str, message: String) -> ExitCode {
    let path = format!("/api/v1/record/{}/stop", encode(route));
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call("POST", &path, Some(json!({"message": message})))
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}

/// `ficus record status`: this node's recordings.
pub fn record_status(t: Target) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let v = c.call("GET", "/api/v1/record", None).await?;
        if t.json {
            print_json(&v);
            return Ok(());
        }
        let routes = v["routes"].as_array().cloned().unwrap_or_default();
        println!(
            "node {}: recordings in {} ({} of {} written)",
            v["node"].as_str().unwrap_or(""),
            v["dir"].as_str().unwrap_or(""),
            bytes(v["total_bytes"].as_u64().unwrap_or(0)),
            bytes(v["max_total"].as_u64().unwrap_or(0))
        );
        if routes.is_empty() {
            println!(
                "no route records: add [route.record] or run `ficus record start ROUTE -m WHY`"
            );
            return Ok(());
        }
        let mut rows = vec![[
            "ROUTE",
            "STATE",
            "SOURCE",
            "SAMPLE",
            "REQUESTS",
            "RECORDED",
            "SAMPLED OUT",
            "DROPPED",
            "IN PROGRESS",
            "SIZE",
            "FILES",
        ]
        .map(String::from)
        .to_vec()];
        for r in &routes {
            let dropped: Vec<String> = r["dropped"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            let mut state = r["state"].as_str().unwrap_or("").to_string();
            if let Some(u) = r["until_ms"].as_u64() {
                let left = u as i64 - ficus_control::unix_ms();
                if left > 0 {
                    state = format!("{state} ({} left)", fmt_secs(left as f64 / 1000.0));
                }
            }
            rows.push(vec![
                r["route"].as_str().unwrap_or("").to_string(),
                state,
                r["source"].as_str().unwrap_or("-").to_string(),
                r["sample_percent"]
                    .as_f64()
                    .map_or("-".to_string(), |p| format!("{p}%")),
                r["requests"].to_string(),
                r["recorded"].to_string(),
                r["sampled_out"].to_string(),
                if dropped.is_empty() {
                    "0".to_string()
                } else {
                    dropped.join(", ")
                },
                r["in_progress"].to_string(),
                bytes(r["bytes"].as_u64().unwrap_or(0)),
                r["files"].to_string(),
            ]);
        }
        print!("{}", table(rows));
        Ok(())
    })
}

fn bytes(n: u64) -> String {
    ficus_config::units::format_size(n)
}

/// `ficus flag reset KEY -m WHY`
pub fn flag_reset(t: Target, key: &str, message: String) -> ExitCode {
    let path = format!("/api/v1/flags/{}/reset", encode(key));
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call("POST", &path, Some(json!({"message": message})))
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}

/// How a flag override reads: `variant off, disabled`.
fn override_text(o: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(v) = o["variant"].as_str() {
        parts.push(format!("variant {v}"));
    }
    match o["enabled"].as_bool() {
        Some(true) => parts.push("enabled".to_string()),
        Some(false) => parts.push("disabled".to_string()),
        None => {}
    }
    parts.join(", ")
}

fn slo_row(s: &Value) -> [String; 10] {
    let spec = &s["spec"];
    let e = &s["evaluation"];
    let pct = |v: &Value| {
        v.as_f64()
            .map_or("-".to_string(), |x| format!("{:.3}%", x * 100.0))
    };
    let objective = match spec["sli"]["kind"].as_str() {
        Some("latency") => format!(
            "{}% < {}ms",
            spec["objective"].as_f64().unwrap_or(0.0),
            spec["sli"]["threshold_us"].as_u64().unwrap_or(0) as f64 / 1000.0
        ),
        _ => format!("{}% ok", spec["objective"].as_f64().unwrap_or(0.0)),
    };
    let window = match spec["window"]["kind"].as_str() {
        Some("rolling") => format!("{}d", spec["window"]["days"].as_u64().unwrap_or(0)),
        _ => "calendar month".to_string(),
    };
    let burn_1h = e["burn_rates"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["seconds"] == 3600)
        .and_then(|b| b["burn_rate"].as_f64())
        .map_or("-".to_string(), |x| format!("{x:.2}x"));
    let exhausted = match e["time_to_exhaustion_s"].as_f64() {
        None => "never".to_string(),
        Some(x) if x <= 0.0 => "exhausted".to_string(),
        Some(x) => fmt_secs(x),
    };
    let mut alerts = Vec::new();
    if s["page_since"].is_i64() {
        alerts.push("PAGE");
    }
    if s["ticket_since"].is_i64() {
        alerts.push("TICKET");
    }
    [
        s["id"].as_str().unwrap_or("").to_string(),
        spec["scope"].as_str().unwrap_or("").to_string(),
        objective,
        window,
        pct(&e["sli"]),
        pct(&e["sli_5m"]),
        e["budget_remaining"]
            .as_f64()
            .map_or("-".to_string(), |x| format!("{:.1}%", x * 100.0)),
        burn_1h,
        if e.is_object() { exhausted } else { "-".into() },
        if alerts.is_empty() {
            "-".to_string()
        } else {
            alerts.join(",")
        },
    ]
}

fn window_name(seconds: u64) -> String {
    if seconds > 0 && seconds.is_multiple_of(86_400) {
        format!("{}d", seconds / 86_400)
    } else if seconds > 0 && seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else {
        format!("{}m", seconds / 60)
    }
}

fn fmt_secs(x: f64) -> String {
    if x >= 86_400.0 {
        format!("{:.1}d", x / 86_400.0)
    } else if x >= 3600.0 {
        format!("{:.1}h", x / 3600.0)
    } else if x >= 60.0 {
        format!("{:.0}m", x / 60.0)
    } else {
        format!("{x:.0}s")
    }
}

fn date_of(unix_s: i64) -> String {
    ficus_slo::rfc3339(unix_s)
        .split('T')
        .next()
        .unwrap_or("")
        .to_string()
}

pub fn rollout_command(t: Target, route: &str, command: &str, message: String) -> ExitCode {
    let (route, command) = (route.to_string(), command.to_string());
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call(
                "POST",
                &format!("/api/v1/rollouts/{}/{}", encode(&route), encode(&command)),
                Some(serde_json::json!({ "message": message })),
            )
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}

/// `ficus migration status [NAME]`: every plan (or one, with its timeline).
pub fn migration_status(t: Target, name: Option<String>) -> ExitCode {
    run(async move {
        let c = Client::new(&t)?;
        let plans: Vec<Value> = match &name {
            Some(n) => vec![
                c.call("GET", &format!("/api/v1/migrations/{}", encode(n)), None)
                    .await?,
            ],
            None => c
                .call("GET", "/api/v1/migrations", None)
                .await?
                .as_array()
                .cloned()
                .unwrap_or_default(),
        };
        if t.json {
            print_json(&match name {
                Some(_) => plans.into_iter().next().unwrap_or(Value::Null),
                None => Value::Array(plans),
            });
            return Ok(());
        }
        if plans.is_empty() {
            println!("no migration plan: add [[migration]] to the config (see docs/migrations.md)");
        }
        for p in &plans {
            print_migration(p);
        }
        Ok(())
    })
}

fn print_migration(p: &Value) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    println!(
        "{}: {} at step {} of {} ({}{})",
        s(&p["name"]),
        s(&p["status"]),
        p["step"].as_u64().unwrap_or(0) + 1,
        p["steps"].as_array().map_or(0, Vec::len),
        s(&p["step_name"]),
        if p["started"] == true {
            ", begun"
        } else {
            ", not begun"
        }
    );
    for st in p["steps"].as_array().into_iter().flatten() {
        let mark = match st["state"].as_str() {
            Some("done") => "done",
            Some("current") => "  ->",
            _ => "    ",
        };
        println!(
            "  {mark} {:<14} {}{}",
            s(&st["name"]),
            s(&st["action"]),
            if st["manual"] == true {
                " [manual]"
            } else {
                ""
            }
        );
    }
    if let Some(g) = p["gate"].as_object() {
        println!(
            "  gate: {}",
            g.get("outcome").and_then(Value::as_str).unwrap_or("")
        );
        for c in g
            .get("checks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            println!(
                "    {} {:<22} {}",
                if c["ok"] == true { "ok  " } else { "not " },
                s(&c["name"]),
                s(&c["detail"])
            );
        }
    }
    if let Some(th) = p["throttle"].as_object() {
        println!(
            "  throttle: {} ({})",
            if th.get("paused") == Some(&Value::Bool(true)) {
                "paused"
            } else {
                "not paused"
            },
            th.get("reason").and_then(Value::as_str).unwrap_or("")
        );
    }
    if let Some(tl) = p["timeline"].as_array() {
        println!("  timeline (newest first):");
        for e in tl.iter().take(20) {
            println!(
                "    #{} {} {:<26} {}",
                e["id"],
                s(&e["actor"]),
                s(&e["kind"]),
                s(&e["message"])
            );
        }
    }
}

/// `ficus migration advance|pause|resume|back NAME -m WHY`.
pub fn migration_command(t: Target, name: &str, command: &str, message: String) -> ExitCode {
    let (name, command) = (name.to_string(), command.to_string());
    run(async move {
        let c = Client::new(&t)?;
        let v = c
            .call(
                "POST",
                &format!("/api/v1/migrations/{}/{}", encode(&name), encode(&command)),
                Some(serde_json::json!({ "message": message })),
            )
            .await?;
        print_change(&v, t.json);
        Ok(())
    })
}
