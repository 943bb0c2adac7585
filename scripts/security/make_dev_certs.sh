#!/usr/bin/env bash
# Makes a development CA and node certificates for a TLS cluster, with
# openssl. Not for production: the CA key sits unencrypted next to the
# certificates (docs/security.md says what to do instead).
#
#   scripts/security/make_dev_certs.sh DIR NAME[=SAN,SAN...] ...
#
# DIR/ca.pem and DIR/ca.key are made once and reused; each NAME gets
# DIR/NAME.pem and DIR/NAME.key, with Common Name NAME (how the cluster
# knows the node) and the subject alternative names given, by default
# localhost, 127.0.0.1, ::1 and this host's name. SANs are DNS names or IP
# addresses: list every name clients and other nodes dial. The certificates
# serve as both server and client certificates (mTLS).
#
# Example: a coordinator and two workers on three hosts
#   make_dev_certs.sh certs coordinator=coord.lan worker-1=10.0.0.2 worker-2=10.0.0.3
set -euo pipefail

if (($# < 2)); then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
DIR="$1"
shift
mkdir -p "$DIR"
umask 077
DAYS="${TESSERA_CERT_DAYS:-365}"

if [[ ! -f "$DIR/ca.pem" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -days "$DAYS" -subj "/CN=Tessera development CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
  echo "made $DIR/ca.pem"
fi

for spec in "$@"; do
  name="${spec%%=*}"
  sans=""
  if [[ "$spec" == *=* ]]; then sans="${spec#*=}"; fi
  if [[ -z "$sans" ]]; then sans="localhost,127.0.0.1,::1,$(hostname)"; fi
  alt=""
  IFS=',' read -ra list <<<"$sans"
  for s in "${list[@]}"; do
    if [[ "$s" =~ ^[0-9.]+$ || "$s" == *:* ]]; then alt+="IP:$s,"; else alt+="DNS:$s,"; fi
  done
  alt="${alt%,}"
  ext="$(mktemp)"
  printf '%s\n' "subjectAltName=$alt" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" >"$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -subj "/CN=$name" -keyout "$DIR/$name.key" -out "$DIR/$name.csr" 2>/dev/null
  openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
    -CAcreateserial -days "$DAYS" -sha256 -extfile "$ext" -out "$DIR/$name.pem" 2>/dev/null
  rm -f "$DIR/$name.csr" "$ext"
  echo "made $DIR/$name.pem ($alt)"
done
