"""Hypothesis strategies for machines and user ranges, to write your own properties about
a call-site pair (needs ``hypothesis``, a dev dependency: ``pip install ptshim[dev]``).

::

    from hypothesis import given
    from ptshim import strategies as pst

    @given(ex=pst.examples("x86_64"))
    def test_my_pair(ex):
        assert ex.run(Pair(my_legacy, my_unified)) is None   # no divergence

- :func:`machines` draws a :class:`Machine`: a valid random scenario of one configuration
  (:class:`~ptshim.scenario_gen.ScenarioGen`, driven by a Hypothesis ``random``) and
  sometimes zaps that leave empty tables, then the variety step
  (:func:`ptshim.pairs.add_variety`: old/clean/dirty/young/soft-dirty PTEs, swap and
  migration entries where the configuration has them); ``machine.build()`` gives a fresh legacy
  :class:`~ptshim.session.Session` each time;
- :func:`ranges` draws a user range ``(start, end)`` of a machine, biased towards table
  and leaf boundaries, partly covered huge leaves, the last entry of a table and the top of
  the user range (:func:`ptshim.pairs.choose_range`);
- :func:`examples` draws both, as a :class:`ptshim.pairs.Example` (``ex.run(pair)``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ptshim.pairs import Example, Zap, build_machine, choose_range, choose_zaps, scenario_gen
from ptshim.scenario import Scenario
from ptshim.session import Session

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["Machine", "examples", "machines", "ranges"]


@dataclass(frozen=True)
class Machine:
    """A reproducible machine: a scenario of ``arch`` run by the legacy backend, then
    ``zaps`` (pages zapped, tables kept), then the variety step seeded by ``variety``
    (None: none)."""

    arch: str
    scenario: Scenario
    zaps: tuple[Zap, ...] = ()
    variety: int | None = None

    def build(self) -> Session:
        """A fresh build (every call is an independent, identical machine)."""
        return build_machine(self.arch, self.scenario, self.zaps, self.variety)


def _st() -> Any:
    try:
        from hypothesis import strategies
    except ImportError as e:  # pragma: no cover - hypothesis is a dev dependency
        raise ImportError("ptshim.strategies needs hypothesis (pip install 'ptshim[dev]')"
                          ) from e
    return strategies


def machines(arch: str, max_ops: int = 8) -> SearchStrategy[Machine]:
    """Random valid machines of ``arch`` (1 to ``max_ops`` scenario ops)."""
    st = _st()

    def make(rng: random.Random, n: int) -> Machine:
        gen = scenario_gen(arch, rng)
        sc = gen.scenario(n, f"hypothesis-{arch}")
        zaps = choose_zaps(build_machine(arch, sc), rng)
        return Machine(arch, sc, zaps, rng.randrange(1 << 32))

    s: SearchStrategy[Machine] = st.builds(make, st.randoms(use_true_random=False),
                                           st.integers(1, max_ops))
    return s


def ranges(machine: Machine) -> SearchStrategy[tuple[int, int]]:
    """User ranges ``(start, end)`` of ``machine``, biased as :func:`ptshim.pairs.choose_range`."""
    st = _st()
    s = machine.build()
    r: SearchStrategy[tuple[int, int]] = st.randoms(use_true_random=False).map(
        lambda rng: choose_range(s, rng))
    return r


def examples(arch: str, max_ops: int = 8) -> SearchStrategy[Example]:
    """A machine of ``arch`` and a range of it, as a :class:`ptshim.pairs.Example`."""
    def with_range(m: Machine) -> SearchStrategy[Example]:
        return ranges(m).map(lambda r: Example(arch, m.scenario, m.zaps, r[0], r[1],
                                               variety=m.variety))

    s: SearchStrategy[Example] = machines(arch, max_ops).flatmap(with_range)
    return s
