#!/usr/bin/env bash
# ficus verify against reladiff (the maintained fork of Datafold's data-diff) on the same
# tables in one run: PostgreSQL to PostgreSQL (1M rows) and PostgreSQL to MariaDB
# (cross-engine), each with a few planted differences. Prints wall time, rows/s and the
# differences each tool found. Every step is bounded by `timeout`. See bench/verify-README.md.
#
# Environment (defaults):
#   PG_URL=postgres://postgres@127.0.0.1:5432/test
#   MY_URL=mysql://root@127.0.0.1:3306/test
#   ROWS=1000000        rows of the PostgreSQL-to-PostgreSQL case
#   CROSS_ROWS=1000000  rows of the PostgreSQL-to-MariaDB case
#   THREADS=4           connections per database for both tools
#   STEP_TIMEOUT=600    seconds any single step may take
#   FICUS_BIN=target/release/ficus (relative to the repository root)
#   CASES="pg-pg pg-mariadb"
#   KEEP_TABLES=0       1 keeps the generated tables
#   SKIP_INSTALL=0      1 skips installing reladiff
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
MY_URL=${MY_URL:-mysql://root@127.0.0.1:3306/test}
ROWS=${ROWS:-1000000}
CROSS_ROWS=${CROSS_ROWS:-1000000}
THREADS=${THREADS:-4}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
FICUS_BIN=${FICUS_BIN:-target/release/ficus}
CASES=${CASES:-"pg-pg pg-mariadb"}
KEEP_TABLES=${KEEP_TABLES:-0}
SKIP_INSTALL=${SKIP_INSTALL:-0}
case "$FICUS_BIN" in /*) ;; *) FICUS_BIN="$ROOT/$FICUS_BIN" ;; esac
OUT_DIR=${OUT_DIR:-"$HERE/out/verify-$(date +%Y%m%d-%H%M%S)"}
mkdir -p "$OUT_DIR"

# psql/mysql connection arguments from the URLs (user@host:port/db, no password needed here).
pg_args() { psql "$PG_URL" -v ON_ERROR_STOP=1 -qAt "$@"; }
my_host=$(echo "$MY_URL" | sed -E 's#^mysql://([^@]*@)?([^:/]+).*#\2#')
my_port=$(echo "$MY_URL" | sed -nE 's#^mysql://[^/]*:([0-9]+)/.*#\1#p'); my_port=${my_port:-3306}
my_user=$(echo "$MY_URL" | sed -nE 's#^mysql://([^:@]+)[:@].*#\1#p'); my_user=${my_user:-root}
my_db=$(echo "$MY_URL" | sed -E 's#.*/([^/?]+).*#\1#')
my_args() { mysql -h "$my_host" -P "$my_port" -u "$my_user" "$my_db" -N "$@"; }

die() { echo "verify bench: $*" >&2; exit 2; }
command -v psql >/dev/null || die "psql is required"
command -v mysql >/dev/null || die "the mysql client is required"
pg_args -c "select 1" >/dev/null 2>&1 || die "PostgreSQL is not reachable at $PG_URL"
[ -x "$FICUS_BIN" ] || die "ficus is not built: cargo build --release -p ficus (or set FICUS_BIN)"

if [ "$SKIP_INSTALL" != 1 ] && ! command -v reladiff >/dev/null 2>&1; then
  echo "installing reladiff from PyPI..." >&2
  timeout "$STEP_TIMEOUT" python3 -m pip install -q "reladiff[postgresql,mysql]" >&2 || die "pip install reladiff failed"
fi
command -v reladiff >/dev/null || die "reladiff is not installed"

now() { date +%s.%N; }
# reladiff wants the postgresql:// spelling.
RD_PG_URL=$(echo "$PG_URL" | sed -E 's#^postgres://#postgresql://#')
RESULTS="$OUT_DIR/results.tsv"
: > "$RESULTS"

# run NAME CASE ROWS CMD...: times CMD, keeps its output, records the differences it found.
run() {
  local name=$1 case=$2 rows=$3; shift 3
  local log="$OUT_DIR/$case-$name.log" t0 t1 rc
  echo "== $case: $name" >&2
  t0=$(now)
  timeout "$STEP_TIMEOUT" "$@" > "$log" 2> "$log.err"; rc=$?
  t1=$(now)
  local secs diffs
  secs=$(echo "$t1 - $t0" | bc -l)
  if [ "$name" = ficus ]; then
    diffs=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; print(s["missing"]+s["extra"]+s["changed"])' "$log" 2>/dev/null || echo "?")
  else
    # reladiff prints one line per differing row side: "- key, ..." and "+ key, ...";
    # a changed row is one - and one + with the same key.
    diffs=$(grep -E '^[-+] ' "$log" | sed -E 's/^[-+] \(?([^,)]*).*/\1/' | sort -u | wc -l)
  fi
  [ "$rc" = 124 ] && diffs="timeout"
  # ficus exits 1 on differences; anything else non-zero (or reladiff's errors) is a failure.
  if [ "$rc" != 0 ] && [ "$rc" != 1 ] && [ "$rc" != 124 ]; then diffs="error (see $log.err)"; fi
  if grep -q ERROR "$log.err" 2>/dev/null; then diffs="error (see $log.err)"; fi
  printf '%s\t%s\t%s\t%.2f\t%s\t%s\n' "$case" "$name" "$rows" "$secs" "$diffs" "$rc" >> "$RESULTS"
}

PG_SRC=bench_verify_src PG_TGT=bench_verify_tgt MY_TGT=bench_verify_tgt

# Deterministic rows, identical on both engines: values exactly representable everywhere.
setup_pg() {
  echo "generating $ROWS rows in PostgreSQL..." >&2
  pg_args <<SQL
DROP TABLE IF EXISTS $PG_SRC; DROP TABLE IF EXISTS $PG_TGT;
CREATE TABLE $PG_SRC (id bigint PRIMARY KEY, name text, amount numeric(12,2), score double precision,
  created timestamptz, flag boolean);
INSERT INTO $PG_SRC SELECT g, 'name-' || g, (g % 100000) / 100.0, g * 0.25,
  timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', g % 2 = 0
  FROM generate_series(1, $(( ROWS > CROSS_ROWS ? ROWS : CROSS_ROWS ))) g;
CREATE TABLE $PG_TGT (LIKE $PG_SRC INCLUDING ALL);
INSERT INTO $PG_TGT SELECT * FROM $PG_SRC WHERE id <= $ROWS;
-- planted: 2 missing, 1 extra, 4 changed
DELETE FROM $PG_TGT WHERE id IN (1000, $(( ROWS / 2 )));
INSERT INTO $PG_TGT VALUES ($(( ROWS * 10 )), 'extra', 1, 1, now(), true);
UPDATE $PG_TGT SET name = 'changed' WHERE id = 77;
UPDATE $PG_TGT SET amount = amount + 0.01 WHERE id = $(( ROWS / 3 ));
UPDATE $PG_TGT SET created = created + interval '1 second' WHERE id = $(( ROWS - 5 ));
UPDATE $PG_TGT SET flag = NOT flag WHERE id = $(( ROWS / 4 ));
VACUUM ANALYZE $PG_SRC; VACUUM ANALYZE $PG_TGT;
SQL
}

setup_my() {
  echo "generating $CROSS_ROWS rows in MariaDB..." >&2
  my_args <<SQL
DROP TABLE IF EXISTS $MY_TGT;
CREATE TABLE $MY_TGT (id bigint PRIMARY KEY, name text, amount decimal(12,2), score double,
  created datetime(6), flag boolean);
INSERT INTO $MY_TGT SELECT seq, CONCAT('name-', seq), (seq % 100000) / 100, seq * 0.25,
  TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND, seq % 2 = 0 FROM seq_1_to_$CROSS_ROWS;
DELETE FROM $MY_TGT WHERE id IN (1000, $(( CROSS_ROWS / 2 )));
INSERT INTO $MY_TGT VALUES ($(( CROSS_ROWS * 10 )), 'extra', 1, 1, NOW(), true);
UPDATE $MY_TGT SET name = 'changed' WHERE id = 77;
UPDATE $MY_TGT SET amount = amount + 0.01 WHERE id = $(( CROSS_ROWS / 3 ));
UPDATE $MY_TGT SET created = created + INTERVAL 1 SECOND WHERE id = $(( CROSS_ROWS - 5 ));
UPDATE $MY_TGT SET flag = NOT flag WHERE id = $(( CROSS_ROWS / 4 ));
ANALYZE TABLE $MY_TGT;
SQL
}

cols="name amount score created flag"
reladiff_cols=$(for c in $cols; do printf -- '-c %s ' "$c"; done)

setup_pg || die "PostgreSQL setup failed"
for case in $CASES; do
  case "$case" in
    pg-pg)
      run ficus pg-pg "$ROWS" "$FICUS_BIN" verify --source "$PG_URL" --source-table $PG_SRC \
        --target "$PG_URL" --target-table $PG_TGT --key id --where "id <= $ROWS" --target-where "true" \
        --max-connections "$THREADS" --json --no-progress
      # hashdiff (not joindiff) even though both tables share a database: the same
      # algorithm family as ficus, as it would run against two servers.
      run reladiff pg-pg "$ROWS" reladiff "$RD_PG_URL" $PG_SRC "$RD_PG_URL" $PG_TGT -k id $reladiff_cols \
        -a hashdiff -j "$THREADS" -w "id <= $ROWS OR id = $(( ROWS * 10 ))"
      ;;
    pg-mariadb)
      my_args -e "select 1" >/dev/null 2>&1 || { echo "MariaDB not reachable, skipping pg-mariadb" >&2; continue; }
      setup_my || die "MariaDB setup failed"
      run ficus pg-mariadb "$CROSS_ROWS" "$FICUS_BIN" verify --source "$PG_URL" --source-table $PG_SRC \
        --target "$MY_URL" --target-table $MY_TGT --key id --where "id <= $CROSS_ROWS" --target-where "1 = 1" \
        --max-connections "$THREADS" --json --no-progress
      run reladiff pg-mariadb "$CROSS_ROWS" reladiff "$RD_PG_URL" $PG_SRC "$MY_URL" $MY_TGT -k id $reladiff_cols \
        -j "$THREADS" -w "id <= $CROSS_ROWS OR id = $(( CROSS_ROWS * 10 ))"
      ;;
    *) echo "unknown case $case" >&2 ;;
  esac
done

if [ "$KEEP_TABLES" != 1 ]; then
  pg_args -c "DROP TABLE IF EXISTS $PG_SRC; DROP TABLE IF EXISTS $PG_TGT" || true
  my_args -e "DROP TABLE IF EXISTS $MY_TGT" 2>/dev/null || true
fi

echo
echo "| case | tool | rows | wall s | rows/s | differences found (planted: 7) | exit |"
echo "|---|---|---:|---:|---:|---:|---:|"
while IFS=$'\t' read -r case name rows secs diffs rc; do
  rps=$(echo "$rows / $secs" | bc)
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$case" "$name" "$rows" "$secs" "$rps" "$diffs" "$rc"
done < "$RESULTS"
echo
echo "raw output: $OUT_DIR" >&2
