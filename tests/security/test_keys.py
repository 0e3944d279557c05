"""The key ring in plain Python: where keys come from, how a presented key is read and checked,
rotation of the secret file, and what is kept (digests, never the keys)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from service.errors import ConfigError, Unauthenticated
from service.security.keys import KeyRing, presented_key
from service.security.settings import AuthSettings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("authorization", "api_key", "expected"),
    [
        ("Bearer abc", None, "abc"),
        ("bearer  abc ", None, "abc"),
        ("Basic abc", "k", "k"),
        ("Bearer", None, None),
        (None, "  k2 ", "k2"),
        (None, "", None),
        ("Bearer abc", "other", "abc"),
    ],
)
def test_the_presented_key(authorization: str | None, api_key: str | None, expected: str | None) -> None:
    assert presented_key(authorization, api_key) == expected


def test_environment_keys_as_a_list_or_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.settings import Settings

    monkeypatch.setenv("FILTERS_AUTH__API_KEYS", "one, two")
    assert [k.get_secret_value() for k in Settings().auth.api_keys] == ["one", "two"]
    monkeypatch.setenv("FILTERS_AUTH__API_KEYS", '["th,ree"]')
    assert [k.get_secret_value() for k in Settings().auth.api_keys] == ["th,ree"]
    assert "th,ree" not in repr(Settings().auth), "keys are secret in reprs and logs"


def test_accepted_and_refused_keys_and_their_ids() -> None:
    ring = KeyRing(AuthSettings(api_keys=[SecretStr("alpha"), SecretStr("beta")]))
    first, second = ring.identify("alpha"), ring.identify("beta")
    assert first != second and first.startswith("key-") and "alpha" not in first
    for wrong in ("alph", "alpha ", "ALPHA", "alphaalpha"):
        with pytest.raises(Unauthenticated, match="not accepted"):
            ring.identify(wrong)
    with pytest.raises(Unauthenticated, match="needs an API key"):
        ring.identify(None)


def test_the_secret_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text("# rotated by the operator\nold-key\n")
    clock = Clock()
    ring = KeyRing(AuthSettings(api_keys_file=secret), clock)
    assert ring.identify("old-key")
    secret.write_text("new-key\n")
    clock.now += 2.0
    assert ring.identify("new-key")
    with pytest.raises(Unauthenticated):
        ring.identify("old-key")


def test_an_unreadable_secret_file_keeps_the_last_keys(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text("kept\n")
    clock = Clock()
    ring = KeyRing(AuthSettings(api_keys_file=secret), clock)
    secret.unlink()
    clock.now += 2.0
    assert ring.identify("kept"), "a secret being swapped must not lock everybody out"


def test_a_missing_secret_file_is_a_start_up_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        KeyRing(AuthSettings(api_keys_file=tmp_path / "absent"))


def test_an_empty_secret_file_accepts_nobody(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text("\n# nothing yet\n")
    ring = KeyRing(AuthSettings(api_keys_file=secret))
    assert ring.enabled
    with pytest.raises(Unauthenticated):
        ring.identify("")
    with pytest.raises(Unauthenticated):
        ring.identify("anything")
