"""Settings as users write them: the README's YAML, errors named as in the file, the closest
valid name, ``os.environ/NAME`` secrets, a LiteLLM ``model_list``, URLs that cannot work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guard.checks import route_policies
from guard.config import RouteConfig, Settings, load_settings
from guard.errors import ConfigError
from guard.server import create_app

README = Path(__file__).resolve().parents[2] / "README.md"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "calguard.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ={} if environ is None else environ)


def error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    def build() -> None:
        create_app(load(tmp_path, text, environ))  # policies and providers: when built

    with pytest.raises(ConfigError) as info:
        build()
    return info.value.message


def readme_yaml() -> list[str]:
    return YAML_BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_yaml_blocks() -> None:
    assert len(readme_yaml()) >= 4


@pytest.mark.parametrize("block", readme_yaml(), ids=lambda b: b.splitlines()[0][:40])
def test_every_yaml_block_of_the_readme_loads_verbatim(tmp_path: Path, block: str) -> None:
    names = re.findall(r"os\.environ/(\w+)", block)
    settings = load(tmp_path, block, {n: f"value-of-{n}" for n in names})
    route_policies(settings)  # every policy spec builds
    create_app(settings)  # and every provider is known


def test_on_reads_as_written(tmp_path: Path) -> None:
    s = load(tmp_path, "default_route:\n  policies:\n    - {type: secrets, on: prompt}\n")
    assert s.default_route.policies == [{"type": "secrets", "on": "prompt"}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("timout_s: 3\n", "unknown setting 'timout_s' (did you mean 'timeout_s'?)"),
        (
            "routes:\n  m:\n    mcqq: pride\n",
            "unknown setting 'routes.m.mcqq' (did you mean 'mcq'?)",
        ),
        ("zzzzz: 1\n", "unknown setting 'zzzzz'; valid settings here: admin_key, api_keys"),
        ("routes:\n  x:\n    mcq: prid\n", "routes.x.mcq: 'prid' is not a calibration"),
        ("routes:\n  x:\n    mcq: prid\n", "(did you mean 'pride'?)"),
        ("default_route:\n  classify: bach\n", "default_route.classify: 'bach'"),
        ("default_route:\n  policies: [3]\n", "default_route.policies[0]: "),
        (
            "routes:\n  toy:\n    policies:\n      - {type: pii, 1: x}\n",
            "routes.toy.policies[0]: the key 1: ",
        ),
        ("stream_holdback: fulll\n", "stream_holdback: "),
        ("port: abc\n", "port: "),
        (
            "default_route:\n  policies: [{type: pi}]\n",
            "default_route.policies[0]: unknown policy type 'pi' (did you mean 'pii'?)",
        ),
        (
            "routes:\n  r:\n    policies: [{type: pii, params: {kinds: [email]}, actoin: flag}]\n",
            "routes.r.policies[0]: unknown key 'actoin' in policy spec (did you mean 'action'?)",
        ),
        (
            "default_route:\n  policies: [{type: denylist, params: {word: [x]}}]\n",
            "unknown parameter 'word' (did you mean 'words'?)",
        ),
        (
            "upstream: http://127.0.0.1:9/v1\nroutes:\n  r:\n    provider: litelm\n",
            "routes.r: provider 'litelm' is unknown (did you mean 'litellm'?)",
        ),
        # accepted before, then every adaptive MCQ on the route a 400 blaming the request
        ("routes:\n  r:\n    budget: 1.0\n", "routes.r.budget: 1 is below the cost of the prior"),
        ("routes:\n  r:\n    budget: 1.05\n    alpha: 0.1\n", "routes.r.budget: 1.05 is below"),
    ],
)
def test_errors_name_the_key_as_in_the_file(tmp_path: Path, text: str, expected: str) -> None:
    message = error(tmp_path, text)
    assert expected in message
    assert ".0." not in message
    assert "[key]" not in message


def test_union_members_are_not_part_of_the_path(tmp_path: Path) -> None:
    message = error(tmp_path, "stream_holdback: fulll\n")
    assert "int" not in message.split(":")[0]
    assert "literal" not in message


# -- URLs that cannot work -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("upstream: not a url\n", "upstream: 'not a url' is not an http(s) URL"),
        ("upstream: localhost:8000/v1\n", "upstream: 'localhost:8000/v1' is not an http(s) URL"),
        ("upstream: http://127.0.0.1:99999/v1\n", "upstream: 'http://127.0.0.1:99999/v1'"),
        ("routes:\n  r:\n    api_base: ftp://h/v1\n", "routes.r.api_base: 'ftp://h/v1'"),
        ("store: calguard.db\n", "store: 'calguard.db' is not a store URL"),
        ("store: calguard.db\n", "sqlite:///calguard.db"),
        ("store: 'sqlite://c.db'\n", "store: store 'sqlite://c.db'"),
    ],
)
def test_a_url_that_cannot_work_is_an_error(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error(tmp_path, text)


def test_a_registered_provider_may_take_any_address() -> None:
    assert RouteConfig(provider="mine", api_base="mem://x").api_base == "mem://x"


# -- os.environ/NAME ---------------------------------------------------------------------------


def test_env_refs_are_read_from_the_environment(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        "upstream: http://127.0.0.1:9/v1\nupstream_key: os.environ/OPENAI_API_KEY\n"
        "api_keys: [os.environ/TEAM_KEY]\n"
        "routes:\n  r:\n    provider: litellm\n    api_key: os.environ/OTHER\n",
        {"OPENAI_API_KEY": "sk-1", "TEAM_KEY": "sk-team", "OTHER": "sk-2"},
    )
    assert (s.upstream_key, s.api_keys, s.routes["r"].api_key) == ("sk-1", ["sk-team"], "sk-2")


def test_a_missing_env_ref_stops_start_up_naming_it(tmp_path: Path) -> None:
    message = error(tmp_path, "routes:\n  r:\n    api_key: os.environ/NOT_SET_HERE\n")
    assert "routes.r.api_key" in message
    assert "'NOT_SET_HERE'" in message
    assert "not set" in message


def test_env_refs_default_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CG_TEST_KEY", "sk-env")
    path = tmp_path / "c.yaml"
    path.write_text("upstream_key: os.environ/CG_TEST_KEY\n")
    assert load_settings(path).upstream_key == "sk-env"


# -- a LiteLLM model_list ------------------------------------------------------------------------

MODEL_LIST = """
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: http://127.0.0.1:9/v1
      api_key: os.environ/OPENAI_API_KEY
  - model_name: claude
    litellm_params: {model: anthropic/claude-3-5-sonnet, api_key: os.environ/ANTHROPIC_API_KEY}
    model_info: {id: one}
    mcq: cyclic
    policies: [{type: pii, action: redact}]
"""


def test_a_model_list_becomes_litellm_routes(tmp_path: Path) -> None:
    s = load(tmp_path, MODEL_LIST, {"OPENAI_API_KEY": "sk-o", "ANTHROPIC_API_KEY": "sk-a"})
    gpt, claude = s.routes["gpt-4o"], s.routes["claude"]
    assert (gpt.provider, gpt.upstream_model, gpt.api_base, gpt.api_key) == (
        "litellm",
        "openai/gpt-4o",
        "http://127.0.0.1:9/v1",
        "sk-o",
    )
    assert (claude.upstream_model, claude.api_key, claude.mcq) == (
        "anthropic/claude-3-5-sonnet",
        "sk-a",
        "cyclic",
    )
    assert claude.policies == [{"type": "pii", "action": "redact"}]
    assert s.route("gpt-4o") == ("openai/gpt-4o", gpt)
    assert not s.needs_upstream()  # every route has its own provider
    create_app(s)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: x, api_bas: http://h}\n",
            "unknown setting 'model_list[0].litellm_params.api_bas' (did you mean 'api_base'?)",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {api_base: 'http://h'}\n",
            "model_list[0].litellm_params.model: required",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: x, api_base: nope}\n",
            "model_list[0].litellm_params.api_base: 'nope' is not an http(s) URL",
        ),
        (
            "model_list:\n  - {model_name: a, provider: openai, litellm_params: {model: x}}\n",
            "model_list[0].provider: a model_list entry's upstream is its litellm_params",
        ),
        (
            "model_list:\n  - {model_name: a, litellm_params: {model: x}}\n"
            "  - {model_name: a, litellm_params: {model: y}}\n",
            "model_list[1].model_name: 'a' is already a route",
        ),
        (
            "general_settings: {master_key: sk-1}\n",
            "unknown setting 'general_settings': a LiteLLM proxy section calguard does not read "
            "(for master_key, use api_keys)",
        ),
    ],
)
def test_model_list_mistakes_are_named(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error(tmp_path, text)


def test_model_list_from_the_environment_as_json() -> None:
    s = load_settings(
        environ={"CALGUARD_MODEL_LIST": '[{"model_name": "m", "litellm_params": {"model": "x"}}]'}
    )
    assert s.routes["m"].provider == "litellm"


def test_needs_upstream() -> None:
    assert Settings().needs_upstream()
    assert Settings(routes={"r": RouteConfig()}).needs_upstream()
    assert not Settings(routes={"r": RouteConfig(provider="litellm")}).needs_upstream()
    assert not Settings(default_route=RouteConfig(api_base="http://h/v1")).needs_upstream()


def test_an_upstream_attempt_waits_as_long_as_the_openai_sdk() -> None:
    """A drop-in does not give up on an answer the SDK would still wait for: at 60 s a
    reasoning model's minutes-long answer was cut, asked (and billed) three times, then a 504."""
    import openai

    assert Settings().timeout_s == openai.DEFAULT_TIMEOUT.read


def test_near_misses_of_settings_are_named_and_other_names_pass() -> None:
    from guard.config_errors import misspelled_env

    env = {
        "CALGUARD_UPSTREAM_KY": "k",  # one letter off
        "CALGUARD_API_KEY": "a",  # the setting is api_keys
        "CALGUARD_CONFG": "c.yaml",
        "CALGUARD_URL": "u",  # scripts' own names under the prefix
        "CALGUARD_DATA": "d",
        "CALGUARD_TEST_POSTGRES": "1",
        "CALGUARD_TEAM_KEY": "k",  # a secret read through os.environ/ (README)
        "CALGUARD_STORE_URL": "s",
        "CALGUARD_PORT": "1",  # a setting
        "UPSTREM": "x",  # not calguard's
    }
    assert misspelled_env(env, Settings.model_fields) == [
        "CALGUARD_API_KEY is not a setting and is ignored; did you mean CALGUARD_API_KEYS?",
        "CALGUARD_CONFG is not a setting and is ignored; did you mean CALGUARD_CONFIG?",
        "CALGUARD_UPSTREAM_KY is not a setting and is ignored; did you mean CALGUARD_UPSTREAM_KEY?",
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("upstream: http://127.0.0.1:9/v1\nupstream_key: os.environ/KEY\n", "upstream_key"),
        ("routes:\n  r:\n    api_base: http://127.0.0.1:9/v1\n    api_key: os.environ/KEY\n",
         "routes.r.api_key"),
        ("model_list:\n  - model_name: x\n    litellm_params: {model: openai/x, api_key: "
         "os.environ/KEY}\n", "model_list[0].litellm_params.api_key"),
    ],
)  # fmt: skip
def test_a_key_that_cannot_be_sent_stops_start_up_without_showing_it(
    tmp_path: Path, text: str, where: str
) -> None:
    """Before: a key file's trailing newline was taken, and every request was a 500 (the HTTP
    client refuses a header with a line break)."""
    message = error(tmp_path, text, {"KEY": "sk-SECRET-123\n"})
    assert message.startswith(f"invalid settings — {where}: holds a line break")
    assert "SECRET" not in message
