#!/usr/bin/env bash
# Certificates for the TLS tests, in DIR: the cluster CA and node
# certificates from scripts/security/make_dev_certs.sh (coordinator,
# worker-0, worker-1, and client: a valid certificate of a node the plan
# never names), plus what must be refused:
#   DIR/other/ca.pem, DIR/other/rogue.{pem,key}  another CA and a node of it
#   DIR/expired.{pem,key}  signed by the cluster CA, expired in 2020
set -euo pipefail
DIR="$1"
HERE="$(cd "$(dirname "$0")" && pwd)"
MAKE="$HERE/../../scripts/security/make_dev_certs.sh"
"$MAKE" "$DIR" coordinator worker-0 worker-1 client >/dev/null
"$MAKE" "$DIR/other" rogue >/dev/null

# openssl x509 cannot back-date; openssl ca can, given a small database.
umask 077
db="$(mktemp -d)"
touch "$db/index.txt"
echo 1000 >"$db/serial"
cat >"$db/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
database = $db/index.txt
new_certs_dir = $db
serial = $db/serial
default_md = sha256
policy = any
copy_extensions = copy
[any]
commonName = supplied
CNF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
  -subj "/CN=expired" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -addext "extendedKeyUsage=serverAuth,clientAuth" \
  -keyout "$DIR/expired.key" -out "$db/expired.csr" 2>/dev/null
openssl ca -batch -notext -config "$db/ca.cnf" -cert "$DIR/ca.pem" -keyfile "$DIR/ca.key" \
  -startdate 20200101000000Z -enddate 20200102000000Z \
  -in "$db/expired.csr" -out "$DIR/expired.pem" 2>/dev/null
rm -rf "$db"
