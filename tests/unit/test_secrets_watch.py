"""The run's secret scan finds a secret in a log line (so its silence means something)."""

from tests.secrets_watch import leaks


def test_a_secret_in_a_line_is_found_and_not_printed_whole() -> None:
    key = "bp_" + "k" * 43
    assert leaks([f"event='api key used' key={key!r}"], {key}) == ["bp_kkk..."]
    assert leaks(["event='api key used' prefix=bp_kkkkkkk"], {key}) == []
