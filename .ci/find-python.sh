#!/usr/bin/env bash
# Prints the path of a working interpreter for a Python version ("3.10") or command ("python3.13"), or fails
# saying where it looked. A fresh CI machine has only python3.11 on PATH; the other lanes' versions live under
# pyenv (`pyenv root`/versions/3.X.Y), whose shims on PATH do not run unless that version is selected, so
# every candidate is run and its version checked rather than trusted by name.
set -uo pipefail
want="${1:?usage: find-python.sh 3.X}"
want="${want#python}"
[[ "$want" =~ ^3\.[0-9]+$ ]] || { echo "find-python.sh: '$1' is not a Python version like 3.11" >&2; exit 2; }
roots=()
command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root 2>/dev/null)")
roots+=("${PYENV_ROOT:-}" "$HOME/.pyenv" /root/.pyenv /opt/pyenv /usr/local/pyenv)
path_python="$(command -v "python$want" 2>/dev/null || true)"
candidates=(${path_python:+"$path_python"})
for root in "${roots[@]}"; do
    [ -n "$root" ] || continue
    for dir in $(ls -d "$root"/versions/"$want".* 2>/dev/null | sort -V -r); do
        candidates+=("$dir/bin/python$want")
    done
done
candidates+=("/usr/bin/python$want" "/usr/local/bin/python$want")
for python in "${candidates[@]}"; do
    [ -x "$python" ] || continue
    got="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || continue
    if [ "$got" = "$want" ]; then
        echo "$python"
        exit 0
    fi
done
{
    echo "find-python.sh: no working Python $want. Looked at:"
    printf '  %s\n' "${candidates[@]:-<none>}"
    echo "Install it (e.g. 'pyenv install $want') or run the lane with another PYTHON=."
} >&2
exit 1
