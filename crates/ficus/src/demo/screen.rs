//! What the demo shows on the terminal: the instructions at start, the periodic per-route
//! lines and the final summary. Built as strings (so tests can read them) and written by
//! [`emit`], which notices when nobody reads any more (`ficus demo | head`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ficus_config::{Config, Stage, StickyKey};
use ficus_proxy::split::{self, Side};

use super::stats::{self, Tallies};

/// Where everything runs and how the client is set up, for the instructions.
pub struct Setup<'a> {
    pub cfg: &'a Config,
    pub gateway: SocketAddr,
    pub legacy: SocketAddr,
    pub modern: SocketAddr,
    pub admin: Admin<'a>,
    pub rate: u32,
    pub users: u64,
    /// e.g. `for 30s` or `until Ctrl-C (at most 600s)`.
    pub until: String,
    pub report_every: Duration,
}

/// The admin API and dashboard, for the instructions.
pub struct Admin<'a> {
    /// `http://127.0.0.1:9901`.
    pub url: String,
    /// Why the admin API is not where it was asked to be.
    pub note: Option<String>,
    pub token: &'a str,
    /// Where the token is (`None` when it came from `FICUS_ADMIN_TOKEN`).
    pub token_file: Option<&'a Path>,
    /// The demo's config file, which `plan`, `apply`, `history` and `revert` work with.
    pub config_file: &'a Path,
    /// How to call ficus in the printed commands.
    pub program: String,
}

/// Writes to standard output; `false` once it is closed, which the caller treats as a request
/// to stop (where `println!` would panic).
pub fn emit(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

/// The addresses, the route table, and ready-to-copy commands that show each stage.
pub fn intro(s: &Setup<'_>) -> String {
    let (gw, lg, md) = (
        format!("http://{}", s.gateway),
        format!("http://{}", s.legacy),
        format!("http://{}", s.modern),
    );
    let mut out = String::new();
    out.push_str(
        "ficus demo: a gateway migrating a sample legacy service to a sample modern one.\n\n",
    );
    let _ = writeln!(out, "  gateway    {gw}");
    let _ = writeln!(out, "  legacy     {lg}   (sample legacy service)");
    let _ = writeln!(
        out,
        "  modern     {md}   (sample modern service, with a fault switch at /_control)"
    );
    let _ = writeln!(
        out,
        "  dashboard  {}/   (the migration map, live charts, rollback; the admin API is under /api/v1)\n",
        s.admin.url
    );
    if let Some(note) = &s.admin.note {
        let _ = writeln!(out, "  note: {note}\n");
    }
    out.push_str("Routes, in match order:\n\n");
    for line in crate::run::route_table(s.cfg).lines() {
        let _ = writeln!(out, "  {line}");
    }
    out.push('\n');

    let mut tries = vec![(
        format!("curl -i {gw}/users/7"),
        "stage modern: modern answers".to_string(),
    )];
    for (user, side) in canary_examples(s.cfg) {
        tries.push((
            format!("curl -i {gw}/orders/42 -H 'x-user-id: {user}'"),
            format!("stage canary: {user} is on {}, every time", side.as_str()),
        ));
    }
    tries.push((
        format!("curl -i {gw}/catalog/sku-1001"),
        "stage shadow: legacy answers, modern gets a copy".into(),
    ));
    tries.push((
        format!("curl -i {gw}/accounts/7 -H 'x-user-id: u-7'"),
        "automated rollout: the judge takes modern from 20% to 100% in about half a minute".into(),
    ));
    tries.push((
        format!("curl -i {gw}/stock/sku-1001 -H 'x-user-id: u-7'"),
        "automated rollout that modern breaks 25 s in: rolled back by the judge seconds later"
            .into(),
    ));
    tries.push((format!("curl -i {gw}/reports/daily"), "stage legacy".into()));
    commands(
        &mut out,
        "Try it (x-ficus-upstream in each response says who answered):",
        &tries,
    );

    let timeout = s.cfg.upstream("modern").map_or_else(String::new, |u| {
        format!(" (its request_timeout is {:?})", u.request_timeout)
    });
    commands(
        &mut out,
        "Break modern and watch the summary: GETs fall back to legacy (legacy-fallback):",
        &[
            (
                format!("curl -X POST '{md}/_control/fail?rate=0.3'"),
                "30% of modern's answers become 503".into(),
            ),
            (
                format!("curl -X POST '{md}/_control/delay?ms=2500'"),
                format!("modern gets slow{timeout}"),
            ),
            (
                format!("curl -X POST '{md}/_control/fail?rate=0'"),
                "heal; delay?ms=0 removes the delay".into(),
            ),
        ],
    );
    control(&mut out, &s.admin);
    let p = &s.admin.program;
    commands(
        &mut out,
        "What the shadow comparison of /catalog finds (real differences apart from noise such as\n\
         generated_at and trace, which legacy changes on every answer too):",
        &[
            (
                format!("{p} diffs catalog"),
                "field paths ranked by difference rate".into(),
            ),
            (
                format!("{p} diffs show ID"),
                "one sample side by side (ids in the list)".into(),
            ),
            (
                format!("curl -s {lg}/catalog/sku-1001"),
                "legacy, directly".into(),
            ),
            (
                format!("curl -s {md}/catalog/sku-1001"),
                "modern, directly".into(),
            ),
        ],
    );
    let _ = writeln!(
        out,
        "Synthetic client: {} req/s as {} users, {}; per-route summary every {}s.",
        s.rate,
        s.users,
        s.until,
        s.report_every.as_secs()
    );
    out.push_str("(fallback = answered by legacy after modern failed; errors = status >= 500 or no answer)\n");
    out
}

/// How to change routes at runtime: the token, the config file, one `export` line that
/// points the CLI at this demo, and the CLI over the admin API.
fn control(out: &mut String, a: &Admin<'_>) {
    let _ = writeln!(
        out,
        "Change routes while it runs, in the dashboard or with the CLI; every change is an\n\
         event with who and why (the dashboard's Events page, `ficus events`).\n"
    );
    let _ = writeln!(
        out,
        "  admin token  {}   (paste it into the dashboard's \"Admin token\" button)",
        a.token
    );
    let mut export = format!("export FICUS_ADMIN={}", a.url);
    match a.token_file {
        Some(f) => {
            let _ = writeln!(out, "  token file   {}", f.display());
            export.push_str(&format!(" FICUS_ADMIN_TOKEN_FILE={}", f.display()));
        }
        None => {
            let _ = writeln!(out, "  (the token comes from FICUS_ADMIN_TOKEN)");
        }
    }
    let _ = writeln!(
        out,
        "  config file  {}   (for plan and apply; it goes when the demo ends)\n",
        a.config_file.display()
    );
    let (p, file) = (&a.program, a.config_file.display());
    // Comment above command: the paths make these too long to align comments after.
    let _ = writeln!(
        out,
        "From another terminal, first point the CLI at this demo (the admin API and its token):\n\n  \
         {export}\n\nthen:\n"
    );
    for (comment, command) in [
        ("the migration map with live numbers", format!("{p} status")),
        (
            "half the users on modern",
            format!("{p} set orders --weight 50 -m \"step up\""),
        ),
        (
            "orders back to legacy, for the very next request",
            format!("{p} rollback orders -m \"modern errors\""),
        ),
        ("the audit log", format!("{p} events")),
        (
            "the automated rollouts: steps, status, each gate's numbers",
            format!("{p} rollout status"),
        ),
        (
            "what applying the config file would change, once you edit it (then: apply -c ... -m WHY)",
            format!("{p} plan -c {file}"),
        ),
        ("the config versions", format!("{p} history")),
    ] {
        let _ = writeln!(out, "  # {comment}\n  {command}");
    }
    out.push('\n');
}

/// A titled block of commands with their comments aligned.
fn commands(out: &mut String, title: &str, commands: &[(String, String)]) {
    let width = commands.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let _ = writeln!(out, "{title}\n");
    for (command, comment) in commands {
        let _ = writeln!(out, "  {command:<width$}   # {comment}");
    }
    out.push('\n');
}

/// Two users, one on each side of the first sticky canary route, so the printed commands show
/// both; computed with the gateway's own bucket function, so they are exact.
pub fn canary_examples(cfg: &Config) -> Vec<(&'static str, Side)> {
    const NAMES: [&str; 8] = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    let Some(route) = cfg
        .routes
        .iter()
        .find(|r| r.stage == Stage::Canary && matches!(r.sticky, StickyKey::Header(_)))
    else {
        return Vec::new();
    };
    let side = |name: &str| {
        split::choose(route.stage, route.weight, || {
            split::bucket(&route.name, name.as_bytes())
        })
    };
    let on = |want: Side| {
        NAMES
            .into_iter()
            .find(|n| side(n) == want)
            .map(|n| (n, want))
    };
    [on(Side::Modern), on(Side::Legacy)]
        .into_iter()
        .flatten()
        .collect()
}

/// One periodic report: a line per route seen in the interval, led by the elapsed time.
pub fn interval(
    elapsed: Duration,
    order: &[String],
    tallies: &Tallies,
    with_header: bool,
) -> String {
    let mut out = String::new();
    if with_header {
        let _ = writeln!(out, "\n{}", stats::header("time"));
    }
    let lead = format!("{}s", elapsed.as_secs_f64().round());
    for line in stats::rows(&lead, order, tallies) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The totals of the whole run, per route and overall.
pub fn summary(
    totals: &Tallies,
    order: &[String],
    elapsed: Duration,
    skipped: u64,
    max_in_flight: usize,
) -> String {
    let all = stats::total(totals);
    let secs = elapsed.as_secs_f64();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n== final summary: {} requests in {secs:.1}s ({:.1}/s) ==",
        all.requests,
        all.requests as f64 / secs.max(f64::EPSILON)
    );
    let _ = writeln!(out, "{}", stats::header(""));
    for line in stats::rows("", order, totals) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{}", stats::row("", "total", &all));
    if skipped > 0 {
        let _ = writeln!(
            out,
            "({skipped} request(s) not sent: {max_in_flight} were already in flight)"
        );
    }
    out
}
