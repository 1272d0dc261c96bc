#!/usr/bin/env bash
# Installs the independent LTI peers (pinned) under the cargo target dir:
#   $CARGO_TARGET_DIR/interop/venv          PyPI: lti1p3platform, pylti1p3, lti, oauthlib
#   $CARGO_TARGET_DIR/interop/node_modules  npm: ltijs, ltijs-sequelize, sqlite3, ims-lti
# Idempotent (a stamp records the pinned lists it installed); fails loudly when a
# peer does not install or does not import.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
dir="$target/interop"
mkdir -p "$dir"
stamp="$dir/.stamp"
want="$(cat "$here/requirements.txt" "$here/package.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "interop peers already installed in $dir"
  exit 0
fi
rm -f "$stamp"
echo "installing Python peers into $dir/venv"
python3 -m venv "$dir/venv"
"$dir/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$dir/venv/bin/python" - <<'PY'
import lti1p3platform, pylti1p3, lti, oauthlib, jwt, jwcrypto
print("python peers import OK")
PY
echo "installing Node peers into $dir/node_modules (sqlite3 may compile from source)"
cp "$here/package.json" "$dir/package.json"
(cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
(cd "$dir" && node -e "require('ltijs'); require('ltijs-sequelize'); require('sqlite3'); require('ims-lti'); console.log('node peers load OK')")
echo "$want" > "$stamp"
echo "interop peers installed in $dir"
