"""The dashboard's files: everything is served locally, Chart.js is the vendored version."""

from __future__ import annotations

import re

from streams.model import MismatchType
from streams.web.views import static_dir

FILES = ("index.html", "dashboard.js", "dashboard.css", "chart.umd.min.js",
         "chart.js.LICENSE.md", "VENDORED.md")


def test_files_are_package_data() -> None:
    for name in FILES:
        assert (static_dir() / name).is_file(), name


def test_no_remote_resources() -> None:
    html = (static_dir() / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs, "no references found"
    for ref in refs:
        assert ref.startswith(("/static/", "/", "data:")), ref
        assert "//" not in ref, ref
    for name in ("index.html", "dashboard.js", "dashboard.css"):
        text = (static_dir() / name).read_text()
        assert not re.search(r"https?://", text), f"{name} refers to a remote URL"


def test_chartjs_is_the_vendored_build_with_its_license_header() -> None:
    js = (static_dir() / "chart.umd.min.js").read_text()
    header = js[:200]
    version = re.search(r"Chart\.js v(\d+\.\d+\.\d+)", header)
    assert version is not None and "Released under the MIT License" in header
    assert f"Chart.js {version.group(1)}" in (static_dir() / "VENDORED.md").read_text()
    assert "sourceMappingURL" not in js  # the map is not shipped: no 404 in DevTools
    assert "MIT License" in (static_dir() / "chart.js.LICENSE.md").read_text()


def test_dashboard_polls_the_documented_endpoints() -> None:
    js = (static_dir() / "dashboard.js").read_text()
    for path in ('"/api/summary"', '"/api/windows?limit="', '"/mismatches?status=OPEN&limit=50"',
                 '"/orders/" + encodeURIComponent'):
        assert path in js, path
    assert "POLL_MS = 2000" in js


def test_every_mismatch_type_has_a_colour_of_its_own() -> None:
    js = (static_dir() / "dashboard.js").read_text()
    block = re.search(r"const TYPE_COLORS = \{(.*?)\};", js, re.DOTALL)
    assert block is not None
    colours = dict(re.findall(r"([A-Z_]+): \"(#[0-9a-f]{6})\"", block.group(1)))
    assert set(colours) == {t.value for t in MismatchType}
    assert len(set(colours.values())) == len(colours)
