#!/usr/bin/env bash
# Instructions per status poll, the mock against bare hyper, counted by valgrind's callgrind.
#
# Throughput on a shared 2-core VM drifts by ±15 % from run to run; an instruction count does
# not (about ±1 % here), so this is how a change to the poll path is judged before the
# side-by-side throughput run of `cargo run --release -p bench -- polls` confirms it.
#
# Each server runs under callgrind; wrk (1 thread, 20 connections) warms it up for 3 s, the
# counters are zeroed, wrk polls for 8 s more, and the counters are dumped. Instructions are user
# space only (the kernel's share is not counted). Loopback only.
#
# Usage: bench/instructions.sh [--top N] [--keep DIR]
#   --top: also list the mock's N costliest functions
#   --keep: copy both callgrind profiles to DIR (mock.callgrind, bare.callgrind) for
#           callgrind_annotate or kcachegrind
# Needs valgrind, wrk and curl (installed with apt-get when missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."

top=0
keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --top) top="${2:-25}"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    *) echo "usage: bench/instructions.sh [--top N] [--keep DIR]" >&2; exit 2 ;;
  esac
done

for tool in valgrind wrk curl; do
  if ! command -v "$tool" >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      apt-get install -y -qq valgrind wrk curl >/dev/null
    else
      echo "instructions.sh needs $tool (apt-get install valgrind wrk curl)" >&2
      exit 1
    fi
  fi
done

cargo build --release -q -p mock-server -p bench
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Copies, so that valgrind never holds the files cargo rebuilds.
cp target/release/mock-server "$work/mock-server"
cp target/release/bench "$work/bench"

# Waits for "<prefix>http://ADDR" in $1 and prints ADDR.
address_in() {
  for _ in $(seq 200); do
    if addr=$(grep -o "$2http://[0-9.:]*" "$1" 2>/dev/null | head -1); then
      [[ -n "$addr" ]] && { echo "${addr#"$2"http://}"; return; }
    fi
    sleep 0.1
  done
  echo "no address in $1" >&2
  exit 1
}

# Runs wrk against $1 under the callgrind process $2; prints instructions per request.
count() {
  local url=$1 pid=$2 out reqs ir file
  wrk -t1 -c20 -d3s -H 'x-api-key: bench' "$url" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  out=$(wrk -t1 -c20 -d8s -H 'x-api-key: bench' "$url")
  callgrind_control -d "$pid" >/dev/null 2>&1
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  sleep 0.5
  file=$(ls -t "$work"/callgrind.out."$pid"* | head -1)
  ir=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
  echo "$((ir / reqs)) $reqs $file"
}

# The mock, with the bench's settings, and the completed job every poll reads.
mkdir -p "$work/store"
MOCK_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out.%p" \
  "$work/mock-server" --bind 127.0.0.1:0 --seed 7 --clock manual --queue-time 0s \
  --processing-time 0s --storage-dir "$work/store" >"$work/mock.out" 2>"$work/mock.err" &
pids+=($!)
mock=$(address_in "$work/mock.out" "mock-server listening on ")
curl -sf -o /dev/null -H 'x-api-key: bench' -F file=@fixtures/media/sample.jpg \
  "http://$mock/api/fansly/acct/media/upload"
status="http://$mock/api/fansly/media/upload/1/status"
curl -sf -H 'x-api-key: bench' "$status" >"$work/body.json"
read -r mock_ir mock_reqs mock_file < <(count "$status" "${pids[0]}")

# Bare hyper answering the same bytes.
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out.%p" \
  "$work/bench" baseline 127.0.0.1:0 "$work/body.json" >"$work/base.out" 2>"$work/base.err" &
pids+=($!)
base=$(address_in "$work/base.out" "baseline listening on ")
read -r base_ir base_reqs base_file < <(count "http://$base/status" "${pids[1]}")
if [[ -n "$keep" ]]; then
  mkdir -p "$keep"
  cp "$mock_file" "$keep/mock.callgrind"
  cp "$base_file" "$keep/bare.callgrind"
  echo "$mock_reqs" >"$keep/mock.polls"
  echo "$base_reqs" >"$keep/bare.polls"
fi

echo "| server | instructions per poll | polls counted |"
echo "|---|--:|--:|"
echo "| upload-mock | $mock_ir | $mock_reqs |"
echo "| bare hyper, same bytes | $base_ir | $base_reqs |"
if [[ "$top" != 0 ]]; then
  echo
  echo "The mock's costliest functions, instructions per poll (inclusive):"
  callgrind_annotate --inclusive=yes --threshold=100 "$mock_file" 2>/dev/null |
    awk -v n="$mock_reqs" '/^ *[0-9,]+ \(/ && /mock_server|hyper|http::|malloc|free|memcpy/ {
        total = $1; gsub(",", "", total)
        name = $0; sub(/^[^:]*:/, "", name); sub(/ \[[^]]*\]$/, "", name)
        printf "%7d  %s\n", total / n, name }' |
    cut -c1-150 | head -"$top"
fi
