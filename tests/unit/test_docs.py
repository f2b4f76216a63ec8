"""The documentation holds together: README.md stays short, and every relative link leads somewhere.

README.md is the front page (at most 15,000 bytes); the manuals live in ``docs/``. Every relative Markdown
link in README.md and docs/ must name an existing file and, with ``#anchor``, a heading of that file as
GitHub slugs it. Every file in docs/ is reachable from README.md or docs/README.md, and the docs files that
the code and the workflows name in their messages exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_BYTES = 15_000
SKIPPED_SCHEMES = ("http://", "https://", "mailto:")

MARKDOWN_FILES = sorted([README, *DOCS.rglob("*.md")])
# Files whose messages and comments send the operator to a manual.
NAMING_FILES = sorted([*(ROOT / "popctl").rglob("*.py"), *(ROOT / ".github" / "workflows").glob("*.yml")])

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
DOCS_NAME = re.compile(r"(?<![\w./-])docs/[\w./-]+\.md")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: ``#`` + this slug links to it.

    The heading's Markdown text is first reduced to what GitHub renders: a link ``[text](url)`` becomes its
    text. Then the text is lower-cased, every character that is not a letter, a digit, ``-``, ``_`` or a
    space is dropped (punctuation such as backticks, ``/``, ``:``, ``(``, ``.`` vanishes; GitHub keeps the
    underscore, as ``\\w`` does), and each space becomes ``-``, so runs are not collapsed:
    ``"`popctl login` / `popctl logout`"`` -> ``"popctl-login--popctl-logout"``. A repeated heading gets
    ``-1``, ``-2``, ... appended by :func:`anchors`, not here.
    """
    text = LINK.sub(lambda match: match["text"], heading).lower()
    kept = "".join(char for char in text if char.isalnum() or char in "-_ ")
    return kept.replace(" ", "-")


def _prose_lines(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks (a ``#`` line inside a shell example is no heading)."""
    fence: str | None = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match[1]
                continue
            yield line
        elif match and match[1][0] == fence[0] and len(match[1]) >= len(fence):
            fence = None


def anchors(path: Path) -> set[str]:
    """Every ``#anchor`` GitHub gives the headings of a Markdown file, repeats numbered as GitHub does."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match[2])
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def links(path: Path) -> list[str]:
    """The targets of the inline links and images of a Markdown file, outside code blocks and code spans."""
    targets: list[str] = []
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        prose = INLINE_CODE.sub("code", line)
        targets.extend(match["target"] for match in LINK.finditer(prose))
    return targets


def relative_links(path: Path) -> list[str]:
    return [target for target in links(path) if not target.lower().startswith(SKIPPED_SCHEMES)]


def resolve(source: Path, target: str) -> tuple[Path, str]:
    """The file a relative link points at (``source`` itself for a bare ``#anchor``) and its anchor."""
    location, _, anchor = target.partition("#")
    file = (source.parent / location).resolve() if location else source
    return file, anchor


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _link_cases() -> list[tuple[Path, str]]:
    return [(path, target) for path in MARKDOWN_FILES for target in relative_links(path)]


def test_readme_is_at_most_15_kb() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail into docs/"


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Configuration reference", "configuration-reference"),
        ("`popctl login` / `popctl logout`", "popctl-login--popctl-logout"),
        ("`verify --admin`", "verify---admin"),
        ("Fleet report: `python -m popctl fleet`", "fleet-report-python--m-popctl-fleet"),
        ("Recorded results (`--recorded DIR`)", "recorded-results---recorded-dir"),
        ("Set-up", "set-up"),
        ("Graph / Entra", "graph--entra"),
        ("Stack outputs (camelCase)", "stack-outputs-camelcase"),
        ("See [the README](../README.md)", "see-the-readme"),
        ("snake_case keys", "snake_case-keys"),
    ],
)
def test_slug_follows_githubs_rule(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_anchors_skip_code_blocks_and_number_repeats(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n```bash\n# a shell comment\n```\n\n## Notes\n\n## Notes\n", encoding="utf-8")
    assert anchors(page) == {"title", "notes", "notes-1"}


def test_links_skip_code_blocks_and_code_spans(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "[a](a.md) `[b](b.md)` ![c](c.png) [d](https://example.com)\n   ```\n[e](e.md)\n   ```\n",
        encoding="utf-8",
    )
    assert links(page) == ["a.md", "c.png", "https://example.com"]
    assert relative_links(page) == ["a.md", "c.png"]


def test_markdown_files_are_found() -> None:
    names = {_name(path) for path in MARKDOWN_FILES}
    assert {"README.md", "docs/README.md"} <= names
    assert _link_cases(), "no relative links found: the link pattern is broken"


@pytest.mark.parametrize(
    ("source", "target"),
    _link_cases(),
    ids=[f"{_name(source)}->{target}" for source, target in _link_cases()],
)
def test_relative_link_resolves(source: Path, target: str) -> None:
    file, anchor = resolve(source, target)
    assert file.is_relative_to(ROOT), f"{_name(source)}: {target} leaves the repository"
    assert file.exists(), f"{_name(source)}: {target} names {file}, which does not exist"
    if anchor:
        assert file.suffix == ".md", f"{_name(source)}: {target} has an anchor but is no Markdown file"
        assert anchor in anchors(file), (
            f"{_name(source)}: {target}: no heading with anchor #{anchor} in {_name(file)}; "
            f"it has {sorted(anchors(file))}"
        )


def test_every_docs_file_is_linked_from_an_index() -> None:
    linked = {
        resolve(index, target)[0]
        for index in (README, DOCS / "README.md")
        for target in relative_links(index)
    }
    files = sorted(path.resolve() for path in DOCS.rglob("*") if path.is_file())
    assert files
    unlinked = [_name(path) for path in files if path not in linked]
    assert not unlinked, f"not linked from README.md or docs/README.md: {unlinked}"


def test_code_and_workflows_name_only_existing_docs() -> None:
    named = {
        (_name(path), name)
        for path in NAMING_FILES
        for name in DOCS_NAME.findall(path.read_text(encoding="utf-8"))
    }
    assert named, "no docs/...md name found in popctl/ or the workflows: the pattern is broken"
    missing = sorted((source, name) for source, name in named if not (ROOT / name).is_file())
    assert not missing, f"named but missing: {missing}"
