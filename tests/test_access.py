"""Signing in: password hashes, the limiter on failed attempts, the sign-in page, and the default that keeps
the app open only on this machine. Participants' study links never ask for it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from signin import SignInLimiter, hash_password, verify_password

ROOT = Path(__file__).resolve().parents[1]
HASH = hash_password("correct horse")


def test_a_password_hash_checks_the_password_and_nothing_else() -> None:
    assert verify_password("correct horse", HASH)
    assert not verify_password("correct horse!", HASH) and not verify_password("", HASH)
    assert not verify_password("correct horse", "not a hash") and not verify_password("x", "")
    assert hash_password("correct horse") != HASH  # salted


def test_failed_sign_ins_are_slowed_then_locked_per_client() -> None:
    now = [0.0]
    limiter = SignInLimiter(max_delay=30, lock_after=10, window=900, clock=lambda: now[0])
    waits = []
    for _ in range(9):
        limiter.failed("10.0.0.5")
        waits.append(limiter.wait_seconds("10.0.0.5"))
        now[0] += waits[-1]
    assert waits[:6] == [1, 2, 4, 8, 16, 30] and limiter.wait_seconds("10.0.0.6") == 0  # others unaffected
    limiter.failed("10.0.0.5")
    assert limiter.wait_seconds("10.0.0.5") > 600  # ten failures within the window: locked out
    limiter.succeeded("10.0.0.5")
    assert limiter.wait_seconds("10.0.0.5") == 0


def test_an_account_is_locked_without_a_wait_and_a_flood_of_names_frees_nothing() -> None:
    now = [0.0]
    accounts = SignInLimiter(max_delay=0, lock_after=10, window=900, clock=lambda: now[0], max_records=50)
    for _ in range(9):
        accounts.failed("bob")
        assert accounts.wait_seconds("bob") == 0  # no doubling wait: the owner's typos cost nothing
    accounts.failed("bob")
    assert accounts.wait_seconds("bob") == 900
    for number in range(500):  # made-up names past the table's room share one record, which locks
        accounts.failed(f"name{number}")
    assert accounts.wait_seconds("bob") == 900 and accounts.wait_seconds("someone new") == 900
    now[0] += 901
    assert accounts.wait_seconds("bob") == 0 and accounts.wait_seconds("someone new") == 0


def signed_app(**state) -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    app.secrets["access"] = {"users": {"alice": HASH, "bob": HASH}}
    for key, value in {"model_name": "digits_cnn", "budget_partition": 40, **state}.items():
        app.session_state[key] = value
    return app.run()


def test_the_pages_need_a_sign_in_when_users_are_configured() -> None:
    app = signed_app()
    assert not app.exception, app.exception
    assert not app.get("html") and "says" not in " ".join(m.value for m in app.markdown)
    app.text_input(key="sign_in_name").input("alice")
    app.text_input(key="sign_in_password").input("guess")
    app.button[0].click().run()
    assert "not right" in " ".join(e.value for e in app.error)
    app.text_input(key="sign_in_password").input("correct horse")
    app.button[0].click().run()
    assert "Too many failed attempts" in " ".join(e.value for e in app.error)  # one second after a failure
    time.sleep(1.1)
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert "says **7**" in " ".join(m.value for m in app.markdown)
    assert "Signed in as alice." in " ".join(c.value for c in app.caption)


def sign_in_once(name: str, password: str) -> str:
    """One attempt from a brand-new browser session (as a guesser behind a proxy could make): the error shown."""
    app = signed_app()
    app.text_input(key="sign_in_name").input(name)
    app.text_input(key="sign_in_password").input(password)
    app.button[0].click().run()
    assert not app.exception, app.exception
    return " ".join(e.value for e in app.error)


def test_a_new_session_per_guess_still_locks_the_account() -> None:
    shown = [sign_in_once("bob", f"guess {number}") for number in range(20)]
    assert all("not right" in message for message in shown[:10])
    locked = "Too many failed sign-ins for this account; try again in 15 minutes."
    assert all(message == locked for message in shown[10:])
    assert sign_in_once("bob", "correct horse") == locked  # the right password too, while locked
    # A made-up name locks the same way, so a lockout tells nobody which accounts exist.
    assert [sign_in_once("nobody", "guess") for _ in range(11)][-1] == locked


def test_an_unknown_user_gets_the_same_sentence_as_a_wrong_password() -> None:
    app = signed_app()
    app.text_input(key="sign_in_name").input("mallory")
    app.text_input(key="sign_in_password").input("correct horse")
    app.button[0].click().run()
    assert "not right" in " ".join(e.value for e in app.error)


@pytest.fixture
def served_to_others():
    previous = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    yield
    config.set_option("server.address", previous)


def test_the_app_refuses_to_open_on_other_interfaces_without_sign_in(served_to_others) -> None:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception, app.exception
    message = " ".join(e.value for e in app.error)
    assert "no sign-in is configured" in message and "users hash" in message
    assert not app.get("html")


def test_open_on_purpose_with_mode_none(served_to_others) -> None:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    app.secrets["access"] = {"mode": "none"}
    app.session_state["model_name"] = "digits_cnn"
    app.session_state["budget_partition"] = 40
    app.run()
    assert not app.exception and "says **7**" in " ".join(m.value for m in app.markdown)


def test_a_participant_link_needs_no_sign_in_and_reaches_only_its_study(served_to_others) -> None:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.secrets["access"] = {"users": {"alice": HASH}}
    app.query_params["study"] = "example-study"
    app.run()
    assert not app.exception, app.exception
    assert not app.text_input or all(t.key != "sign_in_password" for t in app.text_input)
    assert not app.sidebar.selectbox  # no model picker, no navigation
