# Sourced by bench/sql.sh and bench/sql_floor.sh: starts a PostgreSQL cluster of its own in $pg
# (as `nobody` when run as root; server defaults but for fsync=off, which only the load feels),
# stops it on exit, and loads $file into the table `victims` (text columns and a bigint `services`).
# Sets pgbin, as_server, psql_, load_start, load_end and table_mib.
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_server() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }

rm -rf "$pg" && mkdir -p "$pg" && { [ "$(id -u)" != 0 ] || chown nobody "$pg"; }
as_server "$pgbin/initdb" -D "$pg/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 > /dev/null
as_server "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w start -o \
  "-k $PWD/$pg -c listen_addresses= -c fsync=off -c shared_preload_libraries=auto_explain" > /dev/null
trap 'as_server "$pgbin/pg_ctl" -D "$pg/data" -m fast stop > /dev/null' EXIT
psql_() { psql -X -q -h "$PWD/$pg" -U postgres -d postgres "$@"; }
psql_ -c "CREATE TABLE victims (victim_id text, gender text, age_group text, region text, victim_type text, services bigint)"
load_start=$(date +%s.%N)
psql_ -c "\\copy victims FROM '$file' (FORMAT csv, HEADER true)"
load_end=$(date +%s.%N)
psql_ -c "VACUUM ANALYZE victims"
table_mib=$(psql_ -At -c "SELECT pg_total_relation_size('victims') / 1048576")
