"""``calguard replay-upstream`` and ``calguard serve --replay``: their mistakes, and the replay
as a real process answering the OpenAI SDK."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from guard.cli import main
from guard.testing.servers import free_port
from tests.e2e.serve_process import CLI

ARC = "arc_0s_Llama-2-13b-chat-hf.jsonl"


def test_two_mcq_recordings_are_refused(
    recorded: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(recorded(ARC)), str(recorded("arc_0s_llama-65b.jsonl"))]
    assert main(["replay-upstream", *files]) == 2
    assert "one MCQ recording per replay upstream" in capsys.readouterr().err


@pytest.mark.parametrize("other", [["--upstream", "http://127.0.0.1:9/v1"], ["--fake-upstream"]])
def test_serve_replay_replaces_the_upstream(
    other: list[str], recorded: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--replay", str(recorded(ARC)), *other]) == 2
    assert "--replay replaces --upstream and --fake-upstream" in capsys.readouterr().err


def test_a_file_that_is_not_a_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"foo": 1}\n')
    assert main(["serve", "--replay", str(bad)]) == 2
    assert "unknown format" in capsys.readouterr().err


def test_the_replay_process_answers_the_sdk(recorded: Callable[[str], Path]) -> None:
    port = free_port()
    cmd = [*CLI, "replay-upstream", str(recorded(ARC)), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=0.5)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x") as client:
            models = [m.id for m in client.models.list()]
        assert models == ["arc_0s_Llama-2-13b-chat-hf"]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
