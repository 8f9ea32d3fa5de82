#!/usr/bin/env bash
# Installs the system programs the SSH job-launcher tests run for real: sshd (on 127.0.0.1), ssh, rsync.
# Idempotent: does nothing when they are all present; a message (not a failure) where apt is unavailable.
set -euo pipefail
missing=()
[[ -x /usr/sbin/sshd ]] || command -v sshd >/dev/null 2>&1 || missing+=(openssh-server)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: apt-get not available; install ${missing[*]} yourself (the SSH launcher tests need them)"
    exit 0
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "install-test-deps: not root and no passwordless sudo; run: sudo apt-get install ${missing[*]}"
        exit 0
    fi
fi
echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
