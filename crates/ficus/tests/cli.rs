//! The `ficus` binary end to end: validate, routes, run with SIGHUP reload (valid and
//! invalid), the access log, and SIGTERM draining an in-flight request.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

fn ficus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ficus"))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ficus-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A tiny upstream answering `{name}` (after `/sleep/MS` waits MS milliseconds).
async fn upstream(name: &'static str) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        if let Some(ms) = req.uri().path().strip_prefix("/sleep/") {
                            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0)))
                                .await;
                        }
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(name))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// A GET with headers: the status and the side that answered (`x-ficus-upstream`).
async fn get_with(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut req = hyper::Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = c
        .request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .expect("the gateway answers");
    let side = resp
        .headers()
        .get("x-ficus-upstream")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status().as_u16(), side)
}

async fn get(url: &str) -> (u16, String, String) {
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let resp = c
        .get(url.parse().unwrap())
        .await
        .expect("the gateway answers");
    let status = resp.status().as_u16();
    let side = resp
        .headers()
        .get("x-ficus-upstream")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, side, String::from_utf8_lossy(&body).into_owned())
}

fn config(dir: &Path, legacy: &str, modern: &str, weight: u32) -> String {
    format!(
        r#"[gateway]
pid_file = "ficus.pid"
shutdown_grace = "5s"

[[listener]]
bind = "127.0.0.1:0"

[upstream.legacy]
url = "{legacy}"

[upstream.modern]
url = "{modern}"

[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = {weight}
sticky = "header:x-user-id"
debug_header = true

[default]
legacy = "legacy"
debug_header = true

[access_log]
format = "json"
path = "{}"

[admin]
bind = "127.0.0.1:0"
"#,
        dir.join("access.log").display()
    )
}

/// A child process that is killed and reaped if the test fails before it exits.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ficus run` and waits for its "listening" line; returns the child, the address and
/// a thread collecting the rest of stderr.
fn start(cfg: &Path) -> (Proc, String, std::sync::mpsc::Receiver<String>) {
    let mut child = Proc(
        ficus()
            .args(["run", "-c"])
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("ficus run prints its listening address");
        if let Some(i) = line.find("addr=") {
            let addr = line[i + 5..].split_whitespace().next().unwrap().to_string();
            return (child, addr, rx);
        }
    }
}

fn wait_for_line(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no log line containing {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

#[test]
fn version_is_printed() {
    let out = ficus().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("ficus {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn validate_reports_file_line_col_and_exits_1() {
    let dir = temp_dir("validate");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[listener]]\nbind = \"127.0.0.1:8080\"\n[upstream.legacy]\nurl = \"http://127.0.0.1:9001\"\n[upstream.modern]\nurl = \"http://127.0.0.1:9002\"\n[[route]]\nname = \"orders\"\npath_prefix = \"/orders\"\nlegacy = \"legacy\"\nmodern = \"modrn\"\nstage = \"canary\"\n[default]\nlegacy = \"legacy\"\n",
    )
    .unwrap();
    let out = ficus().args(["validate", "-c"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let loc = format!("{}:11:10: error: ", bad.display());
    assert!(err.contains(&loc), "{err}");
    assert!(err.contains("unknown upstream \"modrn\""), "{err}");
    assert!(err.contains("did you mean \"modern\"?"), "{err}");

    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        config(&dir, "http://127.0.0.1:1", "http://127.0.0.1:2", 25),
    )
    .unwrap();
    let out = ficus()
        .args(["validate", "-c"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A file of typos: the first errors, a count of the rest, the total; not a line per typo.
    let typos = dir.join("typos.toml");
    let text: String = (0..20_000)
        .map(|i| format!("[gatewy{i}]\nfoo = 1\n"))
        .collect();
    std::fs::write(&typos, text).unwrap();
    let out = ficus()
        .args(["validate", "-c"])
        .arg(&typos)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.lines().count() < 150, "{} lines", err.lines().count());
    assert!(
        err.contains(&format!(
            "{}: ... and 19953 more error(s) not shown",
            typos.display()
        )),
        "{}",
        &err[err.len().saturating_sub(400)..]
    );
    // The typos and the three sections the file lacks (listener, upstream, default).
    assert!(
        err.ends_with(&format!("{}: 20003 error(s)\n", typos.display())),
        "{err}"
    );

    let missing = ficus()
        .args(["validate", "-c", "/nonexistent/ficus.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr)
        .contains("cannot read config file /nonexistent/ficus.toml"));
}

#[test]
fn routes_prints_the_compiled_table() {
    let dir = temp_dir("routes");
    let cfg = dir.join("ficus.toml");
    std::fs::write(
        &cfg,
        config(&dir, "http://127.0.0.1:1", "http://127.0.0.1:2", 25),
    )
    .unwrap();
    let out = ficus().args(["routes", "-c"]).arg(&cfg).output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("#  ROUTE"), "{table}");
    assert!(lines[1].contains("orders") && lines[1].contains("canary") && lines[1].contains("25%"));
    assert!(
        lines[1].contains("modern for 25% of keys, legacy for the rest"),
        "{table}"
    );
    assert!(lines[1].contains("header:x-user-id"), "{table}");
    assert!(
        lines[2].starts_with("2  default") && lines[2].contains("legacy"),
        "{table}"
    );
    // A shadow route says how much of its traffic is copied to modern.
    std::fs::write(
        &cfg,
        config(&dir, "http://127.0.0.1:1", "http://127.0.0.1:2", 0)
            .replace("stage = \"canary\"", "stage = \"shadow\""),
    )
    .unwrap();
    let out = ficus().args(["routes", "-c"]).arg(&cfg).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("legacy, copies 100% of keys to modern"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reloads_on_sighup_refuses_invalid_files_and_drains_on_sigterm() {
    let dir = temp_dir("run");
    let legacy = upstream("legacy").await;
    let modern = upstream("modern").await;
    let cfg = dir.join("ficus.toml");
    std::fs::write(&cfg, config(&dir, &legacy, &modern, 0)).unwrap();
    let (mut child, addr, logs) = start(&cfg);
    let base = format!("http://{addr}");

    assert_eq!(
        get(&format!("{base}/orders/1")).await,
        (200, "legacy".into(), "legacy".into())
    );

    // A valid change through `ficus reload` (validates, then signals the pid file's process).
    std::fs::write(&cfg, config(&dir, &legacy, &modern, 100)).unwrap();
    let out = ficus().args(["reload", "-c"]).arg(&cfg).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_line(&logs, "reloaded");
    assert_eq!(get(&format!("{base}/orders/1")).await.1, "modern");

    // An invalid file: `ficus reload` refuses before signalling; a raw SIGHUP is refused by
    // the gateway, which keeps serving the previous table.
    std::fs::write(
        &cfg,
        config(&dir, &legacy, &modern, 100).replace("stage = \"canary\"", "stage = \"canery\""),
    )
    .unwrap();
    let out = ficus().args(["reload", "-c"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown stage \"canery\""));
    let pid = child.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let line = wait_for_line(&logs, "reload refused");
    assert!(line.contains("previous table keeps serving"), "{line}");
    assert_eq!(get(&format!("{base}/orders/2")).await.1, "modern");

    // SIGTERM while a request is in flight: it is answered, then ficus exits 0.
    let slow = tokio::spawn({
        let url = format!("{base}/sleep/800");
        async move { get(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(slow.await.unwrap(), (200, "legacy".into(), "legacy".into()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "ficus exits after draining");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert!(
        !dir.join("ficus.pid").exists(),
        "the pid file is removed on exit"
    );

    // The access log has one JSON line per request.
    let log = std::fs::read_to_string(dir.join("access.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert_eq!(lines[0]["route"], "orders");
    assert_eq!(lines[0]["upstream"], "legacy");
    assert_eq!(lines[1]["upstream"], "modern");
    assert_eq!(lines[3]["route"], "default");
    assert_eq!(lines[3]["uri"], "/sleep/800");
    assert_eq!(lines[3]["status"], 200);
}

fn wait_for_addr(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let line = wait_for_line(rx, needle);
    let i = line.find("addr=").expect("the line names an address");
    line[i + 5..].split_whitespace().next().unwrap().to_string()
}

/// Runs a CLI command against the admin API; returns (exit code, stdout, stderr).
fn cli(args: &[&str], admin: &str, dir: &Path) -> (i32, String, String) {
    let out = ficus()
        .args(args)
        .args(["--admin", &format!("http://{admin}"), "-c"])
        .arg(dir.join("ficus.toml"))
        .env("USER", "tester")
        .env_remove("FICUS_ADMIN")
        .env_remove("FICUS_ADMIN_TOKEN")
        .env_remove("FICUS_ADMIN_TOKEN_FILE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_commands_show_status_change_routes_and_print_their_events() {
    let dir = temp_dir("api");
    let legacy = upstream("legacy").await;
    let modern = upstream("modern").await;
    let cfg = dir.join("ficus.toml");
    std::fs::write(&cfg, config(&dir, &legacy, &modern, 10)).unwrap();
    let (_child, addr, logs) = start(&cfg);
    let admin = wait_for_addr(&logs, "admin API");
    let base = format!("http://{addr}");

    let (code, out, err) = cli(&["status"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("config version 1 "), "{out}");
    let orders = out.lines().find(|l| l.contains("orders")).unwrap();
    assert!(
        orders.contains("canary") && orders.contains("10%") && orders.contains(" = "),
        "{out}"
    );

    let (code, out, err) = cli(
        &["set", "orders", "--weight", "100", "-m", "all in"],
        &admin,
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("~ route orders: weight 10% -> 100%"), "{out}");
    assert!(
        out.contains("cli:tester route.set orders: all in (weight 10% -> 100%)"),
        "{out}"
    );
    assert_eq!(get(&format!("{base}/orders/1")).await.1, "modern");

    let (code, out, _) = cli(&["status"], &admin, &dir);
    assert_eq!(code, 0);
    assert!(out.contains("canary 10% (overridden)"), "{out}");

    let (code, out, err) = cli(&["rollback", "orders", "-m", "errors up"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("route.rollback orders: errors up"), "{out}");
    assert_eq!(
        get(&format!("{base}/orders/1")).await.1,
        "legacy",
        "effective for the next request"
    );

    // The file changes: plan shows it, apply makes version 2 (the file wins for orders).
    std::fs::write(&cfg, config(&dir, &legacy, &modern, 30)).unwrap();
    let (code, out, _) = cli(&["plan"], &admin, &dir);
    assert_eq!(code, 0);
    assert!(
        out.contains("~ route orders: stage legacy -> canary")
            && out.contains("~ route orders: weight 0% -> 30%"),
        "{out}"
    );
    let (code, out, err) = cli(
        &["apply", "-m", "thirty", "--expected-version", "1"],
        &admin,
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("config.applied v2: thirty"), "{out}");
    let (code, _, err) = cli(
        &["apply", "-m", "stale", "--expected-version", "1"],
        &admin,
        &dir,
    );
    assert_eq!(code, 1);
    assert!(err.contains("409") && err.contains("version"), "{err}");

    let (code, out, _) = cli(&["history"], &admin, &dir);
    assert_eq!(code, 0);
    let versions: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(versions, ["2", "1"], "{out}");

    let (code, out, err) = cli(&["revert", "1", "-m", "back"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("config.reverted v3: back"), "{out}");

    let (code, out, _) = cli(&["events"], &admin, &dir);
    assert_eq!(code, 0);
    let kinds: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "config.applied",
            "route.set",
            "route.rollback",
            "config.applied",
            "config.reverted"
        ],
        "{out}"
    );

    // A wrong token is refused (the CLI found the generated one above).
    std::fs::write(dir.join("wrong.token"), "not-the-token\n").unwrap();
    let out = ficus()
        .args([
            "set",
            "orders",
            "--weight",
            "5",
            "-m",
            "x",
            "--admin",
            &format!("http://{admin}"),
            "--token-file",
        ])
        .arg(dir.join("wrong.token"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first sample id of a `ficus diffs` field row: the cell after the verdict (the noise
/// rate before it may be `-`, `0.00%` or `0.00% (route)`).
fn sample_id(row: &str) -> String {
    let cells: Vec<&str> = row.split_whitespace().collect();
    let verdict = cells
        .iter()
        .position(|c| ["real", "noise"].contains(c))
        .unwrap_or_else(|| panic!("a verdict in {row:?}"));
    cells
        .get(verdict + 1)
        .unwrap_or_else(|| panic!("a sample id in {row:?}"))
        .to_string()
}

/// Sends SIGTERM and waits (bounded) for the process to exit.
fn stop(mut p: Proc) {
    let pid = p.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if p.0.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("ficus did not stop on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diffs_commands_rank_show_survive_a_restart_and_reset() {
    let dir = temp_dir("diffs");
    let legacy = upstream("legacy").await;
    let modern = upstream("modern").await;
    let cfg = dir.join("ficus.toml");
    let text =
        config(&dir, &legacy, &modern, 0).replace("stage = \"canary\"", "stage = \"shadow\"");
    std::fs::write(&cfg, text).unwrap();
    let (child, addr, logs) = start(&cfg);
    let admin = wait_for_addr(&logs, "admin API");
    for i in 0..8 {
        let (status, side, body) = get(&format!("http://{addr}/orders/{i}")).await;
        assert_eq!(
            (status, side.as_str(), body.as_str()),
            (200, "legacy", "legacy")
        );
    }
    // Wait (bounded) for the 8 comparisons.
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let (code, out, err) = cli(&["diffs", "orders"], &admin, &dir);
        assert_eq!(code, 0, "{err}");
        if out.contains("compared 8,") {
            break out;
        }
        assert!(Instant::now() < deadline, "no 8 comparisons: {out}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        out.contains("route orders (shadow, mirroring): mirrored 8, compared 8, dropped 0"),
        "{out}"
    );
    assert!(out.contains("GET /orders/{id}"), "{out}");
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("body"))
        .unwrap_or_else(|| panic!("a row for the body: {out}"));
    assert!(
        row.contains("value") && row.contains("100.00%") && row.contains("real"),
        "{row}"
    );
    let id = sample_id(row);

    let (code, out, err) = cli(&["diffs", "show", &id], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("request: GET /orders/"), "{out}");
    assert!(
        out.contains("legacy response: 200") && out.contains("modern response: 200"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w == ["body", "value", "legacy", "modern"]
        }),
        "the difference with both values: {out}"
    );

    // SIGTERM flushes; a new process loads the comparisons back.
    stop(child);
    let (child, addr, logs) = start(&cfg);
    let admin = wait_for_addr(&logs, "admin API");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out, _) = cli(&["diffs", "orders"], &admin, &dir);
        if out.contains("since the last reset: 8 compared") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the comparisons were not loaded back: {out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _, err) = cli(&["diffs", "reset", "orders"], &admin, &dir);
    assert_eq!(code, 2, "reset needs a reason: {err}");
    let (code, out, err) = cli(
        &["diffs", "reset", "orders", "-m", "modern fixed"],
        &admin,
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("shadow.reset orders: modern fixed"), "{out}");
    let (_, out, _) = cli(&["diffs", "orders"], &admin, &dir);
    assert!(out.contains("no comparisons yet"), "{out}");
    let _ = addr;
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_commands_show_pause_resume_and_abort() {
    let dir = temp_dir("rollout");
    let legacy = upstream("legacy").await;
    let modern = upstream("modern").await;
    let cfg = dir.join("ficus.toml");
    let text = config(&dir, &legacy, &modern, 0).replace(
        "debug_header = true\n\n[default]",
        "debug_header = true\n[route.rollout]\nsteps = [10, 100]\nmin_requests = 1000000\n\n[default]",
    );
    assert!(text.contains("[route.rollout]"));
    std::fs::write(&cfg, text).unwrap();
    let (child, _addr, logs) = start(&cfg);
    let admin = wait_for_addr(&logs, "admin API");
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let (code, out, err) = cli(&["rollout", "status"], &admin, &dir);
        assert_eq!(code, 0, "{err}");
        if out.contains("orders: running") {
            break out;
        }
        assert!(Instant::now() < deadline, "the rollout started: {out}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(out.contains("at step 1 of 2 ([10%] -> 100%)"), "{out}");
    let verdict = loop {
        let (_, out, _) = cli(&["rollout", "status"], &admin, &dir);
        if let Some(l) = out.lines().find(|l| l.contains("last verdict")) {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "no verdict yet: {out}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        verdict.contains("last verdict: hold (needs "),
        "the decision said once: {verdict}"
    );
    let (code, out, err) = cli(&["rollout", "pause", "orders", "-m", "lunch"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rollout.paused orders: lunch"), "{out}");
    let (code, _, err) = cli(&["rollout", "pause", "orders", "-m", "again"], &admin, &dir);
    assert_eq!(code, 1);
    assert!(err.contains("409") && err.contains("paused"), "{err}");
    let (code, out, err) = cli(&["rollout", "resume", "orders", "-m", "back"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rollout.resumed orders: back"), "{out}");
    let (code, out, err) = cli(
        &["rollout", "abort", "orders", "-m", "not today"],
        &admin,
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rollout.aborted orders: not today"), "{out}");
    let (_, out, _) = cli(&["status"], &admin, &dir);
    let orders = out.lines().find(|l| l.contains("orders")).unwrap();
    assert!(orders.contains("shadow"), "aborted to shadow: {out}");
    stop(child);
}

/// A start that is refused changes nothing: no state store written, no port bound.
#[test]
fn a_refused_start_writes_nothing_and_binds_nothing() {
    let dir = temp_dir("refused");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held_port = held.local_addr().unwrap().port();
    let write = |admin: &str| {
        std::fs::write(
            dir.join("ficus.toml"),
            format!(
                "[[listener]]\nbind = \"127.0.0.1:{port}\"\n[admin]\nbind = \"{admin}\"\n\
                 [upstream.legacy]\nurl = \"http://127.0.0.1:9\"\n[default]\nlegacy = \"legacy\"\n"
            ),
        )
        .unwrap();
    };
    let start = |token: &str| {
        ficus()
            .args(["run", "-c"])
            .arg(dir.join("ficus.toml"))
            .env("FICUS_ADMIN_TOKEN", token)
            .output()
            .unwrap()
    };
    // A weak token on an admin API beyond loopback: validate says so, run refuses.
    write("0.0.0.0:0");
    let v = ficus()
        .args(["validate", "-c"])
        .arg(dir.join("ficus.toml"))
        .env("FICUS_ADMIN_TOKEN", "a")
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(1));
    let err = String::from_utf8_lossy(&v.stderr);
    assert!(
        err.contains("too weak") && err.contains("openssl rand -hex 32"),
        "{err}"
    );
    let out = start("a");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("too weak"));
    assert!(!dir.join("ficus.db").exists(), "nothing stored");
    // The admin address is taken: refused before the store is written or a listener bound.
    write(&format!("127.0.0.1:{held_port}"));
    let out = start("x");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[admin] bind"), "{err}");
    assert!(!dir.join("ficus.db").exists(), "nothing stored");
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the gateway's port was never taken");
    drop(held);
    // A tracing setting from the environment ficus cannot honour: named, nothing written.
    write("127.0.0.1:0");
    let out = ficus()
        .args(["run", "-c"])
        .arg(dir.join("ficus.toml"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && err.contains("http/protobuf"),
        "{err}"
    );
    assert!(!dir.join("ficus.db").exists(), "nothing stored");
}

/// Control characters from outside (an upstream's body, a change's message) reach neither
/// the terminal nor the text log raw: `diffs show` and `events` print them escaped, and a
/// newline in an `apply -m` message does not start a log line of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_escaped_in_cli_output_and_the_text_log() {
    let dir = temp_dir("escape");
    // Legacy answers with a clear-screen and a terminal-title sequence; modern plainly.
    let legacy = upstream("legacy \u{1b}[2J\u{1b}]0;pwned\u{7} \u{9b}31m").await;
    let modern = upstream("modern").await;
    let cfg = dir.join("ficus.toml");
    let text =
        config(&dir, &legacy, &modern, 0).replace("stage = \"canary\"", "stage = \"shadow\"");
    std::fs::write(&cfg, &text).unwrap();
    let (child, addr, logs) = start(&cfg);
    let admin = wait_for_addr(&logs, "admin API");
    get(&format!("http://{addr}/orders/1")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let (code, out, err) = cli(&["diffs", "orders"], &admin, &dir);
        assert_eq!(code, 0, "{err}");
        if out.contains("compared 1,") && out.lines().any(|l| l.trim_start().starts_with("body")) {
            break out;
        }
        assert!(Instant::now() < deadline, "no comparison: {out}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let id = sample_id(
        out.lines()
            .find(|l| l.trim_start().starts_with("body"))
            .unwrap(),
    );
    let (code, out, err) = cli(&["diffs", "show", &id], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains(['\u{1b}', '\u{7}', '\u{9b}']),
        "raw control characters printed: {out:?}"
    );
    assert!(
        out.contains("legacy \\u{1b}[2J\\u{1b}]0;pwned\\u{7} \\u{9b}31m"),
        "the body, escaped: {out}"
    );
    // `--json` is the API's JSON, unchanged (JSON escapes them itself).
    let (_, json, _) = cli(&["diffs", "show", &id, "--json"], &admin, &dir);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["data"]["legacy"]["body"],
        "legacy \u{1b}[2J\u{1b}]0;pwned\u{7} \u{9b}31m"
    );

    // A message with colours and a line of its own: one escaped event line.
    let (code, _, err) = cli(
        &[
            "set",
            "orders",
            "--weight",
            "5",
            "-m",
            "\u{1b}[31mred\n#99 1970-01-01T00:00:00.000Z cli:root route.set orders: forged",
        ],
        &admin,
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&["events"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert_eq!(out.lines().count(), 2, "one line per event: {out}");
    assert!(
        out.contains("route.set orders: \\u{1b}[31mred\\n#99 1970"),
        "{out}"
    );

    // A newline in an apply message does not forge a line of ficus's text log.
    std::fs::write(&cfg, text.replace("weight = 0", "weight = 7")).unwrap();
    let (code, _, err) = cli(
        &[
            "apply",
            "-m",
            "escapetest\n2026-01-01T00:00:00.000000Z  INFO ficus: forged \u{1b}[2J",
        ],
        &admin,
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    let line = wait_for_line(&logs, "escapetest");
    assert!(
        line.contains("escapetest\\n2026-01-01T00:00:00.000000Z  INFO ficus: forged \\u{1b}[2J"),
        "{line}"
    );
    stop(child);
    let forged: Vec<String> = logs
        .try_iter()
        .filter(|l| l.starts_with("2026-01-01") || l.starts_with("#99"))
        .collect();
    assert!(forged.is_empty(), "forged log lines: {forged:?}");
}

/// `ficus plan` and `apply` send the text of the user's file: its errors name that file,
/// not the gateway's own config file (issue 19, item 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_apply_errors_name_the_clients_file() {
    let dir = temp_dir("origin");
    let legacy = upstream("legacy").await;
    let modern = upstream("modern").await;
    let cfg = dir.join("ficus.toml");
    let text = config(&dir, &legacy, &modern, 10);
    std::fs::write(&cfg, &text).unwrap();
    let (child, _addr, logs) = start(&cfg);
    let admin = format!("http://{}", wait_for_addr(&logs, "admin API"));
    let token = dir.join(".ficus-admin-token");
    let elsewhere = temp_dir("origin-mine");
    let mine = elsewhere.join("mine.toml");
    std::fs::write(
        &mine,
        text.replace("modern = \"modern\"\nstage", "modern = \"modrn\"\nstage"),
    )
    .unwrap();
    let line = text
        .lines()
        .position(|l| l == "modern = \"modern\"")
        .unwrap()
        + 1;
    for args in [vec!["plan"], vec!["apply", "-m", "typo"]] {
        let out = ficus()
            .args(&args)
            .arg("-c")
            .arg(&mine)
            .args(["--admin", &admin, "--token-file"])
            .arg(&token)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("{}:{line}:10: error: ", mine.display())),
            "{args:?}: {err}"
        );
        assert!(!err.contains(cfg.to_str().unwrap()), "{args:?}: {err}");
    }
    stop(child);
}

/// Runs the CLI in `cwd` with only the given FICUS_ADMIN* variables and user names;
/// returns (exit code, stdout, stderr).
fn cli_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = ficus();
    c.current_dir(cwd).args(args);
    for v in [
        "FICUS_ADMIN",
        "FICUS_ADMIN_TOKEN",
        "FICUS_ADMIN_TOKEN_FILE",
        "USER",
        "LOGNAME",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a newcomer types, as the README and the demo show it: the admin API from
/// FICUS_ADMIN (with or without http://), the token from FICUS_ADMIN_TOKEN_FILE, plan
/// without a token, the cause of a failure said once, a modern route's weight, and the
/// audit actor when USER is not set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomers_commands_just_work() {
    let dir = temp_dir("newcomer");
    let legacy = upstream("legacy").await;
    let modern = upstream("modern").await;
    let cfg = dir.join("ficus.toml");
    let text = config(&dir, &legacy, &modern, 10);
    std::fs::write(&cfg, &text).unwrap();
    let (child, _addr, logs) = start(&cfg);
    let admin = wait_for_addr(&logs, "admin API");
    let token_file = dir.join(".ficus-admin-token");
    let token_file = token_file.to_str().unwrap();
    // Elsewhere: no ficus.toml here, no token beside it.
    let home = temp_dir("newcomer-home");

    // No admin API named anywhere: the reason, said once.
    let (code, _, err) = cli_env(&home, &["status"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot find the admin API"), "{err}");
    assert!(
        err.contains("FICUS_ADMIN"),
        "the fix names the variable: {err}"
    );
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");

    // FICUS_ADMIN, with or without http://; --admin likewise.
    let url = format!("http://{admin}");
    for env in [admin.as_str(), url.as_str()] {
        let (code, out, err) = cli_env(&home, &["status"], &[("FICUS_ADMIN", env)]);
        assert_eq!(code, 0, "FICUS_ADMIN={env}: {err}");
        assert!(out.starts_with("config version 1 "), "{out}");
    }
    let (code, _, err) = cli_env(&home, &["status", "--admin", &admin], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli_env(&home, &["status", "--admin", "ftp://127.0.0.1:1"], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("expected HOST:PORT or http://HOST:PORT") && err.contains("127.0.0.1:9901"),
        "{err}"
    );

    // plan reads: no token needed (none is to be found from here).
    let mine = home.join("mine.toml");
    std::fs::write(&mine, text.replace("weight = 10", "weight = 20")).unwrap();
    let mine_s = mine.to_str().unwrap();
    let (code, out, err) = cli_env(&home, &["plan", "-c", mine_s], &[("FICUS_ADMIN", &admin)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("weight 10% -> 20%"), "{out}");
    // A change without a token: the 401, and where a token would have come from.
    let (code, _, err) = cli_env(
        &home,
        &["set", "orders", "--stage", "modern", "-m", "all in"],
        &[("FICUS_ADMIN", &admin)],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("401") && err.contains("no admin token was found"),
        "{err}"
    );
    // With FICUS_ADMIN_TOKEN_FILE, and no USER: the actor is LOGNAME's.
    let env = [
        ("FICUS_ADMIN", admin.as_str()),
        ("FICUS_ADMIN_TOKEN_FILE", token_file),
        ("LOGNAME", "newcomer"),
    ];
    let (code, out, err) = cli_env(
        &home,
        &["set", "orders", "--stage", "modern", "-m", "all in"],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("api:cli:newcomer route.set orders: all in"),
        "{out}"
    );
    // A route on stage modern: every key on modern, whatever weight it keeps.
    let (_, out, _) = cli_env(&home, &["status"], &env);
    let orders = out.lines().find(|l| l.contains("orders")).unwrap();
    assert!(orders.contains(" modern  100%  "), "{out}");

    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slo_commands_show_budgets_and_print_prometheus_rules() {
    let dir = temp_dir("slo");
    let legacy = upstream("legacy").await;
    let modern = upstream("modern").await;
    let cfg = dir.join("ficus.toml");
    let text = config(&dir, &legacy, &modern, 0).replace(
        "debug_header = true\n\n[default]",
        "debug_header = true\n\n[[route.slo]]\nname = \"availability\"\nobjective = 99.9\n\n\
         [[route.slo]]\nname = \"fast\"\nsli = \"latency\"\nthreshold = \"250ms\"\nobjective = 99\n\
         window = \"calendar-month\"\n\n[slo]\nevaluate_every = \"1s\"\n\n[default]",
    );
    assert!(text.contains("[[route.slo]]"));
    std::fs::write(&cfg, text).unwrap();

    // The rule file comes from the config file alone: no gateway needed.
    let out = ficus()
        .args(["slo", "rules", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = String::from_utf8(out.stdout).unwrap();
    assert!(
        rules.starts_with("groups:") || rules.contains("\ngroups:"),
        "{rules}"
    );
    assert!(
        rules.contains("record: slo:sli_error:ratio_rate5m"),
        "{rules}"
    );
    assert!(
        rules.contains("ficus_slo_bad_requests_total{slo=\"orders/fast\""),
        "{rules}"
    );
    assert!(rules.contains("alert: "), "{rules}");

    let (child, addr, logs) = start(&cfg);
    let admin = wait_for_addr(&logs, "admin API");
    for i in 0..30 {
        let (status, _, _) = get(&format!("http://{addr}/orders/{i}")).await;
        assert_eq!(status, 200);
    }
    // Evaluated by the leader (the one node) within seconds of the traffic.
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let (code, out, err) = cli(&["slo"], &admin, &dir);
        assert_eq!(code, 0, "{err}");
        if out.contains("100.000%") {
            break out;
        }
        assert!(Instant::now() < deadline, "not evaluated: {out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let row = out
        .lines()
        .find(|l| l.contains("orders/availability"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("99.9% ok") && row.contains("30d"), "{out}");
    assert!(
        row.contains("100.0%") && row.contains("never"),
        "budget whole: {out}"
    );
    assert!(
        out.contains("orders/fast") && out.contains("99% < 250ms"),
        "{out}"
    );
    assert!(out.contains("calendar month"), "{out}");

    let (code, out, err) = cli(&["slo", "orders"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("orders/availability (route scope): 99.9% ok over 30d"),
        "{out}"
    );
    assert!(out.contains("burn rate: 5m 0.00x"), "{out}");
    assert!(
        out.contains("spent in: never (at the 1h burn rate)"),
        "{out}"
    );
    let rule = out.lines().find(|l| l.contains("1h and  5m")).unwrap();
    assert!(
        rule.contains("page") && rule.contains("over 14.4x"),
        "{out}"
    );
    // 30 requests are under the guard's 100: no rule may fire on them.
    assert!(rule.ends_with("too little traffic"), "{out}");
    let (code, _, err) = cli(&["slo", "nope"], &admin, &dir);
    assert_eq!(code, 1);
    assert!(
        err.contains("404") && err.contains("no route named \"nope\""),
        "{err}"
    );
    stop(child);
}

/// The flags of the OFREP conformance tests: one of each value kind, a targeting rule.
const FLAGS: &str = r#"
[[flag]]
key = "new-checkout"
variants = { on = true, off = false }
default = "off"
[[flag.rule]]
when = [{ attribute = "plan", eq = "pro" }]
variant = "on"

[[flag]]
key = "theme"
variants = { light = "light", dark = "dark" }
default = "light"

[[flag]]
key = "page-size"
variants = { small = 10, large = 50 }
default = "large"

[[flag]]
key = "ratio"
variants = { low = 0.25, high = 0.75 }
default = "high"

[[flag]]
key = "banner"
variants = { spring = { color = "green", size = 3 } }
default = "spring"
"#;

const OFREP_KEY: &str = "ofrep-test-key-0123456789";

/// The OpenFeature SDKs the OFREP conformance test drives: Python's `openfeature-sdk` with
/// `openfeature-provider-ofrep` (pip), JavaScript's `@openfeature/server-sdk` with
/// `@openfeature/ofrep-provider` (npm, in `tests/ofrep/node_modules`). Without them (and
/// without FICUS_REQUIRE_SERVICES=1) the test passes after a note.
fn sdks_present() -> bool {
    let python = Command::new("python3")
        .args([
            "-c",
            "import openfeature, openfeature.contrib.provider.ofrep",
        ])
        .status()
        .is_ok_and(|s| s.success());
    let js = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ofrep/node_modules/@openfeature/ofrep-provider")
        .exists()
        && Command::new("node")
            .arg("--version")
            .status()
            .is_ok_and(|s| s.success());
    if !(python && js) {
        let required = std::env::var("FICUS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "FICUS_REQUIRE_SERVICES=1 but an OpenFeature SDK is missing (python: {python}, js: {js}): \
             pip install openfeature-sdk openfeature-provider-ofrep; npm ci in crates/ficus/tests/ofrep (.ci/run does both)"
        );
        eprintln!("note: an OpenFeature SDK is missing; the OFREP conformance test passes without running");
    }
    python && js
}

/// Runs one SDK's script (`python` or `js`) against the OFREP listener: what it saw.
fn sdk_run(sdk: &str, url: &str, phase: &str) -> serde_json::Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ofrep");
    let (program, script) = match sdk {
        "python" => ("python3", "python_sdk.py"),
        _ => ("node", "js_sdk.mjs"),
    };
    let out = Command::new(program)
        .arg(dir.join(script))
        .args([url, OFREP_KEY, phase])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sdk}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{sdk}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openfeature_sdks_read_flags_over_ofrep_and_see_a_change() {
    if !sdks_present() {
        return;
    }
    let dir = temp_dir("ofrep-sdks");
    let legacy = upstream("legacy").await;
    let modern = upstream("modern").await;
    std::fs::write(dir.join("ofrep-keys"), format!("{OFREP_KEY}\n")).unwrap();
    // A route whose canary follows the flag: modern for whoever gets `on`.
    let checkout = "[[route]]\nname = \"checkout\"\npath_prefix = \"/checkout\"\n\
                    legacy = \"legacy\"\nmodern = \"modern\"\nstage = \"canary\"\n\
                    sticky = \"header:x-user-id\"\ndebug_header = true\n\
                    flag = { key = \"new-checkout\", modern = \"on\", context = [\"plan\"] }\n\n\
                    [default]\n";
    let text = format!(
        "{}{FLAGS}\n[ofrep]\nbind = \"127.0.0.1:0\"\nkeys_file = \"ofrep-keys\"\n",
        config(&dir, &legacy, &modern, 0).replacen("[default]\n", checkout, 1)
    );
    std::fs::write(dir.join("ficus.toml"), &text).unwrap();
    let (child, addr, logs) = start(&dir.join("ficus.toml"));
    let ofrep = format!("http://{}", wait_for_addr(&logs, "OFREP listening"));
    let admin = wait_for_addr(&logs, "admin API");

    // The CLI lists the flags the SDKs read.
    let (code, out, err) = cli(&["flag", "list"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    let theme = out
        .lines()
        .find(|l| l.starts_with("theme"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        theme.contains("string") && theme.contains("enabled") && theme.contains("dark, light"),
        "{out}"
    );
    let (code, out, err) = cli(&["flag", "show", "new-checkout"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("new-checkout (enabled), default off"),
        "{out}"
    );
    assert!(
        out.contains("variant on = true") && out.contains("rule 1: "),
        "{out}"
    );
    let (code, _, err) = cli(&["flag", "show", "nope"], &admin, &dir);
    assert_eq!(code, 1);
    assert!(
        err.contains("404") && err.contains("no flag with key \"nope\""),
        "{err}"
    );

    for sdk in ["python", "js"] {
        let seen = sdk_run(sdk, &ofrep, "before");
        assert_eq!(
            seen["bool"],
            serde_json::json!([true, "on", "TARGETING_MATCH", null]),
            "{sdk}: {seen}"
        );
        assert_eq!(
            seen["string"],
            serde_json::json!(["light", "light", "STATIC"]),
            "{sdk}: {seen}"
        );
        assert_eq!(
            seen["integer"],
            serde_json::json!([50, "large", "STATIC"]),
            "{sdk}: {seen}"
        );
        assert_eq!(
            seen["float"],
            serde_json::json!([0.75, "high"]),
            "{sdk}: {seen}"
        );
        assert_eq!(
            seen["object"],
            serde_json::json!([{"color": "green", "size": 3}, "spring"]),
            "{sdk}: {seen}"
        );
        // A missing flag: the code default, with the error the SDK names.
        assert_eq!(seen["missing"][0], true, "{sdk}: {seen}");
        assert_eq!(seen["missing"][1], "ERROR", "{sdk}: {seen}");
        assert!(
            seen["missing"][2]
                .as_str()
                .unwrap()
                .contains("FLAG_NOT_FOUND"),
            "{sdk}: {seen}"
        );
        assert!(
            seen["type_mismatch"][1]
                .as_str()
                .unwrap()
                .contains("TYPE_MISMATCH"),
            "{sdk}: {seen}"
        );
    }

    // A change through the control plane reaches the next evaluation.
    std::fs::write(
        dir.join("ficus.toml"),
        text.replace("default = \"light\"", "default = \"dark\""),
    )
    .unwrap();
    let (code, _, err) = cli(&["apply", "-m", "dark by default"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    for sdk in ["python", "js"] {
        let seen = sdk_run(sdk, &ofrep, "after");
        assert_eq!(
            seen["string"],
            serde_json::json!(["dark", "dark", "STATIC"]),
            "{sdk}: {seen}"
        );
    }

    // The kill switch: `ficus flag set` serves `off` to everyone, whatever the rules say,
    // and the route whose canary follows the flag sends everyone to legacy.
    let checkout = format!("http://{addr}/checkout/1");
    let pro = [("x-user-id", "u1"), ("plan", "pro")];
    assert_eq!(get_with(&checkout, &pro).await, (200, "modern".into()));
    assert_eq!(
        get_with(&checkout, &[("x-user-id", "u1")]).await,
        (200, "legacy".into())
    );
    let (code, _, err) = cli(
        &["flag", "set", "new-checkout", "--variant", "off"],
        &admin,
        &dir,
    );
    assert_eq!(code, 2, "a change says why");
    assert!(err.contains("-m"), "{err}");
    let (code, _, err) = cli(
        &[
            "flag",
            "set",
            "new-checkout",
            "--variant",
            "maybe",
            "-m",
            "typo",
        ],
        &admin,
        &dir,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("has no variant \"maybe\"") && err.contains("off, on"),
        "{err}"
    );
    let (code, out, err) = cli(
        &[
            "flag",
            "set",
            "new-checkout",
            "--variant",
            "off",
            "-m",
            "checkout bug",
        ],
        &admin,
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("api:cli:tester flag.set: checkout bug")
            && out.contains("(flag new-checkout, variant (rules) -> off)"),
        "{out}"
    );
    assert_eq!(get_with(&checkout, &pro).await, (200, "legacy".into()));
    for sdk in ["python", "js"] {
        let seen = sdk_run(sdk, &ofrep, "after");
        assert_eq!(
            seen["bool"],
            serde_json::json!([false, "off", "STATIC", null]),
            "{sdk}: {seen}"
        );
    }
    let (_, out, _) = cli(&["flag", "list"], &admin, &dir);
    let line = out
        .lines()
        .find(|l| l.starts_with("new-checkout"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("variant off"), "{out}");
    let (_, out, _) = cli(&["flag", "show", "new-checkout"], &admin, &dir);
    assert!(
        out.contains("overridden at runtime: variant off")
            && out.contains("in the file: default off, 1 rule(s), enabled")
            && out.contains("evaluations on this node"),
        "{out}"
    );
    // A file change elsewhere keeps the override; `reset` goes back to the rules.
    std::fs::write(
        dir.join("ficus.toml"),
        text.replace("default = \"light\"", "default = \"dark\"")
            .replace("default = \"large\"", "default = \"small\""),
    )
    .unwrap();
    let (code, _, err) = cli(&["apply", "-m", "small pages"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert_eq!(get_with(&checkout, &pro).await, (200, "legacy".into()));
    let (code, out, err) = cli(
        &["flag", "reset", "new-checkout", "-m", "fixed"],
        &admin,
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("flag.reset") && out.contains("variant off -> (rules)"),
        "{out}"
    );
    assert_eq!(get_with(&checkout, &pro).await, (200, "modern".into()));
    let seen = sdk_run("python", &ofrep, "after");
    assert_eq!(
        seen["bool"],
        serde_json::json!([true, "on", "TARGETING_MATCH", null]),
        "{seen}"
    );
    let (code, out, _) = cli(
        &["flag", "reset", "new-checkout", "-m", "again"],
        &admin,
        &dir,
    );
    assert_eq!(code, 0);
    assert!(out.contains("nothing to change"), "{out}");
    stop(child);
}

/// Every `.ficusrec` file under `dir`.
fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "ficusrec") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `ficus record start` on a running gateway: the route records from the next request, the
/// status and `/metrics` count it, a restart goes on recording, `stop` stops it, and the
/// recording replays against the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_start_status_stop_survive_a_restart_and_replay() {
    let dir = temp_dir("record");
    let legacy = upstream("legacy").await;
    let modern = upstream("modern").await;
    std::fs::write(dir.join("ficus.toml"), config(&dir, &legacy, &modern, 0)).unwrap();
    let (child, addr, logs) = start(&dir.join("ficus.toml"));
    let admin = wait_for_addr(&logs, "admin API");

    let (code, out, err) = cli(&["record", "status"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no route records"), "{out}");
    let (code, _, err) = cli(&["record", "start", "nope", "-m", "x"], &admin, &dir);
    assert_eq!(code, 1);
    assert!(err.contains("no route named \"nope\""), "{err}");
    // The limits of a runtime recording, each refused with what to change.
    for (args, want) in [
        (&["--for", "0s"][..], "for: must be greater than zero"),
        (&["--for", "500ms"][..], "for: from 1s to 31 days"),
        (&["--for", "745h"][..], "for: from 1s to 31 days"),
        (&["--max-size", "1KiB"][..], "max_size: at least 1 MiB"),
        (&["--sample", "0"][..], "sample: more than 0 %"),
        (&["--sample", "ten"][..], "--sample is a percentage"),
    ] {
        let mut a = vec!["record", "start", "orders", "-m", "x"];
        a.extend_from_slice(args);
        let (code, _, err) = cli(&a, &admin, &dir);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let (code, out, err) = cli(
        &[
            "record",
            "start",
            "orders",
            "--sample",
            "100%",
            "--for",
            "1h",
            "-m",
            "before the move",
        ],
        &admin,
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("record.started"), "{out}");
    for i in 0..30 {
        let user = format!("u{}", i % 5);
        let (s, _) = get_with(
            &format!("http://{addr}/orders/{i}"),
            &[("x-user-id", &user)],
        )
        .await;
        assert_eq!(s, 200);
    }
    // Not recorded: another route.
    get_with(&format!("http://{addr}/other"), &[]).await;
    let status = || {
        let (code, out, err) = cli(&["record", "status", "--json"], &admin, &dir);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let v = loop {
        let v = status();
        let r = &v["routes"][0];
        if r["recorded"] == 30 || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let r = &v["routes"][0];
    assert_eq!(
        (
            r["route"].as_str(),
            r["state"].as_str(),
            r["source"].as_str()
        ),
        (Some("orders"), Some("recording"), Some("runtime")),
        "{v}"
    );
    assert_eq!(
        (r["requests"].as_u64(), r["recorded"].as_u64()),
        (Some(30), Some(30)),
        "{v}"
    );
    assert!(r["until_ms"].as_u64().is_some(), "{v}");
    let (_, out, _) = cli(&["record", "status"], &admin, &dir);
    assert!(
        out.contains("orders") && out.contains("recording (") && out.contains("left)"),
        "{out}"
    );
    let metrics = reqwest_get(&format!("http://{admin}/metrics")).await;
    assert!(
        metrics.contains("ficus_record_recorded_total{route=\"orders\"} 30"),
        "{metrics}"
    );

    // A restart: the recording goes on (restored from the event).
    stop(child);
    let (child, addr, logs) = start(&dir.join("ficus.toml"));
    let admin = wait_for_addr(&logs, "admin API");
    get_with(&format!("http://{addr}/orders/99"), &[("x-user-id", "u9")]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out, _) = cli(&["record", "status", "--json"], &admin, &dir);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        if v["routes"][0]["recorded"] == 1 {
            assert_eq!(v["routes"][0]["source"], "runtime");
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, out, err) = cli(&["record", "stop", "orders", "-m", "enough"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("record.stopped"), "{out}");
    get_with(&format!("http://{addr}/orders/100"), &[("x-user-id", "u9")]).await;
    let (_, out, _) = cli(&["record", "status", "--json"], &admin, &dir);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["routes"][0]["state"], "stopped", "{v}");
    assert_eq!(
        v["routes"][0]["requests"], 1,
        "not counted once stopped: {v}"
    );
    // What was recorded replays against the upstream, compared with the recording, and
    // the run is kept.
    let files = recordings(&dir.join("recordings"));
    assert_eq!(files.len(), 2, "{files:?}");
    let (code, out, err) = cli(
        &[
            "replay",
            files[0].to_str().unwrap(),
            "--target",
            &legacy,
            "--json",
            "--speed",
            "10x",
            "--compare",
            "--save",
        ],
        &admin,
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (r["sent"].as_u64(), r["answered"].as_u64()),
        (Some(30), Some(30)),
        "{r}"
    );
    assert_eq!(r["status_mismatches"], 0, "{r}");
    assert_eq!(r["comparison"]["compared"], 30, "{r}");
    let id = r["saved"]["id"].as_i64().unwrap_or_else(|| panic!("{r}"));
    let (code, out, err) = cli(&["replays"], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("recording") && out.contains(&legacy), "{out}");
    let (code, out, err) = cli(&["replays", &id.to_string()], &admin, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("replay run {id} of "))
            && out.contains("compared against the recording: 30 responses"),
        "{out}"
    );
    let (code, _, err) = cli(&["replays", "9999"], &admin, &dir);
    assert_eq!(code, 1);
    assert!(err.contains("no replay run 9999"), "{err}");
    stop(child);
}

async fn reqwest_get(url: &str) -> String {
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let resp = c.get(url.parse().unwrap()).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_commands_walk_a_plan_and_show_its_timeline() {
    let dir = temp_dir("migration");
    let legacy = upstream("legacy").await;
    let modern = upstream("modern").await;
    let cfg = dir.join("ficus.toml");
    let text = format!(
        "{}\n[[migration]]\nname = \"orders-move\"\nroutes = [\"orders\"]\n\
         [[migration.step]]\nkind = \"switch_reads\"\nmanual = true\nsoak = \"1s\"\n",
        config(&dir, &legacy, &modern, 0)
    );
    std::fs::write(&cfg, text).unwrap();
    let (child, _addr, logs) = start(&cfg);
    let admin = wait_for_addr(&logs, "admin API");
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let (code, out, err) = cli(&["migration", "status"], &admin, &dir);
        assert_eq!(code, 0, "{err}");
        if out.contains("orders-move: waiting") {
            break out;
        }
        assert!(Instant::now() < deadline, "the plan waits: {out}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        out.contains("at step 1 of 1 (switch_reads, not begun)"),
        "{out}"
    );
    assert!(out.contains("[manual]"), "{out}");
    // Only a paused plan resumes; an unknown plan is named.
    let (code, _, err) = cli(
        &["migration", "resume", "orders-move", "-m", "x"],
        &admin,
        &dir,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("409") && err.contains("only a paused plan resumes"),
        "{err}"
    );
    let (code, _, err) = cli(&["migration", "advance", "nope", "-m", "x"], &admin, &dir);
    assert_eq!(code, 1);
    assert!(
        err.contains("404") && err.contains("no migration plan named \"nope\""),
        "{err}"
    );
    let (code, _, err) = cli(&["migration", "advance", "orders-move"], &admin, &dir);
    assert_eq!(code, 2);
    assert!(err.contains("say why with -m"), "{err}");
    let (code, out, err) = cli(
        &[
            "migration",
            "advance",
            "orders-move",
            "-m",
            "reads are ready",
        ],
        &admin,
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("migration.advanced"), "{out}");
    let out = loop {
        let (_, out, _) = cli(&["migration", "status", "orders-move"], &admin, &dir);
        if out.contains("orders-move: completed") {
            break out;
        }
        assert!(Instant::now() < deadline + Duration::from_secs(10), "{out}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The timeline, newest first: the completion, with the soak's evidence before it.
    assert!(out.contains("timeline (newest first):"), "{out}");
    let completed = out
        .find("migration.completed")
        .expect("completed in the timeline");
    let started = out
        .find("migration.step.started")
        .expect("started in the timeline");
    assert!(completed < started, "{out}");
    assert!(out.contains("ok   soak"), "{out}");
    let (_, out, _) = cli(&["status"], &admin, &dir);
    let orders = out.lines().find(|l| l.contains("orders")).unwrap();
    assert!(orders.contains("modern"), "{out}");
    let (code, _, err) = cli(
        &["migration", "back", "orders-move", "-m", "undo"],
        &admin,
        &dir,
    );
    assert_eq!(code, 1);
    assert!(err.contains("a completed plan has no way back"), "{err}");
    let (code, out, _) = cli(&["migration", "status", "--json"], &admin, &dir);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["status"], "completed");
    stop(child);
}
