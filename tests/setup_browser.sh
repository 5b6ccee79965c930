#!/usr/bin/env bash
# The browser test drives JupyterLab with Playwright in Debian's Chromium (no browser download).
# Install Chromium if it is missing and we can; otherwise the browser test skips and says why.
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup_browser: installing Debian's chromium for the browser test"
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/tmp/minicam-apt.log 2>&1 \
    || echo "setup_browser: could not install chromium (see /tmp/minicam-apt.log); the browser test will be skipped"
else
  echo "setup_browser: chromium not found and not root; the browser test will be skipped"
fi
exit 0
