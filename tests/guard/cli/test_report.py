"""``calguard report`` on an eval run of the ARC replay and on its store: the PNGs (the learned
priors and how they moved), the traffic table, the self-contained page, and the page in a real
headless Chromium with every image loaded."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from calibrators.label_prior import BatchCalibrator
from guard.cli import main
from guard.evaluation.report_data import read_eval
from guard.evaluation.report_store import read_store
from guard.store import SQLiteStore
from guard.testing.replay import create_replay_upstream
from guard.testing.servers import serve_in_thread
from tests.guard.store.states import pride_question

ARC = "arc_0s_Llama-2-13b-chat-hf.jsonl"
PNG = b"\x89PNG\r\n\x1a\n"
# No background traffic from the browser: it only reads the file it is given.
QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update",
         "--disable-default-apps"]  # fmt: skip


@pytest.fixture(scope="module")
def run(recorded: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An eval run of 80 ARC questions on the replay: its results.json (store beside it)."""
    out = tmp_path_factory.mktemp("eval") / "results.json"
    with serve_in_thread(create_replay_upstream([recorded(ARC)])) as url:
        args = ["eval", str(recorded(ARC)), "--base-url", f"{url}/v1", "--model", "m"]
        assert main([*args, "--limit", "80", "--no-progress", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def report(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    store = f"sqlite:///{run.with_suffix('.db')}"
    assert main(["report", "--eval", str(run), "--store", store, "--out-dir", str(out)]) == 0
    return out


PICTURES = ["eval0_bias.png", "eval0_cost.png", "store_history.png", "store_priors.png"]


def test_the_bias_picture_is_read_from_the_answers(run: Path) -> None:
    ev = read_eval(run)
    assert ev.classes == ["A", "B", "C", "D"]
    assert list(ev.recalls) == ["none", "pride", "adaptive", "cyclic"]
    spread = {name: max(r) - min(r) for name, r in ev.recalls.items()}
    assert spread["cyclic"] < spread["none"]  # calibration flattens the recalls


def test_the_store_priors_are_the_learning_methods(run: Path) -> None:
    priors = read_store(f"sqlite:///{run.with_suffix('.db')}").priors
    assert sorted(p.method for p in priors) == ["adaptive", "pride"]
    for p in priors:
        assert p.seen == 80
        # Stored rounded to 6 decimals (guard/store/history.py): four roundings of 5e-7 at most.
        assert sum(p.prior) == pytest.approx(1.0, abs=2e-6)
        assert max(p.prior) > 0.3  # the model's B/C preference, learned
        # One point per question (80 is under the 64-point cap's first doubling: every 2nd).
        assert [seen for seen, _ in p.history] == list(range(2, 81, 2))
        assert p.history[-1] == (80, tuple(p.prior))
        assert p.history[0] != p.history[-1]  # it moved


def test_the_traffic_of_each_key_is_what_the_eval_sent(run: Path) -> None:
    """Per key (one per calibration in an eval run), the requests and upstream calls the store
    counted equal the questions asked and the calls the eval counted from the evidence."""
    rows = {r["calibration"]: r for r in json.loads(run.read_text())["rows"]}
    traffic = read_store(f"sqlite:///{run.with_suffix('.db')}").traffic
    assert sorted(m for t in traffic for m in t.methods) == sorted(rows)
    for t in traffic:
        (method,) = t.methods
        assert t.requests == rows[method]["items"] == 80
        assert t.calls == round(rows[method]["calls"] * 80)
        assert (t.flagged, t.blocked) == (0, 0)


def test_pngs_and_one_self_contained_page(report: Path) -> None:
    names = sorted(p.name for p in report.glob("*.png"))
    assert names == PICTURES
    assert all((report / n).read_bytes().startswith(PNG) for n in names)
    html = (report / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == len(PICTURES)
    assert 'alt="how the priors moved"' in html
    assert "Traffic and flags per calibration key" in html
    assert not re.search(r"(src|href)=\"https?:", html)  # nothing to fetch


def test_the_page_in_headless_chromium(report: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")
    url = (report / "report.html").as_uri()
    dom = subprocess.run([chromium, *QUIET, "--dump-dom", url], capture_output=True, text=True,
                         timeout=60, check=True).stdout  # fmt: skip
    body = re.search(r'<body data-images="(\d+)" data-loaded="(\d+)"', dom)
    assert body is not None, dom[:500]
    assert body.groups() == (str(len(PICTURES)),) * 2  # every image decoded
    shot = report / "screenshot.png"  # kept with the report (pytest keeps recent tmp dirs)
    size = ["--hide-scrollbars", "--window-size=1100,2200"]
    cmd = [chromium, *QUIET, *size, f"--screenshot={shot}", url]
    subprocess.run(cmd, capture_output=True, timeout=60, check=True)
    assert shot.read_bytes().startswith(PNG)


def test_nothing_to_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report"]) == 2
    assert "pass --eval RESULTS.json and/or --store URL" in capsys.readouterr().err


def test_results_without_their_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lone = tmp_path / "r.json"
    lone.write_text('{"run": {}, "rows": []}')
    assert main(["report", "--eval", str(lone), "--out-dir", str(tmp_path / "o")]) == 2
    assert "r.jsonl (the answers of" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # before: an empty report folder left behind


def test_results_that_are_not_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Before: "nope.jsonl (the answers of nope.json)", naming a file the user never gave.
    missing = tmp_path / "nope.json"
    assert main(["report", "--eval", str(missing), "--out-dir", str(tmp_path / "o")]) == 2
    assert f"{missing} not found (a calguard eval --out file)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_store_that_is_not_there_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    assert main(["report", "--store", url, "--out-dir", str(tmp_path / "o")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert not (tmp_path / "absent.db").exists()


# Keys a client chooses (guard.key, guard.labels): mathtext, markup, terminal escape sequences,
# a bidi override.
HOSTILE_KEYS = [
    "client/public/$\\foo{$",
    "client/public/</pre><script>alert(1)</script><img src=x onerror=alert(2)>",
    "client/public/\x1b]0;owned\x07\x1b[2J\u202egnp.exe",
]


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def test_keys_chosen_by_clients_are_shown_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SQLiteStore(tmp_path / "c.db")
    for key in HOSTILE_KEYS:
        for _ in range(3):
            store.update(key, pride_question)
    labels = BatchCalibrator(2)
    labels.update(np.log([0.7, 0.3]))
    store.update("m|classify|$\\bad{$/<b>no</b>|fp", lambda s: ({"batch": labels.to_dict()}, 0))
    store.close()
    out = tmp_path / "o"
    assert main(["report", "--store", f"sqlite:///{tmp_path / 'c.db'}", "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", printed)  # nothing a terminal runs
    assert "\\x1b]0;owned\\x07" in printed  # shown, escaped
    page = (out / "report.html").read_text()
    parsed = Tags()
    parsed.feed(page)
    assert [t for t, _ in parsed.tags if t == "script"] == ["script"]  # the page's own only
    assert [t for t, _ in parsed.tags if t == "img"] == ["img", "img"]  # the two pictures
    assert not [a for _, attrs in parsed.tags for a, _ in attrs if a.startswith("on")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert sorted(p.name for p in out.glob("*.png")) == ["store_history.png", "store_priors.png"]


@pytest.mark.parametrize("keys", ["0", "-2"])
def test_keys_is_one_or_more(keys: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--keys 0 said 'no key has learned a prior yet' of a store full of them; --keys -2 put
    the '(N more keys)' row first."""
    with pytest.raises(SystemExit) as stopped:
        main(["report", "--store", "sqlite:///x.db", "--keys", keys])
    assert stopped.value.code == 2
    assert "must be 1 or more" in capsys.readouterr().err
