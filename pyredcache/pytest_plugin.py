"""pytest fixtures for applications that use pyredcache.

Enable the plugin for a run with ``pytest -p pyredcache.pytest_plugin``, for
every run with ``addopts = "-p pyredcache.pytest_plugin"`` in the project's
pytest configuration, or from the top-level ``conftest.py`` with
``pytest_plugins = ["pyredcache.pytest_plugin"]``.  Its fixtures:

``redis_server`` (session)
    a private :class:`~pyredcache.server.EmbeddedRedis`: a ``redis-server``
    on a unix socket in a temporary directory, no TCP port, no persistence,
    started the first time a test asks for it and stopped at the end of the
    session.  It needs the ``redis-server`` program; without it the tests
    that use it fail (:class:`~pyredcache.server.EmbeddedRedisError` says
    how to install it), they do not skip.
``cache``
    a :class:`~pyredcache.Cache` on ``redis_server``, whose database is
    flushed before each test.
``fake_cache``
    a fresh :class:`~pyredcache.testing.FakeRedisCache`: no server at all
    (it needs the fakeredis package).

A fixture of the same name in a ``conftest.py`` overrides the plugin's.

The plugin is not registered as a ``pytest11`` entry point on purpose: an
entry point is loaded by every pytest run in every environment where
pyredcache is installed, so its fixture names (``cache`` above all) would
appear in, and could collide with, the test suites of projects that merely
depend on pyredcache.  Loading it is a choice each project makes with ``-p``.

This module imports pytest; :mod:`pyredcache` never imports it, so pytest is
needed only where the plugin is enabled.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from .cache import Cache
from .server import EmbeddedRedis
from .testing import FakeRedisCache

__all__ = ["cache", "fake_cache", "redis_server"]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A private redis-server for the whole session (an
    :class:`~pyredcache.server.EmbeddedRedis`), stopped when it ends."""
    server = EmbeddedRedis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def cache(redis_server: EmbeddedRedis) -> Iterator[Cache]:
    """A :class:`~pyredcache.Cache` on :func:`redis_server`, its database
    flushed before the test; its idle connections are closed after it."""
    c = Cache.from_url(redis_server.url)
    c.client.flushdb()
    try:
        yield c
    finally:
        c.client.close()


@pytest.fixture
def fake_cache() -> FakeRedisCache:
    """A fresh :class:`~pyredcache.testing.FakeRedisCache`, empty, its
    store shared with no other test."""
    return FakeRedisCache()
