//! The statements verify runs, per engine: canonical column expressions, the in-database
//! row hash (the text encoding, or typed per-column hashes between two PostgreSQL servers)
//! and order-independent checksum, of a range or of its parts at once, key-range
//! predicates, nibbling, splitting and lookups. Everything here is a pure function of the
//! plan, tested without a database.
use crate::canon::Purpose;
use crate::db::{Engine, Param, ServerInfo};
use crate::error::Side;
use crate::plan::{ColumnPlan, Kind, Plan};
use crate::schema::{Column, Family, UuidRepr};

/// The per-row hash summed into a segment checksum, as reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowHash {
    /// md5 of the encoding, both 64-bit halves summed: identical in every engine (and in
    /// Rust for SQLite), so it works across engines.
    Md5,
    /// PostgreSQL's own extended hash functions, usable when both sides are PostgreSQL:
    /// typed per-column hashes chained into one 64-bit row hash (PostgreSQL 14+, both
    /// databases in UTF-8), else `hashtextextended` of the text encoding with seeds 0 and 1.
    PgHashExtended,
}

/// How rows are hashed inside the databases. Both sides of a run always use the same, so
/// equal rows hash alike; chosen by [`Hashing::choose`] from both servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    /// md5 of the canonical text encoding: every engine, and Rust for SQLite.
    Md5,
    /// `hashtextextended` of the canonical text encoding, seeds 0 and 1 (PostgreSQL 11-13 on
    /// either side, or a database not in UTF-8).
    PgText,
    /// Typed per-column hashes, chained: each column's value is hashed by its type's own
    /// 64-bit hash function seeded with the hash of the columns before it, so no text is
    /// built per row (PostgreSQL 14+ and UTF-8 on both sides). See `pg_typed_chains`.
    PgTyped,
}

impl Hashing {
    /// The cheapest hashing both servers compute identically.
    pub fn choose(src: (Engine, &ServerInfo), tgt: (Engine, &ServerInfo)) -> Hashing {
        let pg =
            |(e, i): (Engine, &ServerInfo), v: u32| e == Engine::Postgres && i.pg_version_num >= v;
        if pg(src, 140_000) && pg(tgt, 140_000) && src.1.utf8 && tgt.1.utf8 {
            // bit_xor (14+); text hashes equal only when both store the same bytes.
            Hashing::PgTyped
        } else if pg(src, 110_000) && pg(tgt, 110_000) {
            Hashing::PgText
        } else {
            Hashing::Md5
        }
    }

    /// How the report names it.
    pub fn reported(self) -> RowHash {
        match self {
            Hashing::Md5 => RowHash::Md5,
            Hashing::PgText | Hashing::PgTyped => RowHash::PgHashExtended,
        }
    }
}

/// A key value in canonical text form, one entry per key column.
pub type KeyVal = Vec<String>;

/// A half-open key range `[lo, hi)`; a missing bound is unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Range {
    pub lo: Option<KeyVal>,
    pub hi: Option<KeyVal>,
}

/// A statement and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub sql: String,
    pub params: Vec<Param>,
}

/// How a canonical key value is bound back into a comparison with the native column.
#[derive(Debug, Clone, PartialEq)]
enum KeyBind {
    /// PostgreSQL: cast the text parameter to the column's base type.
    PgCast(String),
    /// PostgreSQL bytea holding a UUID.
    PgUuidBytes,
    /// MySQL: `CAST(? AS type)`.
    MyCast(&'static str),
    /// MySQL `BINARY(16)` holding a UUID.
    MyUuidBinary,
    /// Compared as bound.
    Plain,
    /// SQLite integer key: bound as an integer so that SQLite compares numbers.
    SqliteInt,
}

/// All statements for one side of one plan.
#[derive(Debug, Clone)]
pub struct SideSql {
    pub engine: Engine,
    table: String,
    filter: Option<String>,
    /// An incremental run's `watermark >= bound`: ANDed to the scan's statements (nibbling,
    /// checksums, splits, downloads) but not to key lookups, which must find a row whatever
    /// its watermark.
    window: Option<String>,
    key_idents: Vec<String>,
    /// What keys are ordered and compared by in ranges: the column, or a binary-collated
    /// expression where the column's own order is not the byte order of its canonical text.
    key_sort: Vec<String>,
    key_binds: Vec<KeyBind>,
    key_values: Vec<String>,
    hash_list: Vec<String>,
    value_list: Vec<String>,
    hashing: Hashing,
    /// `Hashing::PgTyped`: the row hash expression(s), one chain per group of columns
    /// (more than one when the table is wide: see `pg_typed_chains`).
    typed_chains: Vec<String>,
    info: ServerInfo,
    encoding: String,
    /// MySQL target only: materialize a segment's per-row hashes (a derived table with
    /// LIMIT) so that the row encoding and md5 are computed once, not once per half. Never
    /// on the source, which gets no temporary table of any kind.
    materialize: bool,
}

/// Quotes an identifier for `engine`.
pub fn quote_ident(engine: Engine, name: &str) -> String {
    match engine {
        Engine::MySql => format!("`{}`", name.replace('`', "``")),
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

/// Quotes `schema.table` (or `table`).
pub fn quote_table(engine: Engine, table: &str) -> String {
    table
        .splitn(2, '.')
        .map(|p| quote_ident(engine, p))
        .collect::<Vec<_>>()
        .join(".")
}

struct Builder {
    engine: Engine,
    params: Vec<Param>,
}

impl Builder {
    fn ph(&mut self, p: Param) -> String {
        self.params.push(p);
        match self.engine {
            Engine::Postgres => format!("${}", self.params.len()),
            _ => "?".to_string(),
        }
    }
}

#[derive(Clone, Copy)]
enum Cmp {
    Ge,
    Lt,
}

impl SideSql {
    pub fn new(
        side: Side,
        engine: Engine,
        info: &ServerInfo,
        table: &str,
        filter: Option<&str>,
        plan: &Plan,
        hashing: Hashing,
    ) -> SideSql {
        let ident = |c: &ColumnPlan| quote_ident(engine, &c.column(side).name);
        let mut s = SideSql {
            engine,
            table: quote_table(engine, table),
            filter: filter.map(|f| format!("({f})")),
            window: None,
            key_idents: plan.key.iter().map(ident).collect(),
            key_sort: Vec::new(),
            key_binds: plan
                .key
                .iter()
                .map(|c| key_bind(engine, c.column(side), c.kind))
                .collect(),
            key_values: Vec::new(),
            hash_list: Vec::new(),
            value_list: Vec::new(),
            hashing,
            typed_chains: Vec::new(),
            info: info.clone(),
            encoding: String::new(),
            materialize: engine == Engine::MySql && side == Side::Target,
        };
        let mut typed = Vec::new();
        for c in plan.all() {
            // An expression column reads its expression on the source, converted to the
            // target column's type family, then canonicalized as a column of that family.
            let (id, col) = match (&c.expr, side) {
                (Some(e), Side::Source) => crate::expr::typed(engine, e, &c.target),
                _ => (ident(c), c.column(side).clone()),
            };
            let (h, v) = match engine {
                // SQLite rows are read raw and normalized in Rust.
                Engine::Sqlite => (id.clone(), id.clone()),
                _ => (
                    canon(engine, info, &col, c, Purpose::Hash, &id),
                    canon(engine, info, &col, c, Purpose::Value, &id),
                ),
            };
            if hashing == Hashing::PgTyped {
                let form = TypedForm::of(c);
                typed.push(pg_typed_column(info, c, &col, &id, form));
            }
            s.hash_list.push(h);
            s.value_list.push(v);
        }
        s.typed_chains = pg_typed_chains(&typed, plan.key.len());
        s.key_values = s.value_list[..plan.key.len()].to_vec();
        for (i, c) in plan.key.iter().enumerate() {
            let col = c.column(side);
            let forced = matches!(c.kind, Kind::Text | Kind::Uuid) && !col.bytewise;
            s.key_sort.push(if forced {
                s.key_binds[i] = KeyBind::Plain;
                binary_order(engine, info, &s.key_values[i])
            } else {
                s.key_idents[i].clone()
            });
        }
        s.encoding = encoding(engine, plan, &s.hash_list);
        s
    }

    /// Restricts the scan to an incremental run's window (`watermark >= bound`).
    pub fn with_window(mut self, predicate: Option<String>) -> SideSql {
        self.window = predicate.map(|p| format!("({p})"));
        self
    }

    /// The highest watermark in the scan's rows: `expr` is the canonical form of
    /// `max(column)` (`Window::high_expr`).
    pub fn watermark_high(&self, expr: &str) -> Stmt {
        let parts: Vec<&str> = self
            .filter
            .iter()
            .chain(self.window.iter())
            .map(String::as_str)
            .collect();
        let w = if parts.is_empty() {
            "1 = 1".to_string()
        } else {
            parts.join(" AND ")
        };
        Stmt {
            sql: format!("SELECT {expr} FROM {} WHERE {w}", self.table),
            params: Vec::new(),
        }
    }

    fn builder(&self) -> Builder {
        Builder {
            engine: self.engine,
            params: Vec::new(),
        }
    }

    fn bind(&self, b: &mut Builder, i: usize, v: &str) -> String {
        match &self.key_binds[i] {
            KeyBind::PgCast(t) => format!("CAST({} AS {t})", b.ph(Param::Text(v.into()))),
            KeyBind::PgUuidBytes => format!(
                "decode(replace({}, '-', ''), 'hex')",
                b.ph(Param::Text(v.into()))
            ),
            KeyBind::MyCast(t) => format!("CAST({} AS {t})", b.ph(Param::Text(v.into()))),
            KeyBind::MyUuidBinary => {
                format!("UNHEX(REPLACE({}, '-', ''))", b.ph(Param::Text(v.into())))
            }
            KeyBind::Plain => b.ph(Param::Text(v.into())),
            KeyBind::SqliteInt => match v.parse::<i64>() {
                Ok(i) => b.ph(Param::Int(i)),
                Err(_) => b.ph(Param::Text(v.into())),
            },
        }
    }

    /// `key >= v` or `key < v` in key order (lexicographic for compound keys).
    fn key_cmp(&self, b: &mut Builder, cmp: Cmp, v: &[String]) -> String {
        let op = match cmp {
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
        };
        if self.key_idents.len() == 1 {
            let e = self.bind(b, 0, &v[0]);
            return format!("{} {op} {e}", self.key_sort[0]);
        }
        if self.engine != Engine::MySql {
            // Row-value comparison: PostgreSQL and SQLite use the index for it.
            let vals: Vec<String> = (0..v.len()).map(|i| self.bind(b, i, &v[i])).collect();
            return format!("({}) {op} ({})", self.key_sort.join(", "), vals.join(", "));
        }
        // MySQL's range optimizer does not use indexes for row constructors; spell the
        // lexicographic comparison out.
        self.lexicographic(b, 0, cmp, v)
    }

    /// `(k_i strict v_i OR (k_i = v_i AND <rest>))`, binding parameters in text order
    /// (positional `?` placeholders).
    fn lexicographic(&self, b: &mut Builder, i: usize, cmp: Cmp, v: &[String]) -> String {
        let (op, strict) = match cmp {
            Cmp::Ge => (">=", ">"),
            Cmp::Lt => ("<", "<"),
        };
        let k = &self.key_sort[i];
        if i + 1 == self.key_sort.len() {
            let e = self.bind(b, i, &v[i]);
            return format!("{k} {op} {e}");
        }
        let e1 = self.bind(b, i, &v[i]);
        let e2 = self.bind(b, i, &v[i]);
        let rest = self.lexicographic(b, i + 1, cmp, v);
        format!("({k} {strict} {e1} OR ({k} = {e2} AND {rest}))")
    }

    fn range_where(&self, b: &mut Builder, range: &Range) -> String {
        let mut parts = Vec::new();
        if let Some(lo) = &range.lo {
            parts.push(self.key_cmp(b, Cmp::Ge, lo));
        }
        if let Some(hi) = &range.hi {
            parts.push(self.key_cmp(b, Cmp::Lt, hi));
        }
        if let Some(f) = &self.filter {
            parts.push(f.clone());
        }
        if let Some(w) = &self.window {
            parts.push(w.clone());
        }
        if parts.is_empty() {
            "1 = 1".into()
        } else {
            parts.join(" AND ")
        }
    }

    fn order_by(&self) -> String {
        self.key_sort.join(", ")
    }

    /// The checksum of a range: `count, sum1, sum2` as text. None for SQLite, whose rows
    /// are hashed in Rust (`rows` with `Purpose::Hash`).
    pub fn checksum(&self, range: &Range) -> Option<Stmt> {
        self.checksum_stmt(range, None)
    }

    /// The checksums of the parts of a range cut at `bounds` (ascending keys inside it), in
    /// one statement: rows of `part, count, sum1, sum2` as text, part `i` holding the keys
    /// in `[bounds[i - 1], bounds[i])`; parts without rows are left out. None for SQLite.
    pub fn checksum_parts(&self, range: &Range, bounds: &[KeyVal]) -> Option<Stmt> {
        self.checksum_stmt(range, Some(bounds))
    }

    fn checksum_stmt(&self, range: &Range, bounds: Option<&[KeyVal]>) -> Option<Stmt> {
        if self.engine == Engine::Sqlite {
            return None;
        }
        let mut b = self.builder();
        // Placeholders are bound in text order (MySQL's `?`): the part expression comes
        // first in the text.
        let part = bounds.map(|bounds| self.part_expr(&mut b, bounds, 0, bounds.len()));
        let w = self.range_where(&mut b, range);
        let (t, enc) = (&self.table, &self.encoding);
        let (inner_part, outer_part, group) = match &part {
            Some(e) => (
                format!("{e} AS ficus_p, "),
                match self.engine {
                    Engine::MySql => "CAST(ficus_p AS CHAR), ",
                    _ => "ficus_p::text, ",
                },
                " GROUP BY ficus_p",
            ),
            None => (String::new(), "", ""),
        };
        let sql = match (self.engine, self.hashing) {
            (Engine::Postgres, Hashing::PgTyped) => {
                let rows = match self.typed_chains.as_slice() {
                    [chain] => {
                        format!("SELECT {inner_part}{chain} AS h FROM {t} WHERE {w} OFFSET 0")
                    }
                    // A wide table's chains are combined with XOR, then mixed once more
                    // (64 bits in, 64 out) so that the row hash is not linear in them.
                    chains => format!(
                        "SELECT {}hashint8extended(r, hashint4extended((r >> 32)::int4, 0)) AS h \
                         FROM (SELECT {inner_part}{} AS r FROM {t} WHERE {w} OFFSET 0) s0 OFFSET 0",
                        if part.is_some() { "ficus_p, " } else { "" },
                        chains.join(" # ")
                    ),
                };
                // OFFSET 0 keeps the subquery from being flattened, which would compute the
                // row hash once per aggregate.
                format!(
                    "SELECT {outer_part}count(*)::text, coalesce(sum(h), 0)::text, \
                     coalesce(bit_xor(h), 0)::text FROM ({rows}) s{group}"
                )
            }
            // Byte-wise (`COLLATE "C"`): under a nondeterministic collation hashtextextended
            // hashes the sort key, and values equal under it ('a', 'A') would hash alike.
            (Engine::Postgres, Hashing::PgText) => format!(
                "SELECT {outer_part}count(*)::text, \
                 coalesce(sum(hashtextextended(r COLLATE \"C\", 0)), 0)::text, \
                 coalesce(sum(hashtextextended(r COLLATE \"C\", 1)), 0)::text \
                 FROM (SELECT {inner_part}{enc} AS r FROM {t} WHERE {w} OFFSET 0) s{group}"
            ),
            (Engine::Postgres, _) => {
                let input = if self.info.utf8 {
                    enc.clone()
                } else {
                    format!("convert_to({enc}, 'UTF8')")
                };
                // OFFSET 0 keeps the subquery from being flattened, which would compute md5
                // once per half.
                format!(
                    "SELECT {outer_part}count(*)::text, \
                     coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint), 0)::text, \
                     coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint), 0)::text \
                     FROM (SELECT {inner_part}md5({input}) AS h FROM {t} WHERE {w} OFFSET 0) s{group}"
                )
            }
            (_, _) => {
                // Without LIMIT, MySQL merges the derived table and evaluates MD5 (and the
                // whole encoding) once per half.
                let limit = if self.materialize {
                    " LIMIT 18446744073709551615"
                } else {
                    ""
                };
                format!(
                    "SELECT {outer_part}CAST(COUNT(*) AS CHAR), \
                     CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)), 0) AS CHAR), \
                     CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS UNSIGNED)), 0) AS CHAR) \
                     FROM (SELECT {inner_part}MD5({enc}) AS h FROM {t} WHERE {w}{limit}) s{group}"
                )
            }
        };
        Some(Stmt {
            sql,
            params: b.params,
        })
    }

    /// The part number (`lo..=hi`) of a row's key, as a balanced tree of comparisons with
    /// `bounds[lo..hi]`: log2(parts) comparisons per row, each bound placed once.
    fn part_expr(&self, b: &mut Builder, bounds: &[KeyVal], lo: usize, hi: usize) -> String {
        if lo == hi {
            return lo.to_string();
        }
        let mid = (lo + hi).div_ceil(2);
        let cmp = self.key_cmp(b, Cmp::Lt, &bounds[mid - 1]);
        let left = self.part_expr(b, bounds, lo, mid - 1);
        let right = self.part_expr(b, bounds, mid, hi);
        format!("CASE WHEN {cmp} THEN {left} ELSE {right} END")
    }

    /// The rows of a range: key columns then compared columns, canonical for `purpose`
    /// (raw for SQLite).
    pub fn rows(&self, range: &Range, purpose: Purpose) -> Stmt {
        let mut b = self.builder();
        let w = self.range_where(&mut b, range);
        let list = match purpose {
            Purpose::Hash => &self.hash_list,
            Purpose::Value => &self.value_list,
        };
        Stmt {
            sql: format!("SELECT {} FROM {} WHERE {w}", list.join(", "), self.table),
            params: b.params,
        }
    }

    /// One row of column `i` in both canonical forms (hashed, then value; the raw value on
    /// SQLite): a cheap statement that makes the database parse, type and evaluate an
    /// expression column once before anything is scanned.
    pub fn probe(&self, i: usize) -> Stmt {
        let list = if self.engine == Engine::Sqlite {
            self.value_list[i].clone()
        } else {
            format!("{}, {}", self.hash_list[i], self.value_list[i])
        };
        let w = self.filter.as_deref().unwrap_or("1 = 1");
        Stmt {
            sql: format!("SELECT {list} FROM {} WHERE {w} LIMIT 1", self.table),
            params: Vec::new(),
        }
    }

    /// The key `offset` rows past `lo` in key order: the end of a segment of `offset` rows.
    pub fn nibble(&self, lo: Option<&KeyVal>, offset: u64) -> Stmt {
        let mut b = self.builder();
        let range = Range {
            lo: lo.cloned(),
            hi: None,
        };
        let w = self.range_where(&mut b, &range);
        // Aliased: an output column named like the key would make ORDER BY sort by the
        // canonical text instead of the column.
        let list: Vec<String> = self
            .key_values
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{e} AS ficus_k{i}"))
            .collect();
        Stmt {
            sql: format!(
                "SELECT {} FROM {} WHERE {w} ORDER BY {} LIMIT 1 OFFSET {offset}",
                list.join(", "),
                self.table,
                self.order_by()
            ),
            params: b.params,
        }
    }

    /// Keys that cut a range into parts of `every` rows (in one statement, server side).
    pub fn split(&self, range: &Range, every: u64) -> Stmt {
        let mut b = self.builder();
        let w = self.range_where(&mut b, range);
        let modulo = match self.engine {
            Engine::MySql => format!("MOD(ficus_rn - 1, {every}) = 0"),
            _ => format!("(ficus_rn - 1) % {every} = 0"),
        };
        Stmt {
            sql: format!(
                "SELECT {} FROM (SELECT {}, ROW_NUMBER() OVER (ORDER BY {}) AS ficus_rn FROM {} WHERE {w}) s \
                 WHERE ficus_rn > 1 AND {modulo} ORDER BY ficus_rn",
                self.key_values.join(", "),
                self.key_idents.join(", "),
                self.order_by(),
                self.table
            ),
            params: b.params,
        }
    }

    /// PostgreSQL: the same keys as `split` (at most `count` of them), found by walking the
    /// key index `every` rows at a time from one key to the next (a chain of LATERAL
    /// subqueries with OFFSET), instead of numbering every row with a window function: about
    /// six times cheaper on PostgreSQL 15. One row of `count` keys (their columns in
    /// order), NULL past the end of the range. None on other engines (MariaDB and SQLite
    /// have no LATERAL) or for a chain longer than `MAX_WALK`.
    pub fn split_walk(&self, range: &Range, every: u64, count: usize) -> Option<Stmt> {
        if self.engine != Engine::Postgres || count == 0 || count > MAX_WALK {
            return None;
        }
        let mut b = self.builder();
        let n = self.key_sort.len();
        let values: Vec<String> = (0..n)
            .map(|i| format!("{} AS v{i}", self.key_values[i]))
            .collect();
        let sorts: Vec<String> = (0..n)
            .map(|i| format!("{} AS s{i}", self.key_sort[i]))
            .collect();
        let mut select = Vec::new();
        let mut from = String::from("(SELECT 1) z");
        for k in 1..=count {
            let mut w = self.range_where(&mut b, range);
            if k > 1 {
                let prev: Vec<String> = (0..n).map(|i| format!("b{}.s{i}", k - 1)).collect();
                w = if n == 1 {
                    format!("{} >= {} AND {w}", self.key_sort[0], prev[0])
                } else {
                    format!(
                        "({}) >= ({}) AND {w}",
                        self.key_sort.join(", "),
                        prev.join(", ")
                    )
                };
            }
            from.push_str(&format!(
                " LEFT JOIN LATERAL (SELECT {}, {} FROM {} WHERE {w} ORDER BY {} OFFSET {every} LIMIT 1) b{k} ON true",
                values.join(", "),
                sorts.join(", "),
                self.table,
                self.order_by()
            ));
            select.extend((0..n).map(|i| format!("b{k}.v{i}")));
        }
        Some(Stmt {
            sql: format!("SELECT {} FROM {from}", select.join(", ")),
            params: b.params,
        })
    }

    /// The rows with the given keys (value form, raw for SQLite).
    pub fn lookup(&self, keys: &[KeyVal]) -> Stmt {
        let mut b = self.builder();
        let cond = if self.key_idents.len() == 1 {
            let list: Vec<String> = keys.iter().map(|k| self.bind(&mut b, 0, &k[0])).collect();
            format!("{} IN ({})", self.key_idents[0], list.join(", "))
        } else {
            let ors: Vec<String> = keys
                .iter()
                .map(|k| {
                    let ands: Vec<String> = (0..k.len())
                        .map(|i| {
                            format!("{} = {}", self.key_idents[i], self.bind(&mut b, i, &k[i]))
                        })
                        .collect();
                    format!("({})", ands.join(" AND "))
                })
                .collect();
            format!("({})", ors.join(" OR "))
        };
        let filter = self
            .filter
            .as_ref()
            .map(|f| format!("{f} AND "))
            .unwrap_or_default();
        Stmt {
            sql: format!(
                "SELECT {} FROM {} WHERE {filter}{cond}",
                self.value_list.join(", "),
                self.table
            ),
            params: b.params,
        }
    }
}

/// A canonical text expression sorted by bytes (code points).
fn binary_order(engine: Engine, info: &ServerInfo, canonical: &str) -> String {
    match engine {
        Engine::Postgres => format!("({canonical}) COLLATE \"C\""),
        // NO PAD binary collations: PAD SPACE ones would sort 'a' and 'a ' as equal.
        Engine::MySql if info.mariadb => format!("({canonical}) COLLATE utf8mb4_nopad_bin"),
        Engine::MySql if !info.version.starts_with('5') => {
            format!("({canonical}) COLLATE utf8mb4_0900_bin")
        }
        Engine::MySql => format!("({canonical}) COLLATE utf8mb4_bin"),
        Engine::Sqlite => format!("({canonical}) COLLATE BINARY"),
    }
}

fn key_bind(engine: Engine, col: &Column, kind: Kind) -> KeyBind {
    match engine {
        Engine::Postgres => match (&col.family, kind) {
            (Family::Bytes | Family::Uuid(UuidRepr::Binary), Kind::Uuid) => KeyBind::PgUuidBytes,
            _ if col.base.is_empty() => KeyBind::Plain,
            _ => KeyBind::PgCast(col.base.clone()),
        },
        Engine::MySql => match (&col.family, kind) {
            (Family::Integer { unsigned: true }, _) => KeyBind::MyCast("UNSIGNED"),
            (Family::Integer { unsigned: false }, _) => KeyBind::MyCast("SIGNED"),
            (Family::Date, _) => KeyBind::MyCast("DATE"),
            (Family::Bytes | Family::Uuid(UuidRepr::Binary), Kind::Uuid) => KeyBind::MyUuidBinary,
            _ => KeyBind::Plain,
        },
        Engine::Sqlite => match kind {
            Kind::Integer => KeyBind::SqliteInt,
            _ => KeyBind::Plain,
        },
    }
}

/// The row encoding expression: each field `text,` or `len:text`, NULL as `N,`
/// (mirrors `canon::encode_field`).
fn encoding(engine: Engine, plan: &Plan, hash_list: &[String]) -> String {
    let fields: Vec<String> = plan
        .all()
        .zip(hash_list)
        .map(|(c, t)| match (engine, c.kind.restricted_alphabet()) {
            (Engine::Postgres, true) => format!("coalesce({t} || ',', 'N,')"),
            (Engine::Postgres, false) => format!("coalesce(octet_length({t}) || ':' || {t}, 'N,')"),
            (_, true) => format!("COALESCE(CONCAT({t}, ','), 'N,')"),
            (_, false) => format!("COALESCE(CONCAT(LENGTH({t}), ':', {t}), 'N,')"),
        })
        .collect();
    match engine {
        Engine::Postgres => format!("({})", fields.join(" || ")),
        _ => format!("CONCAT({})", fields.join(", ")),
    }
}

/// The typed hash of one column, by the pair's types (`Hashing::PgTyped`).
///
/// Each form hashes a value of one SQL type, the same on both sides, with that type's own
/// 64-bit extended hash function; two values hash alike exactly when their canonical texts
/// are equal (up to 64-bit collisions), which is what the row-level comparison checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypedForm {
    /// Both sides `smallint`/`integer`: `hashint4extended`.
    Int4,
    /// Other integers as `bigint`: `hashint8extended` alone folds 64 bits into 32 before
    /// hashing (0 and 4294967297 hash alike), so the high half is hashed first and seeds the
    /// hash of the whole.
    Int8,
    /// `numeric`, rounded to the pair's scale: `hash_numeric_extended` (equal numbers hash
    /// alike whatever their trailing zeros).
    Numeric,
    /// A double (single precision widened), or a tolerance bucket `floor(x / tol)`:
    /// `hashfloat8extended` (-0 and 0, and every NaN, hash alike, as they compare).
    Float,
    /// `boolean` as 0 / 1.
    Bool,
    /// Both sides PostgreSQL `uuid`: `uuid_hash_extended`.
    Uuid,
    /// Days since 2000-01-01 (the infinities as values no finite date has).
    Date,
    /// A timestamp or time neither side rounds: `hashtextextended` of the hex of its binary
    /// form (`timestamp_send`, `timestamptz_send`, `time_send`: the 8 bytes of its
    /// microseconds, UTC for `timestamptz`), so every microsecond counts. Cheaper than
    /// the epoch as text or `date_part`, and exact where `timestamp_hash_extended` is not
    /// (it folds 64 bits into 32 as `hashint8extended` does).
    Micros,
    /// Anything else (text, JSON, bytes, times and timestamps one side rounds, UUIDs held
    /// as text or bytes): `hashtextextended` of the canonical text, byte-wise
    /// (`COLLATE "C"`).
    Text,
}

impl TypedForm {
    /// Decided from the pair alone, so that both sides decide alike.
    fn of(c: &ColumnPlan) -> TypedForm {
        let (src, tgt) = (pg_effective(c, Side::Source), pg_effective(c, Side::Target));
        if c.tolerance.is_some() && c.kind.numeric() {
            return TypedForm::Float;
        }
        let narrow = |col: &Column| matches!(col.base.as_str(), "int2" | "int4");
        let native = |col: &Column| col.family == Family::Uuid(UuidRepr::Native);
        let exact = |col: &Column, p: u32| match col.family {
            Family::Timestamp { precision, .. } | Family::Time { precision } => {
                precision <= p || p >= 6
            }
            _ => false,
        };
        match c.kind {
            Kind::Integer if narrow(&src) && narrow(&tgt) => TypedForm::Int4,
            Kind::Integer => TypedForm::Int8,
            Kind::Decimal { .. } => TypedForm::Numeric,
            Kind::Float { .. } => TypedForm::Float,
            Kind::Bool => TypedForm::Bool,
            Kind::Uuid if native(&src) && native(&tgt) => TypedForm::Uuid,
            Kind::Date => TypedForm::Date,
            Kind::Timestamp { precision } | Kind::Time { precision }
                if exact(&src, precision) && exact(&tgt, precision) =>
            {
                TypedForm::Micros
            }
            _ => TypedForm::Text,
        }
    }
}

/// The column a side's value has on PostgreSQL: an expression column's source side is its
/// expression converted to the target's type family (`expr::typed`).
fn pg_effective(c: &ColumnPlan, side: Side) -> Column {
    match (&c.expr, side) {
        (Some(e), Side::Source) => crate::expr::typed(Engine::Postgres, e, &c.target).1,
        _ => c.column(side).clone(),
    }
}

/// One column of a typed row hash on one side.
#[derive(Debug, Clone)]
struct TypedColumn {
    form: TypedForm,
    /// The column (or typed expression) as read.
    id: String,
    /// The value hashed, of the form's SQL type (NULL when the column is).
    value: String,
}

fn pg_typed_column(
    info: &ServerInfo,
    c: &ColumnPlan,
    col: &Column,
    id: &str,
    form: TypedForm,
) -> TypedColumn {
    let single = matches!(c.kind, Kind::Float { single: true });
    let value = match form {
        TypedForm::Int4 => format!("({id})::int4"),
        TypedForm::Int8 => format!("({id})::int8"),
        TypedForm::Numeric => match (&col.family, c.kind) {
            (Family::Decimal { scale: own }, Kind::Decimal { scale: Some(s) })
                if own.is_none_or(|o| o > s) =>
            {
                format!("round({id}, {s})")
            }
            (Family::Decimal { .. }, _) => id.to_string(),
            _ => format!("({id})::numeric"),
        },
        TypedForm::Float => {
            let d = pg_double(col, single, id);
            match c.tolerance {
                Some(tol) => format!("floor({d} / {}::float8)", float_literal(tol)),
                None => d,
            }
        }
        TypedForm::Bool => format!("({id})::int4"),
        TypedForm::Uuid => id.to_string(),
        TypedForm::Date => format!(
            "(CASE WHEN isfinite({id}) THEN {id} - DATE '2000-01-01' \
             WHEN {id} > DATE '2000-01-01' THEN 2147483647 ELSE -2147483647 END)"
        ),
        TypedForm::Micros => {
            let send = match col.family {
                Family::Timestamp { tz: true, .. } => "timestamptz_send",
                Family::Timestamp { tz: false, .. } => "timestamp_send",
                _ => "time_send",
            };
            format!("encode({send}({id}), 'hex')")
        }
        TypedForm::Text => canon_pg(info, col, c, Purpose::Hash, id),
    };
    TypedColumn {
        form,
        id: id.to_string(),
        value,
    }
}

/// A constant marking column `i` as NULL in the seed of its hash: 64 well-mixed bits
/// (splitmix64), never 0, never i64::MIN (which has no literal).
fn null_flag(i: usize) -> i64 {
    let mut z = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    match (z as i64) & i64::MAX {
        0 => 1,
        v => v,
    }
}

impl TypedColumn {
    /// The hash of this column seeded with `prev` (the hash of the columns before it). A
    /// nullable column hashes a stand-in value when NULL, with its NULL flag in the seed,
    /// so that NULL hashes unlike every value (`prev` is written once: chains stay linear).
    fn step(&self, prev: &str, nullable: Option<i64>) -> String {
        let (id, value) = (&self.id, &self.value);
        let seed = match nullable {
            Some(flag) => format!("({prev} # CASE WHEN {id} IS NULL THEN {flag} ELSE 0 END)"),
            None => prev.to_string(),
        };
        let v = |x: &str, stand_in: &str| match nullable {
            Some(_) => format!("coalesce({x}, {stand_in})"),
            None => x.to_string(),
        };
        match self.form {
            TypedForm::Int4 | TypedForm::Bool => {
                format!("hashint4extended({}, {seed})", v(value, "0"))
            }
            TypedForm::Int8 => {
                let x = v(value, "0");
                format!("hashint8extended({x}, hashint4extended(({x} >> 32)::int4, {seed}))")
            }
            TypedForm::Numeric => format!("hash_numeric_extended({}, {seed})", v(value, "0")),
            TypedForm::Float => format!("hashfloat8extended({}, {seed})", v(value, "0")),
            TypedForm::Uuid => format!(
                "uuid_hash_extended({}, {seed})",
                v(value, "'00000000-0000-0000-0000-000000000000'::uuid")
            ),
            // Never NULL: a NULL date is told apart by its flag.
            TypedForm::Date => format!("hashint4extended({value}, {seed})"),
            TypedForm::Micros | TypedForm::Text => {
                format!("hashtextextended({} COLLATE \"C\", {seed})", v(value, "''"))
            }
        }
    }
}

/// Longest chain of LATERAL subqueries `split_walk` writes (bisection factors up to 65).
const MAX_WALK: usize = 64;

/// Columns per chain: the chain is a nested expression, kept shallow enough for any
/// server's stack whatever the table's width.
const CHAIN: usize = 40;

/// The typed row hash as chains of at most `CHAIN` columns: each column's hash is seeded
/// with the hash of the columns before it, so the row hash depends on every column and on
/// its position, and is not linear in them (a sum of such hashes over a segment cannot be
/// split per column: values swapped between rows change it). Key columns (NOT NULL) skip
/// the NULL flag. The caller XORs several chains and mixes the result once more.
fn pg_typed_chains(cols: &[TypedColumn], key_len: usize) -> Vec<String> {
    cols.chunks(CHAIN)
        .enumerate()
        .map(|(g, chunk)| {
            let mut prev = format!("{g}::int8");
            for (j, c) in chunk.iter().enumerate() {
                let i = g * CHAIN + j;
                prev = c.step(&prev, (i >= key_len).then(|| null_flag(i)));
            }
            prev
        })
        .collect()
}

/// A double literal that parses to exactly the tolerance Rust holds.
fn float_literal(x: f64) -> String {
    format!("{x:e}")
}

/// `v - ((v % g) + g) % g` with `v = u + g/2`: rounds integer microseconds half up to
/// multiples of `g`, for negative values too (SQL's `%` keeps the dividend's sign).
fn round_micros_sql(engine: Engine, u: &str, side_precision: u32, precision: u32) -> String {
    if side_precision <= precision || precision >= 6 {
        return u.to_string();
    }
    let g = 10i64.pow(6 - precision);
    let v = format!("({u} + {})", g / 2);
    match engine {
        Engine::MySql => format!("({v} - MOD(MOD({v}, {g}) + {g}, {g}))"),
        _ => format!("({v} - ((({v}) % {g}) + {g}) % {g})"),
    }
}

/// The canonical text of column `col` under `plan`, as a SQL expression on `id`
/// (PostgreSQL and MySQL; `canon::sqlite_canon` is the SQLite counterpart).
pub fn canon(
    engine: Engine,
    info: &ServerInfo,
    col: &Column,
    plan: &ColumnPlan,
    purpose: Purpose,
    id: &str,
) -> String {
    match engine {
        Engine::Postgres => canon_pg(info, col, plan, purpose, id),
        _ => canon_mysql(col, plan, purpose, id),
    }
}

fn pg_trim(info: &ServerInfo, x: &str) -> String {
    if info.pg_version_num >= 130_000 {
        format!("trim_scale({x})::text")
    } else {
        format!("(CASE WHEN strpos(({x})::text, '.') > 0 THEN rtrim(rtrim(({x})::text, '0'), '.') ELSE ({x})::text END)")
    }
}

/// The PostgreSQL double-precision form of a numeric column (narrowed to single precision
/// when the pair is).
fn pg_double(col: &Column, single: bool, id: &str) -> String {
    match (&col.family, single) {
        (Family::Float { single: false }, false) => id.to_string(),
        (Family::Float { single: true }, _) => format!("{id}::float8"),
        (_, true) => format!("{id}::float4::float8"),
        (_, false) => format!("{id}::float8"),
    }
}

fn canon_pg(
    info: &ServerInfo,
    col: &Column,
    plan: &ColumnPlan,
    purpose: Purpose,
    id: &str,
) -> String {
    let single = matches!(plan.kind, Kind::Float { single: true });
    if let (Some(tol), Purpose::Hash) = (plan.tolerance, purpose) {
        let d = pg_double(col, single, id);
        return pg_trim(
            info,
            &format!("floor({d} / {}::float8)::text::numeric", float_literal(tol)),
        );
    }
    let side_precision = match col.family {
        Family::Time { precision } | Family::Timestamp { precision, .. } => precision,
        _ => 6,
    };
    match plan.kind {
        Kind::Integer => format!("{id}::text"),
        Kind::Decimal { scale } => match (&col.family, scale) {
            (Family::Integer { .. }, _) => format!("{id}::text"),
            (Family::Decimal { scale: own }, Some(s)) if own.is_none_or(|o| o > s) => {
                pg_trim(info, &format!("round({id}, {s})"))
            }
            _ => pg_trim(info, id),
        },
        Kind::Float { single } => {
            let d = pg_double(col, single, id);
            match purpose {
                Purpose::Hash => pg_trim(info, &format!("({d})::text::numeric")),
                Purpose::Value => format!("({d})::text"),
            }
        }
        Kind::Bool => format!("(CASE WHEN {id} THEN 't' WHEN NOT {id} THEN 'f' END)"),
        Kind::Text | Kind::Json => format!("{id}::text"),
        Kind::Bytes => format!("encode({id}, 'hex')"),
        Kind::Uuid => match col.family {
            Family::Uuid(UuidRepr::Native) => format!("{id}::text"),
            Family::Bytes | Family::Uuid(UuidRepr::Binary) => format!(
                "lower(regexp_replace(encode({id}, 'hex'), '^(.{{8}})(.{{4}})(.{{4}})(.{{4}})(.{{12}})$', '\\1-\\2-\\3-\\4-\\5'))"
            ),
            _ => format!("lower({id}::text)"),
        },
        Kind::Date => format!("{id}::text"),
        Kind::Time { precision } => {
            let u = format!(
                "((extract(hour from {id}) * 3600 + extract(minute from {id}) * 60) * 1000000 + extract(microseconds from {id}))::bigint"
            );
            format!("({})::text", round_micros_sql(Engine::Postgres, &u, side_precision, precision))
        }
        Kind::Timestamp { precision } => {
            // extract() returns an exact numeric from PostgreSQL 14 on; before, a double
            // that cannot hold microseconds exactly, so seconds and microseconds are split.
            let u = if info.pg_version_num >= 140_000 {
                format!("(extract(epoch from {id}) * 1000000)::bigint")
            } else {
                format!(
                    "(extract(epoch from date_trunc('second', {id}))::bigint * 1000000 + extract(microseconds from {id})::bigint % 1000000)"
                )
            };
            let u = round_micros_sql(Engine::Postgres, &u, side_precision, precision);
            format!("(CASE WHEN isfinite({id}) THEN ({u})::text ELSE {id}::text END)")
        }
    }
}

fn my_trim(x: &str) -> String {
    format!("TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM CAST({x} AS CHAR)))")
}

/// The MySQL double form of a numeric column (narrowed to single precision when the pair
/// is); `+ 0E0` also turns -0 into 0.
fn my_double(col: &Column, single: bool, id: &str) -> String {
    if single && col.family != (Family::Float { single: true }) {
        format!("(CAST(CAST({id} AS FLOAT) AS DOUBLE) + 0E0)")
    } else {
        format!("({id} + 0E0)")
    }
}

fn canon_mysql(col: &Column, plan: &ColumnPlan, purpose: Purpose, id: &str) -> String {
    let single = matches!(plan.kind, Kind::Float { single: true });
    // Shortest round-trip digits as a plain decimal: MySQL converts a double to DECIMAL
    // through its shortest digits (and prints 1e20 where PostgreSQL prints 1e+20;
    // DECIMAL(65,30) spells both 100000000000000000000).
    let float_hash = |d: String| my_trim(&format!("CAST({d} AS DECIMAL(65,30))"));
    if let (Some(tol), Purpose::Hash) = (plan.tolerance, purpose) {
        let d = my_double(col, single, id);
        return float_hash(format!("FLOOR({d} / {})", float_literal(tol)));
    }
    let side_precision = match col.family {
        Family::Time { precision } | Family::Timestamp { precision, .. } => precision,
        _ => 6,
    };
    match plan.kind {
        Kind::Integer => format!("CAST({id} AS CHAR)"),
        Kind::Decimal { scale } => match (&col.family, scale) {
            (Family::Decimal { scale: Some(own) }, Some(s)) if *own > s => {
                if s == 0 {
                    format!("CAST(ROUND({id}, 0) AS CHAR)")
                } else {
                    my_trim(&format!("ROUND({id}, {s})"))
                }
            }
            (Family::Decimal { scale: Some(0) }, _) | (Family::Integer { .. }, _) => {
                format!("CAST({id} AS CHAR)")
            }
            (Family::Decimal { scale: Some(_) }, _) => my_trim(id),
            _ => format!(
                "(CASE WHEN LOCATE('.', CAST({id} AS CHAR)) > 0 THEN {} ELSE CAST({id} AS CHAR) END)",
                my_trim(id)
            ),
        },
        Kind::Float { single } => {
            let d = my_double(col, single, id);
            match purpose {
                Purpose::Hash => float_hash(d),
                Purpose::Value => format!("CAST({d} AS CHAR)"),
            }
        }
        Kind::Bool => format!("(CASE WHEN {id} <> 0 THEN 't' WHEN {id} = 0 THEN 'f' END)"),
        Kind::Text => format!("CONVERT({id} USING utf8mb4)"),
        Kind::Json => format!("CAST({id} AS CHAR)"),
        Kind::Bytes => format!("LOWER(HEX({id}))"),
        Kind::Uuid => match col.family {
            Family::Uuid(UuidRepr::Native) => format!("LOWER(CAST({id} AS CHAR))"),
            Family::Bytes | Family::Uuid(UuidRepr::Binary) => format!(
                "LOWER(INSERT(INSERT(INSERT(INSERT(HEX({id}), 9, 0, '-'), 14, 0, '-'), 19, 0, '-'), 24, 0, '-'))"
            ),
            _ => format!("LOWER(CONVERT({id} USING utf8mb4))"),
        },
        Kind::Date => format!("DATE_FORMAT({id}, '%Y-%m-%d')"),
        Kind::Time { precision } => {
            let u = format!(
                "(TIME_TO_SEC({id}) * 1000000 + IF({id} < TIME '00:00:00', -1, 1) * MICROSECOND({id}))"
            );
            format!("CAST({} AS CHAR)", round_micros_sql(Engine::MySql, &u, side_precision, precision))
        }
        Kind::Timestamp { precision } => {
            let u = format!("TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {id})");
            format!("CAST({} AS CHAR)", round_micros_sql(Engine::MySql, &u, side_precision, precision))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

    fn col(name: &str, family: Family, base: &str) -> Column {
        Column {
            name: name.into(),
            declared: base.into(),
            base: base.into(),
            family,
            bytewise: true,
        }
    }

    fn plan(key: Vec<(Column, Kind)>, cols: Vec<(Column, Kind)>) -> Plan {
        let p = |(c, k): (Column, Kind)| ColumnPlan {
            source: c.clone(),
            target: c,
            kind: k,
            tolerance: None,
            expr: None,
        };
        Plan {
            key: key.into_iter().map(p).collect(),
            cols: cols.into_iter().map(p).collect(),
            skipped: vec![],
        }
    }

    fn pg15() -> ServerInfo {
        ServerInfo {
            pg_version_num: 150_000,
            utf8: true,
            ..Default::default()
        }
    }

    const INT: Family = Family::Integer { unsigned: false };

    #[test]
    fn compound_keys_compare_lexicographically_per_dialect() {
        let p = plan(
            vec![
                (col("a", INT, "int4"), Kind::Integer),
                (col("b", Family::Text, "text"), Kind::Text),
            ],
            vec![],
        );
        let range = Range {
            lo: Some(vec!["1".into(), "x".into()]),
            hi: Some(vec!["2".into(), "y".into()]),
        };
        let pg = SideSql::new(
            Side::Source,
            Engine::Postgres,
            &pg15(),
            "t",
            None,
            &p,
            Hashing::Md5,
        );
        let s = pg.rows(&range, Purpose::Value);
        assert!(
            s.sql
                .contains(r#"("a", "b") >= (CAST($1 AS int4), CAST($2 AS text))"#),
            "{}",
            s.sql
        );
        assert_eq!(s.params.len(), 4);

        let my = SideSql::new(
            Side::Source,
            Engine::MySql,
            &ServerInfo::default(),
            "t",
            Some("x > 0"),
            &p,
            Hashing::Md5,
        );
        let s = my.rows(&range, Purpose::Value);
        assert!(
            s.sql.contains(
                "(`a` > CAST(? AS SIGNED) OR (`a` = CAST(? AS SIGNED) AND `b` >= ?)) \
                 AND (`a` < CAST(? AS SIGNED) OR (`a` = CAST(? AS SIGNED) AND `b` < ?)) AND (x > 0)"
            ),
            "{}",
            s.sql
        );
        // Positional placeholders: parameters in the order they appear in the text.
        let p: Vec<Param> = ["1", "1", "x", "2", "2", "y"]
            .iter()
            .map(|v| Param::Text(v.to_string()))
            .collect();
        assert_eq!(s.params, p);
    }

    #[test]
    fn sqlite_binds_integer_keys_as_integers() {
        let p = plan(vec![(col("id", INT, ""), Kind::Integer)], vec![]);
        let lite = SideSql::new(
            Side::Target,
            Engine::Sqlite,
            &ServerInfo::default(),
            "t",
            None,
            &p,
            Hashing::Md5,
        );
        let s = lite.nibble(Some(&vec!["42".into()]), 100);
        assert_eq!(
            s.sql,
            r#"SELECT "id" AS ficus_k0 FROM "t" WHERE "id" >= ? ORDER BY "id" LIMIT 1 OFFSET 100"#
        );
        assert_eq!(s.params, vec![Param::Int(42)]);
        assert!(lite.checksum(&Range::default()).is_none());
    }

    #[test]
    fn encodings_mirror_the_rust_encoding() {
        let p = plan(
            vec![(col("id", INT, "int8"), Kind::Integer)],
            vec![(col("name", Family::Text, "text"), Kind::Text)],
        );
        let pg = SideSql::new(
            Side::Source,
            Engine::Postgres,
            &pg15(),
            "s.t",
            None,
            &p,
            Hashing::Md5,
        );
        assert_eq!(
            pg.encoding,
            r#"(coalesce("id"::text || ',', 'N,') || coalesce(octet_length("name"::text) || ':' || "name"::text, 'N,'))"#
        );
        let sum = pg.checksum(&Range::default()).unwrap().sql;
        assert!(sum.contains(r#"FROM "s"."t" WHERE 1 = 1"#), "{sum}");
        let my = SideSql::new(
            Side::Source,
            Engine::MySql,
            &ServerInfo::default(),
            "t",
            None,
            &p,
            Hashing::Md5,
        );
        assert_eq!(
            my.encoding,
            "CONCAT(COALESCE(CONCAT(CAST(`id` AS CHAR), ','), 'N,'), COALESCE(CONCAT(LENGTH(CONVERT(`name` USING utf8mb4)), ':', CONVERT(`name` USING utf8mb4)), 'N,'))"
        );
    }

    #[test]
    fn split_and_lookup_statements() {
        let p = plan(
            vec![
                (col("a", INT, "int4"), Kind::Integer),
                (col("b", INT, "int4"), Kind::Integer),
            ],
            vec![],
        );
        let pg = SideSql::new(
            Side::Source,
            Engine::Postgres,
            &pg15(),
            "t",
            None,
            &p,
            Hashing::PgText,
        );
        let s = pg.split(&Range::default(), 10);
        assert!(
            s.sql.contains("ROW_NUMBER() OVER (ORDER BY \"a\", \"b\")"),
            "{}",
            s.sql
        );
        assert!(s.sql.contains("(ficus_rn - 1) % 10 = 0"), "{}", s.sql);
        let l = pg.lookup(&[vec!["1".into(), "2".into()], vec!["3".into(), "4".into()]]);
        assert!(l.sql.ends_with(
            r#"WHERE (("a" = CAST($1 AS int4) AND "b" = CAST($2 AS int4)) OR ("a" = CAST($3 AS int4) AND "b" = CAST($4 AS int4)))"#
        ), "{}", l.sql);
    }

    #[test]
    fn timestamps_round_only_the_finer_side() {
        let ts6 = col(
            "t",
            Family::Timestamp {
                tz: true,
                precision: 6,
            },
            "timestamptz",
        );
        let cp = ColumnPlan {
            source: ts6.clone(),
            target: ts6.clone(),
            kind: Kind::Timestamp { precision: 0 },
            tolerance: None,
            expr: None,
        };
        let e = canon(Engine::Postgres, &pg15(), &ts6, &cp, Purpose::Hash, "\"t\"");
        assert!(e.contains("+ 500000") && e.contains("% 1000000"), "{e}");
        let ts0 = col(
            "t",
            Family::Timestamp {
                tz: false,
                precision: 0,
            },
            "",
        );
        let e = canon(
            Engine::MySql,
            &ServerInfo::default(),
            &ts0,
            &cp,
            Purpose::Hash,
            "`t`",
        );
        assert_eq!(
            e,
            "CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', `t`) AS CHAR)"
        );
    }

    #[test]
    fn expression_columns_are_read_on_the_source_only() {
        let mut p = plan(
            vec![(col("id", INT, "int8"), Kind::Integer)],
            vec![(
                col("cents", Family::Integer { unsigned: false }, "int8"),
                Kind::Integer,
            )],
        );
        p.cols[0].expr = Some("price * 100".into());
        let side = |side, engine| SideSql::new(side, engine, &pg15(), "t", None, &p, Hashing::Md5);
        let src = side(Side::Source, Engine::Postgres);
        assert_eq!(src.value_list[1], "CAST((price * 100) AS bigint)::text");
        assert_eq!(
            src.probe(1).sql,
            r#"SELECT CAST((price * 100) AS bigint)::text, CAST((price * 100) AS bigint)::text FROM "t" WHERE 1 = 1 LIMIT 1"#
        );
        let my = side(Side::Source, Engine::MySql);
        assert_eq!(
            my.value_list[1],
            "CAST(CAST((price * 100) AS SIGNED) AS CHAR)"
        );
        let lite = side(Side::Source, Engine::Sqlite);
        assert_eq!(lite.value_list[1], "(price * 100)");
        let tgt = side(Side::Target, Engine::Postgres);
        assert_eq!(tgt.value_list[1], r#""cents"::text"#);
    }

    #[test]
    fn tolerance_literals_round_trip() {
        for x in [0.001, 1e-7, 0.1, 2.5] {
            assert_eq!(float_literal(x).parse::<f64>().unwrap(), x);
        }
    }

    fn pg(version: u32, utf8: bool) -> ServerInfo {
        ServerInfo {
            pg_version_num: version,
            utf8,
            ..Default::default()
        }
    }

    #[test]
    fn hashing_is_the_cheapest_both_servers_share() {
        let (p, m) = (Engine::Postgres, Engine::MySql);
        let (p15, p13, latin1, my) = (
            pg(150_000, true),
            pg(130_000, true),
            pg(160_000, false),
            ServerInfo::default(),
        );
        assert_eq!(Hashing::choose((p, &p15), (p, &p15)), Hashing::PgTyped);
        assert_eq!(Hashing::choose((p, &p15), (p, &p13)), Hashing::PgText);
        assert_eq!(Hashing::choose((p, &latin1), (p, &p15)), Hashing::PgText);
        assert_eq!(Hashing::choose((p, &p15), (m, &my)), Hashing::Md5);
        assert_eq!(Hashing::choose((m, &my), (m, &my)), Hashing::Md5);
        assert_eq!(Hashing::PgTyped.reported(), RowHash::PgHashExtended);
        assert_eq!(Hashing::PgText.reported(), RowHash::PgHashExtended);
    }

    fn pair(src: Column, tgt: Column, kind: Kind) -> ColumnPlan {
        ColumnPlan {
            source: src,
            target: tgt,
            kind,
            tolerance: None,
            expr: None,
        }
    }

    #[test]
    fn typed_forms_are_decided_by_the_pair() {
        let int = |base: &str| col("i", INT, base);
        let ts = |tz, precision| col("t", Family::Timestamp { tz, precision }, "");
        let uuid = col("u", Family::Uuid(UuidRepr::Native), "uuid");
        let form = |s: Column, t: Column, k| TypedForm::of(&pair(s, t, k));
        assert_eq!(
            form(int("int4"), int("int2"), Kind::Integer),
            TypedForm::Int4
        );
        assert_eq!(
            form(int("int4"), int("int8"), Kind::Integer),
            TypedForm::Int8
        );
        assert_eq!(
            form(ts(false, 6), ts(true, 6), Kind::Timestamp { precision: 6 }),
            TypedForm::Micros
        );
        // One side rounds to the other's precision: both hash the canonical text.
        assert_eq!(
            form(ts(true, 6), ts(true, 3), Kind::Timestamp { precision: 3 }),
            TypedForm::Text
        );
        assert_eq!(
            form(uuid.clone(), uuid.clone(), Kind::Uuid),
            TypedForm::Uuid
        );
        assert_eq!(
            form(uuid, col("u", Family::Text, "text"), Kind::Uuid),
            TypedForm::Text
        );
        let mut tolerant = pair(int("int8"), int("int8"), Kind::Integer);
        tolerant.tolerance = Some(5.0);
        assert_eq!(TypedForm::of(&tolerant), TypedForm::Float);
        // An expression column is typed as its conversion to the target's type: a bigint.
        let mut e = pair(int("int4"), int("int4"), Kind::Integer);
        e.expr = Some("a + b".into());
        assert_eq!(TypedForm::of(&e), TypedForm::Int8);
    }

    #[test]
    fn typed_row_hash_chains_the_columns() {
        let p = plan(
            vec![(col("id", INT, "int8"), Kind::Integer)],
            vec![
                (col("name", Family::Text, "text"), Kind::Text),
                (col("flag", Family::Bool, "bool"), Kind::Bool),
            ],
        );
        let s = SideSql::new(
            Side::Source,
            Engine::Postgres,
            &pg15(),
            "t",
            None,
            &p,
            Hashing::PgTyped,
        );
        let (n1, n2) = (null_flag(1), null_flag(2));
        // The key (NOT NULL) without a flag, its high half first; then each column seeded
        // with the hash of the ones before it, NULL marked in the seed.
        let key = r#"hashint8extended(("id")::int8, hashint4extended((("id")::int8 >> 32)::int4, 0::int8))"#;
        let name = format!(
            r#"hashtextextended(coalesce("name"::text, '') COLLATE "C", ({key} # CASE WHEN "name" IS NULL THEN {n1} ELSE 0 END))"#
        );
        let row = format!(
            r#"hashint4extended(coalesce(("flag")::int4, 0), ({name} # CASE WHEN "flag" IS NULL THEN {n2} ELSE 0 END))"#
        );
        assert_eq!(s.typed_chains, vec![row.clone()]);
        let sum = s.checksum(&Range::default()).unwrap().sql;
        assert_eq!(
            sum,
            format!(
                "SELECT count(*)::text, coalesce(sum(h), 0)::text, coalesce(bit_xor(h), 0)::text \
                 FROM (SELECT {row} AS h FROM \"t\" WHERE 1 = 1 OFFSET 0) s"
            )
        );
        assert_ne!(n1, n2);
        assert!((0..2000).all(|i| null_flag(i) > 0));
    }

    #[test]
    fn wide_rows_hash_in_chains_mixed_once_more() {
        let cols: Vec<(Column, Kind)> = (0..CHAIN * 2)
            .map(|i| (col(&format!("c{i}"), INT, "int4"), Kind::Integer))
            .collect();
        let p = plan(vec![(col("id", INT, "int8"), Kind::Integer)], cols);
        let s = SideSql::new(
            Side::Target,
            Engine::Postgres,
            &pg15(),
            "t",
            None,
            &p,
            Hashing::PgTyped,
        );
        assert_eq!(s.typed_chains.len(), 3);
        assert!(s.typed_chains[2].contains("2::int8"));
        let sql = s.checksum(&Range::default()).unwrap().sql;
        assert!(
            sql.contains("hashint8extended(r, hashint4extended((r >> 32)::int4, 0)) AS h")
                && sql.contains(&format!("{} # {}", s.typed_chains[0], s.typed_chains[1])),
            "{sql}"
        );
    }

    #[test]
    fn parts_are_numbered_by_a_balanced_tree_of_comparisons() {
        let p = plan(
            vec![
                (col("a", INT, "int4"), Kind::Integer),
                (col("b", Family::Text, "text"), Kind::Text),
            ],
            vec![],
        );
        let bounds: Vec<KeyVal> = (1..=4)
            .map(|i| vec![i.to_string(), format!("k{i}")])
            .collect();
        let range = Range {
            lo: Some(vec!["0".into(), "k".into()]),
            hi: None,
        };
        let pg = SideSql::new(
            Side::Source,
            Engine::Postgres,
            &pg15(),
            "t",
            None,
            &p,
            Hashing::PgTyped,
        );
        let s = pg.checksum_parts(&range, &bounds).unwrap();
        assert!(
            s.sql.contains(
                r#"SELECT ficus_p::text, count(*)::text, coalesce(sum(h), 0)::text, coalesce(bit_xor(h), 0)::text FROM (SELECT CASE WHEN ("a", "b") < (CAST($1 AS int4), CAST($2 AS text)) THEN CASE WHEN ("a", "b") < (CAST($3 AS int4), CAST($4 AS text)) THEN 0 ELSE 1 END ELSE CASE WHEN ("a", "b") < (CAST($5 AS int4), CAST($6 AS text)) THEN 2 ELSE CASE WHEN ("a", "b") < (CAST($7 AS int4), CAST($8 AS text)) THEN 3 ELSE 4 END END END AS ficus_p, "#
            ) && s.sql.ends_with(r#"WHERE ("a", "b") >= (CAST($9 AS int4), CAST($10 AS text)) OFFSET 0) s GROUP BY ficus_p"#),
            "{}",
            s.sql
        );
        let texts =
            |v: &[&str]| -> Vec<Param> { v.iter().map(|x| Param::Text(x.to_string())).collect() };
        assert_eq!(
            s.params,
            texts(&["2", "k2", "1", "k1", "3", "k3", "4", "k4", "0", "k"])
        );
        // MySQL binds positionally, in the order of the text: the parts first.
        let my = SideSql::new(
            Side::Target,
            Engine::MySql,
            &ServerInfo::default(),
            "t",
            None,
            &p,
            Hashing::Md5,
        );
        let s = my.checksum_parts(&range, &bounds[..1]).unwrap();
        assert!(
            s.sql.starts_with(
                "SELECT CAST(ficus_p AS CHAR), CAST(COUNT(*) AS CHAR), \
                 CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)), 0) AS CHAR), \
                 CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS UNSIGNED)), 0) AS CHAR) \
                 FROM (SELECT CASE WHEN (`a` < CAST(? AS SIGNED) OR (`a` = CAST(? AS SIGNED) AND `b` < ?)) THEN 0 ELSE 1 END AS ficus_p, MD5("
            ) && s.sql.ends_with(" LIMIT 18446744073709551615) s GROUP BY ficus_p"),
            "{}",
            s.sql
        );
        assert_eq!(s.params, texts(&["1", "1", "k1", "0", "0", "k"]));
        let lite = SideSql::new(
            Side::Target,
            Engine::Sqlite,
            &ServerInfo::default(),
            "t",
            None,
            &p,
            Hashing::Md5,
        );
        assert!(lite.checksum_parts(&range, &bounds).is_none());
    }

    #[test]
    fn postgres_splits_by_walking_the_key_index() {
        let p = plan(
            vec![
                (col("a", INT, "int4"), Kind::Integer),
                (col("b", Family::Text, "text"), Kind::Text),
            ],
            vec![],
        );
        let mut p = p;
        p.key[1].source.bytewise = false;
        let range = Range {
            lo: Some(vec!["1".into(), "x".into()]),
            hi: None,
        };
        let pg = SideSql::new(
            Side::Source,
            Engine::Postgres,
            &pg15(),
            "t",
            None,
            &p,
            Hashing::PgTyped,
        );
        let s = pg.split_walk(&range, 100, 2).unwrap();
        assert_eq!(
            s.sql,
            r#"SELECT b1.v0, b1.v1, b2.v0, b2.v1 FROM (SELECT 1) z LEFT JOIN LATERAL (SELECT "a"::text AS v0, "b"::text AS v1, "a" AS s0, ("b"::text) COLLATE "C" AS s1 FROM "t" WHERE ("a", ("b"::text) COLLATE "C") >= (CAST($1 AS int4), $2) ORDER BY "a", ("b"::text) COLLATE "C" OFFSET 100 LIMIT 1) b1 ON true LEFT JOIN LATERAL (SELECT "a"::text AS v0, "b"::text AS v1, "a" AS s0, ("b"::text) COLLATE "C" AS s1 FROM "t" WHERE ("a", ("b"::text) COLLATE "C") >= (b1.s0, b1.s1) AND ("a", ("b"::text) COLLATE "C") >= (CAST($3 AS int4), $4) ORDER BY "a", ("b"::text) COLLATE "C" OFFSET 100 LIMIT 1) b2 ON true"#
        );
        assert_eq!(s.params.len(), 4);
        assert!(pg.split_walk(&range, 100, MAX_WALK + 1).is_none());
        let my = SideSql::new(
            Side::Source,
            Engine::MySql,
            &ServerInfo::default(),
            "t",
            None,
            &p,
            Hashing::Md5,
        );
        assert!(my.split_walk(&range, 100, 2).is_none());
    }
}
