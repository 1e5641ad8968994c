"""Password hashing (argon2id) and random secrets stored only as hashes.

Access tokens and client secrets are 256-bit random values; the database keeps
their SHA-256, which is enough for values with that much entropy and lets a
token be found by its hash in one indexed lookup. Passwords get argon2id, run in a
worker thread because one hash takes tens of milliseconds of CPU.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2id at the OWASP Password Storage Cheat Sheet's minimum (19 MiB, 2 passes, 1 lane). One hash
# took about 30 ms of CPU on a 2-core machine. argon2-cffi's defaults (64 MiB, 3 passes, 4 lanes) took
# 0.2 s there and left the account process at 350 MB after bulk registrations. Older hashes carry
# their own parameters and still verify.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the account does not exist, so a wrong username costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")


# Hashes run on two threads of their own. A thread that has hashed keeps about 19 MiB in its glibc
# malloc arena after the hash is freed, so the default executor (six threads with 2 cores) kept
# about 115 MB after 200 registrations, and two threads keep about 40 MB.
_hash_threads = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hash_threads, _hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    loop = asyncio.get_running_loop()
    matches = await loop.run_in_executor(_hash_threads, _verify, password_hash or _DUMMY_HASH, password)
    return matches and password_hash is not None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(secret: str, expected_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), expected_hash)
