"""Summarise a py-spy raw profile (``--format raw``): where the samples went.

Run: ``.venv/bin/python -m tests.bench.profile_summary FILE [--within FUNC] [--top N]``

Prints each function's share of samples, inclusive (on the stack) and self (on top),
line numbers folded. `--within` keeps only stacks through a function, e.g.
``"send (generation/views.py"``, to see what one view spends its time on.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def summarise(path: Path, within: str | None) -> tuple[int, Counter[str], Counter[str]]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or (within and within not in stack):
            continue
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        total += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
        own[frames[-1]] += int(count)
    return total, inclusive, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--within", help="only stacks through this frame (substring)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--grep", help="only print frames containing this (e.g. a package)")
    args = parser.parse_args()
    total, inclusive, own = summarise(args.file, args.within)
    print(f"{total} samples{f' through {args.within}' if args.within else ''}")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"--- {title}")
        shown = 0
        for frame, count in counter.most_common():
            if args.grep and args.grep not in frame:
                continue
            print(f"{100 * count / max(1, total):5.1f}%  {frame[:140]}")
            shown += 1
            if shown >= args.top:
                break


if __name__ == "__main__":
    main()
