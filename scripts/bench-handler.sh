#!/usr/bin/env bash
# Event handler used by `npm run bench -- serf-compare`, identical for serf and kodama agents.
# Usage (as an agent's -event-handler): bench-handler.sh OUTFILE
# Appends one line per event to OUTFILE:
#     <unix time in seconds, µs resolution> <self node> <event> <user event name or -> <members or ->
# where members are the names read from stdin for member-* events, comma-separated.
# The time is taken first thing (bash's $EPOCHREALTIME, no fork), so it marks when the agent
# started the handler; everything else is builtins so the handler adds no fork/exec of its own.
set -u
t="$EPOCHREALTIME"
out="${1:?usage: bench-handler.sh OUTFILE}"
names=""
if [[ "${SERF_EVENT:-}" == member-* ]]; then
  while IFS=$'\t' read -r name _rest; do
    names+="${names:+,}${name}"
  done
else
  # Drain the payload so the agent never sees a broken pipe while writing stdin.
  while IFS= read -r _line; do :; done
fi
# One short write with O_APPEND: lines from concurrent handlers never interleave.
printf '%s %s %s %s %s\n' "$t" "${SERF_SELF_NAME:-?}" "${SERF_EVENT:-?}" "${SERF_USER_EVENT:--}" "${names:--}" >>"$out"
