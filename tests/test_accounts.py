"""Account rules: names, passwords, registering and logging in."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.python.failure import Failure

from chupacabra.accounts import Accounts, normalise_name, password_bytes
from chupacabra.errors import CommandError
from chupacabra.testing import InlineHasher, MemoryStore


def settled(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that waits only on fired Deferreds; return or raise."""
    outcome: list[Any] = []
    defer.ensureDeferred(coroutine).addBoth(outcome.append)
    assert outcome, "the coroutine did not finish synchronously"
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def refused(coroutine: Coroutine[Any, Any, Any]) -> CommandError:
    """Run a coroutine that must fail with a CommandError, and return it."""
    with pytest.raises(CommandError) as caught:
        settled(coroutine)
    return caught.value


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def accounts(store: MemoryStore) -> Accounts:
    return Accounts(store, InlineHasher())  # type: ignore[arg-type]


# normalise_name


@pytest.mark.parametrize(
    "raw",
    ["a", "alice", "Alice_99", "x-y", "_", "-", "a" * 20, "Zoë", "Ωmega", "名前"],
)
def test_valid_names_keep_their_display_form(raw: str) -> None:
    """Letters, digits, _ and - up to 20 long are accepted as typed."""
    name, key = normalise_name(raw)
    assert name == raw
    assert key == raw.casefold()


@pytest.mark.parametrize("raw", ["Alice", "ALICE", "alice", "aLiCe"])
def test_names_differing_in_case_share_a_key(raw: str) -> None:
    """The key ignores case, so every casing of a name has one key."""
    assert normalise_name(raw)[1] == "alice"


def test_fullwidth_name_is_normalised() -> None:
    """Fullwidth letters fold to ASCII under NFKC, display and key alike."""
    assert normalise_name("\uff21\uff4c\uff49\uff43\uff45") == ("Alice", "alice")
    assert normalise_name("\uff21\uff2c\uff29\uff23\uff25")[1] == "alice"


def test_composed_and_decomposed_accents_share_a_key() -> None:
    """An accent typed as one character or as a combining mark is one name."""
    composed = normalise_name("Zo\u00eb")
    decomposed = normalise_name("Zoe\u0308")
    assert composed == decomposed == ("Zo\u00eb", "zo\u00eb")


def test_sharp_s_folds_like_ss() -> None:
    """Case folding is full folding: Straße and STRASSE are one account."""
    assert normalise_name("Stra\u00dfe")[1] == normalise_name("STRASSE")[1]


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "a" * 21,
        "al ice",
        " alice",
        "alice ",
        "al\u3000ice",
        "al\u00a0ice",
        "al.ice",
        "alice!",
        "a@b",
        "a/b",
        "a'b",
        "a\tb",
        "a\nb",
        "a\u200db",
        "\u00bd",
    ],
)
def test_bad_names_are_refused(raw: str) -> None:
    """Empty, over-long, spaced or punctuated names are bad-username."""
    with pytest.raises(CommandError) as caught:
        normalise_name(raw)
    assert caught.value.code == "bad-username"
    assert "20" in caught.value.message


def test_length_counts_after_normalisation() -> None:
    """A name that NFKC lengthens past 20 characters is refused."""
    ligatures = "\ufb01" * 11  # each "fi" ligature becomes two letters
    assert len(ligatures) <= 20
    with pytest.raises(CommandError) as caught:
        normalise_name(ligatures)
    assert caught.value.code == "bad-username"


_name_chars = st.sampled_from("abcXYZ019_-\u00e9\u00df\uff21")


@given(st.text(_name_chars, min_size=1, max_size=20))
def test_display_form_is_stable(raw: str) -> None:
    """Normalising a display name again gives back the same name and key."""
    name, key = normalise_name(raw)
    assert normalise_name(name) == (name, key)


@given(st.text(st.sampled_from("abcdefXYZ019_-"), min_size=1, max_size=20))
def test_ascii_key_is_the_lower_case(raw: str) -> None:
    """For ASCII names the key is the lower-case name, whatever the casing."""
    assert normalise_name(raw)[1] == raw.lower()
    assert normalise_name(raw.upper())[1] == normalise_name(raw.lower())[1]


# password_bytes


@pytest.mark.parametrize(
    "password", ["password", "a" * 72, "pass word", "p\u00e4ssw\u00f6rd"]
)
def test_good_passwords_become_utf8(password: str) -> None:
    """A valid password is returned as its UTF-8 bytes."""
    assert password_bytes(password) == password.encode("utf-8")


def test_seven_bytes_is_too_short() -> None:
    """Fewer than 8 bytes is refused with bad-password."""
    with pytest.raises(CommandError) as caught:
        password_bytes("a" * 7)
    assert caught.value.code == "bad-password"
    assert "8" in caught.value.message


def test_short_multibyte_password_counts_bytes() -> None:
    """Four two-byte characters make the 8 bytes a password needs."""
    assert password_bytes("\u00e9" * 4) == "\u00e9".encode() * 4
    with pytest.raises(CommandError):
        password_bytes("\u00e9" * 3 + "a")  # 4 characters, 7 bytes


def test_seventy_three_bytes_is_too_long() -> None:
    """73 bytes is refused with a message naming the 72-byte limit."""
    with pytest.raises(CommandError) as caught:
        password_bytes("a" * 73)
    assert caught.value.code == "bad-password"
    assert "72" in caught.value.message


def test_long_multibyte_password_counts_bytes() -> None:
    """24 three-byte characters fit in 72 bytes; one more byte does not."""
    assert len(password_bytes("\u20ac" * 24)) == 72
    with pytest.raises(CommandError) as caught:
        password_bytes("\u20ac" * 24 + "a")  # 25 characters, 73 bytes
    assert "72" in caught.value.message


@pytest.mark.parametrize(
    "password",
    ["password\x00", "pass\tword", "pass\nword", "\x1bpassword", "pw\x7f123456"],
)
def test_control_characters_are_refused(password: str) -> None:
    """Passwords holding control characters are bad-password."""
    with pytest.raises(CommandError) as caught:
        password_bytes(password)
    assert caught.value.code == "bad-password"
    assert "control" in caught.value.message


@given(st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=40))
def test_byte_length_decides(password: str) -> None:
    """Exactly the passwords of 8 to 72 UTF-8 bytes are accepted."""
    size = len(password.encode("utf-8"))
    if 8 <= size <= 72:
        assert password_bytes(password) == password.encode("utf-8")
    else:
        with pytest.raises(CommandError):
            password_bytes(password)


# Accounts


def test_register_then_authenticate(accounts: Accounts) -> None:
    """A registered account logs in with its password and gets its name."""
    assert settled(accounts.register("Alice", "password1")) == "Alice"
    assert settled(accounts.authenticate("Alice", "password1")) == "Alice"


def test_authenticate_ignores_name_case(accounts: Accounts) -> None:
    """Logging in with another casing gives the registered display name."""
    settled(accounts.register("Alice", "password1"))
    assert settled(accounts.authenticate("ALICE", "password1")) == "Alice"
    assert settled(accounts.authenticate("\uff41lice", "password1")) == "Alice"


def test_register_stores_a_bcrypt_hash_not_the_password(
    accounts: Accounts, store: MemoryStore
) -> None:
    """The store keeps the display name and a bcrypt hash, under the key."""
    settled(accounts.register("Alice", "password1"))
    name, hashed = store.accounts["alice"]
    assert name == "Alice"
    assert hashed.startswith("$2")
    assert "password1" not in hashed


def test_register_returns_normalised_name(accounts: Accounts) -> None:
    """Registering a fullwidth name stores and returns its NFKC form."""
    assert settled(accounts.register("\uff22\uff4f\uff42", "password1")) == "Bob"
    assert settled(accounts.authenticate("bob", "password1")) == "Bob"


@pytest.mark.parametrize(
    "second", ["alice", "ALICE", "Alice", "\uff41\uff4c\uff49\uff43\uff45"]
)
def test_duplicate_names_are_taken(accounts: Accounts, second: str) -> None:
    """A name already registered in any casing or width is name-taken."""
    settled(accounts.register("Alice", "password1"))
    error = refused(accounts.register(second, "password2"))
    assert error.code == "name-taken"


def test_duplicate_does_not_replace_password(accounts: Accounts) -> None:
    """A refused duplicate leaves the first account's password in force."""
    settled(accounts.register("Alice", "password1"))
    refused(accounts.register("alice", "password2"))
    assert settled(accounts.authenticate("alice", "password1")) == "Alice"
    assert refused(accounts.authenticate("alice", "password2")).code == (
        "bad-credentials"
    )


def test_register_refuses_bad_name(accounts: Accounts, store: MemoryStore) -> None:
    """A bad name is refused before anything is stored."""
    assert refused(accounts.register("bad name", "password1")).code == "bad-username"
    assert store.accounts == {}


def test_register_refuses_bad_password(accounts: Accounts, store: MemoryStore) -> None:
    """A bad password is refused before anything is stored."""
    assert refused(accounts.register("alice", "short")).code == "bad-password"
    assert store.accounts == {}


def test_wrong_password_and_unknown_user_look_alike(accounts: Accounts) -> None:
    """A wrong password and an unknown name give the same code and message."""
    settled(accounts.register("alice", "password1"))
    wrong = refused(accounts.authenticate("alice", "password2"))
    unknown = refused(accounts.authenticate("mallory", "password1"))
    assert wrong.code == unknown.code == "bad-credentials"
    assert wrong.message == unknown.message
    assert str(wrong) == str(unknown)


def test_decoy_password_does_not_log_in_unknown_user(accounts: Accounts) -> None:
    """The decoy hash checked for unknown names never lets anyone in."""
    error = refused(accounts.authenticate("nobody", "decoy-password"))
    assert error.code == "bad-credentials"


@pytest.mark.parametrize(
    ("name", "password"),
    [("bad name", "password1"), ("alice", "short"), ("alice", "a" * 73)],
)
def test_malformed_login_is_just_bad_credentials(
    accounts: Accounts, name: str, password: str
) -> None:
    """Logging in with a malformed name or password says only bad-credentials."""
    settled(accounts.register("alice", "password1"))
    unknown = refused(accounts.authenticate("mallory", "password1"))
    error = refused(accounts.authenticate(name, password))
    assert (error.code, error.message) == (unknown.code, unknown.message)


def test_change_password(accounts: Accounts) -> None:
    """After a change the new password works and the old one does not."""
    settled(accounts.register("Alice", "password1"))
    settled(accounts.change_password("alice", "password1", "password2"))
    assert settled(accounts.authenticate("alice", "password2")) == "Alice"
    assert refused(accounts.authenticate("alice", "password1")).code == (
        "bad-credentials"
    )


def test_change_password_needs_the_old_one(accounts: Accounts) -> None:
    """A wrong old password is bad-credentials and changes nothing."""
    settled(accounts.register("alice", "password1"))
    error = refused(accounts.change_password("alice", "wrong-old", "password2"))
    assert error.code == "bad-credentials"
    assert settled(accounts.authenticate("alice", "password1")) == "alice"


def test_change_password_checks_the_new_one(accounts: Accounts) -> None:
    """An invalid new password is bad-password and the old one still works."""
    settled(accounts.register("alice", "password1"))
    error = refused(accounts.change_password("alice", "password1", "a" * 73))
    assert error.code == "bad-password"
    assert settled(accounts.authenticate("alice", "password1")) == "alice"


def test_change_password_keeps_display_name(
    accounts: Accounts, store: MemoryStore
) -> None:
    """Changing the password through another casing keeps the stored name."""
    settled(accounts.register("Alice", "password1"))
    settled(accounts.change_password("ALICE", "password1", "password2"))
    assert store.accounts["alice"][0] == "Alice"
    assert settled(accounts.authenticate("alice", "password2")) == "Alice"


def test_passwords_are_per_account(accounts: Accounts) -> None:
    """One account's password does not open another."""
    settled(accounts.register("alice", "password1"))
    settled(accounts.register("bob", "password2"))
    assert refused(accounts.authenticate("bob", "password1")).code == (
        "bad-credentials"
    )
    assert settled(accounts.authenticate("bob", "password2")) == "bob"
