"""Every relative link and image in README.md and docs/*.md points to a file of the repository.

The README is short and sends the reader to the pages of docs/; a page that moves or a picture that
is renamed would leave a dead link that nothing else notices. These tests read every Markdown link
(``[text](target)``), image (``![alt](target)``) and link definition (``[name]: target``) outside
code, skip web addresses (``http(s)://``, ``mailto:``), and check that the target exists relative
to the page's folder, inside the repository. A link to a heading (``page.md#heading``, or
``#heading`` on the same page) must name a heading that the page has. Every page of docs/ must be
linked from the README and link back to it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"

_EXTERNAL = ("http://", "https://", "mailto:")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target) and ![alt](target), the text holding at most one level of brackets, the target
# in angle brackets or without spaces, an optional "title" after it.
_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^<>\n]*>|[^()\s]+)(?:\s+\"[^\"]*\")?\s*\)"
)
_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^<>\n]*>|\S+)", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _outside_fences(text: str) -> list[str]:
    """The lines of the text, those of fenced code blocks (and the fences) left empty."""
    lines, fence = [], ""
    for line in text.splitlines():
        marker = re.match(r"^ {0,3}(```+|~~~+)", line)
        if marker and (not fence or marker.group(1).startswith(fence)):
            fence = "" if fence else marker.group(1)[:3]
            lines.append("")
            continue
        lines.append("" if fence else line)
    return lines


def _prose(text: str) -> str:
    """The text without fenced code blocks and with inline code blanked, so that code that looks
    like a link (``x[i](y)``) is not read as one."""
    return _INLINE_CODE.sub("code", "\n".join(_outside_fences(text)))


def link_targets(text: str) -> list[str]:
    """Every link, image and link-definition target of a Markdown text, outside code."""
    prose = _prose(text)
    targets = [*_LINK.findall(prose), *_DEFINITION.findall(prose)]
    return [target.removeprefix("<").removesuffix(">").strip() for target in targets]


def relative_targets(text: str) -> list[tuple[str, str]]:
    """``(path, fragment)`` of each link to a file of the repository; a pure ``#anchor`` has an
    empty path, web addresses are left out."""
    found = []
    for target in link_targets(text):
        if target.lower().startswith(_EXTERNAL):
            continue
        path, _, fragment = target.partition("#")
        found.append((unquote(path.partition("?")[0]), fragment))
    return found


def heading_anchors(text: str) -> set[str]:
    """The anchors that GitHub gives the page's headings: lower case, punctuation dropped, spaces
    as hyphens, a repeated one numbered ``-1``, ``-2``, ..."""
    anchors: set[str] = set()
    for line in _outside_fences(text):
        heading = _HEADING.match(line)
        if not heading:
            continue
        title = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(2))  # a link's text
        title = title.replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def _name(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_every_relative_link_resolves() -> None:
    dead = []
    for page in pages():
        for path, _ in relative_targets(page.read_text()):
            if not path:
                continue  # an anchor on the same page
            target = (page.parent / path).resolve()
            if not target.is_relative_to(REPO):
                dead.append(f"{_name(page)}: {path} (outside the repository)")
            elif not target.exists():
                dead.append(f"{_name(page)}: {path}")
    assert not dead, "links to files that do not exist:\n" + "\n".join(dead)


def test_every_link_to_a_heading_finds_it() -> None:
    dead = []
    for page in pages():
        for path, fragment in relative_targets(page.read_text()):
            target = (page.parent / path).resolve() if path else page
            if not fragment or target.suffix != ".md" or not target.is_file():
                continue
            if fragment.lower() not in heading_anchors(target.read_text()):
                dead.append(f"{_name(page)}: {path}#{fragment}")
    assert not dead, "links to headings that do not exist:\n" + "\n".join(dead)


def _linked_files(page: Path) -> set[Path]:
    targets = relative_targets(page.read_text())
    return {(page.parent / path).resolve() for path, _ in targets if path}


def test_every_docs_page_is_linked_from_the_readme_and_back() -> None:
    docs = sorted(DOCS.glob("*.md"))
    assert docs, "docs/ holds no pages"
    from_readme = _linked_files(README)
    unlinked = [_name(page) for page in docs if page.resolve() not in from_readme]
    assert not unlinked, f"pages of docs/ that README.md does not link: {unlinked}"
    no_way_back = [_name(page) for page in docs if README.resolve() not in _linked_files(page)]
    assert not no_way_back, f"pages of docs/ without a link back to README.md: {no_way_back}"


def test_link_parser() -> None:
    text = (
        "# A page\n"
        'See [the guide](docs/guide.md#set-up), ![a picture](images/a%20b.png "title"),\n'
        "[a folder](<results/>), [the web](https://example.org/x.md), [mail](mailto:a@b.c),\n"
        "[here](#a-page) and [a [nested] text](other.md).\n"
        "[ref]: notes/ref.md\n"
        "Inline code is not a link: `x[i](y)`.\n"
        "```python\nvalues[0](1)  # [text](not/a/link.md)\n```\n"
    )
    assert relative_targets(text) == [
        ("docs/guide.md", "set-up"),
        ("images/a b.png", ""),
        ("results/", ""),
        ("", "a-page"),
        ("other.md", ""),
        ("notes/ref.md", ""),
    ]


def test_heading_anchors() -> None:
    text = (
        "# Scaling up: runs, W&B\n"
        "## What `scripts/setup.sh` installs\n"
        "## The [CamVid](camvid.md) data\n"
        "## Notes\n## Notes\n"
        "```yaml\n# not a heading\n```\n"
    )
    assert heading_anchors(text) == {
        "scaling-up-runs-wb",
        "what-scriptssetupsh-installs",
        "the-camvid-data",
        "notes",
        "notes-1",
    }
