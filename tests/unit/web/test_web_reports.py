"""Report folders: listed, rendered (figures, CSV tables), escaped; files served only from inside the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from interplab.web.reports import OutsideReportsError, find_reports, resolve_inside
from web_data import XSS


def test_only_finished_reports_inside_the_folder_are_listed(client, web_data) -> None:
    assert [r.name for r in find_reports(web_data.reports_dir)] == ["probe"]  # not unfinished/, not leakdir/
    assert client.get("/api/reports").json() == [
        {"name": "probe", "title": f"Probe {XSS}", "kind": "report", "n_figures": 1, "n_tables": 1}]
    assert "/reports/probe" in client.get("/").text


def test_report_page_shows_figures_and_csv_table_escaped(client) -> None:
    html = client.get("/reports/probe").text
    assert XSS not in html and "Probe &lt;script&gt;" in html
    assert '<img src="/report-files/probe/figures/acc.png"' in html
    assert '<iframe src="/report-files/probe/figures/acc.html" sandbox="allow-scripts"' in html
    assert "<td>0.5</td>" in html and "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in html


def test_report_files_are_served_with_html_sandboxed(client) -> None:
    png = client.get("/report-files/probe/figures/acc.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    page = client.get("/report-files/probe/figures/acc.html")
    csp = page.headers["content-security-policy"]
    assert page.status_code == 200 and csp.startswith("sandbox allow-scripts;") and "frame-ancestors 'self'" in csp
    assert page.headers["x-frame-options"] == "SAMEORIGIN"  # the report page frames it; no other site may


@pytest.mark.parametrize("path", ["..%2Fsecret.txt", "probe%2F..%2F..%2Fsecret.txt", "%2Fetc%2Fpasswd",
                                  "/etc/passwd", "leak.txt", "leakdir/index.json", "probe/../../secret.txt"])
def test_paths_outside_the_reports_folder_are_refused(client, path: str) -> None:
    resp = client.get(f"/report-files/{path}")
    assert resp.status_code == 404 and "top secret" not in resp.text
    assert client.get(f"/reports/{path}").status_code == 404


def test_resolve_inside_refuses_dotdot_absolute_and_symlinks(web_data) -> None:
    root: Path = web_data.reports_dir
    assert resolve_inside(root, "probe/index.json") == (root / "probe" / "index.json").resolve()
    for bad in ["../secret.txt", "probe/../../secret.txt", str(web_data.outside_file), "/etc/passwd",
                "leak.txt", "leakdir", "", "probe/missing.png"]:
        with pytest.raises(OutsideReportsError):
            resolve_inside(root, bad)


def test_no_reports_dir_says_how_to_add_one(web_data) -> None:
    from interplab.web.app import create_app
    from web_data import local_client

    client = local_client(create_app(web_data.db_path))
    assert "--reports" in client.get("/reports").text
    assert client.get("/report-files/probe/figures/acc.png").status_code == 404


def test_toy_folders_from_before_the_index_format_are_listed_with_their_presets(tmp_path: Path) -> None:
    import json

    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "intro.png").write_bytes(b"\x89PNG")
    index = {"kind": "toy", "presets": ["intro"],
             "figures": [{"preset": "intro", "name": "intro", "title": "t", "caption": "c", "png": "intro.png",
                          "html": None}]}
    (tmp_path / "toy" / "index.json").write_text(json.dumps(index))
    (report,) = find_reports(tmp_path)
    assert report.title == "Toy models of superposition: intro" and report.figures[0].png == "intro.png"
    assert report.figures[0].group == "intro" and report.figures[0].html is None
