#!/usr/bin/env bash
# Set up stembench on a fresh machine that has Python 3.11 and pip.
#   bash scripts/bootstrap.sh          # the package, models and compute client (.venv)
#   bash scripts/bootstrap.sh --test   # plus every extra the tests exercise, and the system
#                                      # packages they drive (PostgreSQL server, Chromium,
#                                      # RabbitMQ, Slurm and munge for the Compute stack)
# CPU builds of the frameworks are pinned here; a GPU machine installs the extras
# `torch` and `tensorflow` instead (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"

python3.11 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
extras="models,compute,mdf"
if [ "$mode" = "--test" ]; then
  extras="models,simulation,io,compute,mdf,service,test"
fi
.venv/bin/python -m pip install -q torch==2.13.0 tensorflow-cpu==2.21.0 -e ".[${extras}]"

if [ "$mode" = "--test" ]; then
  missing=()
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  [ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
  command -v slurmd >/dev/null || missing+=(slurm-wlm)
  command -v munged >/dev/null || missing+=(munge)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "The service tests need Debian packages: sudo apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
fi
