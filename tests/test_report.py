"""The Snakemake report: every figure with its caption, the tables, the configuration; offline."""

from __future__ import annotations

import base64
import re
import shutil

import pytest
from browser import open_page
from conftest import TINY_CONFIG, deep_merge, snakemake
from embrm.config import Plan
from embrm.figures import FIGURES, available, plan_settings

pytestmark = pytest.mark.slow


def test_figures_the_grid_cannot_draw_are_skipped_with_a_note_in_the_log(tiny_workflow):
    drawable, skipped = available(plan_settings(Plan(TINY_CONFIG)))
    assert skipped, "the tiny grid is expected to lack some figure axes"
    results = tiny_workflow / "results" / "default"
    log = (results / "logs" / "summarize.log").read_text()
    for name, reason in skipped.items():
        assert f"figure {name} not drawn: {reason}" in log
        assert not (results / "figures" / f"{name}.png").exists()
    for name in drawable:
        assert (results / "figures" / f"{name}.png").stat().st_size > 0
        assert (results / "figures" / f"{name}.svg").stat().st_size > 0


def full_grid_config() -> dict:
    """The tiny config plus two runs at a second number of pairs (same- and cross-prompt, one
    head, one β), so that every figure has its axis."""
    grid = TINY_CONFIG["grid"]
    beta = TINY_CONFIG["annotators"][grid["annotators"][0]]["beta"]
    beta = max(beta) if isinstance(beta, list) else beta
    return deep_merge(
        TINY_CONFIG,
        {
            "annotators": {"one-beta": {"model": "bt", "beta": beta}},
            "extra_grids": [
                {
                    "annotators": ["one-beta"],
                    "designs": ["same-random", "cross-random"],
                    "quantities": [min(grid["quantities"]) // 2],
                    "heads": [grid["heads"][-1]],
                }
            ],
            "tracking": {"enabled": False},
        },
    )


@pytest.fixture(scope="module")
def report(tiny_workflow, tmp_path_factory):
    """The tiny workflow's results, extended by two runs (only those train), and the report."""
    workdir = tmp_path_factory.mktemp("report") / "work"
    shutil.copytree(tiny_workflow, workdir, symlinks=True)
    config = full_grid_config()
    snakemake(workdir, "--cores", "2", config=config)
    snakemake(workdir, "--report", "results/default/report.html")
    return workdir / "results" / "default" / "report.html"


def test_every_figure_of_the_grid_is_drawn(report):
    drawable, skipped = available(plan_settings(Plan(full_grid_config())))
    assert drawable == list(FIGURES) and not skipped
    for name in FIGURES:
        assert (report.parent / "figures" / f"{name}.png").stat().st_size > 0


def test_report_is_one_self_contained_file(report):
    text = report.read_text()
    # Nothing is fetched: no script, stylesheet, image or frame points outside the file.
    external = re.findall(
        r"""<(?:script|link|img|iframe)\b[^>]*?(?:src|href)=["']?(?:https?:)?//""", text
    )
    assert not external, external[:5]
    for name in FIGURES:
        assert f"results/default/figures/{name}.png" in text
    for table in ("summary.csv", "aggregate.csv", "report/summary.html", "report/aggregate.html"):
        assert f"results/default/{table}" in text
    assert (
        "results/default/config.used.yaml" in text and "results/default/report/config.html" in text
    )


def show_category(page, category: str) -> None:
    """List one category of results, going back up the breadcrumbs first if needed."""
    crumbs = page.locator("nav").nth(1).get_by_text("Results", exact=True)
    if crumbs.count():
        crumbs.click()
    page.locator("nav").first.get_by_text(category, exact=True).click()


def test_report_renders_offline_with_every_figure_caption_and_table(report):
    uri = report.as_uri()
    results = report.parent
    errors: list[str] = []
    with open_page(offline=True, errors=errors) as page:
        page.goto(uri)
        assert "Headline metric" in page.locator("body").inner_text()

        for spec in FIGURES.values():
            show_category(page, "Figures")
            row = page.locator("tr", has_text=spec.label)
            row.locator("[iconname=eye]").click()
            image = page.locator("img[src^='data:image/png']")
            image.wait_for()
            width, height = image.evaluate("e => [e.naturalWidth, e.naturalHeight]")
            assert width > 300 and height > 200, spec.name  # decoded and drawn, not broken
            row.locator("[iconname=information-circle]").click()
            described = page.locator("nav").first.inner_text()
            assert spec.caption.split(".")[0] in described, spec.name

        pages = {
            "runs: headline metrics": ("Runs (summary.csv)", "bon_gain"),
            "settings: mean and 95% interval over seeds": ("Settings across seeds", "seeds"),
        }
        for label, (title, column) in pages.items():
            show_category(page, "Tables")
            page.locator("tr", has_text=label).locator("[iconname=eye]").click()
            frame = page.frame_locator("iframe")
            assert title in frame.locator("h1").inner_text()
            assert column in frame.locator("table").first.inner_text()
            assert frame.locator("table tbody tr").count() > 0

        # CSV and YAML are embedded whole, as downloads.
        downloads = {
            "summary.csv (one row per run, download)": (results / "summary.csv", "Tables"),
            "configuration (YAML, download)": (results / "config.used.yaml", "Configuration"),
        }
        for label, (path, category) in downloads.items():
            show_category(page, category)
            link = page.locator("tr", has_text=label).locator("[iconname=eye]")
            href = link.get_attribute("href")
            assert href.startswith("data:")
            assert base64.b64decode(href.split("base64,", 1)[1]) == path.read_bytes()

        show_category(page, "Configuration")
        page.locator("tr", has_text="configuration, grid and figures").locator(
            "[iconname=eye]"
        ).click()
        frame = page.frame_locator("iframe")
        text = frame.locator("body").inner_text()
        assert "Figures drawn" in text and "Configuration used" in text
        for spec in FIGURES.values():
            assert spec.label in text
    assert not errors, errors
