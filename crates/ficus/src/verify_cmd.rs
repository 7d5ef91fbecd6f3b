//! `ficus verify`: the command line over `ficus-verify`: flags to a job, a progress bar on
//! stderr, the report as text or JSON on stdout, repair SQL, and exit codes 0 (equal),
//! 1 (different), 2 (error).
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ficus_verify::{
    defaults, Checkpoint, DiffKind, Difference, Endpoint, Job, Limits, Mode, Overlap, Phase,
    Progress, Report, RunOptions, Watermark, WatermarkValue,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn parse_duration(s: &str) -> Result<Duration, String> {
    ficus_config::units::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
            Ok((a.trim().to_string(), b.trim().to_string()))
        }
        _ => Err(format!("expected SOURCE=TARGET, got `{s}`")),
    }
}

fn parse_tolerance(s: &str) -> Result<(String, f64), String> {
    let (col, tol) = parse_pair(s)
        .map_err(|_| format!("expected COLUMN=TOLERANCE (e.g. price=0.001), got `{s}`"))?;
    let tol: f64 = tol
        .parse()
        .map_err(|_| format!("`{tol}` is not a number (e.g. {col}=0.001)"))?;
    Ok((col, tol))
}

/// `--expr TARGET=SQL`: the target column, then the expression (which may itself hold `=`).
fn parse_expr(s: &str) -> Result<(String, String), String> {
    let Some((col, expr)) = s.split_once('=') else {
        return Err(format!(
            "expected TARGET_COLUMN=SQL (e.g. full_name=\"first || ' ' || last\"), got `{s}`"
        ));
    };
    let (col, expr) = (col.trim(), expr.trim());
    if col.is_empty() {
        return Err(format!(
            "the target column before `=` is empty in `{s}` (e.g. email_lower=\"lower(email)\")"
        ));
    }
    if expr.is_empty() {
        return Err(format!(
            "the expression after `{col}=` is empty: give an SQL expression over the source columns"
        ));
    }
    Ok((col.to_string(), expr.to_string()))
}

/// `--changed-since`: a timestamp (`2026-12-07T10:00:00Z`) or an integer (a version), taken
/// as they are, or a duration (`15m`): that long before now.
fn parse_since(s: &str) -> Result<WatermarkValue, String> {
    if let Ok(v) = s.parse::<WatermarkValue>() {
        return Ok(v);
    }
    match ficus_config::units::parse_duration(s) {
        Ok(d) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?;
            let micros = now.saturating_sub(d).as_micros();
            Ok(WatermarkValue::Time(
                i64::try_from(micros).unwrap_or(i64::MAX),
            ))
        }
        Err(_) => Err(format!(
            "`{s}` is not a time (2026-12-07T10:00:00Z), a duration before now (15m, 2h) or an \
             integer watermark (120345)"
        )),
    }
}

fn parse_overlap(s: &str) -> Result<Overlap, String> {
    s.parse()
}

/// The `verify` subcommand's flags, boxed: they are many, and the `Command` enum keeps
/// every variant small.
#[derive(clap::Args, Debug, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    options: Box<VerifyOptions>,
}

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Exit codes: 0 equal (or every difference resolved on --recheck), 1 different, 2 error.\n\
See docs/verify.md for the algorithm, normalization rules and limits."
)]
struct VerifyOptions {
    /// Source (legacy) database: postgres://, mysql://, mariadb:// or sqlite://PATH.
    #[arg(long, value_name = "URL")]
    source: String,
    /// Source table (`table` or `schema.table`).
    #[arg(long, value_name = "TABLE")]
    source_table: String,
    /// Target (new service) database URL.
    #[arg(long, value_name = "URL")]
    target: String,
    /// Target table; defaults to the source table's name.
    #[arg(long, value_name = "TABLE")]
    target_table: Option<String>,
    /// Key columns (source names), comma-separated: unique and NOT NULL on both sides.
    #[arg(long, value_name = "COLS", value_delimiter = ',', required = true)]
    key: Vec<String>,
    /// Columns to compare besides the key (source names); default: all in both tables.
    #[arg(long, value_name = "COLS", value_delimiter = ',')]
    columns: Vec<String>,
    /// Columns to leave out of the default set.
    #[arg(long, value_name = "COLS", value_delimiter = ',')]
    exclude: Vec<String>,
    /// A renamed column, SOURCE=TARGET (repeatable).
    #[arg(long = "map", value_name = "OLD=NEW", value_parser = parse_pair)]
    map: Vec<(String, String)>,
    /// SQL condition applied on both sides (e.g. "created_at < '2024-06-01'").
    #[arg(long = "where", value_name = "SQL")]
    where_clause: Option<String>,
    /// SQL condition for the target instead of --where (its column names may differ).
    #[arg(long, value_name = "SQL")]
    target_where: Option<String>,
    /// Absolute tolerance for a numeric column, COLUMN=TOLERANCE (repeatable).
    #[arg(long, value_name = "COL=TOL", value_parser = parse_tolerance)]
    tolerance: Vec<(String, f64)>,
    /// Check a target column against an SQL expression over the source columns, evaluated
    /// in the source database (its dialect, the verify user's permissions):
    /// TARGET=SQL (repeatable), e.g. full_name="first || ' ' || last".
    #[arg(long = "expr", value_name = "COL=SQL", value_parser = parse_expr)]
    expr: Vec<(String, String)>,
    /// A column that every write advances on both sides (an updated-at timestamp or an
    /// integer version), by its source name: the run reads its highest value, and with
    /// --changed-since compares only the rows written since.
    #[arg(long, value_name = "COL")]
    watermark: Option<String>,
    /// Compare only the rows whose --watermark is at or after this, on both sides (rows on
    /// one side only are looked up on the other): a time (2026-12-07T10:00:00Z), a duration
    /// before now (15m) or an integer. Deleted source rows are not seen: see docs/verify.md.
    #[arg(long, value_name = "WHEN", value_parser = parse_since, requires = "watermark")]
    changed_since: Option<WatermarkValue>,
    /// Subtracted from --changed-since against late commits and clock skew: a duration for
    /// a timestamp watermark (default 60s), a count for an integer one (default 0).
    #[arg(long, value_name = "D|N", value_parser = parse_overlap, requires = "watermark")]
    watermark_overlap: Option<Overlap>,
    /// Save progress to FILE after each finished segment, and resume from it when it
    /// exists (finished segments are not scanned again); removed once the run finishes.
    #[arg(long, value_name = "FILE")]
    resume: Option<std::path::PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Differences listed with their values (counts are always complete).
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_DIFFS)]
    max_diffs: usize,
    /// Connections (and concurrent statements) per database.
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_CONNECTIONS)]
    max_connections: u32,
    /// Source rows per top-level segment.
    #[arg(long, value_name = "N", default_value_t = defaults::SEGMENT_ROWS)]
    segment_rows: u64,
    /// Parts a differing segment is cut into.
    #[arg(long, value_name = "N", default_value_t = defaults::BISECTION_FACTOR)]
    bisection_factor: u32,
    /// Differing segments with at most this many rows per side are diffed row by row.
    #[arg(long, value_name = "N", default_value_t = defaults::DOWNLOAD_ROWS)]
    download_rows: u64,
    /// Per-statement timeout (server side and client side).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    statement_timeout: Duration,
    /// Connection timeout.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    connect_timeout: Duration,
    /// Pause after each source statement, to bound the load on the source.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pace: Option<Duration>,
    /// Look the differences up again after DURATION: resolved ones are lag, the rest divergence.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    recheck: Option<Duration>,
    /// Write SQL that would fix the target to FILE (`-` or no value: stdout). Never run.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    repair_sql: Option<String>,
    /// No progress bar on stderr.
    #[arg(long)]
    no_progress: bool,
}

impl VerifyOptions {
    fn job(&self) -> Job {
        let mut job = Job::new(
            Endpoint {
                url: self.source.clone(),
                table: self.source_table.clone(),
                where_clause: self.where_clause.clone(),
            },
            Endpoint {
                url: self.target.clone(),
                table: self
                    .target_table
                    .clone()
                    .unwrap_or_else(|| self.source_table.clone()),
                where_clause: self
                    .target_where
                    .clone()
                    .or_else(|| self.where_clause.clone()),
            },
            self.key.clone(),
        );
        job.columns = self.columns.clone();
        job.exclude = self.exclude.clone();
        job.map = self.map.clone();
        job.tolerance = self.tolerance.clone();
        job.expr = self.expr.clone();
        job.recheck = self.recheck;
        job.watermark = self.watermark.as_ref().map(|column| Watermark {
            column: column.clone(),
            since: self.changed_since,
            overlap: self.watermark_overlap,
        });
        job.limits = Limits {
            segment_rows: self.segment_rows,
            bisection_factor: self.bisection_factor,
            download_rows: self.download_rows,
            max_connections: self.max_connections,
            statement_timeout: self.statement_timeout,
            connect_timeout: self.connect_timeout,
            max_diffs: self.max_diffs,
            pace: self.pace.unwrap_or(defaults::PACE),
            lookup_batch: defaults::LOOKUP_BATCH,
        };
        job
    }
}

/// The progress bar: rows verified of rows expected, rows/s and ETA, on stderr (hidden when
/// stderr is not a terminal).
fn progress_bar(hidden: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        None,
        if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {human_pos}/{human_len} rows  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

fn on_progress(pb: &ProgressBar, p: &Progress, started: Instant) {
    if let Some(total) = p.rows_total {
        pb.set_length(total);
    }
    pb.set_position(p.rows_done);
    let phase = match p.phase {
        Phase::Connecting => "connecting",
        Phase::Planning => "reading the schemas",
        Phase::Scanning => "scanning",
        Phase::Confirming => "confirming",
        Phase::Rechecking => "re-checking",
        Phase::Done => "done",
    };
    let rate = p.rows_done as f64 / started.elapsed().as_secs_f64().max(1e-3);
    pb.set_message(format!(
        "{phase}, {} diffs, {rate:.0} rows/s",
        p.differences
    ));
}

/// A database value for the terminal: SQL-quoted, control characters escaped (see `safe`).
fn show(v: &Option<String>) -> String {
    match v {
        None => "NULL".into(),
        Some(s) => format!("'{}'", crate::safe::escape(&s.replace('\'', "''"))),
    }
}

/// A row's key for the terminal, values escaped like [`show`].
fn key_text(report: &Report, d: &Difference) -> String {
    report
        .key
        .iter()
        .map(|k| {
            let v = d.key.get(k).map(String::as_str).unwrap_or("?");
            format!("{k}={}", crate::safe::escape(v))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report for people.
fn print_text(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let s = &r.summary;
    writeln!(
        out,
        "source: {} {} ({} rows, {})",
        r.source.engine.name(),
        r.source.table,
        r.source.rows,
        r.source.server
    )?;
    writeln!(
        out,
        "target: {} {} ({} rows, {})",
        r.target.engine.name(),
        r.target.table,
        r.target.rows,
        r.target.server
    )?;
    writeln!(
        out,
        "compared {} columns by key ({}) in {} segments ({} differed), hash {}: {:.1} s, {:.0} rows/s",
        r.columns.len(),
        r.key.join(", "),
        s.segments,
        s.segments_differing,
        match r.row_hash {
            ficus_verify::RowHash::Md5 => "md5",
            ficus_verify::RowHash::PgHashExtended => "hashtextextended",
        },
        s.elapsed_ms as f64 / 1000.0,
        s.rows_per_second
    )?;
    for c in r.columns.iter().filter(|c| c.expr.is_some()) {
        writeln!(
            out,
            "expr: {} = {} (evaluated on the source)",
            c.target,
            c.expr.as_deref().unwrap_or_default()
        )?;
    }
    if let Some(w) = &r.watermark {
        let column = if w.column == w.target_column {
            w.column.clone()
        } else {
            format!("{} -> {}", w.column, w.target_column)
        };
        match (r.mode, &w.bound, &w.since) {
            (Mode::Incremental, Some(bound), Some(since)) => writeln!(
                out,
                "incremental: rows with {column} >= {bound} on either side (--changed-since \
                 {since} minus an overlap of {}); deleted source rows are not seen",
                w.overlap
            )?,
            _ => writeln!(out, "full: every row (watermark {column})")?,
        }
        if let Some(next) = &w.next {
            writeln!(
                out,
                "watermark: highest {column} when the scan started: {next} (the next \
                 incremental run: --changed-since {next})"
            )?;
        }
    }
    if let Some(res) = &r.resumed {
        writeln!(
            out,
            "resumed: {} segments ({} source rows) were verified before the interruption and \
             not scanned again",
            res.segments, res.rows
        )?;
    }
    for note in &r.skipped_columns {
        writeln!(out, "note: {note}")?;
    }
    if !r.differences.is_empty() {
        writeln!(out)?;
    }
    for d in &r.differences {
        let status = match d.status {
            Some(ficus_verify::RecheckStatus::Persisted) => " [persisted]",
            Some(ficus_verify::RecheckStatus::Resolved) => " [resolved]",
            None => "",
        };
        match d.kind {
            DiffKind::Missing => writeln!(out, "missing in target: {}{status}", key_text(r, d))?,
            DiffKind::Extra => writeln!(out, "extra in target:   {}{status}", key_text(r, d))?,
            DiffKind::Changed => {
                writeln!(out, "changed:           {}{status}", key_text(r, d))?;
                for c in &d.changes {
                    let name = if c.column == c.target_column {
                        c.column.clone()
                    } else {
                        format!("{} -> {}", c.column, c.target_column)
                    };
                    writeln!(
                        out,
                        "    {name}: source {} | target {}",
                        show(&c.source),
                        show(&c.target)
                    )?;
                }
            }
        }
    }
    if s.truncated {
        writeln!(
            out,
            "... {} more not listed (raise --max-diffs)",
            s.differences() - r.differences.len() as u64
        )?;
    }
    if let Some(rc) = &r.recheck {
        writeln!(
            out,
            "\nre-checked {} after {} ms: {} persisted (divergence), {} resolved (lag){}",
            rc.rechecked,
            rc.delay_ms,
            rc.persisted,
            rc.resolved,
            if rc.unchecked > 0 {
                format!(", {} not re-checked", rc.unchecked)
            } else {
                String::new()
            }
        )?;
    }
    writeln!(
        out,
        "\n{}: {} missing, {} extra, {} changed",
        match r.outcome {
            ficus_verify::Outcome::Equal => "EQUAL",
            ficus_verify::Outcome::Different => "DIFFERENT",
            ficus_verify::Outcome::Lagging => "LAGGING (all differences resolved)",
        },
        s.missing,
        s.extra,
        s.changed
    )
}

/// The checkpoint in `path`, None when there is no such file yet (a first run).
fn read_checkpoint(path: &std::path::Path) -> Result<Option<Checkpoint>, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("--resume {}: cannot read it: {e}", path.display())),
    };
    serde_json::from_slice(&text).map(Some).map_err(|e| {
        format!(
            "--resume {}: not a ficus verify checkpoint ({e}); give another file, or delete it to \
             start over",
            path.display()
        )
    })
}

/// Writes the checkpoint atomically: a temporary file beside `path`, flushed to disk, then
/// renamed over it, so that a process killed at any moment leaves the previous checkpoint
/// or the new one, never a torn file.
fn write_checkpoint(path: &std::path::Path, cp: &Checkpoint) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let text = serde_json::to_vec(cp).map_err(|e| e.to_string())?;
    let mut file =
        std::fs::File::create(&tmp).map_err(|e| fail("cannot create the file beside", e))?;
    file.write_all(&text)
        .and_then(|_| file.sync_all())
        .map_err(|e| fail("cannot write the checkpoint beside", e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| fail("cannot replace", e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself survives a crash once the folder is synced (best effort).
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn fail(json: bool, message: &str) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::json!({ "error": message, "exit_code": 2 })
        );
    }
    eprintln!("error: {message}");
    ExitCode::from(2)
}

pub fn main(args: VerifyArgs) -> ExitCode {
    let args = *args.options;
    let job = args.job();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(args.json, &format!("cannot start the runtime: {e}")),
    };
    let resume = match args.resume.as_deref().map(read_checkpoint).transpose() {
        Ok(r) => r.flatten(),
        Err(message) => return fail(args.json, &message),
    };
    if let (Some(cp), Some(path)) = (&resume, &args.resume) {
        eprintln!(
            "resuming from {}: {} segments were finished (they are not scanned again)",
            path.display(),
            cp.segments_done()
        );
    }
    let pb = progress_bar(args.no_progress);
    let bar = pb.clone();
    let started = Instant::now();
    let resume_path = args.resume.clone();
    let mut save = |cp: &Checkpoint| match &resume_path {
        Some(path) => write_checkpoint(path, cp),
        None => Ok(()),
    };
    let options = RunOptions {
        resume,
        restart_other_plan: false,
        on_checkpoint: if args.resume.is_some() {
            Some(&mut save)
        } else {
            None
        },
    };
    let result = runtime.block_on(ficus_verify::verify_with(&job, options, move |p| {
        on_progress(&bar, &p, started)
    }));
    pb.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let mut message = e.to_string();
            if let Some(path) = &args.resume {
                if path.exists() && !matches!(e, ficus_verify::VerifyError::BadCheckpoint(_)) {
                    message.push_str(&format!(
                        " (the finished segments are saved in {}: run the same command again to \
                         resume)",
                        path.display()
                    ));
                } else if matches!(e, ficus_verify::VerifyError::BadCheckpoint(_)) {
                    message = format!("--resume {}: {message}", path.display());
                }
            }
            return fail(args.json, &message);
        }
    };
    if let Some(path) = &args.resume {
        // The run is complete: nothing is left to resume.
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!(
                    "warning: cannot remove the checkpoint {}: {e}",
                    path.display()
                );
            }
        }
    }

    let repair = args
        .repair_sql
        .as_ref()
        .map(|_| ficus_verify::repair_sql(&report));
    let mut stdout = std::io::stdout().lock();
    let printed = if args.json {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        if let (Some("-"), Some(sql), Some(obj)) =
            (args.repair_sql.as_deref(), &repair, value.as_object_mut())
        {
            obj.insert("repair_sql".into(), sql.clone().into());
        }
        serde_json::to_writer_pretty(&mut stdout, &value)
            .map_err(std::io::Error::other)
            .and_then(|_| writeln!(stdout))
    } else {
        print_text(&mut stdout, &report).and_then(|_| match (args.repair_sql.as_deref(), &repair) {
            (Some("-"), Some(sql)) => write!(stdout, "\n{sql}"),
            _ => Ok(()),
        })
    };
    if let Err(e) = printed {
        return fail(false, &format!("cannot write the report: {e}"));
    }
    if let (Some(path), Some(sql)) = (args.repair_sql.as_deref(), &repair) {
        if path != "-" {
            if let Err(e) = std::fs::write(path, sql) {
                return fail(
                    args.json,
                    &format!("cannot write the repair SQL to {path}: {e}"),
                );
            }
            eprintln!("repair SQL written to {path} (review it; ficus does not run it)");
        }
    }
    ExitCode::from(report.exit_code())
}
