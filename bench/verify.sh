#!/usr/bin/env bash
# ficus verify against reladiff (the maintained fork of Datafold's data-diff) on the same
# tables in one run, each step timed with its peak memory and the differences it found:
#
#   pg-pg       PostgreSQL to PostgreSQL, ROWS rows (default 10 million): the tables equal
#               (0 differences), then with DIFFS planted differences (default 100: missing,
#               extra, changed, NULL against the empty string), then an incremental run over
#               CHANGED rows written since a watermark (default 10,000, of which DROPPED
#               writes never reached the target), ficus with --watermark, reladiff with the
#               same window as --where.
#   pg-mariadb  PostgreSQL to MariaDB, CROSS_ROWS rows (default 1 million), DIFFS planted.
#
# Every step is bounded by `timeout`. See bench/verify-README.md.
#
# Environment (defaults):
#   PG_URL=postgres://postgres@127.0.0.1:5432/test
#   MY_URL=mysql://root@127.0.0.1:3306/test
#   ROWS=10000000       rows of the PostgreSQL-to-PostgreSQL tables
#   CROSS_ROWS=1000000  rows of the PostgreSQL-to-MariaDB tables
#   DIFFS=100           planted differences (a multiple of 4: missing, extra, changed, NULL/'')
#   CHANGED=10000       rows written since the watermark (incremental step)
#   DROPPED=10          of those, writes dropped on the target (what the incremental run finds)
#   THREADS=4           connections per database for both tools
#   STEP_TIMEOUT=900    seconds any single step may take
#   FICUS_BIN=target/release/ficus (relative to the repository root)
#   FICUS_ARGS=         extra arguments for every ficus run (e.g. "--segment-rows 20000")
#   CASES="pg-pg pg-mariadb"
#   TOOLS="ficus reladiff"
#   REUSE_TABLES=0      1 keeps existing tables of the right size (reset to their generated
#                       state instead of generated again: for repeated runs)
#   KEEP_TABLES=0       1 keeps the generated tables
#   SKIP_INSTALL=0      1 skips installing reladiff
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
MY_URL=${MY_URL:-mysql://root@127.0.0.1:3306/test}
ROWS=${ROWS:-10000000}
CROSS_ROWS=${CROSS_ROWS:-1000000}
DIFFS=${DIFFS:-100}
CHANGED=${CHANGED:-10000}
DROPPED=${DROPPED:-10}
THREADS=${THREADS:-4}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
FICUS_BIN=${FICUS_BIN:-target/release/ficus}
FICUS_ARGS=${FICUS_ARGS:-}
CASES=${CASES:-"pg-pg pg-mariadb"}
TOOLS=${TOOLS:-"ficus reladiff"}
REUSE_TABLES=${REUSE_TABLES:-0}
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
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is required for peak memory"
pg_args -c "select 1" >/dev/null 2>&1 || die "PostgreSQL is not reachable at $PG_URL"
[ -x "$FICUS_BIN" ] || die "ficus is not built: cargo build --release -p ficus (or set FICUS_BIN)"
[ $((DIFFS % 4)) = 0 ] || die "DIFFS must be a multiple of 4"

if [[ " $TOOLS " == *" reladiff "* ]]; then
  if [ "$SKIP_INSTALL" != 1 ] && ! command -v reladiff >/dev/null 2>&1; then
    echo "installing reladiff from PyPI..." >&2
    timeout "$STEP_TIMEOUT" python3 -m pip install -q "reladiff[postgresql,mysql]" >&2 || die "pip install reladiff failed"
  fi
  command -v reladiff >/dev/null || die "reladiff is not installed"
fi

now() { date +%s.%N; }
# reladiff wants the postgresql:// spelling.
RD_PG_URL=$(echo "$PG_URL" | sed -E 's#^postgres://#postgresql://#')
RESULTS="$OUT_DIR/results.tsv"
: > "$RESULTS"

# run NAME CASE ROWS PLANTED CMD...: times CMD, keeps its output and peak memory, records
# the differences it found.
run() {
  local name=$1 case=$2 rows=$3 planted=$4; shift 4
  local log="$OUT_DIR/$case-$planted-${name// /-}.log" t0 t1 rc
  echo "== $case: $name ($*)" >&2
  echo "$*" > "$log.cmd"
  t0=$(now)
  timeout "$STEP_TIMEOUT" /usr/bin/time -f '%M' -o "$log.rss" "$@" > "$log" 2> "$log.err"; rc=$?
  t1=$(now)
  local secs diffs rss_mb
  secs=$(echo "$t1 - $t0" | bc -l)
  rss_mb=$(awk 'END { if ($1 ~ /^[0-9]+$/) printf "%.0f", $1 / 1024; else print "?" }' "$log.rss" 2>/dev/null)
  if [ "${name%% *}" = ficus ]; then
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
  printf '%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\n' "$case" "$name" "$rows" "$planted" "$secs" "$rss_mb" "$diffs" "$rc" >> "$RESULTS"
}

SRC=bench_verify_src TGT=bench_verify_tgt XSRC=bench_verify_xsrc MY_TGT=bench_verify_tgt
cols="name amount score created flag note"
reladiff_cols=$(for c in $cols; do printf -- '-c %s ' "$c"; done)

# The generated rows, identical on both engines (values exactly representable everywhere):
# `note` is NULL on every tenth row and '' on the next, `updated_at` is in 2025.
PG_ROW="g, 'name-' || g, (g % 100000) / 100.0, g * 0.25,
  timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', g % 2 = 0,
  CASE WHEN g % 10 = 0 THEN NULL WHEN g % 10 = 1 THEN '' ELSE 'note ' || (g % 1000) END,
  timestamptz '2025-01-01 00:00:00+00' + (g % 86400) * interval '1 second'"
MY_ROW="seq, CONCAT('name-', seq), (seq % 100000) / 100, seq * 0.25,
  TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND, seq % 2 = 0,
  CASE WHEN seq % 10 = 0 THEN NULL WHEN seq % 10 = 1 THEN '' ELSE CONCAT('note ', seq % 1000) END,
  TIMESTAMP '2025-01-01 00:00:00' + INTERVAL (seq % 86400) SECOND"
# The incremental step's writes are stamped from here on.
SINCE='2026-01-01 00:00:00+00'

# The planted differences of a table of N rows, spread over the key space: DIFFS/4 each of
# missing (deleted on the target), extra (deleted on the source), changed (name, amount,
# score, created, flag in turn), and NULL against '' (note NULL on the source and '' on the
# target, or the other way round). Prints "kind id" lines.
planted_ids() {
  local n=$1 step=$(( $1 / DIFFS )) j
  for ((j = 0; j < DIFFS; j++)); do
    local base=$(( j * step + 50 ))
    case $(( j % 4 )) in
      0) echo "missing $base" ;;
      1) echo "extra $base" ;;
      2) echo "changed-$(( (j / 4) % 5 )) $(( base + 2 ))" ;;
      3) if (( (j / 4) % 2 == 0 )); then echo "null-to-empty $base"; else echo "empty-to-null $(( base + 1 ))"; fi ;;
    esac
  done
}

# plant ENGINE SRC_TABLE TGT_TABLE N: the statements that plant the differences (SQL for
# the source on stdout's first part, the target's after a line "--target").
plant_sql() {
  local engine=$1 src=$2 tgt=$3 n=$4 kind id
  local -a s_src=() s_tgt=()
  while read -r kind id; do
    case "$kind" in
      missing) s_tgt+=("DELETE FROM $tgt WHERE id = $id;") ;;
      extra) s_src+=("DELETE FROM $src WHERE id = $id;") ;;
      changed-0) s_tgt+=("UPDATE $tgt SET name = 'changed' WHERE id = $id;") ;;
      changed-1) s_tgt+=("UPDATE $tgt SET amount = amount + 0.01 WHERE id = $id;") ;;
      changed-2) s_tgt+=("UPDATE $tgt SET score = score + 0.5 WHERE id = $id;") ;;
      changed-3)
        if [ "$engine" = pg ]; then s_tgt+=("UPDATE $tgt SET created = created + interval '1 second' WHERE id = $id;")
        else s_tgt+=("UPDATE $tgt SET created = created + INTERVAL 1 SECOND WHERE id = $id;"); fi ;;
      changed-4) s_tgt+=("UPDATE $tgt SET flag = NOT flag WHERE id = $id;") ;;
      null-to-empty) s_tgt+=("UPDATE $tgt SET note = '' WHERE id = $id;") ;;
      empty-to-null) s_tgt+=("UPDATE $tgt SET note = NULL WHERE id = $id;") ;;
    esac
  done < <(planted_ids "$n")
  printf '%s\n' "${s_src[@]}"; echo "--target"; printf '%s\n' "${s_tgt[@]}"
}

# The incremental step's writes: CHANGED rows (ids 3, 3 + step, ...) renamed and stamped
# after SINCE on both sides, except every (CHANGED/DROPPED)-th on the target.
changed_sql() {
  local table=$1 skip_dropped=$2 step=$(( ROWS / CHANGED )) every=$(( CHANGED / (DROPPED > 0 ? DROPPED : 1) ))
  local cond="id % $step = 3 AND id / $step < $CHANGED"
  [ "$skip_dropped" = 1 ] && [ "$DROPPED" -gt 0 ] && cond="$cond AND (id / $step) % $every <> 0"
  echo "UPDATE $table SET name = name || '+', updated_at = timestamptz '$SINCE' + (id / $step) * interval '1 millisecond' WHERE $cond;"
}

pg_count() { pg_args -c "SELECT count(*) FROM $1" 2>/dev/null || echo 0; }

setup_pg() {
  if [ "$REUSE_TABLES" = 1 ] && [ "$(pg_count $SRC)" -ge $(( ROWS - DIFFS )) ] 2>/dev/null \
     && [ "$(pg_args -c "SELECT max(id) FROM $SRC")" = "$ROWS" ]; then
    echo "resetting the existing $ROWS-row PostgreSQL tables..." >&2
    local ids
    ids=$( { planted_ids "$ROWS"; } | awk '{print $2}' | paste -sd, -)
    local step=$(( ROWS / CHANGED ))
    pg_args <<SQL
DELETE FROM $SRC WHERE id IN ($ids); DELETE FROM $TGT WHERE id IN ($ids);
INSERT INTO $SRC SELECT $PG_ROW FROM unnest(ARRAY[$ids]::bigint[]) g;
INSERT INTO $TGT SELECT * FROM $SRC WHERE id IN ($ids);
UPDATE $SRC t SET name = 'name-' || id, updated_at = timestamptz '2025-01-01 00:00:00+00' + (id % 86400) * interval '1 second'
  WHERE id % $step = 3 AND updated_at >= timestamptz '$SINCE';
UPDATE $TGT t SET name = 'name-' || id, updated_at = timestamptz '2025-01-01 00:00:00+00' + (id % 86400) * interval '1 second'
  WHERE id % $step = 3 AND updated_at >= timestamptz '$SINCE';
VACUUM ANALYZE $SRC; VACUUM ANALYZE $TGT;
SQL
    return
  fi
  echo "generating $ROWS rows in PostgreSQL (two tables)..." >&2
  pg_args <<SQL
DROP TABLE IF EXISTS $SRC; DROP TABLE IF EXISTS $TGT;
CREATE TABLE $SRC (id bigint PRIMARY KEY, name text, amount numeric(12,2), score double precision,
  created timestamptz, flag boolean, note text, updated_at timestamptz NOT NULL);
INSERT INTO $SRC SELECT $PG_ROW FROM generate_series(1, $ROWS) g;
CREATE INDEX ON $SRC (updated_at);
CREATE TABLE $TGT (LIKE $SRC INCLUDING ALL);
INSERT INTO $TGT SELECT * FROM $SRC;
VACUUM ANALYZE $SRC; VACUUM ANALYZE $TGT;
SQL
}

# Runs SQL (source part, then target part after "--target") on PostgreSQL or MariaDB.
apply_split() {
  local sql=$1 src_engine=$2 tgt_engine=$3
  local src_part tgt_part
  src_part=$(echo "$sql" | sed '/^--target$/,$d')
  tgt_part=$(echo "$sql" | sed '1,/^--target$/d')
  if [ "$src_engine" = pg ]; then echo "$src_part" | pg_args; else echo "$src_part" | my_args; fi
  if [ "$tgt_engine" = pg ]; then echo "$tgt_part" | pg_args; else echo "$tgt_part" | my_args; fi
}

setup_cross() {
  echo "generating $CROSS_ROWS rows in PostgreSQL and MariaDB..." >&2
  pg_args <<SQL || return 1
DROP TABLE IF EXISTS $XSRC;
CREATE TABLE $XSRC (id bigint PRIMARY KEY, name text, amount numeric(12,2), score double precision,
  created timestamptz, flag boolean, note text, updated_at timestamptz NOT NULL);
INSERT INTO $XSRC SELECT $PG_ROW FROM generate_series(1, $CROSS_ROWS) g;
VACUUM ANALYZE $XSRC;
SQL
  my_args <<SQL || return 1
DROP TABLE IF EXISTS $MY_TGT;
CREATE TABLE $MY_TGT (id bigint PRIMARY KEY, name text, amount decimal(12,2), score double,
  created datetime(6), flag boolean, note text, updated_at datetime(6) NOT NULL);
INSERT INTO $MY_TGT SELECT $MY_ROW FROM seq_1_to_$CROSS_ROWS;
ANALYZE TABLE $MY_TGT;
SQL
}

has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

ficus_run() {
  local label=$1 case=$2 rows=$3 planted=$4; shift 4
  # shellcheck disable=SC2086
  has_tool ficus && run "$label" "$case" "$rows" "$planted" "$FICUS_BIN" verify "$@" \
    --max-connections "$THREADS" --json --no-progress $FICUS_ARGS
}

reladiff_run() {
  local label=$1 case=$2 rows=$3 planted=$4; shift 4
  has_tool reladiff && run "$label" "$case" "$rows" "$planted" reladiff "$@"
}

for case in $CASES; do
  case "$case" in
    pg-pg)
      setup_pg || die "PostgreSQL setup failed"
      common=(--source "$PG_URL" --source-table $SRC --target "$PG_URL" --target-table $TGT --key id
        --exclude updated_at)
      # hashdiff (not joindiff) even though both tables share a database: the same
      # algorithm family as ficus, as it would run against two servers. --skip-sort-results:
      # reladiff 0.6 fails sorting its output when a key's two rows hold NULL against a
      # string ("'<' not supported between instances of 'NoneType' and 'str'").
      # shellcheck disable=SC2086
      rd=("$RD_PG_URL" $SRC "$RD_PG_URL" $TGT -k id $reladiff_cols -a hashdiff -j "$THREADS" --skip-sort-results)
      ficus_run ficus pg-pg "$ROWS" 0 "${common[@]}"
      reladiff_run reladiff pg-pg "$ROWS" 0 "${rd[@]}"

      echo "planting $DIFFS differences..." >&2
      apply_split "$(plant_sql pg $SRC $TGT "$ROWS")" pg pg || die "planting failed"
      pg_args -c "ANALYZE $SRC; ANALYZE $TGT"
      ficus_run ficus pg-pg "$ROWS" "$DIFFS" "${common[@]}"
      reladiff_run reladiff pg-pg "$ROWS" "$DIFFS" "${rd[@]}"

      echo "writing $CHANGED rows since $SINCE ($DROPPED dropped on the target)..." >&2
      { changed_sql $SRC 0; changed_sql $TGT 1; } | pg_args || die "incremental writes failed"
      pg_args -c "ANALYZE $SRC; ANALYZE $TGT"
      ficus_run "ficus --watermark" pg-pg-incremental "$CHANGED" "$DROPPED" "${common[@]}" \
        --watermark updated_at --changed-since "$SINCE" --watermark-overlap 0s
      reladiff_run "reladiff --where" pg-pg-incremental "$CHANGED" "$DROPPED" "${rd[@]}" \
        -w "updated_at >= '$SINCE'"
      ;;
    pg-mariadb)
      command -v mysql >/dev/null || { echo "no mysql client, skipping pg-mariadb" >&2; continue; }
      my_args -e "select 1" >/dev/null 2>&1 || { echo "MariaDB not reachable, skipping pg-mariadb" >&2; continue; }
      setup_cross || die "cross-engine setup failed"
      apply_split "$(plant_sql my $XSRC $MY_TGT "$CROSS_ROWS")" pg my || die "planting failed"
      pg_args -c "ANALYZE $XSRC"
      ficus_run ficus pg-mariadb "$CROSS_ROWS" "$DIFFS" --source "$PG_URL" --source-table $XSRC \
        --target "$MY_URL" --target-table $MY_TGT --key id --exclude updated_at
      # shellcheck disable=SC2086
      reladiff_run reladiff pg-mariadb "$CROSS_ROWS" "$DIFFS" "$RD_PG_URL" $XSRC "$MY_URL" $MY_TGT \
        -k id $reladiff_cols -j "$THREADS" --skip-sort-results
      ;;
    *) echo "unknown case $case" >&2 ;;
  esac
done

if [ "$KEEP_TABLES" != 1 ] && [ "$REUSE_TABLES" != 1 ]; then
  pg_args -c "DROP TABLE IF EXISTS $SRC; DROP TABLE IF EXISTS $TGT; DROP TABLE IF EXISTS $XSRC" || true
  my_args -e "DROP TABLE IF EXISTS $MY_TGT" 2>/dev/null || true
fi

echo
echo "| case | tool | rows | planted | wall s | vs reladiff | peak MB | differences found | exit |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
while IFS=$'\t' read -r case name rows planted secs rss diffs rc; do
  # The ratio to reladiff's time on the same case and planted count.
  ref=$(awk -F'\t' -v c="$case" -v p="$planted" '$1 == c && $4 == p && $2 ~ /^reladiff/ { print $5 }' "$RESULTS" | head -1)
  ratio=$( [ -n "$ref" ] && echo "scale=2; $secs / $ref" | bc -l | sed 's/^\./0./' || echo "-")
  printf '| %s | %s | %s | %s | %s | %sx | %s | %s | %s |\n' "$case" "$name" "$rows" "$planted" "$secs" "$ratio" "$rss" "$diffs" "$rc"
done < "$RESULTS"
echo
echo "raw output: $OUT_DIR" >&2
