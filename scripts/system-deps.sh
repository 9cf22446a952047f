#!/usr/bin/env bash
# Install the Debian packages posebowl needs (as root), or print the command for the user.
# Each package, and why:
#   bubblewrap        the sandbox that runs submissions (posebowl run)
#   chromium          headless browser for the report's browser tests (pytest -m browser)
#   fonts-liberation  text fonts for that browser (the page and its screenshots)
set -euo pipefail
PACKAGES=(bubblewrap chromium fonts-liberation)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "Not a Debian/Ubuntu system: install ${missing[*]} with your package manager." >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "Missing Debian packages: ${missing[*]}. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
fi
