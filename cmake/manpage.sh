#!/bin/sh
# Usage: manpage.sh HELP2MAN TAGWARDEN OUTPUT.gz
# Writes the man page OUTPUT.gz (gzip -9n, as Debian ships man pages) from `tagwarden --help` and `--version`, with each command's --help as a
# section of its own (help2man's --include), so `man tagwarden` documents every option.
set -eu
help2man=$1 bin=$2 out=$3
dir=$(dirname "$out")
mkdir -p "$dir"
include="$dir/commands.h2m"
{
  printf '[COMMANDS]\n'
  for command in push promote verify policy lock; do
    printf '.SS "tagwarden %s"\n.nf\n' "$command"
    # CLI11 prints argv[0] in "Usage:": the build path becomes the installed name.
    "$bin" "$command" --help | sed -e "s|$bin|tagwarden|g" -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\\&'/"
    printf '.fi\n'
  done
  printf '[EXIT STATUS]\n'
  printf '0 success; 1 internal error; 2 usage or bad input; 3 refused by a guard; 4 tag conflict; 5 lock not acquired or lost;\n'
  printf '6 verification failed; 7 authentication failed; 8 registry or network error, lock backend unreachable, --timeout passed;\n'
  printf '130/143 cancelled by SIGINT/SIGTERM.\n'
  printf '[SEE ALSO]\n'
  printf 'The README in /usr/share/doc/tagwarden documents commands, configuration, locks and the JSON reports.\n'
} >"$include"
"$help2man" --no-info --no-discard-stderr --section 1 \
  --name 'push images to OCI registries and refuse the pushes that break releases' \
  --include "$include" --output "$dir/tagwarden.1" "$bin"
gzip -9nc "$dir/tagwarden.1" >"$out.tmp"
mv "$out.tmp" "$out"
