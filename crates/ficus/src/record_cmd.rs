//! `ficus record export|import`: recordings to HAR 1.2, and HAR or GoReplay `.gor` captures
//! into recordings that `ficus replay` reads.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ficus_record::{FileHeader, Reader, Writer, WriterOptions, FORMAT_VERSION};

#[derive(clap::Subcommand)]
pub enum RecordCmd {
    /// Start recording a route on every node, e.g. --sample 10 --for 1h --max-size 1GiB.
    Start {
        route: String,
        /// Percent of sticky keys recorded (default 100; a trailing % is fine).
        #[arg(long)]
        sample: Option<String>,
        /// How long (default: until stopped), e.g. 1h.
        #[arg(long = "for")]
        for_: Option<String>,
        /// The recording's size cap on each node, e.g. 1GiB.
        #[arg(long)]
        max_size: Option<String>,
        /// Why (recorded in the audit log).
        #[arg(short, long)]
        message: String,
        #[command(flatten)]
        target: crate::client::Target,
    },
    /// Stop recording a route on every node.
    Stop {
        route: String,
        #[arg(short, long)]
        message: String,
        #[command(flatten)]
        target: crate::client::Target,
    },
    /// This node's recordings: state, counts (recorded + sampled out + dropped by reason +
    /// in progress = requests), size, files.
    Status {
        #[command(flatten)]
        target: crate::client::Target,
    },
    /// Write a recording as HAR 1.2 (ficus's own fields prefixed with `_`).
    Export {
        /// The recording.
        file: PathBuf,
        /// HAR 1.2 (the one export format).
        #[arg(long)]
        har: bool,
        /// Where to write (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Turn a HAR file or a GoReplay .gor capture into a recording.
    Import {
        /// The HAR (.har, JSON) or GoReplay (.gor) file.
        file: PathBuf,
        /// The recording to create (it must not exist).
        #[arg(short, long)]
        output: PathBuf,
        /// `har` or `gor`; by default from the file's extension.
        #[arg(long)]
        format: Option<String>,
        /// The route the exchanges are attributed to (HAR entries that name one keep it).
        #[arg(long, default_value = "imported")]
        route: String,
    },
}

pub fn main(cmd: RecordCmd) -> ExitCode {
    let result = match cmd {
        RecordCmd::Start {
            route,
            sample,
            for_,
            max_size,
            message,
            target,
        } => {
            let sample = match sample
                .as_deref()
                .map(|s| s.trim().trim_end_matches('%').trim().parse::<f64>())
            {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(_)) => {
                    eprintln!("ficus record start: --sample is a percentage, e.g. 10 or 10%");
                    return ExitCode::from(2);
                }
            };
            return crate::client::record_start(target, &route, sample, for_, max_size, message);
        }
        RecordCmd::Stop {
            route,
            message,
            target,
        } => return crate::client::record_stop(target, &route, message),
        RecordCmd::Status { target } => return crate::client::record_status(target),
        RecordCmd::Export { file, har, output } => export(&file, har, output.as_deref()),
        RecordCmd::Import {
            file,
            output,
            format,
            route,
        } => import(&file, &output, format.as_deref(), &route),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ficus record: {e}");
            ExitCode::from(1)
        }
    }
}

fn export(file: &Path, har: bool, output: Option<&Path>) -> Result<(), String> {
    if !har {
        return Err("say which format: --har (HAR 1.2)".into());
    }
    let mut reader = Reader::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let exchanges: Vec<_> = reader.by_ref().collect();
    if let Some(t) = reader.torn() {
        eprintln!(
            "ficus record: {} is torn at byte {} ({}); exporting the {} records before it",
            file.display(),
            t.offset,
            t.why,
            exchanges.len()
        );
    }
    let doc = ficus_record::har::export(&exchanges, env!("CARGO_PKG_VERSION"));
    let text = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
    match output {
        Some(p) => std::fs::write(p, &text).map_err(|e| format!("{}: {e}", p.display()))?,
        None => std::io::stdout()
            .write_all(&text)
            .map_err(|e| e.to_string())?,
    }
    Ok(())
}

fn import(file: &Path, output: &Path, format: Option<&str>, route: &str) -> Result<(), String> {
    let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let format = match format {
        Some(f) => f.to_string(),
        None => match file.extension().and_then(|e| e.to_str()) {
            Some("har") | Some("json") => "har".to_string(),
            Some("gor") => "gor".to_string(),
            _ => {
                return Err(format!(
                    "{}: say which format with --format har or --format gor",
                    file.display()
                ))
            }
        },
    };
    let (exchanges, source, note) = match format.as_str() {
        "har" => {
            let doc: serde_json::Value = serde_json::from_slice(&data)
                .map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
            let ex = ficus_record::har::import(&doc, route)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            (ex, "har", String::new())
        }
        "gor" => {
            let (ex, s) = ficus_record::gor::import(&data, route);
            (
                ex,
                "goreplay",
                format!(
                    " ({} requests, {} original responses, {} without one, {} malformed payloads skipped)",
                    s.requests, s.responses, s.unanswered, s.malformed
                ),
            )
        }
        other => return Err(format!("--format {other:?}: har or gor")),
    };
    let header = FileHeader {
        format: FORMAT_VERSION,
        ficus: env!("CARGO_PKG_VERSION").to_string(),
        // Not redacted by ficus: the capture is what it is.
        policy: "none".to_string(),
        route: Some(route.to_string()),
        node: None,
        created_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        source: source.to_string(),
    };
    let mut w = Writer::create(output, &header, WriterOptions::default())
        .map_err(|e| format!("{}: {e}", output.display()))?;
    for ex in &exchanges {
        w.append(ex)
            .map_err(|e| format!("{}: {e}", output.display()))?;
    }
    w.finish()
        .map_err(|e| format!("{}: {e}", output.display()))?;
    println!(
        "{} exchanges from {} into {}{note}",
        exchanges.len(),
        file.display(),
        output.display()
    );
    Ok(())
}
