"""How a grant of the original user is rewritten for its clone: lines SHOW GRANTS prints."""

from __future__ import annotations

import pytest

from providers.databases.mysql import grant_for


@pytest.mark.parametrize(
    ("line", "copied"),
    [
        # MariaDB's global line carries the original's password hash: never copied. Without
        # account options it grants nothing (the clone exists): there is nothing to run.
        (
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99"
            "005ADCA2EC9D1E19'",
            "",
        ),
        # With options, they are set as ALTER USER sets them (GRANT ON *.* would need the
        # global GRANT OPTION).
        (
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*AB' REQUIRE SSL "
            "WITH MAX_QUERIES_PER_HOUR 7",
            "ALTER USER `app_clone`@`%` REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 7",
        ),
        (
            "GRANT USAGE ON *.* TO `app`@`%` WITH GRANT OPTION",
            "GRANT USAGE ON *.* TO `app_clone`@`%` WITH GRANT OPTION",
        ),
        (
            "GRANT PROCESS ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*AB' WITH GRANT OPTION",
            "GRANT PROCESS ON *.* TO `app_clone`@`%` WITH GRANT OPTION",
        ),
        (
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED VIA ed25519 USING 'x' OR "
            "mysql_native_password USING '*AB' REQUIRE SSL",
            "ALTER USER `app_clone`@`%` REQUIRE SSL",
        ),
        # MySQL 5.7's form of the same clause.
        (
            "GRANT SELECT ON *.* TO 'app'@'%' IDENTIFIED WITH 'mysql_native_password' AS '*AB'",
            "GRANT SELECT ON *.* TO `app_clone`@`%`",
        ),
        (
            "GRANT SELECT, SELECT (`n`) ON `d``b`.`t` TO `app`@`%`",
            "GRANT SELECT, SELECT (`n`) ON `d``b`.`t` TO `app_clone`@`%`",
        ),
        (
            "GRANT `r1` TO `app`@`%` WITH ADMIN OPTION",
            "GRANT `r1` TO `app_clone`@`%` WITH ADMIN OPTION",
        ),
        ("SET DEFAULT ROLE `r1` FOR `app`@`%`", "SET DEFAULT ROLE `r1` FOR `app_clone`@`%`"),
        (
            "REVOKE INSERT ON `mysql`.* FROM `app`@`%`",
            "REVOKE INSERT ON `mysql`.* FROM `app_clone`@`%`",
        ),
        ("GRANT PROXY ON ''@'%' TO `app`@`%`", "GRANT PROXY ON ''@'%' TO `app_clone`@`%`"),
    ],
)
def test_a_grant_line_is_given_to_the_clone_without_a_password(line: str, copied: str) -> None:
    """The grantee becomes the clone; an IDENTIFIED clause goes; everything else stays."""
    assert grant_for(line, "app", "app_clone", "%") == copied


@pytest.mark.parametrize(
    "line",
    [
        "GRANT SELECT ON `d`.* TO `other`@`%`",
        "GRANT SELECT ON `d`.* TO `app`@`localhost`",
        "GRANT SELECT ON `TO`.* TO `apps`@`%`",  # a database named TO is not the grantee
        "GRANT SELECT ON `d`.* TO PUBLIC",
    ],
)
def test_a_line_for_another_grantee_is_not_copied(line: str) -> None:
    """Only the original's own grants are rewritten; anything else is refused, not guessed."""
    assert grant_for(line, "app", "app_clone", "%") is None
