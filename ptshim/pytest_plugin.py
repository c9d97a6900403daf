"""The ``ptshim`` pytest plugin (entry point ``pytest11``): run a call-site pair over every
configuration from your own tests.

Options: ``--ptshim-arch NAME|all`` (default ``all``; repeatable or comma separated),
``--ptshim-examples N`` (default 20), ``--ptshim-seed S`` (default 0), ``--ptshim-jobs N``
(default 1).

- fixture ``ptshim_compare``: ``ptshim_compare(legacy_fn, unified_fn, **overrides)`` runs
  the pair (:func:`ptshim.pairs.compare_pair`) with the options above and fails the test
  with the full report on a divergence; it returns the :class:`~ptshim.pairs.Report`;
- marker ``@pytest.mark.ptshim_pair(legacy_fn, unified_fn, examples=..., arch=...)``: the
  pair runs before the marked test's body, and the test fails with the report on a
  divergence; the ``ptshim_report`` fixture gives the report to the body;
- fixture ``ptshim_arches``: the configuration names selected by ``--ptshim-arch``.

Hypothesis strategies for your own properties are in :mod:`ptshim.strategies`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ptshim.pairs import Report

__all__ = ["ptshim_arches", "ptshim_compare", "ptshim_report", "pytest_addoption",
           "pytest_configure", "pytest_runtest_call"]


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("ptshim", "ptshim call-site pairs")
    g.addoption("--ptshim-arch", action="append", default=None, metavar="NAME",
                help="configurations for ptshim pairs: a name or 'all' (default: all)")
    g.addoption("--ptshim-examples", type=int, default=20, metavar="N",
                help="examples per configuration for ptshim pairs (default: 20)")
    g.addoption("--ptshim-seed", type=int, default=0, metavar="S")
    g.addoption("--ptshim-jobs", type=int, default=1, metavar="N",
                help="worker processes for ptshim pairs (default: 1)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ptshim_pair(legacy, unified, **options): run the call-site pair over "
        "every --ptshim-arch configuration before the test")


def _options(config: pytest.Config, arches: list[str]) -> dict[str, Any]:
    opt = config.getoption
    return {"arch": arches, "examples": opt("--ptshim-examples"), "seed": opt("--ptshim-seed"),
            "jobs": opt("--ptshim-jobs")}


def _arches(config: pytest.Config) -> list[str]:
    from ptshim.pairs import resolve_arches

    raw = config.getoption("--ptshim-arch") or ["all"]
    names = [n.strip() for item in raw for n in str(item).split(",") if n.strip()]
    return resolve_arches("all") if "all" in names else resolve_arches(names)


def _fail_on(report: Report) -> None:
    if not report.ok:
        pytest.fail("call-site pair diverged:\n" + report.describe(), pytrace=False)


_REPORT = pytest.StashKey["Report"]()


def _marker_report(item: pytest.Item) -> Report | None:
    """The report of ``item``'s ``ptshim_pair`` marker (run once, kept in the item's stash)."""
    from ptshim.pairs import compare_pair

    mark = item.get_closest_marker("ptshim_pair")
    if mark is None:
        return None
    if _REPORT not in item.stash:
        kw = {**_options(item.config, _arches(item.config)), **mark.kwargs}
        item.stash[_REPORT] = compare_pair(*mark.args, **kw)
    return item.stash[_REPORT]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """A test marked ``ptshim_pair`` fails (before its body runs) when the pair diverges."""
    report = _marker_report(item)
    if report is not None:
        _fail_on(report)


@pytest.fixture
def ptshim_arches(request: pytest.FixtureRequest) -> list[str]:
    """The configurations ``--ptshim-arch`` selects."""
    return _arches(request.config)


@pytest.fixture
def ptshim_compare(request: pytest.FixtureRequest, ptshim_arches: list[str]
                   ) -> Callable[..., Report]:
    """``ptshim_compare(legacy_fn, unified_fn, **overrides) -> Report``; fails the test on a
    divergence."""
    from ptshim.pairs import compare_pair

    def run(legacy: Any, unified: Any = None, **kw: Any) -> Report:
        report = compare_pair(legacy, unified, **{**_options(request.config, ptshim_arches),
                                                   **kw})
        _fail_on(report)
        return report

    return run


@pytest.fixture
def ptshim_report(request: pytest.FixtureRequest) -> Report | None:
    """The report of the test's ``ptshim_pair`` marker (None without the marker); the test
    has already failed if it diverged."""
    return _marker_report(request.node)
