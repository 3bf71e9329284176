#!/bin/sh
# NetBSD VM preparation (as root): node, npm and the addon's build tools from pkgsrc. NOT RUN HERE: no NetBSD image on the dev machines.
set -eu

if ! command -v pkgin >/dev/null 2>&1; then
  rel=$(uname -r | cut -d. -f1)
  # binary packages for this release (e.g. 10.0 for any 10.x)
  PKG_PATH="https://cdn.NetBSD.org/pub/pkgsrc/packages/NetBSD/$(uname -p)/${rel}.0/All/"
  export PKG_PATH
  /usr/sbin/pkg_add -v pkgin
fi
pkgin -y update
# nodejs brings node and npm; gmake and python3 are what node-gyp needs; the C++ compiler is in base (comp set).
pkgin -y install nodejs gmake python311 git
ln -sf /usr/pkg/bin/python3.11 /usr/pkg/bin/python3 2>/dev/null || true

node --version
npm --version
