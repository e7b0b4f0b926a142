#!/usr/bin/env bash
# Prints the release version, always a "v"-prefixed semantic version because krew requires one:
#   - at a tag vX.Y.Z[-pre]: the tag;
#   - otherwise a Go-style pseudo-version v0.0.0-<commit time, UTC>-<12-char commit>, so untagged
#     builds sort before any release and name the commit they came from.
# Uncommitted changes to tracked files add a "dirty" pre-release identifier.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	echo v0.0.0-unknown
	exit 0
fi
if ! v=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
	v="v0.0.0-$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)-$(git rev-parse --short=12 HEAD)"
fi
if ! git diff --quiet HEAD -- 2>/dev/null; then
	case $v in
	*-*) v="$v.dirty" ;;
	*) v="$v-dirty" ;;
	esac
fi
echo "$v"
