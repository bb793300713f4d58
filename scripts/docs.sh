#!/usr/bin/env bash
# Builds the documentation site into build/docs/html: the package is built in place first (the
# API reference is read from it), every Sphinx warning is an error, and every link between pages,
# and to an anchor, must lead somewhere. Where a Chromium is on PATH, screenshots of the front
# page and a guide go to build/docs/screenshots.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
if ! "$PY" -c "import sphinx, pydata_sphinx_theme, myst_parser, sphinx_copybutton" >/dev/null 2>&1; then
  echo "[docs] installing what the site is built with (docs/requirements.txt)"
  "$PY" -m pip install --quiet -r docs/requirements.txt
fi
rm -rf build/docs
"$PY" -m sphinx -W --keep-going -q -b html docs build/docs/html
"$PY" scripts/check_links.py build/docs/html
echo "[docs] built: build/docs/html/index.html"

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -n "$browser" ]; then
  mkdir -p build/docs/screenshots
  for page in index guides/torchvision; do
    # The background-networking flags keep a headless Chromium from reaching out at start.
    "$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
      --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$(mktemp -d)" \
      --window-size=1280,1600 --screenshot="build/docs/screenshots/${page//\//-}.png" \
      "file://$PWD/build/docs/html/$page.html" >/dev/null 2>&1
  done
  echo "[docs] screenshots: build/docs/screenshots"
fi
