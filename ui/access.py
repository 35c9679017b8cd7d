"""Signing in before the researchers' and clinicians' pages (participants' study links never need it).

Configured in ``.streamlit/secrets.toml``::

    [access]
    mode = "password"            # or "none": open, for a single-user laptop
    [access.users]
    alice = "scrypt$16384$8$1$…"  # from: python -m explainers users hash

or with Streamlit's own OpenID sign-in (``st.login``) when an ``[auth]`` provider is configured. With nothing
configured the app is open only while the server listens on this machine alone (the default in
``.streamlit/config.toml``); on any other address it refuses to open and says what to set.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from typing import Any

import streamlit as st

from signin import SignInLimiter, hash_password, verify_password

USER_KEY = "signed_in_user"
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@st.cache_resource(show_spinner=False)
def _unknown_user_hash() -> str:
    """Checked against when the user name is unknown, so a wrong name takes as long as a wrong password."""
    return hash_password("no such user")


@st.cache_resource(show_spinner=False)
def limiter() -> SignInLimiter:
    """One limiter per server: failed sign-ins are counted per client across sessions."""
    return SignInLimiter()


@st.cache_resource(show_spinner=False)
def account_limiter() -> SignInLimiter:
    """One per server, by the account tried: behind a proxy or on loopback the "client" is a browser session, so
    a new session per guess would never be slowed; this locks the account (10 failures in 15 minutes) instead.
    Lockout alone, no doubling wait, so someone else's typos do not slow the account's owner."""
    return SignInLimiter(max_delay=0)


def _account_key(account: str | None) -> str:
    # Hashed: any name typed is counted (known or not, so a lockout says nothing about who exists), and a
    # megabyte-long name costs the table 40 bytes. None: the study results' one password, an account of its own.
    if account is None:
        return "study results"
    return "account:" + hashlib.sha256(account.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def client_id() -> str:
    """The client's address where Streamlit knows it, else this browser session."""
    address = getattr(st.context, "ip_address", None)
    if isinstance(address, str) and address:
        return address
    return "session:" + st.session_state.setdefault("_client_session", uuid.uuid4().hex)


def _section(name: str) -> dict[str, Any]:
    try:
        return dict(st.secrets.get(name, {}))
    except Exception:  # noqa: BLE001 - no secrets file at all, or an unreadable one: nothing configured
        return {}


def access_mode() -> tuple[str, str | None]:
    """("none" | "password" | "oidc" | "refused", the sentence to show when refused)."""
    configured = _section("access")
    if _section("auth").get("client_id"):
        return "oidc", None
    mode = str(configured.get("mode", "")).lower()
    if mode == "none":
        return "none", None
    if mode == "password" or configured.get("users"):
        if not configured.get("users"):
            return "refused", (
                "Sign-in is switched on but no users are configured: add them under [access.users] "
                "in .streamlit/secrets.toml (hashes from `python -m explainers users hash`)."
            )
        return "password", None
    address = str(st.get_option("server.address") or "")
    if address in LOOPBACK:
        return "none", None
    return "refused", (
        f"This server listens on {address or 'every network interface'} and no sign-in is "
        "configured: add users under [access.users] in .streamlit/secrets.toml (hashes from "
        '`python -m explainers users hash`), or set [access] mode = "none" to serve it open '
        "on purpose."
    )


def checked_password(given: str, check: Any, account: str | None = None) -> tuple[bool, str | None]:
    """Runs ``check(given)`` under the limiters of this client and of ``account`` (the user name typed; None
    for the study results' password): (granted, a sentence when not). While either is locked the check is not
    run, so a right password is refused too."""
    client, limit = client_id(), limiter()
    account_key, per_account = _account_key(account), account_limiter()
    wait = per_account.wait_seconds(account_key)
    if wait > 0:
        minutes = max(1, math.ceil(wait / 60))
        what = "sign-ins for this account" if account is not None else "attempts at this password"
        return False, f"Too many failed {what}; try again in {minutes} minute{'s' * (minutes != 1)}."
    wait = limit.wait_seconds(client)
    if wait > 0:
        return False, f"Too many failed attempts from here; try again in {wait:.0f} s."
    if check(given):
        # The account's failures stay until they expire: a success of its owner must not hand a guesser
        # another ten tries.
        limit.succeeded(client)
        return True, None
    limit.failed(client)
    per_account.failed(account_key)
    return False, "That user name or password is not right."


def signed_in_user() -> str | None:
    """Who this session is signed in as; None on an open app (or before signing in)."""
    mode = access_mode()[0]
    if mode == "oidc":
        return str(st.user.get("email") or st.user.get("name") or "user") if st.user.is_logged_in else None
    return st.session_state.get(USER_KEY) if mode == "password" else None


def require_sign_in() -> str | None:
    """Stops the page with a sign-in form (or the reason it cannot open) until the visitor is signed in;
    returns the user's name (None when the app is open)."""
    mode, reason = access_mode()
    if mode == "none":
        return None
    if mode == "refused":
        st.error(reason)
        st.stop()
    if mode == "oidc":
        if not st.user.is_logged_in:
            st.title("SHAP Image Studio")
            st.button("Sign in", on_click=st.login, type="primary")
            st.stop()
        return signed_in_user()
    user = signed_in_user()
    if user:
        return user
    users = _section("access").get("users", {})
    st.title("SHAP Image Studio")
    with st.form("sign_in"):
        name = st.text_input("User name", key="sign_in_name")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        granted, message = checked_password(
            password, lambda p: verify_password(p, str(users.get(name) or _unknown_user_hash())), account=name
        )
        if granted:
            st.session_state[USER_KEY] = name
            st.rerun()
        st.error(message)
    st.stop()
    return None  # not reached


def sign_out_button(user: str | None) -> None:
    """In the sidebar: who is signed in, and a way out."""
    if user is None:
        return
    st.caption(f"Signed in as {user}.")
    if st.button("Sign out", key="sign_out"):
        if access_mode()[0] == "oidc":
            st.logout()
        st.session_state.pop(USER_KEY, None)
        st.rerun()
