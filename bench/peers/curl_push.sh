#!/usr/bin/env bash
# Push an OCI layout with curl: for each blob one POST then one monolithic `PUT -T`, PAR at a
# time, then the manifest. The practical ceiling of this registry: no hashing, no compression.
#   curl_push.sh LAYOUT_DIR BASE_URL REPO TAG PAR
# The driver passes what to send in $BENCH_BLOBS (digests, space-separated), $BENCH_MANIFEST
# (digest) and $BENCH_MEDIATYPE; TLS and auth in $BENCH_CA and $BENCH_USER/$BENCH_PASSWORD.
set -euo pipefail
layout=$1 base=$2 repo=$3 tag=$4 par=$5
export layout base repo

upload() {  # $1 = sha256:HEX
    local o=(-sS -f --http1.1)
    [[ -n ${BENCH_CA:-} ]] && o+=(--cacert "$BENCH_CA")
    [[ -n ${BENCH_USER:-} ]] && o+=(-u "$BENCH_USER:$BENCH_PASSWORD")
    local loc sep
    loc=$(curl "${o[@]}" -X POST -o /dev/null -D - "$base/v2/$repo/blobs/uploads/" |
        tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    [[ $loc == http* ]] || loc="$base$loc"
    sep='?'
    [[ $loc == *'?'* ]] && sep='&'
    curl "${o[@]}" -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
        -T "$layout/blobs/sha256/${1#sha256:}" "$loc${sep}digest=$1"
}
export -f upload

printf '%s\n' $BENCH_BLOBS | xargs -P "$par" -I{} bash -c 'upload {}'
o=(-sS -f --http1.1)
[[ -n ${BENCH_CA:-} ]] && o+=(--cacert "$BENCH_CA")
[[ -n ${BENCH_USER:-} ]] && o+=(-u "$BENCH_USER:$BENCH_PASSWORD")
curl "${o[@]}" -o /dev/null -X PUT -H "Content-Type: $BENCH_MEDIATYPE" \
    --data-binary "@$layout/blobs/sha256/${BENCH_MANIFEST#sha256:}" \
    "$base/v2/$repo/manifests/$tag"
