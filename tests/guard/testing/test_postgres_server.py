"""The private PostgreSQL server: started on its own port and folder, stopped (connections
refused, data kept), started again on the same data and port, removed at the end."""

from __future__ import annotations

import psycopg
import pytest

from guard.testing.postgres_server import PrivatePostgres, bindir


def test_stop_and_start_keep_the_data_and_the_port(private_pg: PrivatePostgres) -> None:
    with psycopg.connect(private_pg.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    private_pg.stop()
    assert private_pg.process is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(private_pg.url, connect_timeout=2)
    port = private_pg.port
    private_pg.start()
    assert private_pg.port == port
    with psycopg.connect(private_pg.url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]


def test_close_stops_it_and_removes_its_folder(private_pg: PrivatePostgres) -> None:
    base, proc = private_pg.base, private_pg.process
    assert proc is not None
    private_pg.close()
    assert proc.poll() is not None
    assert not base.exists()


def test_the_binaries_are_found() -> None:
    found = bindir()
    if found is None:
        pytest.skip("no PostgreSQL server binaries on this machine")
    assert (found / "initdb").exists()
    assert (found / "postgres").exists()
    assert (found / "pg_isready").exists()
