#!/bin/sh
# The 'net' suite's harness: a real HTTPS store on the loopback interface.
#
#   run-net.sh COMMAND [ARGS...]
#
# Makes a throw-away test CA, a server certificate for localhost and
# 127.0.0.1, client certificates (coordinator, site-a, site-b) and a
# second, untrusted CA; writes nginx.conf from nginx.conf.in (TLS 1.2/1.3,
# client certificates required, WebDAV PUT/DELETE, per-site write paths);
# runs nginx as the current user in the foreground on a free port of
# 127.0.0.1, plus a small TLS server that refuses handshakes without a
# client certificate; then runs COMMAND with FDN_NET_* variables set
# (see below), and always stops both servers afterwards.  Nothing outside
# the scratch folder is touched, and a system nginx (Debian's package may
# run one on port 80) is neither needed nor disturbed.
#
# Exit status: COMMAND's, or 77 (meson's "skipped") when nginx or openssl
# is not installed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
nginx=$(command -v nginx 2>/dev/null || true)
[ -n "$nginx" ] || { [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx; } || true
if [ -z "$nginx" ]; then
	echo "run-net: nginx is not installed (apt-get install nginx-light): skipped"
	exit 77
fi
if ! command -v openssl >/dev/null 2>&1; then
	echo "run-net: openssl is not installed: skipped"
	exit 77
fi
if ! "$nginx" -V 2>&1 | grep -q -- '--with-http_dav_module'; then
	echo "run-net: $nginx has no WebDAV module: skipped"
	exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-net-XXXXXX")
nginx_pid=""
refuser_pid=""
stop_servers() {
	for pid in $nginx_pid $refuser_pid; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in $nginx_pid $refuser_pid; do
		wait "$pid" 2>/dev/null || true
	done
	nginx_pid=""
	refuser_pid=""
}
cleanup() {
	stop_servers
	if [ -n "${FDN_NET_KEEP:-}" ]; then
		echo "run-net: kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- certificates -------------------------------------------------------------
cat > "$work/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF

ossl() {
	openssl "$@" > "$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; exit 1; }
}

# new_ca NAME CN
new_ca() {
	ossl req -x509 -config "$work/openssl.cnf" -extensions ca -newkey ec \
		-pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$2" \
		-keyout "$work/$1.key" -out "$work/$1.pem"
}
# new_cert NAME SUBJECT EXTENSIONS CA
new_cert() {
	ossl req -new -config "$work/openssl.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-nodes -subj "$2" -keyout "$work/$1.key" -out "$work/$1.csr"
	ossl x509 -req -in "$work/$1.csr" -CA "$work/$4.pem" -CAkey "$work/$4.key" \
		-CAcreateserial -days 2 -extfile "$work/openssl.cnf" -extensions "$3" \
		-out "$work/$1.pem"
}

new_ca ca "fednode test CA"
new_ca other-ca "some other CA"
new_cert server "/CN=localhost" server ca
new_cert coordinator "/O=fednode test/CN=coordinator" client ca
new_cert site-a "/O=fednode test/CN=site-a" client ca
new_cert site-b "/O=fednode test/CN=site-b" client ca
new_cert stranger "/O=elsewhere/CN=coordinator" client other-ca
chmod 600 "$work"/*.key

# --- servers ----------------------------------------------------------------------
mkdir -p "$work/www/store" "$work/tmp"

free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
	else
		echo $((20000 + ($$ * 7 + $1 * 13) % 40000))
	fi
}

# Workers of an nginx started as root would run as nobody, who cannot
# write the scratch folder: keep them as the current user.
user_line=""
if [ "$(id -u)" -eq 0 ]; then
	user_line="user $(id -un) $(id -gn);"
fi

# wait_port PORT PID: until something accepts on PORT (5 s at most;
# without python3, a second's grace while PID lives).
wait_port() {
	if ! command -v python3 >/dev/null 2>&1; then
		sleep 1
		kill -0 "$2" 2>/dev/null
		return
	fi
	i=0
	while [ $i -lt 100 ]; do
		kill -0 "$2" 2>/dev/null || return 1
		if python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" \
			2>/dev/null; then
			return 0
		fi
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

attempt=0
while :; do
	attempt=$((attempt + 1))
	port=$(free_port $attempt)
	sed -e "s|@WORK@|$work|g" -e "s|@PORT@|$port|g" -e "s|@USER@|$user_line|" \
		"$here/nginx.conf.in" > "$work/nginx.conf"
	"$nginx" -p "$work" -c "$work/nginx.conf" \
		-g "daemon off; master_process on; pid $work/nginx.pid; error_log $work/error.log info;" \
		> "$work/nginx.out" 2>&1 &
	nginx_pid=$!
	if wait_port "$port" "$nginx_pid"; then
		break
	fi
	stop_servers
	if [ $attempt -ge 5 ]; then
		echo "run-net: nginx did not start:" >&2
		cat "$work/nginx.out" "$work/error.log" >&2 2>/dev/null || true
		exit 1
	fi
done

# A TLS server that requires a client certificate in the handshake itself
# (nginx instead answers 403 after it): the transport must say so.
refuser_port=""
if command -v python3 >/dev/null 2>&1; then
	refuser_port=$(free_port 99)
	[ "$refuser_port" != "$port" ] || refuser_port=$(free_port 98)
	python3 "$here/tls_refuser.py" "$refuser_port" "$work" > "$work/refuser.log" 2>&1 &
	refuser_pid=$!
	wait_port "$refuser_port" "$refuser_pid" || refuser_port=""
fi

echo "run-net: nginx $("$nginx" -v 2>&1 | sed 's/.*\///') on https://127.0.0.1:$port (scratch $work)"

export FDN_NET_BASE="https://127.0.0.1:$port"
export FDN_NET_HOST_BASE="https://localhost:$port"
export FDN_NET_DIR="$work"
export FDN_NET_ACCESS_LOG="$work/access.log"
export FDN_NET_REFUSER_BASE="${refuser_port:+https://127.0.0.1:$refuser_port}"
# The transport must not take a proxy from the caller's environment here.
unset https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY || true

set +e
"$@"
rc=$?
set -e
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
	echo "--- nginx error log (last lines) ---"
	tail -n 20 "$work/error.log" 2>/dev/null || true
fi
exit $rc
