"""What the commands print through: the console, the log level, an error's report.
Printing only: the exit codes are picked in cli.py."""

from __future__ import annotations


def console(stderr: bool = False):
    from rich.console import Console

    # soft_wrap: a plan piped to a file or a CI log keeps one field per line.
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def setup_logging(verbose: bool) -> None:
    import logging

    # Client libraries log request bodies at DEBUG: never go below INFO.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    if not verbose:
        # keystoneauth warns "Failed to discover available identity versions" before the
        # one error that names the unreachable endpoint (Cloud.authenticate).
        logging.getLogger("keystoneauth").setLevel(logging.ERROR)


def print_error(exc: BaseException, secrets: list | None = None) -> None:
    """An error on stderr, secrets masked; a manifest's diagnostics one a line."""
    from bootstrap.errors import ManifestError
    from bootstrap.model import mask_secrets

    err = console(stderr=True)
    if isinstance(exc, ManifestError):
        for d in exc.diagnostics:
            err.print(d.format(), markup=False)
        n = sum(1 for d in exc.diagnostics if d.is_error)
        err.print(f"{n} error(s): nothing was read or changed in the cloud.", markup=False)
    else:
        err.print(f"error: {mask_secrets(str(exc), secrets or [])}", markup=False)
