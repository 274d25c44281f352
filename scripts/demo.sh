#!/usr/bin/env bash
# demo.sh - send a 10,000-recipient campaign through a local Postfix smtp-sink.
#
# Installs missing packages (deps.sh), builds (build.sh), starts smtp-sink on
# a free loopback port (stopped on exit, whatever happens), writes
# build/demo/campaign.job and build/demo/spring.eml, runs
#   build/volley send --relay 127.0.0.1:PORT --results build/demo/campaign.results.jsonl \
#       --force build/demo/campaign.job
# prints volley's summary and the results path, and exits with volley's status.
# Safe to run again: the demo files are rewritten, the results replaced.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/deps.sh
bash scripts/build.sh build

DEMO=build/demo
mkdir -p "$DEMO"

PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SINK_ARGS=(-m 2000)
if [[ $(id -u) -eq 0 ]]; then SINK_ARGS+=(-u nobody); fi

SINK_PID=
stop_sink() {
  if [[ -n "$SINK_PID" ]]; then
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=
  fi
}
trap stop_sink EXIT
trap 'exit 130' INT TERM

/usr/sbin/smtp-sink "${SINK_ARGS[@]}" "127.0.0.1:$PORT" 1024 </dev/null >"$DEMO/smtp-sink.log" 2>&1 &
SINK_PID=$!

# Wait (at most 10 s) until the sink accepts connections.
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  if ! kill -0 "$SINK_PID" 2>/dev/null; then
    echo "demo.sh: smtp-sink exited; see $DEMO/smtp-sink.log" >&2
    exit 1
  fi
  sleep 0.1
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "demo.sh: smtp-sink not listening on 127.0.0.1:$PORT" >&2
  exit 1
fi

cat >"$DEMO/spring.eml.tmp" <<'MSG'
From: Example News <news@example.com>
To: undisclosed-recipients:;
Subject: Spring is here
Message-ID: <spring-demo@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hello,

spring has come. This is the volley demo.
.
(The line above is a lone dot: volley dot-stuffs it on the wire.)
MSG
mv -f "$DEMO/spring.eml.tmp" "$DEMO/spring.eml"

{
  printf '#volley-job 1\nfrom: news@example.com\nmessage: spring.eml\nfields: name,code\n\n'
  awk 'BEGIN { for (i = 1; i <= 10000; i++) printf "reader%05d@example.org,Reader %d,C%05d\n", i, i, i }'
} >"$DEMO/campaign.job.tmp"
mv -f "$DEMO/campaign.job.tmp" "$DEMO/campaign.job"

RESULTS="$DEMO/campaign.results.jsonl"
status=0
build/volley send --relay "127.0.0.1:$PORT" --force --results "$RESULTS" "$DEMO/campaign.job" || status=$?
echo "demo.sh: volley exited with status $status"
echo "demo.sh: results in $ROOT/$RESULTS"
exit "$status"
