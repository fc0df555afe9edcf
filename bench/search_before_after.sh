#!/bin/sh
# bench/search.py for two versions of confindex, interleaved in one run (before, after, before,
# after, …): each version's own src/ and bench/ (`git archive` of a ref) and its own cached
# 500k-turn index (index schemas differ between versions; a first run builds each, ~10 min CPU).
#
#   bench/search_before_after.sh BEFORE_REF [AFTER_REF] [CACHE] [ROUNDS]
#   bench/search_before_after.sh 1b5e9c9 main /tmp/search-ab 2
set -eu
before=${1:?usage: $0 BEFORE_REF [AFTER_REF] [CACHE] [ROUNDS]}
after=${2:-HEAD}
cache=${3:-/tmp/search-ab}
rounds=${4:-2}
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$repo/.venv/bin/python}
# Resolved once: a ref such as HEAD may move while the bench runs.
shas="$(git -C "$repo" rev-parse --short "$before") $(git -C "$repo" rev-parse --short "$after")"
for sha in $shas; do
    dir=$cache/code-$sha
    if [ ! -d "$dir/src" ]; then
        mkdir -p "$dir"
        git -C "$repo" archive "$sha" src bench | tar -x -C "$dir"
    fi
done
i=1
while [ "$i" -le "$rounds" ]; do
    for sha in $shas; do
        echo "=== round $i: $sha"
        (cd "$cache/code-$sha" && PYTHONPATH="$cache/code-$sha/src" "$py" bench/search.py \
            "$cache/index-$sha" --no-fts | tail -10)
    done
    i=$((i + 1))
done
