//! The scan: cut the key space into segments of equal source row counts (keyset nibbling),
//! checksum each segment on both sides concurrently, bisect the ones that differ, diff the
//! small ones row by row, then confirm unmatched keys and re-check differences by lookup.
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::canon::{self, encode_field, Checksum, Purpose};
use crate::checkpoint::{CollectorState, ScanTotals, SegmentState};
use crate::db::{Cell, Db, Engine};
use crate::diff::{diff_rows, to_difference, RawDiff, Row};
use crate::error::{Side, VerifyError};
use crate::job::Limits;
use crate::plan::{ColumnPlan, Plan};
use crate::report::{DiffKind, Difference, Phase, Progress, RecheckReport, RecheckStatus};
use crate::sql::{KeyVal, Range, SideSql, Stmt};

/// Both sides with their statements: every database access of a run goes through here.
pub struct Sides<'a> {
    pub plan: &'a Plan,
    pub src: &'a Db,
    pub tgt: &'a Db,
    pub src_sql: SideSql,
    pub tgt_sql: SideSql,
    pub limits: &'a Limits,
}

fn to_key(side: Side, row: Row) -> Result<KeyVal, VerifyError> {
    row.into_iter()
        .map(|v| {
            v.ok_or_else(|| VerifyError::Data {
                side,
                message: "a key column holds NULL; --key must name NOT NULL unique columns".into(),
            })
        })
        .collect()
}

impl Sides<'_> {
    fn db(&self, side: Side) -> &Db {
        match side {
            Side::Source => self.src,
            Side::Target => self.tgt,
        }
    }

    fn sql(&self, side: Side) -> &SideSql {
        match side {
            Side::Source => &self.src_sql,
            Side::Target => &self.tgt_sql,
        }
    }

    /// Optional pacing: a pause after each source statement bounds the load on the source.
    async fn pace(&self, side: Side) {
        if side == Side::Source && !self.limits.pace.is_zero() {
            tokio::time::sleep(self.limits.pace).await;
        }
    }

    fn sqlite_canon(
        &self,
        side: Side,
        cell: &Cell,
        c: &ColumnPlan,
        purpose: Purpose,
    ) -> Result<Option<String>, VerifyError> {
        canon::sqlite_canon(cell, c, &c.column(side).family, purpose).map_err(|m| {
            let what = match (&c.expr, side) {
                (Some(e), Side::Source) => {
                    format!("the --expr of `{}` (`{e}`)", c.column(side).name)
                }
                _ => format!("column `{}`", c.column(side).name),
            };
            VerifyError::Data {
                side,
                message: format!("{what}: {m}"),
            }
        })
    }

    /// The checksum of a range on one side.
    pub async fn checksum(&self, side: Side, range: &Range) -> Result<Checksum, VerifyError> {
        let db = self.db(side);
        let sum = match self.sql(side).checksum(range) {
            Some(stmt) => {
                let rows = db
                    .text_rows(&stmt.sql, &stmt.params, "computing a segment checksum")
                    .await?;
                let cell = |i: usize| {
                    rows.first()
                        .and_then(|r| r.get(i).cloned().flatten())
                        .unwrap_or_default()
                };
                Checksum::from_sql(&cell(0), &cell(1), &cell(2)).ok_or_else(|| {
                    VerifyError::Data {
                        side,
                        message: format!("unexpected checksum result {rows:?}"),
                    }
                })?
            }
            None => {
                let stmt = self.sql(side).rows(range, Purpose::Hash);
                let cells = db
                    .cells(&stmt.sql, &stmt.params, "reading a segment to checksum")
                    .await?;
                let mut sum = Checksum::default();
                let mut buf = Vec::new();
                for row in &cells {
                    buf.clear();
                    for (i, c) in self.plan.all().enumerate() {
                        let v = self.sqlite_canon(side, &row[i], c, Purpose::Hash)?;
                        encode_field(&mut buf, c.kind, v.as_deref());
                    }
                    sum.add_md5(&buf);
                }
                sum
            }
        };
        self.pace(side).await;
        Ok(sum)
    }

    /// The checksums of the parts of `range` cut at `bounds`, one per part: in one grouped
    /// statement where the engine computes checksums (SQLite: part by part).
    pub async fn checksum_parts(
        &self,
        side: Side,
        range: &Range,
        bounds: &[KeyVal],
    ) -> Result<Vec<Checksum>, VerifyError> {
        let Some(stmt) = self.sql(side).checksum_parts(range, bounds) else {
            let mut out = Vec::with_capacity(bounds.len() + 1);
            for part in parts(range, bounds) {
                out.push(self.checksum(side, &part).await?);
            }
            return Ok(out);
        };
        let rows = self
            .db(side)
            .text_rows(
                &stmt.sql,
                &stmt.params,
                "computing checksums of a segment's parts",
            )
            .await?;
        let mut out = vec![Checksum::default(); bounds.len() + 1];
        for row in &rows {
            let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let part = cell(0)
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|p| *p < out.len());
            match (part, Checksum::from_sql(&cell(1), &cell(2), &cell(3))) {
                (Some(p), Some(sum)) => out[p] = sum,
                _ => {
                    return Err(VerifyError::Data {
                        side,
                        message: format!("unexpected checksum result {row:?}"),
                    })
                }
            }
        }
        self.pace(side).await;
        Ok(out)
    }

    /// Runs a statement returning value-form rows over `cols`.
    async fn value_rows(
        &self,
        side: Side,
        stmt: Stmt,
        cols: &[&ColumnPlan],
        context: &str,
    ) -> Result<Vec<Row>, VerifyError> {
        let db = self.db(side);
        let rows = if db.engine == Engine::Sqlite {
            db.cells(&stmt.sql, &stmt.params, context)
                .await?
                .iter()
                .map(|r| {
                    r.iter()
                        .zip(cols)
                        .map(|(cell, c)| self.sqlite_canon(side, cell, c, Purpose::Value))
                        .collect::<Result<Row, _>>()
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            db.text_rows(&stmt.sql, &stmt.params, context).await?
        };
        self.pace(side).await;
        Ok(rows)
    }

    /// The end of the segment that starts at `lo` (None: the rest is the last segment).
    async fn nibble(&self, lo: Option<&KeyVal>) -> Result<Option<KeyVal>, VerifyError> {
        let stmt = self.src_sql.nibble(lo, self.limits.segment_rows);
        let keys: Vec<&ColumnPlan> = self.plan.key.iter().collect();
        let rows = self
            .value_rows(
                Side::Source,
                stmt,
                &keys,
                "cutting the key space into segments",
            )
            .await?;
        rows.into_iter()
            .next()
            .map(|r| to_key(Side::Source, r))
            .transpose()
    }

    /// Keys that cut `range` into parts of `every` rows on `side`.
    async fn split(
        &self,
        side: Side,
        range: &Range,
        every: u64,
    ) -> Result<Vec<KeyVal>, VerifyError> {
        let ctx = "bisecting a differing segment";
        let n = self.plan.key.len();
        let parts = self.limits.bisection_factor.max(2) as usize;
        if let Some(stmt) = self.sql(side).split_walk(range, every, parts - 1) {
            let row = self
                .db(side)
                .text_rows(&stmt.sql, &stmt.params, ctx)
                .await?
                .into_iter()
                .next()
                .unwrap_or_default();
            self.pace(side).await;
            // Keys until the first missing one (the range ended).
            return Ok(row
                .chunks(n)
                .map_while(|k| k.iter().cloned().collect::<Option<KeyVal>>())
                .collect());
        }
        let stmt = self.sql(side).split(range, every);
        let keys: Vec<&ColumnPlan> = self.plan.key.iter().collect();
        self.value_rows(side, stmt, &keys, ctx)
            .await?
            .into_iter()
            .map(|r| to_key(side, r))
            .collect()
    }

    /// Both sides' rows of a range.
    async fn download(&self, range: &Range) -> Result<(Vec<Row>, Vec<Row>), VerifyError> {
        let cols: Vec<&ColumnPlan> = self.plan.all().collect();
        let ctx = "downloading a differing segment";
        tokio::try_join!(
            self.value_rows(
                Side::Source,
                self.src_sql.rows(range, Purpose::Value),
                &cols,
                ctx
            ),
            self.value_rows(
                Side::Target,
                self.tgt_sql.rows(range, Purpose::Value),
                &cols,
                ctx
            ),
        )
    }

    /// Looks `keys` up on both sides (in batches) and diffs what comes back. Returns the
    /// differences and the number of rows read.
    pub async fn lookup(&self, keys: &[KeyVal]) -> Result<(Vec<RawDiff>, u64), VerifyError> {
        let cols: Vec<&ColumnPlan> = self.plan.all().collect();
        let n = self.plan.key.len();
        let mut out = Vec::new();
        let mut read = 0;
        let ctx = "looking rows up by key";
        for batch in keys.chunks(self.limits.lookup_batch) {
            let wanted: HashSet<&KeyVal> = batch.iter().collect();
            // A case-insensitive collation may return a row whose key only compares equal;
            // only the exact keys asked for count.
            let keep = |rows: Vec<Row>| -> Vec<Row> {
                rows.into_iter()
                    .filter(|r| {
                        let k: Option<KeyVal> = r[..n].iter().cloned().collect();
                        k.is_some_and(|k| wanted.contains(&k))
                    })
                    .collect()
            };
            let (s, t) = tokio::try_join!(
                self.value_rows(Side::Source, self.src_sql.lookup(batch), &cols, ctx),
                self.value_rows(Side::Target, self.tgt_sql.lookup(batch), &cols, ctx),
            )?;
            read += (s.len() + t.len()) as u64;
            out.extend(diff_rows(self.plan, keep(s), keep(t))?);
        }
        Ok((out, read))
    }
}

/// Bisection depth after which a differing segment is downloaded whatever its size.
const MAX_DEPTH: u32 = 16;

/// `range` cut at `bounds` (ascending keys inside it).
fn parts(range: &Range, bounds: &[KeyVal]) -> Vec<Range> {
    let mut out = Vec::with_capacity(bounds.len() + 1);
    let mut lo = range.lo.clone();
    for b in bounds {
        out.push(Range {
            lo: lo.take(),
            hi: Some(b.clone()),
        });
        lo = Some(b.clone());
    }
    out.push(Range {
        lo,
        hi: range.hi.clone(),
    });
    out
}

/// What to do with a range whose checksums differ: download it when it is small (or
/// bisection went deep: live writes can keep a range moving), else cut it into parts on
/// the side with more rows.
fn differing(
    limits: &Limits,
    range: Range,
    src: &Checksum,
    tgt: &Checksum,
    depth: u32,
    seg: usize,
) -> Work {
    let (side, count) = if src.count >= tgt.count {
        (Side::Source, src.count)
    } else {
        (Side::Target, tgt.count)
    };
    if count <= limits.download_rows || depth >= MAX_DEPTH {
        Work::Download { range, seg }
    } else {
        let every = count.div_ceil(limits.bisection_factor as u64).max(1);
        Work::Split {
            range,
            side,
            every,
            depth,
            seg,
        }
    }
}

/// One unit of work; each holds at most one connection per database. `seg` is the
/// top-level segment the work belongs to.
enum Work {
    Nibble(Option<KeyVal>),
    Compare {
        range: Range,
        depth: u32,
        seg: usize,
    },
    /// The parts of a differing range, compared in one statement per side.
    CompareParts {
        range: Range,
        bounds: Vec<KeyVal>,
        depth: u32,
        seg: usize,
    },
    Split {
        range: Range,
        side: Side,
        every: u64,
        depth: u32,
        seg: usize,
    },
    Download {
        range: Range,
        seg: usize,
    },
}

enum Done {
    Nibbled {
        lo: Option<KeyVal>,
        next: Option<KeyVal>,
    },
    Compared {
        range: Range,
        depth: u32,
        seg: usize,
        src: Checksum,
        tgt: Checksum,
    },
    ComparedParts {
        range: Range,
        bounds: Vec<KeyVal>,
        depth: u32,
        seg: usize,
        src: Vec<Checksum>,
        tgt: Vec<Checksum>,
    },
    Split {
        range: Range,
        bounds: Vec<KeyVal>,
        depth: u32,
        seg: usize,
    },
    Downloaded {
        diffs: Vec<RawDiff>,
        rows: u64,
        seg: usize,
    },
}

type Task<'a> = Pin<Box<dyn Future<Output = Result<Done, VerifyError>> + Send + 'a>>;

/// Differences found so far: exact counts, the first `max` in detail.
pub struct Collector {
    max: usize,
    pub missing: u64,
    pub extra: u64,
    pub changed: u64,
    pub details: Vec<Difference>,
    pub truncated: bool,
    /// Confirmation mode (key orders may differ between engines, or an incremental run
    /// sees only the rows in its window): missing/extra keys wait here for a lookup on
    /// both sides.
    confirm: bool,
    pending: Vec<KeyVal>,
    seen: HashSet<KeyVal>,
}

impl Collector {
    pub fn new(max: usize, confirm: bool) -> Collector {
        Collector {
            max,
            missing: 0,
            extra: 0,
            changed: 0,
            details: Vec::new(),
            truncated: false,
            confirm,
            pending: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// A collector holding what a checkpoint's finished segments found.
    pub fn restore(max: usize, confirm: bool, state: &CollectorState) -> Collector {
        let mut c = Collector::new(max, confirm);
        c.missing = state.missing;
        c.extra = state.extra;
        c.changed = state.changed;
        c.truncated = state.truncated;
        c.details = state
            .details
            .iter()
            .map(|(key, d)| {
                let mut d = d.clone();
                d.key_values = key.clone();
                d
            })
            .collect();
        c.pending = state.pending.clone();
        c.seen = state.seen.iter().cloned().collect();
        c
    }

    /// What a checkpoint keeps of this collector.
    pub fn state(&self) -> CollectorState {
        let mut seen: Vec<KeyVal> = self.seen.iter().cloned().collect();
        seen.sort();
        CollectorState {
            missing: self.missing,
            extra: self.extra,
            changed: self.changed,
            details: self
                .details
                .iter()
                .map(|d| (d.key_values.clone(), d.clone()))
                .collect(),
            truncated: self.truncated,
            pending: self.pending.clone(),
            seen,
        }
    }

    pub fn total(&self) -> u64 {
        self.missing + self.extra + self.changed
    }

    fn add(&mut self, plan: &Plan, raw: RawDiff, confirmed: bool) {
        if self.confirm {
            if !confirmed && raw.kind != DiffKind::Changed {
                self.pending.push(raw.key);
                return;
            }
            if !self.seen.insert(raw.key.clone()) {
                return;
            }
        }
        match raw.kind {
            DiffKind::Missing => self.missing += 1,
            DiffKind::Extra => self.extra += 1,
            DiffKind::Changed => self.changed += 1,
        }
        if self.details.len() < self.max {
            self.details.push(to_difference(plan, &raw));
        } else {
            self.truncated = true;
        }
    }

    /// The pending keys not already settled, deduplicated.
    fn take_pending(&mut self) -> Vec<KeyVal> {
        let mut uniq = HashSet::new();
        std::mem::take(&mut self.pending)
            .into_iter()
            .filter(|k| !self.seen.contains(k) && uniq.insert(k.clone()))
            .collect()
    }
}

/// What the scan measured.
#[derive(Default)]
pub struct ScanStats {
    pub src_rows: u64,
    pub tgt_rows: u64,
    pub segments: u64,
    pub segments_differing: u64,
    pub checksums: u64,
    pub rows_downloaded: u64,
    pub rows_looked_up: u64,
}

impl ScanStats {
    /// Stats that start from a checkpoint's finished segments.
    pub fn from_totals(t: &ScanTotals) -> ScanStats {
        ScanStats {
            src_rows: t.src_rows,
            tgt_rows: t.tgt_rows,
            segments: t.segments,
            segments_differing: t.segments_differing,
            checksums: t.checksums,
            rows_downloaded: t.rows_downloaded,
            rows_looked_up: 0,
        }
    }
}

/// Progress bookkeeping shared by the phases.
pub struct Tracker<'p> {
    pub progress: &'p mut (dyn FnMut(Progress) + Send),
    pub rows_total: Option<u64>,
    pub segments_total: Option<u64>,
}

impl Tracker<'_> {
    pub fn emit(&mut self, phase: Phase, stats: &ScanStats, diffs: u64) {
        let rows_total = self.rows_total.map(|t| t.max(stats.src_rows));
        (self.progress)(Progress {
            phase,
            rows_done: stats.src_rows,
            rows_total,
            segments_done: stats.segments,
            segments_total: self.segments_total,
            differences: diffs,
        });
    }
}

/// Where a scan starts: nothing yet, or a checkpoint's segments (finished ones are not
/// scanned again; cut but unfinished ones are compared again; nibbling goes on from the
/// last cut).
#[derive(Default)]
pub struct ScanStart {
    pub segments: Vec<SegmentState>,
    /// The counts of the finished segments.
    pub totals: ScanTotals,
}

/// Called after each finished top-level segment with every segment cut so far, the counts
/// of the finished ones, and the differences they found: what a resumed run needs.
pub type OnSegment<'c> =
    dyn FnMut(&[SegmentState], &ScanTotals, &Collector) -> Result<(), VerifyError> + Send + 'c;

/// A top-level segment while the scan runs.
#[derive(Default)]
struct Live {
    /// Units of its work queued or running.
    outstanding: u32,
    totals: ScanTotals,
    /// Its differences, handed to the collector when the segment is finished (so that a
    /// checkpoint holds exactly the finished segments' differences).
    diffs: Vec<RawDiff>,
}

impl<'a> Sides<'a> {
    fn run(&'a self, work: Work) -> Task<'a> {
        match work {
            Work::Nibble(lo) => Box::pin(async move {
                let next = self.nibble(lo.as_ref()).await?;
                Ok(Done::Nibbled { lo, next })
            }),
            Work::Compare { range, depth, seg } => Box::pin(async move {
                let (src, tgt) = tokio::try_join!(
                    self.checksum(Side::Source, &range),
                    self.checksum(Side::Target, &range)
                )?;
                Ok(Done::Compared {
                    range,
                    depth,
                    seg,
                    src,
                    tgt,
                })
            }),
            Work::CompareParts {
                range,
                bounds,
                depth,
                seg,
            } => Box::pin(async move {
                let (src, tgt) = tokio::try_join!(
                    self.checksum_parts(Side::Source, &range, &bounds),
                    self.checksum_parts(Side::Target, &range, &bounds)
                )?;
                Ok(Done::ComparedParts {
                    range,
                    bounds,
                    depth,
                    seg,
                    src,
                    tgt,
                })
            }),
            Work::Split {
                range,
                side,
                every,
                depth,
                seg,
            } => Box::pin(async move {
                let bounds = self.split(side, &range, every).await?;
                Ok(Done::Split {
                    range,
                    bounds,
                    depth,
                    seg,
                })
            }),
            Work::Download { range, seg } => Box::pin(async move {
                let (s, t) = self.download(&range).await?;
                let rows = (s.len() + t.len()) as u64;
                let diffs = diff_rows(self.plan, s, t)?;
                Ok(Done::Downloaded { diffs, rows, seg })
            }),
        }
    }

    /// The whole scan. Work runs concurrently up to `max_connections` items, so neither
    /// database ever sees more statements at once than that. `start` resumes a checkpoint's
    /// scan; `on_segment` is told of every finished top-level segment.
    pub async fn scan(
        &'a self,
        collector: &mut Collector,
        stats: &mut ScanStats,
        tracker: &mut Tracker<'_>,
        start: ScanStart,
        on_segment: &mut OnSegment<'_>,
    ) -> Result<(), VerifyError> {
        let limits = self.limits;
        let mut segments = start.segments;
        let mut done_totals = start.totals;
        let mut live: Vec<Live> = segments.iter().map(|_| Live::default()).collect();
        let mut queue: VecDeque<Work> = VecDeque::new();
        match segments.last() {
            None => queue.push_back(Work::Nibble(None)),
            Some(last) => {
                if let Some(hi) = &last.hi {
                    queue.push_back(Work::Nibble(Some(hi.clone())));
                } else {
                    tracker.segments_total = Some(segments.len() as u64);
                }
            }
        }
        for (i, s) in segments.iter().enumerate().filter(|(_, s)| !s.done) {
            live[i].outstanding = 1;
            queue.push_back(Work::Compare {
                range: Range {
                    lo: s.lo.clone(),
                    hi: s.hi.clone(),
                },
                depth: 0,
                seg: i,
            });
        }
        let mut running: FuturesUnordered<Task<'a>> = FuturesUnordered::new();
        let mut cut = segments.len() as u64;
        loop {
            while running.len() < limits.max_connections as usize {
                let Some(work) = queue.pop_front() else { break };
                running.push(self.run(work));
            }
            let Some(done) = running.next().await else {
                break;
            };
            let seg = match done? {
                Done::Nibbled { lo, next } => {
                    cut += 1;
                    let last = next.is_none();
                    let range = Range {
                        lo: lo.clone(),
                        hi: next.clone(),
                    };
                    segments.push(SegmentState {
                        lo,
                        hi: next.clone(),
                        done: false,
                    });
                    live.push(Live {
                        outstanding: 1,
                        ..Live::default()
                    });
                    let seg = segments.len() - 1;
                    // Keep nibbling ahead of the checksums: it is the pipeline's source.
                    if let Some(next) = next {
                        queue.push_front(Work::Nibble(Some(next)));
                    } else {
                        tracker.segments_total = Some(cut);
                        tracker.rows_total =
                            Some((cut - 1) * limits.segment_rows + limits.segment_rows / 2);
                    }
                    let compare = Work::Compare {
                        range,
                        depth: 0,
                        seg,
                    };
                    if last {
                        queue.push_back(compare);
                    } else {
                        queue.insert(1.min(queue.len()), compare);
                    }
                    None
                }
                Done::Compared {
                    range,
                    depth,
                    seg,
                    src,
                    tgt,
                } => {
                    let top = depth == 0;
                    let l = &mut live[seg];
                    l.outstanding -= 1;
                    stats.checksums += 1;
                    l.totals.checksums += 1;
                    if top {
                        stats.segments += 1;
                        stats.src_rows += src.count;
                        stats.tgt_rows += tgt.count;
                        l.totals.segments += 1;
                        l.totals.src_rows += src.count;
                        l.totals.tgt_rows += tgt.count;
                        if tracker.segments_total == Some(stats.segments) {
                            tracker.rows_total = Some(stats.src_rows);
                        }
                    }
                    if src != tgt {
                        if top {
                            stats.segments_differing += 1;
                            l.totals.segments_differing += 1;
                        }
                        l.outstanding += 1;
                        queue.push_back(differing(limits, range, &src, &tgt, depth, seg));
                    }
                    Some(seg)
                }
                Done::ComparedParts {
                    range,
                    bounds,
                    depth,
                    seg,
                    src,
                    tgt,
                } => {
                    let l = &mut live[seg];
                    l.outstanding -= 1;
                    stats.checksums += 1;
                    l.totals.checksums += 1;
                    for ((part, s), t) in parts(&range, &bounds).into_iter().zip(&src).zip(&tgt) {
                        if s != t {
                            l.outstanding += 1;
                            queue.push_back(differing(limits, part, s, t, depth, seg));
                        }
                    }
                    Some(seg)
                }
                Done::Split {
                    range,
                    bounds,
                    depth,
                    seg,
                } => {
                    let l = &mut live[seg];
                    l.outstanding -= 1;
                    if bounds.is_empty() {
                        // The rows moved under us (live writes): compare what is there now.
                        l.outstanding += 1;
                        queue.push_back(Work::Download { range, seg });
                    } else {
                        l.outstanding += 1;
                        queue.push_back(Work::CompareParts {
                            range,
                            bounds,
                            depth: depth + 1,
                            seg,
                        });
                    }
                    Some(seg)
                }
                Done::Downloaded { diffs, rows, seg } => {
                    let l = &mut live[seg];
                    l.outstanding -= 1;
                    stats.rows_downloaded += rows;
                    l.totals.rows_downloaded += rows;
                    l.diffs.extend(diffs);
                    Some(seg)
                }
            };
            if let Some(seg) = seg {
                if live[seg].outstanding == 0 && !segments[seg].done {
                    let l = std::mem::take(&mut live[seg]);
                    segments[seg].done = true;
                    done_totals.add(&l.totals);
                    for d in l.diffs {
                        collector.add(self.plan, d, false);
                    }
                    on_segment(&segments, &done_totals, collector)?;
                }
            }
            tracker.emit(Phase::Scanning, stats, collector.total());
        }
        Ok(())
    }

    /// Settles missing/extra candidates by looking their keys up on both sides (only in
    /// confirmation mode: keys whose order may differ between the engines).
    pub async fn confirm(
        &self,
        collector: &mut Collector,
        stats: &mut ScanStats,
    ) -> Result<(), VerifyError> {
        let keys = collector.take_pending();
        if keys.is_empty() {
            return Ok(());
        }
        let (diffs, read) = self.lookup(&keys).await?;
        stats.rows_looked_up += read;
        for d in diffs {
            collector.add(self.plan, d, true);
        }
        Ok(())
    }

    /// Waits `delay`, then looks every detailed difference up again: still different is
    /// divergence (persisted), now equal is lag (resolved).
    pub async fn recheck(
        &self,
        details: &mut [Difference],
        total: u64,
        delay: std::time::Duration,
        stats: &mut ScanStats,
    ) -> Result<RecheckReport, VerifyError> {
        tokio::time::sleep(delay).await;
        let keys: Vec<KeyVal> = details.iter().map(|d| d.key_values.clone()).collect();
        let (diffs, read) = self.lookup(&keys).await?;
        stats.rows_looked_up += read;
        let now: HashMap<KeyVal, RawDiff> = diffs.into_iter().map(|d| (d.key.clone(), d)).collect();
        let (mut persisted, mut resolved) = (0, 0);
        for d in details.iter_mut() {
            match now.get(&d.key_values) {
                Some(raw) => {
                    *d = to_difference(self.plan, raw);
                    d.status = Some(RecheckStatus::Persisted);
                    persisted += 1;
                }
                None => {
                    d.status = Some(RecheckStatus::Resolved);
                    resolved += 1;
                }
            }
        }
        Ok(RecheckReport {
            delay_ms: delay.as_millis() as u64,
            rechecked: details.len() as u64,
            persisted,
            resolved,
            unchecked: total - details.len() as u64,
        })
    }
}
