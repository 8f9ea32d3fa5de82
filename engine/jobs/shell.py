"""The small POSIX `sh` programs that start, watch and stop a job on the machine it runs on.

The same scripts run locally (`sh -c SCRIPT`) and over SSH, so the local path exercises the remote one.
They need only sh, mkdir, cat, tail, head, wc, df, sleep, kill and `setsid` (or python3) on the host.

Every job runs under WRAPPER in its own session (so its pid is also its process-group id). The wrapper
writes `job.pid` ("PID START_TOKEN") before the command starts and `job.exit` (the exit code) after it
ends. START_TOKEN is the leader's start time (/proc/PID/stat field 22, or `ps -o lstart=`), so a status
check never mistakes a later process that got the same pid for the job. A job whose leader is gone without
`job.exit` was killed (SIGKILL, reboot, out of memory).

Arguments reach the scripts as positional parameters, never spliced into script text; over SSH each one is
`shlex.quote`d into the single command string ssh hands to the login shell (see `remote_command`).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

# What the scripts print before their answer, so anything a login shell prints first (a banner from a
# .bashrc) is skipped: REPLY_MARKER before a reply, STREAM_MARKER + offset before a file's bytes.
REPLY_MARKER = b"@@robotui-reply\n"
STREAM_MARKER = b"@@robotui-stream "
SNAPSHOT_TAIL_BYTES = 65536

_COMMON = r"""
set -f
ident() {
    if [ -r "/proc/$1/stat" ]; then
        s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
        s=${s##*") "}
        set -- $s
        [ "$1" = Z ] && return 0
        shift 19
        printf '%s' "$1"
    elif command -v ps >/dev/null 2>&1; then
        ps -o lstart= -p "$1" 2>/dev/null | tr -s ' ' '_'
    else
        kill -0 "$1" 2>/dev/null && printf '%s' -
    fi
}
alive() {
    [ -f "$dir/job.pid" ] || return 1
    read -r pid token < "$dir/job.pid" || return 1
    [ -n "$token" ] && [ "$(ident "$pid")" = "$token" ]
}
state() {
    if alive; then echo "running $pid"
    elif [ -f "$dir/job.exit" ]; then read -r rc < "$dir/job.exit"; echo "exited $rc"
    elif [ -f "$dir/job.pid" ]; then echo "gone $pid"
    else echo "missing"
    fi
}
fsize() { n=$(wc -c < "$1" 2>/dev/null) || n=0; echo $((n + 0)); }
reply() { printf '@@robotui-reply\n'; }
"""

# $1 run dir, $2... the command. Runs as the session leader; stdout/stderr are already the log.
WRAPPER = (
    _COMMON
    + r"""
dir=$1; shift
t=$(ident $$)
printf '%s %s\n' $$ "${t:--}" > "$dir/job.pid.tmp" && mv -f "$dir/job.pid.tmp" "$dir/job.pid"
trap 'stopping=1' HUP INT TERM
"$@"
rc=$?
printf '%s\n' $rc > "$dir/job.exit.tmp" && mv -f "$dir/job.exit.tmp" "$dir/job.exit"
"""
)

# $1 run dir, $2 folder to create for the dataset ("" for none), $3 program, $4 "rsync" when rsync is needed.
# Prints "free KB" for the run dir's file system; errors go to stderr with exit status 10-13.
PREPARE = (
    _COMMON
    + r"""
dir=$1; data=$2; prog=$3
if [ "$4" = rsync ] && ! command -v rsync >/dev/null 2>&1; then
    echo "robotui: rsync: command not found" >&2; exit 10
fi
if ! command -v "$prog" >/dev/null 2>&1; then echo "robotui: command not found: $prog" >&2; exit 11; fi
mkdir -p -- "$dir" || exit 12
if [ -n "$data" ]; then mkdir -p -- "$data" || exit 12; fi
if [ -e "$dir/job.pid" ]; then echo "robotui: run directory busy: $dir" >&2; exit 13; fi
reply
df -Pk "$dir" 2>/dev/null | tail -n 1 | { read -r _fs _size _used avail _rest; echo "free ${avail:-?}"; }
"""
)

# $1 wrapper text, $2 run dir, $3... the command. Starts it detached, waits for job.pid and prints
# "started PID TOKEN ABS_RUN_DIR" (the path last: it may hold spaces).
START = (
    _COMMON
    + r"""
wrapper=$1; dir=$2; shift 2
mkdir -p -- "$dir" || exit 12
dir=$(cd -- "$dir" && pwd -P) || exit 12
if [ -e "$dir/job.pid" ]; then echo "robotui: run directory busy: $dir" >&2; exit 13; fi
if ! command -v "$1" >/dev/null 2>&1; then echo "robotui: command not found: $1" >&2; exit 11; fi
rm -f -- "$dir/job.exit"
: > "$dir/job.log" || exit 12
if command -v setsid >/dev/null 2>&1; then
    setsid sh -c "$wrapper" robotui-job "$dir" "$@" < /dev/null >> "$dir/job.log" 2>&1 &
elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' \
        sh -c "$wrapper" robotui-job "$dir" "$@" < /dev/null >> "$dir/job.log" 2>&1 &
else
    echo "robotui: neither setsid nor python3 found: cannot detach the job" >&2; exit 14
fi
i=0
while [ ! -s "$dir/job.pid" ]; do
    i=$((i + 1))
    if [ $i -gt 150 ]; then
        echo "robotui: the job did not start within 15 s; see $dir/job.log" >&2; exit 15
    fi
    sleep 0.1
done
read -r pid token < "$dir/job.pid"
reply
printf 'started %s %s %s\n' "$pid" "$token" "$dir"
"""
)

# $1 run dir. Prints the state line (see `state`), "size N" of the log, then the marker and the log's last
# SNAPSHOT_TAIL_BYTES bytes.
SNAPSHOT = (
    _COMMON
    + r"""
dir=$1
reply
state
size=$(fsize "$dir/job.log")
echo "size $size"
start=$((size > TAIL ? size - TAIL : 0))
printf '@@robotui-stream %s\n' $start
if [ $size -gt $start ]; then tail -c +$((start + 1)) "$dir/job.log" | head -c $((size - start)); fi
""".replace("TAIL", str(SNAPSHOT_TAIL_BYTES))
)

# $1 run dir, $2 file (relative to the run dir, or absolute), $3 byte offset (negative: that many bytes from
# the end), $4 "follow" to keep streaming until the job has ended, else "once".
# Prints the marker with the offset it starts at, then the bytes.
STREAM = (
    _COMMON
    + r"""
dir=$1; f=$2; off=$3; mode=$4
case $f in /*) ;; *) f=$dir/$f ;; esac
if [ ! -d "$dir" ]; then echo "robotui: no run directory $dir" >&2; exit 16; fi
size=$(fsize "$f")
if [ "$off" -lt 0 ]; then off=$((size + off)); [ $off -lt 0 ] && off=0; fi
[ $off -gt $size ] && off=$size
printf '@@robotui-stream %s\n' $off
while :; do
    ended=0
    alive || ended=1
    size=$(fsize "$f")
    if [ $size -gt $off ]; then
        tail -c +$((off + 1)) "$f" | head -c $((size - off)) || exit 0
        off=$size
    fi
    if [ $ended = 1 ] || [ "$mode" != follow ]; then exit 0; fi
    sleep 0.3
done
"""
)

# $1 run dir, $2 seconds to wait after SIGTERM before SIGKILL. Prints "cancelled" or "notrunning".
CANCEL = (
    _COMMON
    + r"""
dir=$1; grace=$2
reply
if ! alive; then echo notrunning; exit 0; fi
kill -s TERM -- "-$pid" 2>/dev/null || kill -s TERM "$pid" 2>/dev/null
i=0
while alive && [ $i -lt $((grace * 10)) ]; do sleep 0.1; i=$((i + 1)); done
kill -s KILL -- "-$pid" 2>/dev/null
i=0
while alive && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
echo cancelled
"""
)

# $1 output dir, $2 checkpoint ("last" or a step folder). Prints "checkpoint STEP" then the absolute path of
# its pretrained_model folder, or exits 17 with a message.
CHECKPOINT = r"""
out=$1; ck=$2
if ! step=$(cd -P -- "$out/checkpoints/$ck" 2>/dev/null && pwd -P); then
    echo "robotui: no checkpoint $ck in $out/checkpoints" >&2; exit 17
fi
if [ ! -d "$step/pretrained_model" ]; then echo "robotui: no pretrained_model in $step" >&2; exit 17; fi
printf '@@robotui-reply\ncheckpoint %s\n%s\n' "${step##*/}" "$step/pretrained_model"
"""


def script_argv(script: str, args: Sequence[str]) -> list[str]:
    """argv that runs `script` with `args` as $1.. under the local sh."""
    return ["sh", "-c", script, "robotui", *args]


def remote_command(script: str, args: Sequence[str]) -> str:
    """The one string ssh gives the remote login shell: every word single-quoted, so nothing in a script,
    path or argument (quotes, `;`, `$()`, backticks, newlines) is ever interpreted by that shell."""
    return " ".join(shlex.quote(word) for word in script_argv(script, args))
