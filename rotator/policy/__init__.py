"""Policies: what a platform team declares, validated as a whole before anything runs.

:mod:`.model` is one secret's validated rules, :mod:`.schedule` when it is
due (with :mod:`.cron` for cron expressions and windows, the only module that
imports APScheduler), and :mod:`.loader` reads policy files into a
:class:`~rotator.policy.loader.PolicySet` or into problems located by file
and line. The loader's parts: :mod:`.layout` (what a file may hold),
:mod:`.quick_load` (a valid file, read fast), :mod:`.located_yaml` (YAML read
with every value's line and column), :mod:`.located_file` (a file validated
with every problem placed), :mod:`.defaults` (``defaults:`` merged under each
secret), :mod:`.problems` (pydantic errors in a policy author's words) and
:mod:`.conflicts` (what is wrong only across files). :mod:`.starter` writes
a commented first policy for the adapters named (``rotator init``). Nothing
here does I/O beyond reading the policy files (and a starter, in a
temporary directory, to load it before it is shown).
"""
