//! `ficus replay FILE --target URL`: sends a recording's requests to a target, open loop.
//!
//! Requests go out on replay's own HTTP/1.1 client ([`h1`]): at most `--max-in-flight`
//! keep-alive connections per target; a request due while all of them are busy waits for
//! one, first come first served, and the wait shows as its send lateness.
//!
//! Each request is due at the replay's start plus its offset ([`ficus_record::offsets`]):
//! the recorded gaps (`--as-recorded`, the default, long gaps capped at `--max-gap`), scaled
//! (`--speed 3x`), evenly spaced (`--rate 500/s`) or ramped (`--ramp 100/s..2000/s --over
//! 60s`). A dispatcher task releases each request at its due time whether or not earlier
//! ones have answered (sleeping, then yielding to the sends in flight until the due time; all
//! on one thread, so a hand-over wakes nobody), and latency is measured from the due time, so a slow target shows as latency, never as a slower send rate
//! (no coordinated omission). Requests of one sticky key keep their recorded order: each
//! waits for the previous one of its key; different keys run in parallel. Unsafe methods
//! (anything but GET, HEAD, OPTIONS, TRACE) are skipped unless `--unsafe allow`.
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ficus_record::{Exchange, Pace, Reader};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

mod h1;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The recording (a file `ficus record` wrote or `ficus record import` made).
    pub file: PathBuf,
    /// Where to send the requests: a base URL, e.g. http://127.0.0.1:8080 (its path, if any,
    /// is put before each recorded target).
    #[arg(long)]
    pub target: String,
    /// The recorded gaps (the default).
    #[arg(long, conflicts_with_all = ["speed", "rate", "ramp"])]
    pub as_recorded: bool,
    /// The recorded gaps scaled: 2x is twice as fast, 0.5x half as fast.
    #[arg(long, conflicts_with_all = ["rate", "ramp"])]
    pub speed: Option<String>,
    /// Evenly spaced at this rate, e.g. 500/s, whatever the recording's timing.
    #[arg(long, conflicts_with = "ramp")]
    pub rate: Option<String>,
    /// A rising rate, e.g. 100/s..2000/s, over --over.
    #[arg(long, requires = "over")]
    pub ramp: Option<String>,
    /// The ramp's length, e.g. 60s.
    #[arg(long)]
    pub over: Option<String>,
    /// Recorded gaps longer than this count as this long (as recorded or scaled).
    #[arg(long, default_value = "10s")]
    pub max_gap: String,
    /// Only this route's exchanges.
    #[arg(long)]
    pub route: Option<String>,
    /// Only exchanges that match: method=GET, path=/orders (a prefix), status=5xx or 404,
    /// side=modern. Repeat to require several.
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// skip (the default): unsafe methods are not sent; allow: they are.
    #[arg(long = "unsafe", default_value = "skip")]
    pub unsafe_methods: String,
    /// A header set on every replayed request, "name: value" (replaces the recorded one).
    #[arg(long = "set-header")]
    pub set_headers: Vec<String>,
    /// Stop sending after this long.
    #[arg(long)]
    pub duration: Option<String>,
    /// Each request's time limit, from its send.
    #[arg(long, default_value = "10s")]
    pub timeout: String,
    /// Requests in flight at most per target, each on its own keep-alive connection (so at
    /// most this many connections per target). A request due while all are busy waits for
    /// one, in due order; its send lateness shows the wait.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_in_flight: u64,
    /// Compare each replayed response with the recorded one (ficus's comparison rules,
    /// field by field, noise filtered).
    #[arg(long, conflicts_with = "compare_with")]
    pub compare: bool,
    /// Send each request to this second target too and compare the two responses (the
    /// second is the reference, like legacy in shadow comparisons).
    #[arg(long, value_name = "URL")]
    pub compare_with: Option<String>,
    /// Percent of safe requests sent twice to the reference side (with --compare: to the
    /// target), so fields that differ between two identical calls are known as noise.
    #[arg(long, default_value_t = 10.0)]
    pub noise_sample: f64,
    /// A JSON path pattern never compared, e.g. $.meta.request_id (repeatable).
    #[arg(long = "ignore", value_name = "PATH")]
    pub ignore: Vec<String>,
    /// Keep the run (its report, the comparison's ranked fields) in the store through the
    /// admin API, for `ficus replays`, the API and the dashboard.
    #[arg(long)]
    pub save: bool,
    /// The admin API (for --save) and --json.
    #[command(flatten)]
    pub admin: crate::client::Target,
}

/// What the comparison needs on every request.
struct Comparing {
    rules: ficus_compare::CompiledRules,
    /// `--compare-with`: the reference target's base.
    with: Option<(http::Uri, String)>,
    noise_bp: u16,
    aggregator: Mutex<ficus_compare::Aggregator>,
    compared: AtomicU64,
    /// Recorded responses whose body was cut at the recording's cap: not compared.
    skipped_truncated: AtomicU64,
    failed: AtomicU64,
}

/// A response as replay reads it.
type Got = h1::Response;

trait Compared {
    fn exchange(&self) -> ficus_compare::Exchange<'_>;
    fn sample(&self) -> ficus_compare::ResponseSample;
}

impl Compared for Got {
    fn exchange(&self) -> ficus_compare::Exchange<'_> {
        ficus_compare::Exchange {
            status: self.status,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn sample(&self) -> ficus_compare::ResponseSample {
        ficus_compare::ResponseSample {
            status: self.status,
            headers: self
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&self.body).into_owned(),
            truncated: false,
        }
    }
}

/// What a replay did.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    status_mismatch: AtomicU64,
    /// Nanoseconds from the start to the latest send.
    last_send_ns: AtomicU64,
    errors: Mutex<HashMap<&'static str, u64>>,
    statuses: Mutex<HashMap<u16, u64>>,
    mismatches: Mutex<HashMap<(u16, u16), u64>>,
    /// Microseconds from due to the response's end.
    latency: Mutex<Option<Histogram<u64>>>,
    /// Microseconds from due to the send.
    lateness: Mutex<Option<Histogram<u64>>>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

impl Tally {
    fn record(h: &Mutex<Option<Histogram<u64>>>, us: u64) {
        let mut g = h.lock().unwrap_or_else(|p| p.into_inner());
        let _ = g.get_or_insert_with(histogram).record(us.max(1));
    }

    fn error(&self, kind: &'static str) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_insert(0) += 1;
    }
}

/// One request ready to send.
struct Planned {
    due: Duration,
    method: http::Method,
    /// The request as written to `--target`.
    wire: h1::Wire,
    /// The same request as written to `--compare-with`'s target.
    reference: Option<h1::Wire>,
    recorded_status: u16,
    key: Option<String>,
    /// What the comparison needs (`None` when not comparing).
    compare: Option<Box<ForCompare>>,
}

/// The parts of a planned request only the comparison reads.
struct ForCompare {
    route: String,
    /// `METHOD /path/{id}` as the comparison reports endpoints.
    endpoint: String,
    at_ms: i64,
    /// Path and query as sent to `--target`.
    path: String,
    body: Bytes,
    /// The recorded response (`None` when cut at the recording's cap).
    recorded: Option<Got>,
}

const SAFE: [&str; 4] = ["GET", "HEAD", "OPTIONS", "TRACE"];

/// Headers never replayed as recorded: the connection's own, and the ones the client sets.
const SKIP_HEADERS: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
];

pub fn main(args: ReplayArgs) -> ExitCode {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ficus replay: {e}");
            ExitCode::from(2)
        }
    }
}

fn duration(flag: &str, s: &str) -> Result<Duration, String> {
    ficus_config::units::parse_duration(s).map_err(|e| format!("{flag} {s:?}: {e}"))
}

/// The filters of `--filter`.
struct Filters(Vec<(String, String)>);

impl Filters {
    fn parse(list: &[String]) -> Result<Filters, String> {
        let mut out = Vec::new();
        for f in list {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| format!("--filter {f:?}: KEY=VALUE (method, path, status, side)"))?;
            if !matches!(k, "method" | "path" | "status" | "side") {
                return Err(format!(
                    "--filter {f:?}: filter on method, path, status or side"
                ));
            }
            out.push((k.to_string(), v.to_string()));
        }
        Ok(Filters(out))
    }

    fn keep(&self, ex: &Exchange) -> bool {
        self.0.iter().all(|(k, v)| match k.as_str() {
            "method" => ex.method.eq_ignore_ascii_case(v),
            "path" => ex.target.starts_with(v.as_str()),
            "side" => ex.side == *v,
            _ => match v.strip_suffix("xx") {
                Some(class) => class.parse::<u16>().is_ok_and(|c| ex.status / 100 == c),
                None => v.parse::<u16>().is_ok_and(|s| ex.status == s),
            },
        })
    }
}

fn run(args: ReplayArgs) -> Result<ExitCode, String> {
    let pace = match (&args.speed, &args.rate, &args.ramp) {
        (Some(s), _, _) => Pace::parse_speed(s)?,
        (_, Some(r), _) => Pace::Rate(Pace::parse_rate(r)?),
        (_, _, Some(r)) => {
            Pace::parse_ramp(r, duration("--over", args.over.as_deref().unwrap_or(""))?)?
        }
        _ => Pace::AsRecorded,
    };
    let max_gap = duration("--max-gap", &args.max_gap)?;
    let timeout = duration("--timeout", &args.timeout)?;
    let stop_after = args
        .duration
        .as_deref()
        .map(|d| duration("--duration", d))
        .transpose()?;
    let allow_unsafe = match args.unsafe_methods.as_str() {
        "skip" => false,
        "allow" => true,
        other => return Err(format!("--unsafe {other:?}: skip or allow")),
    };
    let filters = Filters::parse(&args.filters)?;
    let comparing = if args.compare || args.compare_with.is_some() {
        let rules = ficus_compare::Rules {
            ignore: args.ignore.clone(),
            ..ficus_compare::Rules::default()
        }
        .compile()
        .map_err(|e| format!("--ignore: {e}"))?;
        let with = match &args.compare_with {
            None => None,
            Some(u) => {
                let uri: http::Uri = u
                    .parse()
                    .map_err(|e| format!("--compare-with {u:?}: {e}"))?;
                if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                    return Err(format!(
                        "--compare-with {u:?}: an http:// URL with a host and port"
                    ));
                }
                let prefix = uri.path().trim_end_matches('/').to_string();
                Some((uri, prefix))
            }
        };
        let noise = ficus_config::Weight::from_percent(args.noise_sample).ok_or_else(|| {
            format!(
                "--noise-sample {}: a percentage from 0 to 100",
                args.noise_sample
            )
        })?;
        Some(Arc::new(Comparing {
            rules,
            with,
            noise_bp: noise.basis_points(),
            aggregator: Mutex::new(ficus_compare::Aggregator::new(
                ficus_compare::Limits::default(),
                ficus_compare::Thresholds::default(),
            )),
            compared: AtomicU64::new(0),
            skipped_truncated: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }))
    } else {
        None
    };
    let base: http::Uri = args
        .target
        .parse()
        .map_err(|e| format!("--target {:?}: {e}", args.target))?;
    if base.scheme_str() != Some("http") || base.authority().is_none() {
        return Err(format!(
            "--target {:?}: an http:// URL with a host and port",
            args.target
        ));
    }
    let mut extra = http::HeaderMap::new();
    for h in &args.set_headers {
        let (n, v) = h
            .split_once(':')
            .ok_or_else(|| format!("--set-header {h:?}: \"name: value\""))?;
        let name = http::HeaderName::from_bytes(n.trim().as_bytes())
            .map_err(|_| format!("--set-header {h:?}: {n:?} is not a header name"))?;
        let value = http::HeaderValue::from_str(v.trim())
            .map_err(|_| format!("--set-header {h:?}: the value is not a header value"))?;
        extra.insert(name, value);
    }

    // Read and select.
    let mut reader =
        Reader::open(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let mut selected: Vec<Exchange> = Vec::new();
    let (mut skipped_unsafe, mut skipped_filter, mut skipped_truncated) = (0u64, 0u64, 0u64);
    for ex in reader.by_ref() {
        if args.route.as_deref().is_some_and(|r| r != ex.route) || !filters.keep(&ex) {
            skipped_filter += 1;
        } else if !allow_unsafe && !SAFE.contains(&ex.method.as_str()) {
            skipped_unsafe += 1;
        } else if ex.request.truncated_from.is_some() {
            skipped_truncated += 1;
        } else {
            selected.push(ex);
        }
    }
    let torn = reader.torn().cloned();
    if let Some(t) = &torn {
        eprintln!(
            "ficus replay: {} is torn at byte {} ({}); replaying the {} records before it",
            args.file.display(),
            t.offset,
            t.why,
            selected.len() as u64 + skipped_filter + skipped_unsafe + skipped_truncated
        );
    }
    let at: Vec<u64> = selected.iter().map(|e| e.at_ns).collect();
    let offsets = ficus_record::offsets(&at, pace, Some(max_gap));
    let mut plan = Vec::with_capacity(selected.len());
    let bases = Bases {
        authority: authority(&base),
        prefix: base.path().trim_end_matches('/').to_string(),
        reference: comparing
            .as_ref()
            .and_then(|c| c.with.as_ref())
            .map(|(u, prefix)| (authority(u), prefix.clone())),
    };
    for (ex, due) in selected.into_iter().zip(offsets) {
        if stop_after.is_some_and(|d| due > d) {
            break;
        }
        plan.push(planned(ex, due, &bases, &extra, comparing.is_some())?);
    }
    let expected = plan.last().map_or(Duration::ZERO, |p| p.due);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let max = usize::try_from(args.max_in_flight).unwrap_or(usize::MAX);
    let (primary, reference) = rt.block_on(async {
        let primary = h1::Pool::new(&bases.authority, max).await;
        let reference = match &bases.reference {
            Some((a, _)) => Some(h1::Pool::new(a, max).await),
            None => None,
        };
        (primary, reference)
    });
    let primary = primary.map_err(|e| format!("--target: {e}"))?;
    let reference = reference
        .transpose()
        .map_err(|e| format!("--compare-with: {e}"))?;
    let pb = if args.admin.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let pb =
            ProgressBar::with_draw_target(Some(plan.len() as u64), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} replaying [{bar:30}] {human_pos}/{human_len} {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    };

    // One thread: the dispatcher is a task beside the sends it starts, so handing a request
    // over wakes nobody (a dispatcher thread waking a runtime thread per request cost more
    // than the request). Per key, a chain: each request waits for the previous one of its key.
    let total = plan.len();
    let start = Instant::now() + Duration::from_millis(50);
    let ctx = Arc::new(Ctx {
        primary,
        reference,
        tally: Tally::default(),
        cmp: comparing.clone(),
        timeout,
        pb: pb.clone(),
        start,
        outstanding: AtomicUsize::new(0),
        all_done: tokio::sync::Notify::new(),
    });
    let dispatched = rt.block_on(dispatch(ctx.clone(), plan, start));
    let took = start.elapsed();
    pb.finish_and_clear();
    drop(rt);
    // Sending lasted until the last request went out (it may have waited for a connection
    // after the dispatcher released it).
    let sending = dispatched.max(Duration::from_nanos(
        ctx.tally.last_send_ns.load(Ordering::Relaxed),
    ));
    let tally = &ctx.tally;

    let mut report = report(
        tally,
        total,
        expected,
        sending,
        took,
        (skipped_filter, skipped_unsafe, skipped_truncated),
        torn.as_ref(),
    );
    report["connections"] = json!({
        "max": args.max_in_flight,
        "opened": ctx.primary.opened(),
        "waited": ctx.primary.waited(),
        "reference_opened": ctx.reference.as_ref().map(|p| p.opened()),
    });
    if let Some(c) = &comparing {
        let agg = c.aggregator.lock().unwrap_or_else(|p| p.into_inner());
        report["comparison"] = json!({
            "against": if c.with.is_some() { "compare-with" } else { "recording" },
            "compared": c.compared.load(Ordering::Relaxed),
            "skipped_truncated": c.skipped_truncated.load(Ordering::Relaxed),
            "reference_failed": c.failed.load(Ordering::Relaxed),
            "routes": agg.report(None).routes,
        });
    }
    if args.save {
        let reference = match (&comparing, &args.compare_with) {
            (None, _) => "none",
            (Some(_), Some(_)) => "compare-with",
            (Some(_), None) => "recording",
        };
        let body = json!({
            "file": args.file.display().to_string(),
            "target": args.target,
            "reference": reference,
            "report": report,
        });
        match crate::client::post_json(&args.admin, "/api/v1/replays", body) {
            Ok(run) => report["saved"] = json!({"id": run["id"]}),
            Err(e) => {
                print_out(&report, args.admin.json);
                return Err(format!("the run was not saved: {e}"));
            }
        }
    }
    print_out(&report, args.admin.json);
    Ok(ExitCode::SUCCESS)
}

fn print_out(report: &serde_json::Value, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
    } else {
        print_report(report);
        if let Some(id) = report["saved"]["id"].as_i64() {
            println!("saved as replay run {id}: `ficus replays {id}`");
        }
    }
}

/// `--target`'s and `--compare-with`'s authorities and path prefixes.
struct Bases {
    authority: String,
    prefix: String,
    reference: Option<(String, String)>,
}

fn authority(u: &http::Uri) -> String {
    let a = u.authority().map_or("", |a| a.as_str());
    if u.port().is_some() {
        a.to_string()
    } else {
        format!("{a}:80")
    }
}

fn planned(
    ex: Exchange,
    due: Duration,
    bases: &Bases,
    extra: &http::HeaderMap,
    comparing: bool,
) -> Result<Planned, String> {
    let target = if ex.target.starts_with('/') {
        ex.target
    } else {
        format!("/{}", ex.target)
    };
    // The recorded target must be a request target (no spaces, no control bytes).
    if target
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!(
            "recorded target {target:?} is not a request target"
        ));
    }
    let method = http::Method::from_bytes(ex.method.as_bytes())
        .map_err(|_| format!("recorded method {:?} is not a method", ex.method))?;
    let mut headers = http::HeaderMap::new();
    for (n, v) in &ex.request.headers {
        if SKIP_HEADERS.contains(&n.as_str()) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(n.as_bytes()),
            http::HeaderValue::from_bytes(&v.0),
        ) {
            headers.append(n, v);
        }
    }
    for (n, v) in extra {
        headers.insert(n, v.clone());
    }
    let body = Bytes::from(ex.request.body.0);
    let path = format!("{}{target}", bases.prefix);
    let wire = h1::Wire::encode(&method, &path, &bases.authority, &headers, &body);
    let reference = bases.reference.as_ref().map(|(authority, prefix)| {
        h1::Wire::encode(
            &method,
            &format!("{prefix}{target}"),
            authority,
            &headers,
            &body,
        )
    });
    let compare = comparing.then(|| {
        let bare = target.split('?').next().unwrap_or("/");
        Box::new(ForCompare {
            endpoint: format!("{} {}", ex.method, ficus_telemetry::inventory::fold(bare)),
            route: ex.route,
            at_ms: (ex.at_ns / 1_000_000) as i64,
            path,
            body,
            recorded: ex.response.truncated_from.is_none().then(|| Got {
                status: ex.status,
                headers: ex
                    .response
                    .headers
                    .iter()
                    .filter_map(|(n, v)| {
                        Some((
                            http::HeaderName::from_bytes(n.as_bytes()).ok()?,
                            http::HeaderValue::from_bytes(&v.0).ok()?,
                        ))
                    })
                    .collect(),
                body: Bytes::from(ex.response.body.0),
            }),
        })
    });
    Ok(Planned {
        due,
        method,
        wire,
        reference,
        recorded_status: ex.status,
        key: ex.key,
        compare,
    })
}

/// What every send shares.
struct Ctx {
    primary: h1::Pool,
    /// `--compare-with`'s target.
    reference: Option<h1::Pool>,
    tally: Tally,
    cmp: Option<Arc<Comparing>>,
    timeout: Duration,
    pb: ProgressBar,
    start: Instant,
    /// Requests released and not finished yet.
    outstanding: AtomicUsize,
    all_done: tokio::sync::Notify,
}

impl Ctx {
    fn done_one(&self) {
        self.pb.inc(1);
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_done.notify_one();
        }
    }
}

/// The least and the most the dispatcher wakes before a due time, to yield to the sends in
/// flight until it: twice the alarm's typical lateness plus 10 us, within these bounds (a
/// sleeping thread wakes 50 us late with Linux's default timer slack, and in a virtual
/// machine a wake-up can take 100 us more).
const EARLY_MIN: Duration = Duration::from_micros(30);
const EARLY_MAX: Duration = Duration::from_millis(1);

/// Wakes the dispatcher at an instant, to the microsecond. tokio's timer has millisecond
/// steps, so the dispatcher used to yield in a loop from 1.5 ms before each due time: at 10k
/// requests/s it never slept, and the scheduler gave any other runnable process on the core
/// (a build) whole slices in the middle of the replay, milliseconds of lateness. Sleeping
/// in a thread of its own (std's sleep is a high-resolution timer), the replay's core is
/// idle between requests and a wake-up preempts a background process at once.
struct Alarm {
    tx: std::sync::mpsc::Sender<Instant>,
    rang: Arc<tokio::sync::Notify>,
    /// How late the alarm rings, a moving average in nanoseconds.
    late_ns: std::cell::Cell<u64>,
}

impl Alarm {
    fn start() -> Alarm {
        let (tx, rx) = std::sync::mpsc::channel::<Instant>();
        let rang = Arc::new(tokio::sync::Notify::new());
        let r = rang.clone();
        let spawned = std::thread::Builder::new()
            .name("ficus-replay-alarm".into())
            .spawn(move || {
                while let Ok(at) = rx.recv() {
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    r.notify_one();
                }
            });
        if spawned.is_err() {
            // No thread: `until` returns at once and the dispatcher yields until due.
            let (dead, _) = std::sync::mpsc::channel();
            return Alarm {
                tx: dead,
                rang,
                late_ns: std::cell::Cell::new(0),
            };
        }
        Alarm {
            tx,
            rang,
            late_ns: std::cell::Cell::new(50_000),
        }
    }

    /// How long before a due time to wake up (see [`EARLY_MIN`]).
    fn early(&self) -> Duration {
        (Duration::from_nanos(2 * self.late_ns.get()) + Duration::from_micros(10))
            .clamp(EARLY_MIN, EARLY_MAX)
    }

    /// Returns at `at` (or a little after).
    async fn until(&self, at: Instant) {
        let rang = self.rang.notified();
        if self.tx.send(at).is_err() {
            tokio::task::yield_now().await;
            return;
        }
        rang.await;
        let late = Instant::now().saturating_duration_since(at).as_nanos() as u64;
        let avg = self.late_ns.get();
        self.late_ns.set(avg - avg / 16 + late.min(10_000_000) / 16);
    }
}

/// Releases each request at its due time, then waits for them all; how long releasing took.
async fn dispatch(ctx: Arc<Ctx>, plan: Vec<Planned>, start: Instant) -> Duration {
    let mut chains: HashMap<String, tokio::sync::mpsc::UnboundedSender<(Planned, Instant)>> =
        HashMap::new();
    let mut chain_tasks = Vec::new();
    let alarm = Alarm::start();
    for mut p in plan {
        let due = start + p.due;
        // Asleep until shortly before the due time (the runtime serves the sends in flight
        // meanwhile), then yielding to them until it.
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            if due - now > alarm.early() {
                alarm.until(due - alarm.early()).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        ctx.outstanding.fetch_add(1, Ordering::AcqRel);
        match p.key.take() {
            None => {
                // A slot of the target's pool first: with all connections busy, the
                // dispatcher waits here, and so do the requests due after this one.
                let slot = ctx.primary.slot().await;
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    send(&ctx, p, due, Some(slot)).await;
                    ctx.done_one();
                });
            }
            Some(k) => {
                let tx = chains.entry(k).or_insert_with(|| {
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Planned, Instant)>();
                    let ctx = ctx.clone();
                    chain_tasks.push(tokio::spawn(async move {
                        while let Some((p, due)) = rx.recv().await {
                            send(&ctx, p, due, None).await;
                            ctx.done_one();
                        }
                    }));
                    tx
                });
                let _ = tx.send((p, due));
            }
        }
    }
    drop(chains);
    let released = start.elapsed();
    loop {
        let done = ctx.all_done.notified();
        if ctx.outstanding.load(Ordering::Acquire) == 0 {
            break;
        }
        done.await;
    }
    for t in chain_tasks {
        let _ = t.await;
    }
    released
}

async fn send(ctx: &Ctx, mut p: Planned, due: Instant, slot: Option<h1::Slot>) {
    let slot = match slot {
        Some(s) => s,
        None => ctx.primary.slot().await,
    };
    let tally = &ctx.tally;
    let sent = Instant::now();
    Tally::record(
        &tally.lateness,
        sent.saturating_duration_since(due).as_micros() as u64,
    );
    tally.sent.fetch_add(1, Ordering::Relaxed);
    tally.last_send_ns.fetch_max(
        sent.saturating_duration_since(ctx.start).as_nanos() as u64,
        Ordering::Relaxed,
    );
    let keep = ctx.cmp.is_some();
    let primary = ctx.primary.call(slot, &p.wire, keep, ctx.timeout);
    // With --compare-with, the reference side is called at the same time.
    let (got, reference) = match (&ctx.reference, &p.reference) {
        (Some(pool), Some(wire)) => {
            let reference = async {
                let slot = pool.slot().await;
                pool.call(slot, wire, true, ctx.timeout).await
            };
            let (g, r) = tokio::join!(primary, reference);
            (g, Some(r))
        }
        _ => (primary.await, None),
    };
    match &got {
        Ok(g) => {
            tally.answered.fetch_add(1, Ordering::Relaxed);
            Tally::record(
                &tally.latency,
                Instant::now().saturating_duration_since(due).as_micros() as u64,
            );
            *tally
                .statuses
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(g.status)
                .or_insert(0) += 1;
            if g.status != p.recorded_status {
                tally.status_mismatch.fetch_add(1, Ordering::Relaxed);
                *tally
                    .mismatches
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry((p.recorded_status, g.status))
                    .or_insert(0) += 1;
            }
        }
        Err(kind) => tally.error(kind.as_str()),
    }
    let (Some(c), Ok(got), Some(mut cp)) = (ctx.cmp.as_deref(), got, p.compare.take()) else {
        return;
    };
    // The reference: the second target's answer, or the recording's.
    let reference = match reference {
        Some(Ok(r)) => r,
        Some(Err(_)) => {
            c.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        None => match cp.recorded.take() {
            Some(r) => r,
            None => {
                c.skipped_truncated.fetch_add(1, Ordering::Relaxed);
                return;
            }
        },
    };
    let primary = ficus_compare::compare(&c.rules, &reference.exchange(), &got.exchange());
    // The noise sample: the reference side asked again (with --compare, the target).
    let safe = SAFE.contains(&p.method.as_str());
    let noise = if safe && c.noise_bp > 0 && (rand_bp() < c.noise_bp) {
        let (pool, wire) = match (&ctx.reference, &p.reference) {
            (Some(pool), Some(wire)) => (pool, wire),
            _ => (&ctx.primary, &p.wire),
        };
        let slot = pool.slot().await;
        let again = pool.call(slot, wire, true, ctx.timeout).await.ok();
        again.map(|a| match &c.with {
            Some(_) => ficus_compare::compare(&c.rules, &reference.exchange(), &a.exchange()),
            None => ficus_compare::compare(&c.rules, &got.exchange(), &a.exchange()),
        })
    } else {
        None
    };
    c.compared.fetch_add(1, Ordering::Relaxed);
    let sample = || ficus_compare::SampleData {
        request: ficus_compare::RequestSample {
            method: p.method.to_string(),
            uri: cp.path.clone(),
            headers: Vec::new(),
            body: String::from_utf8_lossy(&cp.body).into_owned(),
            truncated: false,
        },
        legacy: reference.sample(),
        modern: got.sample(),
    };
    c.aggregator
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(
            &cp.route,
            &cp.endpoint,
            cp.at_ms,
            &primary,
            noise.as_ref(),
            sample,
        );
}

/// A random basis point (0..10,000), for the noise sample.
fn rand_bp() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() % 10_000) as u16
}

fn quantiles(h: &Mutex<Option<Histogram<u64>>>) -> serde_json::Value {
    let g = h.lock().unwrap_or_else(|p| p.into_inner());
    match g.as_ref() {
        None => json!(null),
        Some(h) => json!({
            "p50_us": h.value_at_quantile(0.5),
            "p99_us": h.value_at_quantile(0.99),
            "p999_us": h.value_at_quantile(0.999),
            "max_us": h.max(),
        }),
    }
}

fn report(
    t: &Tally,
    planned: usize,
    expected: Duration,
    sending: Duration,
    took: Duration,
    (skipped_filter, skipped_unsafe, skipped_truncated): (u64, u64, u64),
    torn: Option<&ficus_record::format::Torn>,
) -> serde_json::Value {
    let mut errors: Vec<(&str, u64)> = t
        .errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect();
    errors.sort();
    let mut statuses: Vec<(u16, u64)> = t
        .statuses
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect();
    statuses.sort();
    let mut mismatches: Vec<((u16, u16), u64)> = t
        .mismatches
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect();
    mismatches.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let sent = t.sent.load(Ordering::Relaxed);
    json!({
        "planned": planned,
        "sent": sent,
        "answered": t.answered.load(Ordering::Relaxed),
        "errors": errors.iter().map(|(k, v)| json!({"kind": k, "count": v})).collect::<Vec<_>>(),
        // Always 0 now that requests wait for a connection instead (kept for saved runs).
        "dropped_in_flight": 0,
        "skipped": {"filter": skipped_filter, "unsafe": skipped_unsafe, "truncated_body": skipped_truncated},
        "statuses": statuses.iter().map(|(s, n)| json!({"status": s, "count": n})).collect::<Vec<_>>(),
        "status_mismatches": t.status_mismatch.load(Ordering::Relaxed),
        "mismatches": mismatches.iter().take(10).map(|((r, g), n)| json!({"recorded": r, "replayed": g, "count": n})).collect::<Vec<_>>(),
        "latency": quantiles(&t.latency),
        "lateness": quantiles(&t.lateness),
        "schedule_s": expected.as_secs_f64(),
        "sending_s": sending.as_secs_f64(),
        "took_s": took.as_secs_f64(),
        "rate_per_s": if sending.as_secs_f64() > 0.0 { sent as f64 / sending.as_secs_f64() } else { 0.0 },
        "torn": torn.map(|t| json!({"offset": t.offset, "why": t.why})),
    })
}

pub(crate) fn print_report(r: &serde_json::Value) {
    let us = |v: &serde_json::Value| {
        v.as_u64()
            .map_or("-".to_string(), |u| format!("{:.3} ms", u as f64 / 1000.0))
    };
    println!(
        "sent {} of {} planned in {:.2} s ({:.0}/s; the schedule spans {:.2} s), answered {}",
        r["sent"],
        r["planned"],
        r["sending_s"].as_f64().unwrap_or(0.0),
        r["rate_per_s"].as_f64().unwrap_or(0.0),
        r["schedule_s"].as_f64().unwrap_or(0.0),
        r["answered"]
    );
    println!(
        "skipped: {} by filter or route, {} unsafe (--unsafe allow sends them), {} with a cut body",
        r["skipped"]["filter"], r["skipped"]["unsafe"], r["skipped"]["truncated_body"]
    );
    let c = &r["connections"];
    if !c.is_null() {
        println!(
            "connections to the target: {} opened (at most {}); {} requests waited for one",
            c["opened"], c["max"], c["waited"]
        );
    }
    for e in r["errors"].as_array().into_iter().flatten() {
        println!(
            "errors: {} {}",
            e["count"],
            e["kind"].as_str().unwrap_or("")
        );
    }
    let l = &r["latency"];
    println!(
        "latency from the due time: p50 {}  p99 {}  p99.9 {}  max {}",
        us(&l["p50_us"]),
        us(&l["p99_us"]),
        us(&l["p999_us"]),
        us(&l["max_us"])
    );
    let l = &r["lateness"];
    println!(
        "send lateness: p50 {}  p99 {}  max {}",
        us(&l["p50_us"]),
        us(&l["p99_us"]),
        us(&l["max_us"])
    );
    println!(
        "status differs from the recording: {}",
        r["status_mismatches"]
    );
    for m in r["mismatches"].as_array().into_iter().flatten() {
        println!(
            "  recorded {} -> replayed {}: {}",
            m["recorded"], m["replayed"], m["count"]
        );
    }
    let c = &r["comparison"];
    if c.is_null() {
        return;
    }
    println!(
        "compared against the {}: {} responses ({} recorded bodies cut at the cap not compared, {} reference calls failed)",
        c["against"].as_str().unwrap_or(""),
        c["compared"],
        c["skipped_truncated"],
        c["reference_failed"]
    );
    for route in c["routes"].as_array().into_iter().flatten() {
        for ep in route["endpoints"].as_array().into_iter().flatten() {
            let fields: Vec<&serde_json::Value> =
                ep["fields"].as_array().into_iter().flatten().collect();
            if fields.is_empty() {
                continue;
            }
            println!(
                "  {} {}: {} of {} differ",
                route["route"].as_str().unwrap_or(""),
                ep["endpoint"].as_str().unwrap_or(""),
                ep["differing"],
                ep["compared"]
            );
            for f in fields.iter().take(10) {
                println!(
                    "    {:<6} {:>6.2}%  {}  (noise {:.2}%)",
                    f["verdict"].as_str().unwrap_or(""),
                    f["rate"].as_f64().unwrap_or(0.0) * 100.0,
                    f["path"].as_str().unwrap_or(""),
                    f["noise_rate"].as_f64().unwrap_or(0.0) * 100.0
                );
            }
        }
    }
}
