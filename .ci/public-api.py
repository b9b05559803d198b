#!/usr/bin/env python3
"""The public API of the published crates, as rustdoc renders it (stable rustdoc has no JSON
output): every item's declaration, its inherent methods and its trait implementations (not the
auto-trait and blanket ones, which follow the toolchain). One sorted line per entry.

Usage: public-api.py <doc dir> <crate_name>...   (prints the listing)
"""
import html
import os
import re
import sys

CUT = re.compile(r'<h2 id="(synthetic-implementations|blanket-implementations)"')
DECL = re.compile(r'<pre class="rust item-decl"><code>(.*?)</code></pre>', re.S)
HEADER = re.compile(r'<h[34] class="code-header">(.*?)</h[34]>', re.S)
TAG = re.compile(r"<[^>]+>")
ITEM_FILE = re.compile(r"^(struct|enum|trait|fn|macro|type|constant|static|attr|derive|union)\.(.+)\.html$")


def text(fragment):
    fragment = re.sub(r'<span class="where[^"]*">', " ", fragment)
    return " ".join(html.unescape(TAG.sub("", fragment)).split())


def listing(doc_dir, crate):
    root = os.path.join(doc_dir, crate)
    lines = set()
    for dirpath, _, files in os.walk(root):
        for name in files:
            m = ITEM_FILE.match(name)
            if not m:
                continue
            rel = os.path.relpath(dirpath, doc_dir).split(os.sep)
            path = "::".join(rel + [m.group(2)])
            page = open(os.path.join(dirpath, name), encoding="utf-8").read()
            page = CUT.split(page, 1)[0]
            decl = DECL.search(page)
            if decl:
                lines.add(f"{path}: {text(decl.group(1))}")
            for header in HEADER.finditer(page):
                lines.add(f"{path}: {text(header.group(1))}")
    return sorted(lines)


def main():
    doc_dir, crates = sys.argv[1], sys.argv[2:]
    for crate in crates:
        for line in listing(doc_dir, crate):
            print(line)


if __name__ == "__main__":
    main()
