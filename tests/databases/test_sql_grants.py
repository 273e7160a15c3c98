"""The SQL documents ``rotator permissions`` prints for database servers: stable and in order."""

from __future__ import annotations

from itertools import permutations

from providers.databases.grants import MySqlGrants, PostgreSqlGrants
from providers.databases.mysql import MySqlUsers
from providers.databases.postgresql import PostgreSqlRoles
from rotator.adapters import Permission


def _needs(system: str, lines: list[str], server: str = "db:3306") -> Permission:
    return Permission(system, tuple(lines), resource=server, step="propagate: set the password")


def test_each_line_once_comments_before_their_statement_in_any_order() -> None:
    """Two policies on one server: their common lines once, each comment above its statement."""
    one = _needs("mysql", MySqlUsers.grants("dba", ["app", "app_clone"]))
    two = _needs("mysql", MySqlUsers.grants("dba", ["web", "web_clone"]))
    other = _needs("mysql", MySqlUsers.grants("dba", ["app"]), server="db2:3306")
    texts = {MySqlGrants().text(list(order)) for order in permutations([one, two, other])}
    [text] = texts
    lines = text.splitlines()
    assert lines.count("GRANT CREATE USER ON *.* TO `dba`@`%`;") == 2  # once per server
    assert lines.count("GRANT SELECT ON mysql.* TO `dba`@`%`;") == 1  # only db has a clone
    for i, line in enumerate(lines):
        if line.startswith("-- on MySQL 8 instead:"):
            assert lines[i + 1] == "-- GRANT SELECT ON mysql.user TO `dba`@`%`;"
    first = lines.index("-- To copy the grants of app to app_clone (SHOW GRANTS FOR):")
    assert lines[first + 1] == "GRANT SELECT ON mysql.* TO `dba`@`%`;"
    assert text.index("-- MySQL or MariaDB at db:3306") > text.index("at db2:3306")
    assert MySqlGrants().summary([one, two, other]).startswith("mysql: ")


def test_postgresql_prints_createrole_once_per_admin_and_a_guarded_grant_per_role() -> None:
    """The version-guarded ADMIN OPTION grant per role, CREATEROLE once."""
    one = _needs("postgresql", PostgreSqlRoles.grants("dba", ["app", "app_clone"]), "db:5432")
    two = _needs("postgresql", PostgreSqlRoles.grants("dba", ["web"]), "db:5432")
    document = PostgreSqlGrants().document([two, one])
    [server] = document["servers"]
    assert server["statements"][0] == 'ALTER ROLE "dba" CREATEROLE;'
    assert len(server["statements"]) == 4
    assert all("server_version_num" in s for s in server["statements"][1:])
    assert (
        PostgreSqlGrants().summary([one, two]) == "postgresql: 4 SQL statement(s) for 1 server(s)"
    )
