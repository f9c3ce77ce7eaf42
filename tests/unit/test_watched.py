"""Configuration files that apply without a restart: a change that cannot be used keeps the last good version
in use and says why (readiness), and no good version at all is an error to wait on, never a dead letter."""

import json
import os

import pytest

from replyflow.kafka import TransientError
from replyflow.platform_api import CredentialsFile
from replyflow.policy.rules import PolicySource

GOOD = PolicySource().path.read_text()


def write(path, text: str, at: int) -> None:
    path.write_text(text)
    os.utime(path, (at, at))  # a new mtime, whatever the clock resolution


def test_a_policy_change_that_cannot_be_used_keeps_the_last_good_one_until_it_is_fixed(tmp_path):
    path = tmp_path / "policy.json"
    write(path, GOOD, 1_000_000_000)
    source = PolicySource(path)
    good = source.current(0)
    assert source.problem is None
    write(path, GOOD.replace('"screen"', '"sceen"', 1), 1_000_000_001)  # a typo in the ConfigMap
    assert "UnusableFile" in source.unusable(1.5)  # readiness notices, with no comment coming in
    assert source.current(2) is good
    assert "policy.json cannot be used" in source.problem and "sceen: Extra inputs" in source.problem
    assert source.current(4) is good and source.problem  # the same bad file, not parsed again
    path.unlink()  # and then gone
    assert source.current(6) is good and "FileNotFoundError" in source.problem
    fixed = json.loads(GOOD) | {"version": "fixed.1"}
    write(path, json.dumps(fixed), 1_000_000_002)
    assert source.current(8).version == "fixed.1" and source.problem is None


def test_no_usable_policy_at_all_is_transient_so_comments_wait_instead_of_being_dead_lettered(tmp_path):
    path = tmp_path / "policy.json"
    write(path, "{not json", 1_000_000_000)
    with pytest.raises(TransientError, match=r"POLICY_FILE .* cannot be used"):
        PolicySource(path).current(0)
    with pytest.raises(TransientError, match="FileNotFoundError"):
        PolicySource(tmp_path / "missing.json").current(0)
    assert "missing.json cannot be used: FileNotFoundError" in PolicySource(tmp_path / "missing.json").unusable(0)


def test_credentials_keep_their_last_good_version_and_none_at_all_is_transient(tmp_path):
    path = tmp_path / "credentials.json"
    write(path, '{"youtube": {"client_id": "c', 1_000_000_000)  # a Secret half written
    credentials = CredentialsFile(str(path))
    with pytest.raises(TransientError, match="PLATFORM_CREDENTIALS_FILE"):
        credentials.current()
    good = {"instagram": {"accounts": {"17841": {"access_token": "IGQVJ-mara"}}}}
    assert "credentials.json cannot be used" in credentials.unusable()  # readiness says so, without raising
    write(path, json.dumps(good), 1_000_000_001)
    assert credentials.current().instagram is not None and credentials.unusable() is None
    write(path, "[]", 1_000_000_002)
    assert credentials.current().instagram is not None
    assert "credentials.json cannot be used" in credentials.unusable()
    assert CredentialsFile("").unusable() is None  # no file configured: nothing to be wrong


def test_a_file_back_as_it_was_after_a_moment_away_is_usable_again(tmp_path):
    path = tmp_path / "policy.json"
    write(path, GOOD, 1_000_000_000)
    source = PolicySource(path)
    good = source.current(0)
    path.rename(tmp_path / "aside.json")  # moved away (a ConfigMap update swaps links), then back unchanged
    assert "FileNotFoundError" in source.unusable(2)
    (tmp_path / "aside.json").rename(path)
    assert source.unusable(4) is None and source.current(6) is good


@pytest.mark.parametrize("bad", [
    '{"instagram": {"accounts": {"17841": {"acces_token": "IGQVJ-SENTINEL-SECRET"}}}}',  # a misspelt key
    '{"instagram": {"accounts": {"17841": {"access_token": "IGQVJ-SENTINEL-SECRET"},}}}',  # a trailing comma
    '{"youtube": {"client_id": "c", "client_secret": "SENTINEL-SECRET", "accounts": {"UC1": "1//x"}}}',  # a wrong shape
])
def test_what_is_wrong_with_a_credentials_file_never_quotes_its_secrets(tmp_path, caplog, bad):
    """The problem goes to logs, /readyz and retry errors: it names where and why, not the values."""
    path = tmp_path / "credentials.json"
    write(path, bad, 1_000_000_000)
    with pytest.raises(TransientError) as before_any_good:
        CredentialsFile(str(path)).current()
    credentials = CredentialsFile(str(path))
    write(path, json.dumps({"instagram": {"accounts": {"17841": {"access_token": "IGQVJ-mara"}}}}), 1_000_000_001)
    credentials.current()
    write(path, bad, 1_000_000_002)
    credentials.current()  # the last good version, the problem logged
    told = [str(before_any_good.value), credentials.unusable(), caplog.text]
    assert all("cannot be used" in t for t in told)
    assert not any("SENTINEL" in t for t in told), told
