"""``python -m pardus`` is the same as the ``pardus`` command."""

from pardus.cli import app

app(prog_name="pardus")
