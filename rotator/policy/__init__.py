"""Policies: what a platform team declares, validated as a whole before anything runs.

:mod:`.model` is one secret's validated rules, :mod:`.schedule` when it is
due (with :mod:`.cron` for cron expressions and windows, the only module that
imports APScheduler), and :mod:`.loader` reads policy files into a
:class:`~rotator.policy.loader.PolicySet` or into problems located by file
and line. Nothing here does I/O beyond reading the policy files.
"""
