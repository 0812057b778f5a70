#!/usr/bin/env bash
# make-certs.sh — a CA, node certificates and client certificates for one
# raftkit cluster, made with the openssl command (EC P-256 keys, SHA-256).
#
#   scripts/make-certs.sh DIR CLUSTER_ID [--nodes 1,2,3] [--client NAME:ROLE]...
#                         [--days N] [--ca CA_DIR]
#
# Writes into DIR (created if missing):
#   ca.pem, ca.key              the cluster CA (made once: reused if present, or
#                               taken from CA_DIR with --ca)
#   node-<id>.pem, .key         SAN URI raftkit://<CLUSTER_ID>/node/<id>
#   client-<name>.pem, .key     SAN URI raftkit://<CLUSTER_ID>/client/<name>?role=<role>
# ROLE is read, write or admin (admin includes write, write includes read).
# --days N: validity of the new certificates (default 365; -1 makes an
# already-expired certificate, for tests). Keys are written mode 0600.
#
# Rotation: run it again with the same DIR (the CA is reused) to issue new
# node or client certificates; servers reload changed files on their own
# (or on reload_credentials()). Keep ca.key off the servers: it can issue
# certificates for any node. Nothing made here belongs in version control.
set -euo pipefail

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 2 ]] || usage
dir=$1 cluster=$2
shift 2
nodes="" days=365 ca_dir="" clients=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --client) clients+=("$2"); shift 2 ;;
    --days) days=$2; shift 2 ;;
    --ca) ca_dir=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "make-certs.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $cluster =~ ^[A-Za-z0-9._-]+$ ]] || { echo "make-certs.sh: cluster id must be [A-Za-z0-9._-]+" >&2; exit 2; }
command -v openssl >/dev/null || { echo "make-certs.sh: the openssl command is missing (apt-get install openssl)" >&2; exit 1; }

mkdir -p "$dir"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ -n $ca_dir ]]; then
  cp "$ca_dir/ca.pem" "$ca_dir/ca.key" "$dir/"
elif [[ ! -f $dir/ca.pem || ! -f $dir/ca.key ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 -subj "/CN=raftkit CA for $cluster" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$tmp/log" ||
    { cat "$tmp/log" >&2; exit 1; }
fi

# issue NAME CN URI EXTENDED_KEY_USAGE
issue() {
  local name=$1 cn=$2 uri=$3 eku=$4
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -keyout "$dir/$name.key" -out "$tmp/$name.csr" -subj "/CN=$cn" 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
  printf 'subjectAltName=URI:%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n' \
    "$uri" "$eku" >"$tmp/$name.ext"
  openssl x509 -req -in "$tmp/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -CAserial "$tmp/ca.srl" -days "$days" -sha256 -extfile "$tmp/$name.ext" -out "$dir/$name.pem" 2>"$tmp/log" ||
    { cat "$tmp/log" >&2; exit 1; }
  chmod 600 "$dir/$name.key"
  chmod 644 "$dir/$name.pem"
}

IFS=, read -r -a node_list <<<"$nodes"
for id in "${node_list[@]}"; do
  [[ $id =~ ^[1-9][0-9]*$ ]] || { echo "make-certs.sh: node id '$id' is not a positive integer" >&2; exit 2; }
  issue "node-$id" "$cluster node $id" "raftkit://$cluster/node/$id" "serverAuth,clientAuth"
done
for spec in "${clients[@]}"; do
  name=${spec%%:*} role=${spec#*:}
  [[ $name =~ ^[A-Za-z0-9._-]+$ && $spec == *:* ]] || { echo "make-certs.sh: --client wants NAME:ROLE, got '$spec'" >&2; exit 2; }
  [[ $role == read || $role == write || $role == admin ]] || { echo "make-certs.sh: role '$role' is not read, write or admin" >&2; exit 2; }
  issue "client-$name" "$cluster client $name" "raftkit://$cluster/client/$name?role=$role" "clientAuth"
done
chmod 644 "$dir/ca.pem"
