"""The Raft message cipher: round trips, and rejection of anything altered or foreign."""

from __future__ import annotations

import pytest

from vecstore.node.raft_cipher import GcmEncryptor, InvalidToken, get_encryptor


def test_round_trip_and_timestamp() -> None:
    cipher = get_encryptor("a-cluster-secret-0123456789")
    token = cipher.encrypt_at_time(b"payload" * 1000, 12345)
    assert cipher.extract_timestamp(token) == 12345
    assert cipher.decrypt(token) == b"payload" * 1000
    other = get_encryptor("a-cluster-secret-0123456789")  # another process, same secret
    assert other.decrypt(token) == b"payload" * 1000


@pytest.mark.parametrize("position", [0, 1, 8, 9, 20, 21, -1])
def test_any_altered_byte_is_rejected(position: int) -> None:
    cipher = get_encryptor("a-cluster-secret-0123456789")
    token = bytearray(cipher.encrypt_at_time(b"pickled bytes", 7))
    token[position] ^= 0x01
    with pytest.raises(InvalidToken):
        cipher.decrypt(bytes(token))


def test_a_different_secret_cannot_read_or_forge() -> None:
    ours = get_encryptor("a-cluster-secret-0123456789")
    theirs = get_encryptor("not-the-cluster-secret-000")
    with pytest.raises(InvalidToken):
        ours.decrypt(theirs.encrypt_at_time(b"forged", 1))
    with pytest.raises(InvalidToken):
        ours.decrypt(b"short")


def test_nonces_never_repeat_and_the_prefix_renews_before_the_counter_wraps() -> None:
    cipher = GcmEncryptor(b"k" * 32)
    nonces = {cipher.encrypt_at_time(b"", 0)[9:21] for _ in range(2000)}
    assert len(nonces) == 2000
    cipher._counter = 2**32 - 1  # drive the wrap without 4 billion messages
    before = cipher.encrypt_at_time(b"", 0)[9:17]
    after = cipher.encrypt_at_time(b"", 0)[9:17]
    assert before != after
    assert cipher.decrypt(cipher.encrypt_at_time(b"still works", 0)) == b"still works"
