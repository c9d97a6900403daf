"""Hostile input to the scenario grammar and the CLI (issue #9 §3): every error is exit 2, one
line on stderr starting with ``ptshim: error:``, no traceback, and names JSON types (null,
array, object, string, number, true/false), never Python ones.  Explicit cases first, then a
hypothesis fuzz test of random scenario-shaped documents and mutations of ``examples/*.json``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arches.errors import BadInput
from ptshim.cli import main
from ptshim.scenario import describe, load_json_scenario, load_scenario, parse_op

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
SMALL = ROOT / "examples" / "small-pages.json"
ARCHES = ("x86_64", "arm64-4k-48")

PY_TYPE_WORDS = re.compile(r"\b(NoneType|list|dict|str|int|float|bool|tuple)\b")
PY_NOT_TYPE = re.compile(r"\bnot (a |an )?(NoneType|list|dict|str|int|float|bool|tuple)\b")


def run_main(args: list[str]) -> tuple[int, str, str]:
    """``main(args)`` with stdout and stderr captured (no pytest fixture: usable under
    hypothesis)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def assert_clean_exit(code: int, err: str) -> None:
    """Exit 0, 1 or 2; an error is one line, ``ptshim: error:`` (2) or ``ptshim: check
    failed:`` (1), with no traceback and no Python type name."""
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err, err
    assert not PY_NOT_TYPE.search(err), err
    if code == 2:
        assert len(err.splitlines()) == 1 and err.endswith("\n"), err
        assert err.startswith("ptshim: error:"), err
    elif code == 1:
        assert len(err.splitlines()) <= 1, err


def run_text(text: str, arch: str = "x86_64", name: str = "s.json") -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_text(text, encoding="utf-8")
        return run_main(["run", str(p), "--arch", arch])


def bad(text: str) -> str:
    """The one-line error of a scenario that must be bad input."""
    code, out, err = run_text(text)
    assert code == 2, (code, out, err)
    assert_clean_exit(code, err)
    return err


MAP = {"op": "map", "va": "0x400000", "pa": "0x1000", "size": "0x1000", "prot": "rw"}


def doc(**fields: Any) -> str:
    return json.dumps({"ops": [{**MAP, **fields}]})


# -- explicit cases ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [{"a": 1}, [1], ["map"], {}, []])
def test_op_kind_object_or_array(kind: object) -> None:
    err = bad(json.dumps({"ops": [{"op": kind}]}))
    assert "op 0:" in err and '"op"' in err
    assert "an object" in err or "an array" in err


@pytest.mark.parametrize("kind, shown", [(None, "null"), (True, "true"), (3, "3"),
                                         ("mop", "'mop'"), (1.5, "1.5")])
def test_op_kind_scalars(kind: object, shown: str) -> None:
    err = bad(json.dumps({"ops": [{"op": kind}]}))
    assert f"not {shown}" in err or shown in err


def test_op_kind_missing() -> None:
    assert "missing field op" in bad('{"ops": [{"va": 1}]}')


@pytest.mark.parametrize("digits", [4301, 5000, 20000])
def test_integer_over_digit_limit(digits: int) -> None:
    err = bad('{"ops": [{"op": "map", "va": ' + "9" * digits + "}]}")
    assert "digits" in err and "invalid JSON" in err


def test_integer_over_digit_limit_in_load_json_scenario() -> None:
    with pytest.raises(BadInput, match="digits"):
        load_json_scenario('{"ops": [{"op": "fork", "mm": ' + "1" * 5000 + "}]}")


def test_huge_hex_integer_in_message() -> None:
    """A "0x..." string has no digit limit: a huge mm must still give a message."""
    err = bad(json.dumps({"ops": [{"op": "fork", "mm": "0x" + "f" * 5000}]}))
    assert "op 0 (fork): mm" in err and len(err) < 1000


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json(depth: int) -> None:
    err = bad('{"ops": ' + "[" * depth + "]" * depth + "}")
    assert "invalid JSON" in err and "deep" in err


def test_deeply_nested_json_in_load_json_scenario() -> None:
    with pytest.raises(BadInput, match="deep"):
        load_json_scenario("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("const", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants(const: str) -> None:
    err = bad('{"ops": [{"op": "map", "va": ' + const + "}]}")
    assert "invalid JSON" in err and const in err


def test_scenario_path_not_utf8(tmp_path: Path) -> None:
    name = os.fsdecode(b"bad\xff.json")
    p = tmp_path / name
    try:
        p.write_text(SMALL.read_text())
    except (OSError, UnicodeEncodeError):  # pragma: no cover - a filesystem that refuses it
        pytest.skip("the filesystem refuses undecodable names")
    code, out, err = run_main(["run", str(p), "--arch", "x86_64"])
    assert code == 0, err
    out.encode("utf-8")  # printable: the name is shown with \xff, no lone surrogate
    assert "bad\\xff" in out
    p.write_text('{"ops": [null]}')
    code, out, err = run_main(["run", str(p), "--arch", "x86_64"])
    assert_clean_exit(code, err)
    assert code == 2 and "bad\\xff.json" in err
    err.encode("utf-8")


def test_scenario_path_bytes(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text(SMALL.read_text())
    assert len(load_scenario(os.fsencode(p)).ops) == len(load_scenario(SMALL).ops)
    with pytest.raises(BadInput, match=r"bad\\xff"):
        load_scenario(os.fsencode(tmp_path) + b"/bad\xff.json")


def test_scenario_path_undecodable_subprocess(tmp_path: Path) -> None:
    """Through a real process: argv decoded with surrogateescape, stdout strict UTF-8."""
    p = os.fsencode(tmp_path) + b"/und\xfe.json"
    try:
        with open(p, "w") as f:
            f.write(SMALL.read_text())
    except OSError:  # pragma: no cover
        pytest.skip("the filesystem refuses undecodable names")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    r = subprocess.run([sys.executable, "-m", "ptshim", "run", p, "--arch", "x86_64"],
                       capture_output=True, cwd=ROOT, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert b"und\\xfe" in r.stdout and b"Traceback" not in r.stderr


@pytest.mark.parametrize("path", ["a\0b.json", "x" * 5000 + ".json", ""])
def test_unusable_paths(path: str) -> None:
    code, _, err = run_main(["run", path, "--arch", "x86_64"])
    assert code == 2
    assert_clean_exit(code, err)


def test_not_utf8_contents(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_bytes(b'{"ops": [], "x": "\xff"}')
    code, _, err = run_main(["run", str(p), "--arch", "x86_64"])
    assert code == 2 and "UTF-8" in err
    assert_clean_exit(code, err)


class FullDevice(io.StringIO):
    """A stdout on a full device: every write (and flush) fails with ENOSPC."""

    def write(self, s: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("args", [
    ["run", str(SMALL), "--arch", "x86_64"],
    ["run", str(ROOT / "examples"), "--arch", "arm64-4k-48"],
    ["arches"],
])
def test_stdout_full(args: list[str]) -> None:
    err = io.StringIO()
    with contextlib.redirect_stdout(FullDevice()), contextlib.redirect_stderr(err):
        code = main(args)
    assert code == 2
    text = err.getvalue()
    assert text.startswith("ptshim: error: cannot write the output: ")
    assert "No space left on device" in text and len(text.splitlines()) == 1


def test_stdout_dev_full() -> None:
    if not os.path.exists("/dev/full"):  # pragma: no cover
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "ptshim", "run", str(SMALL), "--arch",
                            "x86_64"], stdout=full, stderr=subprocess.PIPE, text=True,
                           cwd=ROOT, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("ptshim: error: cannot write the output: "), r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr


@pytest.mark.parametrize("value, shown", [
    (None, "null"), (True, "true"), (False, "false"), ([1], "an array"), ({}, "an object"),
    (1.5, "the number 1.5"), ("abc", "the string 'abc'"), (7, "the number 7"),
    ("it's", "the string 'it\\'s'"),
])
def test_describe(value: object, shown: str) -> None:
    assert describe(value) == shown


def test_describe_bounded() -> None:
    assert len(describe("x" * 10_000)) < 100
    assert len(describe(10 ** 4000)) < 100
    assert len(describe(int("f" * 20000, 16))) < 100


@pytest.mark.parametrize("raw", [
    None, [], "map", 3, True,
    {"op": "map", "va": None, "pa": 0, "size": 4096, "prot": "r"},
    {"op": "map", "va": [1], "pa": 0, "size": 4096, "prot": "r"},
    {"op": "map", "va": {}, "pa": 0, "size": 4096, "prot": "r"},
    {"op": "map", "va": 1.5, "pa": 0, "size": 4096, "prot": "r"},
    {"op": "map", "va": 0, "pa": 0, "size": 4096, "prot": ["r"]},
    {"op": "map", "va": 0, "pa": 0, "size": 4096, "prot": None},
    {"op": "map", "va": 0, "pa": 0, "size": 4096, "prot": "r", "user": "yes"},
    {"op": "map", "va": 0, "pa": 0, "size": 4096, "prot": "r", "user": 0},
    {"op": "map", "va": 0, "size": 4096, "prot": "r", "anon": [True]},
    {"op": "map", "va": 0, "pa": 0, "size": 4096, "prot": "r", "page_size": []},
    {"op": "fork", "mm": None},
])
def test_messages_name_json_types(raw: object) -> None:
    with pytest.raises(BadInput) as e:
        parse_op(3, raw)
    msg = str(e.value)
    assert msg.startswith("op 3"), msg
    assert not PY_TYPE_WORDS.search(msg), msg
    assert "[" not in msg or "[...]" in msg, msg  # no Python repr of a list


@pytest.mark.parametrize("text, expect", [
    ("[]", "not an array"), ("null", "not null"), ('"x"', "not the string 'x'"),
    ('{"ops": {}}', '"ops" must be a list of ops (a JSON array), not an object'),
    ('{"ops": null}', "not null"), ("{}", "missing"),
])
def test_top_level_messages(text: str, expect: str) -> None:
    err = bad(text)
    assert expect in err, err


# -- fuzz --------------------------------------------------------------------------------

FIELDS = ["op", "va", "pa", "size", "prot", "user", "page_size", "anon", "mm", "new_va",
          "comment", "ops"]
KINDS = ["map", "unmap", "protect", "fork", "mremap"]
HUGE = "\x00HUGE\x00"  # replaced by a 5000-digit literal after json.dumps

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-(2 ** 70), 2 ** 70),
    st.sampled_from([0, 0x1000, 0x200000, 0x400000, 0x40000000, 2 ** 47, 2 ** 64 - 0x1000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(KINDS + ["none", "r", "rw", "rx", "rwx", "0x", "0x1000", "0xg", " 0x10 ",
                             "0x" + "f" * 300, HUGE]),
    st.integers(0, 2 ** 64).map(hex),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), inner, max_size=3)),
    max_leaves=8)
ops = st.fixed_dictionaries(
    {"op": st.sampled_from(KINDS) | values},
    optional={f: values for f in FIELDS[1:]},
) | values
documents = st.one_of(
    st.fixed_dictionaries({"ops": st.lists(ops, max_size=4)}),
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), values, max_size=3),
    values,
)


def dumps(doc: object) -> str:
    return json.dumps(doc).replace(json.dumps(HUGE), "9" * 5000)


def check_text(text: str, arch: str) -> None:
    try:
        code, _, err = run_text(text, arch)
    except BaseException as e:  # pragma: no cover - the failure being tested for
        raise AssertionError(f"uncaught {type(e).__name__}: {e}") from e
    assert_clean_exit(code, err)


# max_examples: the profile's (tests/conftest.py: HYPOTHESIS_MAX_EXAMPLES, default 50)
FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(documents, st.sampled_from(ARCHES))
def test_fuzz_scenario_documents(doc: object, arch: str) -> None:
    check_text(dumps(doc), arch)


@FUZZ
@given(st.sampled_from(EXAMPLES), st.sampled_from(ARCHES), st.data())
def test_fuzz_example_mutations(example: Path, arch: str, data: st.DataObject) -> None:
    scenario = json.loads(example.read_text())
    ops_ = scenario["ops"][:4]
    scenario["ops"] = ops_
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["set", "delete", "replace_op", "insert", "text"]))
        if action == "text":
            text = dumps(scenario)
            i = data.draw(st.integers(0, len(text)))
            text = text[:i] + data.draw(st.sampled_from(["", "[", "}", '"', "9" * 5000,
                                                         "\\", ",", "\udcff"])) + text[i + 1:]
            check_text(text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
                       arch)
            return
        if not ops_ or action == "insert":
            ops_.insert(data.draw(st.integers(0, len(ops_))), data.draw(ops))
            continue
        i = data.draw(st.integers(0, len(ops_) - 1))
        if action == "replace_op" or not isinstance(ops_[i], dict):
            ops_[i] = data.draw(ops)
        elif action == "set":
            ops_[i][data.draw(st.sampled_from(FIELDS))] = data.draw(values)
        elif ops_[i]:
            del ops_[i][data.draw(st.sampled_from(sorted(ops_[i])))]
    check_text(dumps(scenario), arch)
