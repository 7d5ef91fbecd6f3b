//! `ficus demo` end to end: the real binary, its sample services, gateway and synthetic client,
//! all on 127.0.0.1, bounded in time.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
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
    let run = demo(&["--listen", "127.0.0.1:0", "--duration", "4", "--rate", "30"]);
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
    let run = demo(&["--listen", &addr, "--duration", "1"]);
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
