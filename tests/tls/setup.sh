#!/usr/bin/env bash
# Starts the TLS-only store servers the lti-store TLS tests
# (crates/lti-store/tests/tls.rs) connect to, with a certificate authority
# made here:
#
#   $dir/ca.pem, ca.key          the test CA
#   $dir/server.pem, server.key  the servers' certificate, signed by the CA,
#                                naming only 127.0.0.1 and localhost
#   $dir/wrong-ca.pem            a second CA that signed nothing the servers use
#   Redis       TLS only (--port 0 --tls-port), 127.0.0.1 and 127.0.0.2:$redis_port
#   PostgreSQL  its own cluster in $dir/pg, ssl = on, pg_hba `hostssl` lines
#               only (no plain TCP), trust auth, 127.0.0.1 and 127.0.0.2:$pg_port
#   $dir/env    `export` lines for the tests: LTI_TEST_REDIS_TLS_URL,
#               LTI_TEST_POSTGRES_TLS_URL (both carrying the CA as
#               `sslrootcert=`), LTI_TEST_TLS_CA, LTI_TEST_TLS_WRONG_CA
#
# 127.0.0.2 is on the loopback interface too but not in the certificate: the
# tests use it for the wrong-hostname case.
#
# The directory is under /tmp by default (LTI_TLS_DIR overrides it) because
# the PostgreSQL server runs as the `postgres` user, which must reach it.
# Ports: LTI_TLS_REDIS_PORT (default 6380), LTI_TLS_PG_PORT (default 5433).
#
# Idempotent: certificates are kept while valid for another day, servers that
# already answer over TLS are left running; fails loudly otherwise. Must run
# as root (it starts PostgreSQL as `postgres`).
set -euo pipefail

dir="${LTI_TLS_DIR:-/tmp/lti-rs-tls}"
redis_port="${LTI_TLS_REDIS_PORT:-6380}"
pg_port="${LTI_TLS_PG_PORT:-5433}"

fail() { printf 'tls setup FAILED: %s\n' "$*" >&2; exit 1; }
[[ "$(id -u)" == 0 ]] || fail "run as root (PostgreSQL is started as the postgres user)"
for tool in openssl redis-server redis-cli psql; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed"
done
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
[[ -x "$pg_bin/initdb" && -x "$pg_bin/pg_ctl" ]] || fail "PostgreSQL server binaries not found under /usr/lib/postgresql"
id postgres >/dev/null 2>&1 || fail "no postgres user"

mkdir -p "$dir"
chmod 755 "$dir"
cd "$dir"

# --- certificates -----------------------------------------------------------
certs_ok() {
  [[ -s ca.pem && -s ca.key && -s server.pem && -s server.key && -s wrong-ca.pem ]] &&
    openssl verify -CAfile ca.pem server.pem >/dev/null 2>&1 &&
    openssl x509 -in server.pem -noout -checkend 86400 >/dev/null &&
    openssl x509 -in ca.pem -noout -checkend 86400 >/dev/null
}

stop_servers() {
  local pid
  pid="$(cat redis/redis.pid 2>/dev/null || true)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [[ -f pg/PG_VERSION ]]; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

make_ca() { # name, common name
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.pem" -days 825 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

if ! certs_ok; then
  echo "creating the test CA and server certificate in $dir"
  stop_servers # they would keep serving the old certificate
  rm -f ./*.pem ./*.key ./*.csr ./*.ext ./*.srl
  make_ca ca "lti-rs test CA"
  make_ca wrong-ca "lti-rs unrelated test CA"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
  cat >server.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EXT
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 825 -sha256 -extfile server.ext -out server.pem 2>/dev/null
  certs_ok || fail "the generated certificates do not verify"
fi
chmod 644 ca.pem wrong-ca.pem server.pem
chmod 600 ca.key wrong-ca.key server.key

# --- Redis, TLS only ----------------------------------------------------------
redis_tls_ping() {
  redis-cli --tls --cacert "$dir/ca.pem" -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG
}
if redis_tls_ping; then
  echo "TLS Redis already running on 127.0.0.1:$redis_port"
else
  echo "starting TLS-only Redis on 127.0.0.1:$redis_port"
  mkdir -p redis
  redis-server --daemonize yes --bind 127.0.0.1 127.0.0.2 --port 0 --tls-port "$redis_port" \
    --tls-cert-file "$dir/server.pem" --tls-key-file "$dir/server.key" \
    --tls-ca-cert-file "$dir/ca.pem" --tls-auth-clients no \
    --save "" --appendonly no --dir "$dir/redis" \
    --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log"
  for _ in $(seq 1 50); do redis_tls_ping && break; sleep 0.2; done
  redis_tls_ping || fail "TLS Redis did not come up on port $redis_port (see $dir/redis/redis.log)"
fi
# TLS only: a plain-text PING must not be answered.
if redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
  fail "Redis on port $redis_port answers plain text"
fi

# --- PostgreSQL, ssl = on, hostssl only -----------------------------------------
pg_url="postgres://root@127.0.0.1:$pg_port/test?sslmode=verify-full&sslrootcert=$dir/ca.pem"
pg_tls_ok() { psql "$pg_url" -Atqc 'select 1' >/dev/null 2>&1; }
if [[ ! -f pg/PG_VERSION ]]; then
  echo "creating a PostgreSQL cluster in $dir/pg"
  rm -rf pg pgsock
  install -d -o postgres -g postgres -m 700 pg
  runuser -u postgres -- "$pg_bin/initdb" -D "$dir/pg" -U root --auth=trust \
    --no-instructions >"$dir/initdb.log" 2>&1 || fail "initdb failed (see $dir/initdb.log)"
fi
install -d -o postgres -g postgres -m 755 pgsock pglog
install -o postgres -g postgres -m 644 server.pem pg/server.crt
install -o postgres -g postgres -m 600 server.key pg/server.key
cat >pg/postgresql.auto.conf <<CONF
port = $pg_port
listen_addresses = '127.0.0.1,127.0.0.2'
unix_socket_directories = '$dir/pgsock'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
fsync = off
CONF
cat >pg/pg_hba.conf <<'HBA'
# The setup script's own socket; over TCP only TLS connections are accepted.
local   all  all                 trust
hostssl all  all  127.0.0.0/8    trust
HBA
chown postgres:postgres pg/postgresql.auto.conf pg/pg_hba.conf
if runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir/pg" status >/dev/null 2>&1; then
  echo "TLS PostgreSQL already running; reloading its configuration"
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir/pg" reload >/dev/null
else
  echo "starting PostgreSQL with ssl = on on 127.0.0.1:$pg_port"
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pglog/pg.log" -w -t 30 start >/dev/null ||
    fail "PostgreSQL did not start (see $dir/pglog/pg.log)"
fi
if ! psql -h "$dir/pgsock" -p "$pg_port" -U root -d postgres -Atqc \
  "select 1 from pg_database where datname = 'test'" | grep -q 1; then
  psql -h "$dir/pgsock" -p "$pg_port" -U root -d postgres -qc 'create database test' ||
    fail "could not create database test"
fi
for _ in $(seq 1 25); do pg_tls_ok && break; sleep 0.2; done
pg_tls_ok || fail "PostgreSQL on port $pg_port does not accept a verify-full TLS connection"
if psql "postgres://root@127.0.0.1:$pg_port/test?sslmode=disable" -Atqc 'select 1' >/dev/null 2>&1; then
  fail "PostgreSQL on port $pg_port accepts plain-text connections"
fi

cat >env <<ENV
export LTI_TEST_REDIS_TLS_URL='rediss://127.0.0.1:$redis_port/?sslrootcert=$dir/ca.pem'
export LTI_TEST_POSTGRES_TLS_URL='$pg_url'
export LTI_TEST_TLS_CA='$dir/ca.pem'
export LTI_TEST_TLS_WRONG_CA='$dir/wrong-ca.pem'
ENV
echo "TLS stores ready; variables in $dir/env"
