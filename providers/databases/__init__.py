"""Database passwords: what the ``postgresql-password`` and ``mysql-password`` issuers share.

docs/providers/databases.md (to come with the issuers) describes the two
strategies, single user and alternating users.
"""
