#!/usr/bin/env bash
# Makes a new API key for tessera-coordinator --api-keys.
#
#   scripts/security/new_api_key.sh KEYS_FILE ID [admin] [rpm=N] [tpm=N] [streams=N]
#
# Appends "ID sha256:HASH [options]" to KEYS_FILE (created with mode 0600)
# and prints the key itself on stdout, once: the file holds only its hash.
# Send the coordinator SIGHUP to load it. To revoke a key, delete its line
# and send SIGHUP again.
set -euo pipefail
if (($# < 2)); then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
FILE="$1"
ID="$2"
shift 2
if [[ ! "$ID" =~ ^[A-Za-z0-9._@-]+$ ]]; then
  echo "new_api_key.sh: ID '$ID': use letters, digits and . _ @ - only" >&2
  exit 2
fi
if [[ -f "$FILE" ]] && grep -q "^$ID[[:space:]]" "$FILE"; then
  echo "new_api_key.sh: $FILE already has a key $ID" >&2
  exit 2
fi
KEY="tsk-$(openssl rand -hex 24)"
HASH="$(printf '%s' "$KEY" | openssl dgst -sha256 -r | cut -d' ' -f1)"
umask 077
echo "$ID sha256:$HASH${*:+ $*}" >>"$FILE"
echo "$KEY"
