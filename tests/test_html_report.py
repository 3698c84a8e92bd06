"""report.html: structure (stdlib html.parser), escaping, one-line errors, and rendering in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustmask.errors import RobustmaskError
from robustmask.evaluation.html_report import REPORT_NAME, render_html, write_html_report

EVIL = "<script>alert(1)</script>"
TITLE = "FGSM against the mask classifier"
REQUIRE_BROWSER = os.environ.get("ROBUSTMASK_REQUIRE_BROWSER") == "1"

# The tables as written (CSV) and as the report must show them (epsilons labelled, floats to 2 decimals).
FGSM = pd.DataFrame(
    {
        "Epsilon": [0.0, 8 / 255, 16 / 255],
        "Accuracy (%)": [97.5, 41.25, 3.0],
        "Loss": [0.0712, 1.2345, float("nan")],
        "Attack": ["FGSM", "FGSM", "FGSM"],
    }
)
FGSM_SHOWN = [
    ["0 (clean)", "97.50", "0.07", "FGSM"],
    ["8/255", "41.25", "1.23", "FGSM"],
    ["16/255", "3.00", "–", "FGSM"],
]
CLASSES = pd.DataFrame({"Class": ["mask", EVIL], "Precision": [0.91234, 0.004], "Support": [40, 12]})
CLASSES_SHOWN = [["mask", "0.91", "40"], [EVIL, "0.004", "12"]]
SETTINGS = {
    "attack": {"name": "fgsm", "eps": [0, 0.0314]},
    "batch_size": 32,
    "data": {"source": "synthetic", "augment": {"flip": True}},
    "weights": None,
}
SETTINGS_SHOWN = {
    "attack.name": "fgsm",
    "attack.eps": "[0, 0.0314]",
    "batch_size": "32",
    "data.source": "synthetic",
    "data.augment.flip": "true",
    "weights": "null",
}
VERSIONS = {"python": "3.11.9", "tensorflow": "2.21.0", "robustmask": "0.1.0"}
WARNINGS = [
    {"check": "accuracy-rises", "message": "accuracy rises with eps at 8/255"},
    "loss is NaN at <b>16/255</b>",
]


# ---------------------------------------------------------------------------------------- a tiny DOM
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: list[tuple[str, str | None]], parent: Node | None):
        self.tag, self.attrs, self.parent = tag, {k: v or "" for k, v in attrs}, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        return " ".join(
            "".join(c if isinstance(c, str) else " " + c.text() + " " for c in self.children).split()
        )

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and (
                    cls is None or cls in child.attrs.get("class", "").split()
                ):
                    found.append(child)
                found += child.all(tag, cls)
        return found


class Dom(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#root", [], None)
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, attrs, self.current))

    def handle_endtag(self, tag):
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None and node.parent is not None, f"</{tag}> closes nothing"
        self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def rows(table: Node, part: str) -> list[list[str]]:
    return [
        [cell.text() for cell in row.all() if cell.tag in ("td", "th")]
        for section in table.all(part)
        for row in section.all("tr")
    ]


# ---------------------------------------------------------------------------------------- the folder
def png_bytes() -> bytes:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 2.5), dpi=80)
    axes = figure.add_subplot()
    axes.plot([0, 8, 16], [97.5, 41.25, 3.0], marker="o")
    axes.set_xlabel("eps (/255)")
    axes.set_ylabel("accuracy (%)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def summary(**changes) -> dict:
    return {
        "title": TITLE,
        "kind": "evaluate",
        "created": "2025-05-01T12:00:00+0000",
        "command": "robustmask evaluate --model mask.keras --attack fgsm --out runs/fgsm",
        "seed": 7,
        "settings": SETTINGS,
        "versions": VERSIONS,
        "notes": ["Epsilons are in [0, 1] pixel units."],
        "warnings": WARNINGS,
        "timings_s": {"total_s": 3.2},  # an unknown key: ignored
        "sections": [
            {
                "heading": "Accuracy under attack",
                "text": "One row per epsilon.\n\nThe clean row comes first.",
                "tables": [{"name": "fgsm", "caption": "Accuracy and loss under FGSM"}],
                "figures": [{"name": "accuracy", "caption": "Accuracy against eps"}],
            },
            {
                "heading": "Per-class results",
                "text": "",
                "tables": [{"name": "classes", "caption": EVIL}],
                "figures": [],
            },
        ],
    } | changes


def write_folder(folder: Path, png: bytes, **changes) -> Path:
    (folder / "tables").mkdir(parents=True)
    (folder / "figures").mkdir()
    FGSM.to_csv(folder / "tables" / "fgsm.csv", index=False)
    (folder / "tables" / "fgsm.md").write_text("| ignored |\n")
    CLASSES.to_csv(folder / "tables" / "classes.csv", index=False)
    (folder / "figures" / "accuracy.png").write_bytes(png)
    (folder / "summary.json").write_text(json.dumps(summary(**changes), indent=2))
    return folder


@pytest.fixture(scope="module")
def png() -> bytes:
    return png_bytes()


@pytest.fixture
def folder(tmp_path, png) -> Path:
    return write_folder(tmp_path / "run", png)


@pytest.fixture
def page(folder) -> str:
    return render_html(folder)


@pytest.fixture
def dom(page) -> Node:
    return Dom(page).root


# ---------------------------------------------------------------------------------------- structure
def test_title_header_and_sections_in_order(dom):
    assert dom.all("title")[0].text() == TITLE
    assert [h.text() for h in dom.all("h1")] == [TITLE]
    meta = dom.all("dl", "meta")[0].text()
    for shown in ("evaluate", "2025-05-01T12:00:00+0000", summary()["command"], "Seed 7"):
        assert shown in meta
    headings = [h.text() for h in dom.all("h2")]
    assert headings[1:] == ["Accuracy under attack", "Per-class results", "Notes", "How to rerun"]
    assert [p.text() for p in dom.all("section")[1].all("p")] == [
        "One row per epsilon.",
        "The clean row comes first.",
    ]
    assert "Epsilons are in [0, 1] pixel units." in dom.all("section")[3].text()


def test_tables_show_every_row_and_value_of_the_csvs(dom):
    tables = dom.all("table", "data")
    assert len(tables) == 2
    for table, frame, shown in zip(tables, (FGSM, CLASSES), (FGSM_SHOWN, CLASSES_SHOWN)):
        assert rows(table, "thead") == [list(frame.columns)]
        assert rows(table, "tbody") == shown
        assert len(shown) == len(frame) and all(len(row) == frame.shape[1] for row in shown)
    captions = [t.parent.parent.all("figcaption")[0].text() for t in tables]
    assert captions == ["Accuracy and loss under FGSM", EVIL]


def test_figures_are_inlined_pngs(dom, png):
    images = dom.all("img")
    assert len(images) == 1
    src = images[0].attrs["src"]
    assert src.startswith("data:image/png;base64,")
    assert base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True) == png
    assert images[0].attrs["alt"] == "Accuracy against eps"
    assert images[0].parent.all("figcaption")[0].text() == "Accuracy against eps"


def test_warnings_box_lists_every_warning_before_the_sections(dom, page):
    box = dom.all("section", "checks")[0]
    assert "fired" in box.attrs["class"]
    assert [li.text() for li in box.all("li")] == [
        "accuracy-rises : accuracy rises with eps at 8/255",
        "loss is NaN at <b>16/255</b>",
    ]
    assert page.index('id="warnings"') < page.index("Accuracy under attack</h2>")


def test_no_warnings_says_so(tmp_path, png):
    dom = Dom(render_html(write_folder(tmp_path / "run", png, warnings=[]))).root
    box = dom.all("section", "checks")[0]
    assert "quiet" in box.attrs["class"] and box.all("p")[0].text() == "No sanity check fired."


HEADLINE = {
    "covers": "FGSM, PGD-20 (3 restarts), APGD-CE, APGD-DLR (100 iterations), " + EVIL,
    "examples": 180,
    "norm": "L-inf",
    "notes": ["Table 4 under FGSM alone"],
    "rows": [
        {"model": "undefended", "epsilon": 8 / 255, "clean": 90.0, "worst_case": 0.0},
        {"model": "pgd-at", "epsilon": 0.009, "clean": 87.2, "worst_case": 84.4},
        {"model": "pgd-at", "epsilon": 8 / 255, "clean": 87.2, "worst_case": 46.8},
    ],
}


def test_the_headline_comes_first_with_every_model_eps_and_what_the_worst_case_covers(tmp_path, png):
    page = render_html(write_folder(tmp_path / "run", png, headline=HEADLINE))
    dom = Dom(page).root
    box = dom.all("section", "headline")[0]
    assert box.all("h2")[0].text() == "Summary"
    assert page.index('id="summary"') < page.index('id="warnings"') < page.index("Accuracy under attack</h2>")
    assert box.all("p")[0].text() == (
        f"Worst case over {HEADLINE['covers']} on 180 images: an image counts as robust only if every one "
        "of these attacks failed on it."
    )
    table = box.all("table")[0]
    assert rows(table, "thead") == [["Model", "Epsilon (L-inf)", "Clean (%)", "Worst case (%)"]]
    assert rows(table, "tbody") == [
        ["undefended", "8/255", "90.00", "0.00"],
        ["pgd-at", "0.009", "87.20", "84.40"],
        ["pgd-at", "8/255", "87.20", "46.80"],
    ]
    assert [li.text() for li in box.all("li")] == ["Table 4 under FGSM alone"]
    assert EVIL not in page  # escaped
    # no headline (an older folder): no summary box; only notes: the notes without a table
    assert 'id="summary"' not in render_html(write_folder(tmp_path / "old", png))
    notes_only = Dom(render_html(write_folder(tmp_path / "notes", png, headline={"notes": ["n"]}))).root
    assert notes_only.all("section", "headline")[0].all("table") == []


def test_rerun_lists_command_settings_and_versions(dom):
    rerun = [s for s in dom.all("section") if s.attrs.get("id") == "rerun"][0]
    assert rerun.all("pre")[0].text() == summary()["command"]
    settings, versions = rerun.all("table", "settings")[0], rerun.all("table", "versions")[0]
    assert dict(map(tuple, rows(settings, "tbody"))) == SETTINGS_SHOWN
    assert dict(map(tuple, rows(versions, "tbody"))) == VERSIONS


def test_page_is_self_contained(dom, page):
    assert not dom.all("script") and not dom.all("link") and not dom.all("iframe")
    for node in dom.all():
        for name in ("src", "href", "srcset", "action", "poster", "data"):
            assert name not in node.attrs or node.attrs[name].startswith("data:"), (node.tag, name)
    outside_data = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    for reference in ("http:", "https:", "//", "url(", "@import"):
        assert reference not in outside_data.lower(), reference


def test_text_is_escaped(dom, page):
    assert EVIL not in page and "<b>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # the caption and the table cell
    assert EVIL in dom.text()


def test_write_is_atomic_and_defaults_to_report_html(folder, tmp_path):
    written = write_html_report(folder)
    assert written == folder / REPORT_NAME == folder / "report.html"
    assert written.read_text(encoding="utf-8") == render_html(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["figures", "report.html", "summary.json", "tables"]
    elsewhere = write_html_report(str(folder), output=tmp_path / "out" / "page.html")
    assert elsewhere == tmp_path / "out" / "page.html" and elsewhere.read_text(
        encoding="utf-8"
    ) == written.read_text(encoding="utf-8")


def test_a_page_written_in_a_staging_folder_does_not_name_it(tmp_path, png):
    """Commands write into a hidden staging folder renamed when complete: the page must not name it."""
    staging = write_folder(tmp_path / ".out.new-1a2b3c", png)
    page = write_html_report(staging).read_text(encoding="utf-8")
    assert ".out.new-1a2b3c" not in page and "summary.json beside this page" in page


@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda f: (f / "tables" / "classes.csv").unlink(), "classes.csv"),
        (lambda f: (f / "figures" / "accuracy.png").unlink(), "accuracy.png"),
        (lambda f: (f / "figures" / "accuracy.png").write_bytes(b"GIF89a"), "accuracy.png"),
        (lambda f: (f / "tables" / "fgsm.csv").write_text(""), "fgsm.csv"),
        (lambda f: (f / "summary.json").unlink(), "summary.json"),
        (lambda f: (f / "summary.json").write_text('{"title": "cut off'), "summary.json"),
        (lambda f: (f / "summary.json").write_text("[1, 2]"), "summary.json"),
        (
            lambda f: (f / "summary.json").write_text(json.dumps(summary(sections=[{"text": "no heading"}]))),
            "summary.json",
        ),
        (
            lambda f: (f / "summary.json").write_text(
                json.dumps(summary(sections=[{"heading": "h", "tables": [{"name": "../../etc/passwd"}]}]))
            ),
            "summary.json",
        ),
    ],
    ids=[
        "table",
        "figure",
        "not-png",
        "empty-csv",
        "no-summary",
        "bad-json",
        "not-object",
        "no-heading",
        "bad-name",
    ],
)
def test_missing_or_broken_files_give_one_line_errors(folder, damage, named):
    damage(folder)
    with pytest.raises(RobustmaskError) as raised:
        write_html_report(folder)
    message = str(raised.value)
    assert named in message and "\n" not in message, message
    assert not (folder / REPORT_NAME).exists()


# ---------------------------------------------------------------------------------------- a real browser
def unavailable(reason: str) -> None:
    """Skip, or fail where CI asks for the browser test (ROBUSTMASK_REQUIRE_BROWSER=1)."""
    if REQUIRE_BROWSER:
        pytest.fail(f"ROBUSTMASK_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def chromium():
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if webdriver is None:
        unavailable("selenium is not installed (pip install 'selenium>=4.20')")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else shutil.which("chromedriver")
    )
    if not binary or not driver_path:
        unavailable("Chromium or chromedriver not found (apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,900",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException as exc:
        unavailable(f"headless Chromium did not start: {str(exc).strip().splitlines()[0]}")
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_renders_in_headless_chromium(chromium, folder, png, tmp_path):
    from PIL import Image

    report = write_html_report(folder)
    chromium.get(report.as_uri())
    assert chromium.title == TITLE
    assert chromium.find_element("css selector", "h1").text == TITLE
    assert chromium.execute_script("return document.querySelectorAll('script').length") == 0
    assert EVIL in chromium.find_element("css selector", "body").text  # shown as text, never run
    images = chromium.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.width])"
    )
    assert [image[:3] for image in images] == [[True, *Image.open(io.BytesIO(png)).size]]
    assert images[0][3] > 0
    tables = chromium.find_elements("css selector", "table")
    assert len(tables) == 4  # two data tables, settings, versions
    for table in tables:
        assert table.is_displayed() and table.size["width"] > 0 and table.size["height"] > 0

    size = chromium.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = chromium.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path = tmp_path / "report_screenshot.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert (
            image.format == "PNG" and image.height >= min(size["height"], 16384) - 1 > 900
        )  # the whole page
        assert np.asarray(image.convert("L"), dtype=np.float64).var() > 0
    shutil.copyfile(path, "/tmp/report_screenshot.png")
