"""report.html rendered by a real browser: headless Chromium loads it from disk, its tables and plots render.

The report is built from the hand-made fixture shards the other report tests use (tests/data/report/).
Chromium runs twice: once on a copy of report.html with a script appended that records, after the load
event, what the browser made of every table and image (``--dump-dom``), and once on report.html itself for
a screenshot. Without Chromium the tests skip, except under CI (``CI=true``), where they fail: CI installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from whisper_ptq_bench import report

DATA = Path(__file__).parent / "data" / "report"
SHARDS = [DATA / "shard-a.json", DATA / "shard-b.json", DATA / "shard-c-gpu.json"]
WINDOW = (1400, 1600)  # the browser window, CSS pixels (the screenshot's size)
# Headless on a closed network, as root: without the background-networking flags its connections are refused.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
    "--run-all-compositor-stages-before-draw",
    "--virtual-time-budget=5000",  # the load event and its handlers run before the DOM is dumped
]
# Appended to a copy of report.html: after the load event, what the browser rendered, as JSON in <pre>.
# The control image points at a file that does not exist: it must come out as not loaded.
PROBE = """
<img id="control" src="no-such-plot.png" alt="control">
<script>
window.addEventListener("load", function () {
  function box(el) { var r = el.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }
  var out = {images: [], tables: []};
  document.querySelectorAll("img").forEach(function (img) {
    out.images.push({src: img.getAttribute("src"), id: img.id, complete: img.complete,
                     naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, box: box(img)});
  });
  document.querySelectorAll("table").forEach(function (t) { out.tables.push({rows: t.rows.length, box: box(t)}); });
  var pre = document.createElement("pre");
  pre.id = "render-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
</body>"""


def _chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    message = "Chromium is not installed (Debian: apt-get install -y chromium); set CHROMIUM to its path"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}: CI installs it, so its absence there is an error")
    pytest.skip(message)


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    profile.mkdir()  # a new, empty profile for every run
    try:
        proc = subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"Chromium did not finish within {err.timeout} s: {' '.join(err.cmd)}")
    assert proc.returncode == 0, f"Chromium exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


class _Dom(HTMLParser):
    """The tables (rows of cell texts), the <img> srcs and the probe's JSON of a dumped DOM."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.probe = ""
        self._cell: list[str] | None = None
        self._in_probe = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "pre" and attrs.get("id") == "render-check":
            self._in_probe = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "pre":
            self._in_probe = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_probe:
            self.probe += data


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The fixture report, its DOM as Chromium rendered it, and a screenshot of it."""
    browser = _chromium()
    work = tmp_path_factory.mktemp("render")
    out = work / "report"
    results = report.load(SHARDS)
    report.write_report(results, out, title="Render check")
    page = out / "report.html"
    check = out / "report-check.html"
    source = page.read_text(encoding="utf-8")
    assert source.count("</body>") == 1
    check.write_text(source.replace("</body>", PROBE), encoding="utf-8")

    dump = _run(browser, work / "profile-dom", "--dump-dom", check.as_uri()).stdout
    dom = _Dom()
    dom.feed(dump)
    shot = work / "screenshot.png"
    _run(browser, work / "profile-shot", f"--screenshot={shot}", page.as_uri())
    assert dom.probe, "the page's load handler did not run (no render-check element in the dumped DOM)"
    return {
        "results": results,
        "out": out,
        "source": source,
        "dump": dump,
        "dom": dom,
        "probe": json.loads(dom.probe),
        "shot": shot,
    }


def test_tables_render_with_every_case(rendered):
    dom, probe, results = rendered["dom"], rendered["probe"], rendered["results"]
    assert len(dom.tables) == rendered["source"].count("<table>") > 0
    assert len(probe["tables"]) == len(dom.tables)
    for table in probe["tables"]:
        assert table["rows"] >= 2  # a header and at least one row
        assert table["box"][2] > 100 and table["box"][3] > 20  # laid out, not collapsed
    results_tables = [t for t in dom.tables if t and t[0][:2] == ["Config", "Library"]]
    assert results_tables, [t[0] for t in dom.tables]
    first_cells = {row[0] for t in results_tables for row in t[1:]}
    assert {c.config for c in results.cases if c.measured} <= first_cells
    unmeasured = [c.case_id for c in results.cases if c.verdict in ("fail", "error")]
    assert unmeasured and all(case_id in rendered["dump"] for case_id in unmeasured)  # named by their ids


def test_every_plot_loads(rendered):
    out, probe = rendered["out"], rendered["probe"]
    plots = [i for i in probe["images"] if i["id"] != "control"]
    assert [i["src"] for i in plots] == sorted(p.name for p in out.glob("pareto-*.png"))
    assert [i["src"] for i in plots] == [s for s in rendered["dom"].images if s != "no-such-plot.png"]
    for image in plots:
        data = (out / image["src"]).read_bytes()
        width, height = struct.unpack(">II", data[16:24])
        assert image["complete"] and (image["naturalWidth"], image["naturalHeight"]) == (width, height), image
        assert image["box"][2] > 300 and image["box"][3] > 200, image  # drawn at a readable size
    control = next(i for i in probe["images"] if i["id"] == "control")
    assert control["naturalWidth"] == 0  # the check tells a missing image from a loaded one


def test_screenshot_shows_the_page_and_its_plot(rendered):
    import numpy as np
    from PIL import Image

    probe = rendered["probe"]
    with Image.open(rendered["shot"]) as image:
        shot = image.convert("RGB")
    assert shot.size == WINDOW
    colours = shot.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50  # not blank, not one flat colour
    white = sum(count for count, rgb in colours if min(rgb) > 245)
    assert white < 0.97 * WINDOW[0] * WINDOW[1]  # something is drawn on the page
    # the first plot, where the dumped DOM says it is, is in the screenshot: saturated marker colours there
    left, top, width, height = (int(v) for v in probe["images"][0]["box"])
    assert top < WINDOW[1] and width > 0
    region = shot.crop((left, top, min(left + width, WINDOW[0]), min(top + height, WINDOW[1])))
    pixels = np.asarray(region, dtype=int)
    saturated = int(((pixels.max(axis=2) - pixels.min(axis=2)) > 80).sum())
    assert saturated > 200, f"{saturated} saturated pixels where the plot should be"
