"""``calguard serve`` stops before start-up, with one line on stderr, on what cannot work."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from guard.cli import main
from guard.testing.ports import free_port


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("CALGUARD_UPSTREAM", "CALGUARD_STORE", "CALGUARD_CONFIG", "CALGUARD_PORT"):
        monkeypatch.delenv(name, raising=False)


def serve(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    # A port of the tests' own: with the default 8080 taken (a calguard serve of one's own),
    # every check after the port's said "cannot listen on 127.0.0.1:8080" instead.
    assert main(["serve", *args, "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("calguard: error: ")
    assert "Traceback" not in err
    return err


def test_an_upstream_that_is_not_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    err = serve(["--upstream", "not a url"], capsys)
    assert "upstream: 'not a url' is not an http(s) URL" in err


def test_a_store_that_is_not_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    err = serve(["--upstream", "http://127.0.0.1:9/v1", "--store", "calguard.db"], capsys)
    assert "sqlite:///calguard.db" in err


def test_a_store_that_cannot_be_opened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-folder.db").mkdir()
    err = serve(["--upstream", "http://127.0.0.1:9/v1", "--store", "sqlite:///a-folder.db"], capsys)
    assert "store 'sqlite:///a-folder.db' cannot be opened" in err


def test_a_store_of_an_unknown_kind(capsys: pytest.CaptureFixture[str]) -> None:
    err = serve(["--upstream", "http://127.0.0.1:9/v1", "--store", "redis://h/0"], capsys)
    assert "unknown store" in err


def test_an_unknown_provider(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("routes:\n  r:\n    provider: opnai\n")
    err = serve(["--upstream", "http://127.0.0.1:9/v1", "--config", str(config)], capsys)
    assert "routes.r: provider 'opnai' is unknown (did you mean 'openai'?)" in err


def test_no_upstream_mentions_the_fake_one(capsys: pytest.CaptureFixture[str]) -> None:
    err = serve([], capsys)
    assert "--upstream" in err
    assert "--fake-upstream" in err


def test_fake_upstream_and_upstream_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = serve(["--fake-upstream", "--upstream", "http://127.0.0.1:9/v1"], capsys)
    assert "--fake-upstream replaces --upstream" in err


def test_workers_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--workers", "0"])
    assert info.value.code == 2
    assert "--workers must be 1 or more" in capsys.readouterr().err


def test_a_model_list_needs_no_upstream_but_checks_its_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "store: redis://h/db\nmodel_list:\n  - {model_name: m, litellm_params: {model: openai/m}}\n"
    )
    err = serve(["--config", str(config)], capsys)
    assert "no upstream" not in err
    assert "unknown store" in err


def test_data_goes_with_the_fake_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    err = serve(["--upstream", "http://127.0.0.1:9/v1", "--data", "."], capsys)
    assert "--data goes with --fake-upstream" in err


def test_a_mistake_with_the_fake_upstream_is_still_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: the fake upstream's banner came first, so the error was the second line.
    config = tmp_path / "c.yaml"
    config.write_text("timout_s: 5\n")
    err = serve(["--fake-upstream", "--config", str(config)], capsys)
    assert err == (
        "calguard: error: invalid settings — unknown setting 'timout_s' (did you mean "
        "'timeout_s'?)\n"
    )


def test_a_mistake_in_the_settings_is_named_whatever_holds_the_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: with the port taken (8080 by a calguard serve of one's own, say), an unknown
    # policy type was reported as "cannot listen on ...": fix that, and still be refused.
    config = tmp_path / "c.yaml"
    config.write_text("default_route:\n  policies:\n    - {type: pi}\n")
    with socket.socket() as held:
        held.bind(("127.0.0.1", free_port()))
        held.listen()
        port = held.getsockname()[1]
        code = main(["serve", "--fake-upstream", "--config", str(config), "--port", str(port)])
    assert code == 2
    assert "unknown policy type 'pi' (did you mean 'pii'?)" in capsys.readouterr().err


def test_a_misspelled_variable_is_named_not_silently_ignored(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ``CALGUARD_UPSTREM`` was ignored without a word, and the error said only that
    no upstream was set, which the user believed they had done."""
    monkeypatch.setenv("CALGUARD_UPSTREM", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CALGUARD_URL", "http://127.0.0.1:8080/v1")  # a script's own, not a typo
    assert main(["serve", "--port", str(free_port())]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (
        "calguard: warning: CALGUARD_UPSTREM is not a setting and is ignored; "
        "did you mean CALGUARD_UPSTREAM?"
    )
    assert lines[1].startswith("calguard: error: no upstream")
    assert len(lines) == 2
