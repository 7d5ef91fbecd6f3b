//! `ficus demo` end to end: the real binary, its sample services, gateway, control plane,
//! admin API and synthetic client, all on 127.0.0.1, bounded in time.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longest a demo run may take here, far above its own `--duration`.
const DEADLINE: Duration = Duration::from_secs(60);

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `ficus demo ARGS`, killing it if it outlives [`DEADLINE`].
fn demo(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ficus"))
        .arg("demo")
        .args(args)
        .env("FICUS_WORKER_THREADS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ficus demo");
    // Read both pipes on threads, so a chatty child never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ficus demo") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ficus demo {args:?} still running after {DEADLINE:?}\nstdout:\n{}\nstderr:\n{}",
                out.join().unwrap(),
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// The final summary as route -> column -> number, read by the column names of its header.
fn final_summary(stdout: &str) -> HashMap<String, HashMap<String, String>> {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.starts_with("== final summary"))
        .skip(1);
    let header: Vec<&str> = lines
        .next()
        .expect("a header under the final summary")
        .split_whitespace()
        .collect();
    assert_eq!(header.first(), Some(&"route"), "summary header: {header:?}");
    let mut table = HashMap::new();
    for line in lines {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() != header.len() {
            break;
        }
        let row: HashMap<String, String> = header
            .iter()
            .map(|h| h.to_string())
            .zip(cells.iter().map(|c| c.to_string()))
            .collect();
        let done = cells[0] == "total";
        table.insert(cells[0].to_string(), row);
        if done {
            break;
        }
    }
    table
}

fn count(table: &HashMap<String, HashMap<String, String>>, route: &str, column: &str) -> u64 {
    let cell = &table[route][column];
    cell.parse()
        .unwrap_or_else(|_| panic!("{route}.{column} = {cell:?} is not a number"))
}

#[test]
fn demo_runs_routes_through_both_sides_and_exits_cleanly() {
    let run = demo(&[
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--duration",
        "4",
        "--rate",
        "30",
    ]);
    let context = format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(
        run.status.success(),
        "exit status {:?}\n{context}",
        run.status
    );

    for expected in [
        "ROUTE", "STAGE", "users", "orders", "catalog", "reports", "canary", "shadow",
    ] {
        assert!(
            run.stdout.contains(expected),
            "route table lacks {expected:?}\n{context}"
        );
    }
    assert!(
        run.stdout.contains("_control/fail?rate=0.3"),
        "no fault-switch instructions\n{context}"
    );
    for expected in [
        "dashboard  http://127.0.0.1:",
        "admin token  ",
        "config file  /",
        "  export FICUS_ADMIN=http://127.0.0.1:",
        " FICUS_ADMIN_TOKEN_FILE=/",
        " status\n",
        " rollback orders -m \"modern errors\"\n",
    ] {
        assert!(
            run.stdout.contains(expected),
            "no admin instructions ({expected:?})\n{context}"
        );
    }

    let table = final_summary(&run.stdout);
    assert!(table.contains_key("total"), "no total row\n{context}");
    let total = count(&table, "total", "requests");
    assert!(
        total >= 40,
        "only {total} requests in 4s at 30/s\n{context}"
    );
    assert!(
        count(&table, "total", "legacy") > 0,
        "nothing answered by legacy\n{context}"
    );
    assert!(
        count(&table, "total", "modern") > 0,
        "nothing answered by modern\n{context}"
    );
    assert_eq!(
        count(&table, "total", "errors"),
        0,
        "errors on a healthy demo\n{context}"
    );
    // Stage modern: every /users request is answered by modern.
    assert_eq!(
        count(&table, "users", "modern"),
        count(&table, "users", "requests"),
        "{context}"
    );
    assert_eq!(count(&table, "users", "legacy"), 0, "{context}");
    let sum: u64 = ["legacy", "modern", "fallback"]
        .iter()
        .map(|c| count(&table, "total", c))
        .sum();
    assert_eq!(sum, total, "every request answered by one side\n{context}");
}

#[test]
fn a_taken_port_fails_with_a_way_out() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let run = demo(&[
        "--listen",
        &addr,
        "--admin",
        "127.0.0.1:0",
        "--duration",
        "1",
    ]);
    assert_eq!(
        run.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stderr.contains("already in use"), "{}", run.stderr);
    assert!(
        run.stderr.contains("--listen 127.0.0.1:0"),
        "{}",
        run.stderr
    );
}

/// Kills the demo if the test fails while it runs.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A plain HTTP/1.1 GET: (head, body).
fn http_get(base: &str, path: &str) -> (String, String) {
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).expect("connect to the admin API");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

/// The value after `flag ` in a printed command line.
fn arg_after<'a>(line: &'a str, flag: &str) -> &'a str {
    line.split_once(&format!("{flag} "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {flag} in {line:?}"))
}

/// Runs ficus as the demo says: in another folder, with the printed `export` line's
/// variables.
fn ficus(args: &[&str], env: &[(String, String)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ficus"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_remove("FICUS_ADMIN_TOKEN")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run ficus");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_demo_serves_the_dashboard_and_its_printed_commands_work() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ficus"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--duration",
            "8",
            "--rate",
            "20",
            "--quiet",
        ])
        .env("FICUS_WORKER_THREADS", "2")
        .env_remove("FICUS_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ficus demo");
    let stdout = child.stdout.take().unwrap();
    let mut demo = Running(child);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The instructions, up to the last printed CLI command.
    let mut intro = Vec::new();
    let started = Instant::now();
    while !intro.iter().any(|l: &String| l.ends_with(" history")) {
        let left = DEADLINE.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => intro.push(line),
            Err(e) => panic!("no admin instructions ({e})\n{}", intro.join("\n")),
        }
    }
    let text = intro.join("\n");
    let find = |needle: &str| {
        intro
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}\n{text}"))
            .clone()
    };
    let dashboard = find("  dashboard  ")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    // One export line, then every command as it is printed.
    let export: Vec<(String, String)> = find("  export FICUS_ADMIN=")
        .trim()
        .strip_prefix("export ")
        .unwrap()
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let var = |k: &str| {
        export
            .iter()
            .find(|(name, _)| name == k)
            .unwrap_or_else(|| panic!("no {k} in the export line\n{text}"))
            .1
            .clone()
    };
    let admin = var("FICUS_ADMIN");
    let token_file = std::path::PathBuf::from(var("FICUS_ADMIN_TOKEN_FILE"));
    let config_file = arg_after(&find("  config file  "), "file").to_string();
    assert_eq!(dashboard, format!("{admin}/"), "{text}");
    let token = std::fs::read_to_string(&token_file).expect("the printed token file");
    assert!(
        text.contains(&format!("admin token  {}", token.trim())),
        "{text}"
    );

    // The dashboard and the API it reads.
    let (head, body) = http_get(&admin, "/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{head}"
    );
    assert!(body.contains("/ui/app.js"), "{body}");
    let (head, body) = http_get(&admin, "/api/v1/routes");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let routes: serde_json::Value = serde_json::from_str(&body).expect("JSON routes");
    let names: Vec<&str> = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["users", "orders", "catalog", "accounts", "stock", "reports", "default"]
    );

    // The printed commands, as printed (with this test's binary).
    let (ok, out) = ficus(&["status"], &export);
    assert!(
        ok && out.contains("orders") && out.contains("canary"),
        "{out}"
    );
    let (ok, out) = ficus(&["plan", "-c", &config_file], &export);
    assert!(ok && out.contains("no changes"), "{out}");
    let (ok, out) = ficus(&["rollback", "orders", "-m", "modern errors"], &export);
    assert!(ok && out.contains("route.rollback"), "{out}");
    let (_, body) = http_get(&admin, "/api/v1/routes");
    let routes: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(routes["routes"][1]["name"], "orders");
    assert_eq!(routes["routes"][1]["stage"], "legacy", "{body}");
    let (ok, out) = ficus(&["events"], &export);
    assert!(ok && out.contains("modern errors"), "{out}");

    // It ends by itself and takes its temporary folder with it.
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the demo outlived {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let folder = token_file.parent().unwrap();
    assert!(!folder.exists(), "{} is left behind", folder.display());
}
