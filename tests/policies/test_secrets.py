"""secrets: API-key shapes and PEM private-key blocks.

The fake keys are assembled from pieces so that secret scanners do not flag this file.
"""

from __future__ import annotations

import pytest

from policies import Action, Context, build_policy

OPENAI = "sk-" + "A1b2C3d4E5" * 2 + "xy"
OPENAI_PROJ = "sk-" + "proj-" + "Ab12_Cd34-Ef56" * 3
AWS = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's documented example key id
GITHUB = "ghp_" + "a1B2c3D4e5" * 3 + "F6g7H8"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0" + "_abcdefghijklmnopqrstuvwx"
SLACK = "xoxb-" + "123456789012-abcdefABCDEF"
GOOGLE = "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6q"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MbqfYTcGAJ9f\n"
    "-----END RSA PRIVATE KEY-----"
)
PEM_PLAIN = PEM.replace("RSA PRIVATE", "PRIVATE")
PEM_TRUNCATED = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA"


@pytest.mark.parametrize(
    ("text", "kinds", "redacted"),
    [
        (f"key={OPENAI} ok", "openai_key", "key=[REDACTED] ok"),
        (
            f"export OPENAI_API_KEY='{OPENAI_PROJ}'",
            "openai_key",
            "export OPENAI_API_KEY='[REDACTED]'",
        ),
        (f"id {AWS}.", "aws_access_key", "id [REDACTED]."),
        (f"token: {GITHUB}", "github_token", "token: [REDACTED]"),
        (f"token: {GITHUB_PAT}", "github_token", "token: [REDACTED]"),
        (f"slack {SLACK}", "slack_token", "slack [REDACTED]"),
        (f"maps {GOOGLE}", "google_api_key", "maps [REDACTED]"),
        (f"here:\n{PEM}\nbye", "private_key", "here:\n[REDACTED]\nbye"),
        (f"{PEM_PLAIN}", "private_key", "[REDACTED]"),
        (f"cut off: {PEM_TRUNCATED}", "private_key", "cut off: [REDACTED]"),
        (f"{AWS} and {OPENAI}", "aws_access_key, openai_key", "[REDACTED] and [REDACTED]"),
        # look-alikes that are not keys
        ("sk-short-key", "", None),
        ("task-management-software-kit-for-teams", "", None),
        ("AKIA" + "SHORT123", "", None),
        ("ghp_tooshort", "", None),
        ("xoxz-123456789012", "", None),
        ("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqh\n-----END PUBLIC KEY-----", "", None),
        ("AIza is a prefix", "", None),
    ],
)
def test_secrets(text: str, kinds: str, redacted: str | None) -> None:
    verdict = build_policy({"type": "secrets", "action": "redact"}).check(Context("response", text))
    assert verdict.action is (Action.FLAG if kinds else Action.PASS)
    assert verdict.redacted == redacted
    if kinds:
        assert verdict.reason.endswith(": " + kinds)


def test_a_key_inside_a_pem_block_is_one_finding() -> None:
    text = PEM.replace("MIIE", f"MIIE{AWS}")
    verdict = build_policy({"type": "secrets"}).check(Context("response", text))
    assert verdict.reason == "found 1 match: private_key"


def test_block_never_echoes_the_key() -> None:
    verdict = build_policy({"type": "secrets", "action": "block"}).check(Context("prompt", OPENAI))
    assert verdict.action is Action.BLOCK
    assert verdict.redacted is None
    assert OPENAI not in verdict.reason


def test_kinds_select_shapes() -> None:
    policy = build_policy({"type": "secrets", "params": {"kinds": ["private_key"]}})
    assert policy.check(Context("response", OPENAI)).action is Action.PASS
    assert policy.check(Context("response", PEM)).action is Action.FLAG
