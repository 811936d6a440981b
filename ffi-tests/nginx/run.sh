#!/usr/bin/env bash
# End-to-end test of the leastconn nginx module against the distribution's /usr/sbin/nginx.
#
# One nginx (2 workers, test prefix, loopback only) proxies two ports to the same three
# backends: one through `leastconn` (this module), one through nginx's built-in `least_conn`.
# Backend c answers ten times slower than a and b. Phases, each under wrk load:
#   compare  five rounds of built-in and module runs, alternating which goes first;
#   reload   the module's port while the master gets SIGHUP twice;
#   dead     both ports after backend b was killed.
# Before them `nginx -t` must refuse bad values; after them an https upstream must resume TLS
# sessions. Then e2e.py checks and prints the table (see its `report`). Needs: nginx, wrk,
# python3, openssl, and the module built by build.sh. Environment: LEASTCONN_NGINX_PORT_BASE
# (18080: uses base+1..5 and base+10..12), LEASTCONN_NGINX_SECONDS (4 per run),
# LEASTCONN_NGINX_KEEP=1 keeps the prefix with its logs. Processes started here are stopped
# by PID, also on failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
module=${LEASTCONN_NGINX_MODULE:-$repo/ffi-tests/build/nginx/ngx_http_upstream_leastconn_module.so}
base=${LEASTCONN_NGINX_PORT_BASE:-18080}
duration=${LEASTCONN_NGINX_SECONDS:-4}
connections=${LEASTCONN_NGINX_CONNECTIONS:-32}
workers=2
max_fails=2
fast_ms=20
slow_ms=200

[ -f "$module" ] || { echo "run.sh: $module not found: run build.sh first" >&2; exit 1; }
for cmd in nginx wrk python3 openssl; do
  command -v "$cmd" >/dev/null || { echo "run.sh: $cmd not found" >&2; exit 1; }
done
nginx_bin=$(command -v nginx)

port_a=$((base + 1)) port_b=$((base + 2)) port_c=$((base + 3)) port_tls=$((base + 4)) port_cap=$((base + 5))
port_lc=$((base + 10)) port_builtin=$((base + 11)) port_status=$((base + 12))

prefix=$(mktemp -d /tmp/leastconn-nginx.XXXXXX)
mkdir -p "$prefix"/{logs,tmp/body,tmp/proxy,tmp/fastcgi,tmp/uwsgi,tmp/scgi}
pids=()
nginx_pid=

cleanup() {
  local rc=$?
  trap - EXIT
  if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
    kill -TERM "$nginx_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$nginx_pid" 2>/dev/null; then
      pkill -KILL -P "$nginx_pid" 2>/dev/null || true # its workers
      kill -KILL "$nginx_pid" 2>/dev/null || true
    fi
  fi
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    echo "run.sh: FAILED (rc=$rc); logs kept in $prefix" >&2
    tail -n 20 "$prefix/logs/error.log" 2>/dev/null >&2 || true
  elif [ -z "${LEASTCONN_NGINX_KEEP:-}" ]; then
    rm -rf "$prefix"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_port() {
  python3 - "$1" <<'EOF'
import socket, sys, time
deadline = time.monotonic() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(f"port {sys.argv[1]} did not open")
        time.sleep(0.05)
EOF
}

for port in "$port_a" "$port_b" "$port_c" "$port_tls" "$port_cap" "$port_lc" "$port_builtin" "$port_status"; do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), timeout=0.2)" 2>/dev/null; then
    echo "run.sh: port $port is in use; set LEASTCONN_NGINX_PORT_BASE" >&2
    exit 1
  fi
done

# Backends: a and b fast, c ten times slower.
python3 "$here/backend.py" "$port_a" "$fast_ms" a >"$prefix/logs/backend-a.log" 2>&1 & pids+=($!); pid_a=$!
python3 "$here/backend.py" "$port_b" "$fast_ms" b >"$prefix/logs/backend-b.log" 2>&1 & pids+=($!); pid_b=$!
python3 "$here/backend.py" "$port_c" "$slow_ms" c >"$prefix/logs/backend-c.log" 2>&1 & pids+=($!)
# And one over TLS, to check that sessions to upstreams are resumed.
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
  -keyout "$prefix/tls.key" -out "$prefix/tls.crt" 2>/dev/null
python3 "$here/backend.py" "$port_tls" 0 tls "$prefix/tls.crt" "$prefix/tls.key" \
  >"$prefix/logs/backend-tls.log" 2>&1 & pids+=($!)
# And a slow one behind max_conns=1, to check the cap.
python3 "$here/backend.py" "$port_cap" "$slow_ms" capped >"$prefix/logs/backend-capped.log" 2>&1 & pids+=($!)

# A hostname that resolves to several addresses: through a private /etc/hosts in a mount
# namespace when we may make one (root), otherwise whatever `localhost` resolves to here.
resolved_name=localhost
launcher=()
printf '127.0.0.1 lc-multi.test\n127.0.0.2 lc-multi.test\n127.0.0.3 lc-multi.test\n' >"$prefix/hosts"
if unshare -m sh -c "mount --bind '$prefix/hosts' /etc/hosts" 2>/dev/null; then
  resolved_name=lc-multi.test
  launcher=(unshare -m sh -c "mount --bind '$prefix/hosts' /etc/hosts && exec \"\$0\" \"\$@\"")
  resolved_expect="127.0.0.1:$port_a,127.0.0.2:$port_a,127.0.0.3:$port_a"
else
  resolved_expect=$(python3 -c "
import socket
addrs = socket.getaddrinfo('localhost', $port_a, type=socket.SOCK_STREAM)
print(','.join(dict.fromkeys(f'[{a[4][0]}]:{a[4][1]}' if a[0] == socket.AF_INET6 else f'{a[4][0]}:{a[4][1]}'
                             for a in addrs)))")
fi

servers() {
  echo "server 127.0.0.1:$port_a max_fails=$max_fails fail_timeout=30s;"
  echo "        server 127.0.0.1:$port_b max_fails=$max_fails fail_timeout=30s;"
  echo "        server 127.0.0.1:$port_c max_fails=$max_fails fail_timeout=30s;"
}

cat >"$prefix/nginx.conf" <<EOF
load_module $module;
worker_processes $workers;
pid $prefix/logs/nginx.pid;
error_log $prefix/logs/error.log notice;
events {
    worker_connections 4096;
}
http {
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    log_format runs "\$http_x_run\t\$status\t\$upstream_addr\t\$msec";
    access_log off;

    upstream lc {
        leastconn;
        $(servers)
        keepalive 32;
    }
    upstream builtin {
        least_conn;
        $(servers)
        keepalive 32;
    }
    # Never proxied to: how server lines map to upstreams (see leastconn_status). Each
    # address of a hostname is its own upstream; down and backup servers are kept.
    upstream shapes {
        leastconn;
        server $resolved_name:$port_a;
        server 127.0.0.1:$port_b down;
        server unix:$prefix/backend.sock backup max_conns=7;
    }

    upstream tls {
        leastconn;
        server 127.0.0.1:$port_tls;
    }
    upstream capped {
        leastconn;
        server 127.0.0.1:$port_cap max_conns=1;
        server 127.0.0.1:$port_a;
    }
    upstream uncapped {
        leastconn;
        server 127.0.0.1:$port_cap;
        server 127.0.0.1:$port_a;
    }

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_next_upstream error timeout;
    proxy_connect_timeout 2s;

    server {
        listen 127.0.0.1:$port_lc;
        access_log $prefix/logs/access.log runs;
        location / { proxy_pass http://lc; }
        location /tls { proxy_pass https://tls; proxy_ssl_session_reuse on; }
        location /capped { proxy_pass http://capped; }
        location /uncapped { proxy_pass http://uncapped; }
    }
    server {
        listen 127.0.0.1:$port_builtin;
        access_log $prefix/logs/access.log runs;
        location / { proxy_pass http://builtin; }
    }
    server {
        # reuseport: fresh connections reach every worker, so each one's status can be read.
        listen 127.0.0.1:$port_status reuseport;
        location = /leastconn_status { leastconn_status; }
    }
}
EOF

"${launcher[@]}" "$nginx_bin" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" -t -q

# Values nginx accepts but the library cannot honour fail `nginx -t`, with the reason.
reject() { # expected-message sed-expression
  sed "$2" "$prefix/nginx.conf" >"$prefix/bad.conf"
  if "${launcher[@]}" "$nginx_bin" -p "$prefix" -c "$prefix/bad.conf" -e "$prefix/logs/bad.log" -t >"$prefix/bad.out" 2>&1 ||
    ! grep -q "$1" "$prefix/bad.out"; then
    echo "run.sh: nginx -t did not fail with \"$1\":" >&2
    cat "$prefix/bad.out" >&2
    exit 1
  fi
  echo "run.sh: nginx -t refuses: $(grep -o "leastconn: .*" "$prefix/bad.out" | head -n 1)"
}
reject '"zone" is not supported' 's/^\( *\)leastconn;$/\1leastconn; zone lc 64k;/'
reject 'has weight above' "s/server 127.0.0.1:$port_a max_fails/server 127.0.0.1:$port_a weight=2000000 max_fails/"
reject 'max_fails=5000' 's/max_fails=2 /max_fails=5000 /'
"${launcher[@]}" "$nginx_bin" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" -g 'daemon off;' &
nginx_pid=$!
for port in "$port_a" "$port_b" "$port_c" "$port_tls" "$port_cap" "$port_lc" "$port_builtin" "$port_status"; do
  wait_port "$port"
done
echo "run.sh: nginx $nginx_pid with $workers workers under $prefix; backends a, b (${fast_ms} ms), c (${slow_ms} ms)"

runs=()
load() { # id balancer phase port seconds [wrk options]
  local id=$1 balancer=$2 phase=$3 port=$4 seconds=$5
  shift 5
  wrk -t1 -c"$connections" -d"${seconds}s" --timeout 5s -H "X-Run: $id" -s "$here/report.lua" "$@" \
    "http://127.0.0.1:$port/" >"$prefix/wrk-$id.out" 2>&1
  grep '^WRK ' "$prefix/wrk-$id.out" | sed "s/^/run.sh: $id: /"
  runs+=("{\"id\": \"$id\", \"balancer\": \"$balancer\", \"phase\": \"$phase\"}")
}

load warm-builtin least_conn warmup "$port_builtin" 1
load warm-lc leastconn warmup "$port_lc" 1
for round in 1 2 3 4 5; do
  if [ $((round % 2)) -eq 1 ]; then
    load "cmp$round-builtin" least_conn compare "$port_builtin" "$duration"
    load "cmp$round-lc" leastconn compare "$port_lc" "$duration"
  else
    load "cmp$round-lc" leastconn compare "$port_lc" "$duration"
    load "cmp$round-builtin" least_conn compare "$port_builtin" "$duration"
  fi
done

python3 "$here/e2e.py" status "$port_status" "$workers" "$prefix/status-before-reload.json"
reload_seconds=$((duration + 3 < 7 ? 7 : duration + 3))  # the SIGHUPs come at 2 s and 5 s
(
  sleep 2; kill -HUP "$nginx_pid"
  sleep 3; kill -HUP "$nginx_pid"
) &
reloader=$!
pids+=("$reloader")
# Each request on a new connection: an old worker closing an idle keep-alive connection
# while the client sends on it is a race of HTTP keep-alive itself, whatever the balancer.
load reload-lc leastconn reload "$port_lc" "$reload_seconds" -H "Connection: close"
wait "$reloader"
# The old workers leave once their requests are done; the status port then only reaches new ones.
for _ in $(seq 100); do
  [ "$(pgrep -c -P "$nginx_pid")" -le "$workers" ] && break
  sleep 0.1
done
python3 "$here/e2e.py" status "$port_status" "$workers" "$prefix/status-after-reload.json"

kill "$pid_b"
wait "$pid_b" 2>/dev/null || true
load dead-lc leastconn dead "$port_lc" "$duration"
python3 "$here/e2e.py" status "$port_status" "$workers" "$prefix/status-dead.json"
load dead-builtin least_conn dead "$port_builtin" "$duration"

python3 "$here/e2e.py" tls "$port_lc" 40 "$prefix/tls.json"
python3 "$here/e2e.py" capped "$port_lc" "$connections" "$prefix/capped.json" /capped
# The control, after it (the backend's peak only grows): the same without max_conns.
python3 "$here/e2e.py" capped "$port_lc" "$connections" "$prefix/uncapped.json" /uncapped
python3 "$here/e2e.py" status "$port_status" "$workers" "$prefix/status-idle.json" --idle 10

kill -QUIT "$nginx_pid"
wait "$nginx_pid"
nginx_pid=

cp "$prefix/logs/access.log" "$prefix/logs/error.log" "$prefix/"
cat >"$prefix/test.json" <<EOF
{
  "backends": {"a": "127.0.0.1:$port_a", "b": "127.0.0.1:$port_b", "c": "127.0.0.1:$port_c"},
  "slow": "c",
  "dead": "b",
  "max_fails": $max_fails,
  "workers": $workers,
  "connections": $connections,
  "reloads": 2,
  "shapes": {"name": "$resolved_name", "resolved": ["${resolved_expect//,/\", \"}"],
             "down": "127.0.0.1:$port_b", "backup": "unix/$prefix/backend.sock"},
  "runs": [$(IFS=,; echo "${runs[*]}")]
}
EOF
python3 "$here/e2e.py" report "$prefix"
