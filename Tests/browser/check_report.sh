#!/bin/sh
# Renders DIR/index.html (a `deconvnet report` or `inspect` page; both use ReportPage.document) in headless Chromium and fails on any script error,
# console message, unsorted column or broken image; leaves a screenshot in DIR/screenshot.png.
#
# The page marks <html data-status="ok"> from its load handler when nothing went wrong (with #selftest
# in the URL it first sorts every table column both ways and checks the order); --dump-dom prints the
# DOM after the load event, so a missing or different mark means an error. Console lines are caught
# from Chromium's log (--enable-logging=stderr), since the page itself never logs.
#
# Usage: Tests/browser/check_report.sh DIR [WIDTHxHEIGHT]
set -u
dir=${1:?usage: check_report.sh DIR [WIDTHxHEIGHT]}
size=${2:-1400,2400}
page="$(cd "$dir" && pwd)/index.html"
[ -f "$page" ] || { echo "check_report: $page does not exist" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser) || { echo "check_report: chromium is not installed" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags="--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --user-data-dir=$work/profile"

timeout 120 "$browser" $flags --enable-logging=stderr --v=0 --dump-dom "file://$page#selftest" >"$work/dom.html" 2>"$work/log.txt"
status=$(sed -n 's/.*<html[^>]*data-status="\([^"]*\)".*/\1/p' "$work/dom.html" | head -n 1)
console=$(grep -E ':CONSOLE[(:]|Uncaught' "$work/log.txt" || true)
timeout 120 "$browser" $flags --window-size="$size" --screenshot="$work/shot.png" "file://$page" >/dev/null 2>&1
[ -s "$work/shot.png" ] && cp "$work/shot.png" "$dir/screenshot.png"

failed=0
if [ "$status" != "ok" ]; then echo "check_report: page status is '${status:-missing}' (expected ok)" >&2; failed=1; fi
if [ -n "$console" ]; then echo "check_report: console output:" >&2; echo "$console" >&2; failed=1; fi
if [ ! -s "$dir/screenshot.png" ]; then echo "check_report: no screenshot was written" >&2; failed=1; fi
[ $failed = 0 ] && echo "check_report: ok ($page; screenshot $dir/screenshot.png)"
exit $failed
