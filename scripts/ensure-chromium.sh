#!/usr/bin/env bash
# The HTML report's browser test drives Debian's chromium through pip's playwright
# (`playwright install` is never run: it downloads browsers). Installs it when missing.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "setup: installing Debian's chromium for the report's browser test" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium
