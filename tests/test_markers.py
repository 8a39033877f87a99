"""A test module without a category marker stops the run (tests/markers.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    unit: pure logic\n"


def test_an_unmarked_module_stops_the_run_naming_it(pytester: pytest.Pytester):
    pytester.makeini(INI)
    pytester.makepyfile(
        test_marked="import pytest\npytestmark = pytest.mark.unit\ndef test_a():\n    pass\n",
        test_unmarked="def test_b():\n    pass\n",
    )
    result = pytester.runpytest("-p", "tests.markers")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*without a category marker*test_unmarked.py*"])
    assert "test_marked.py" not in result.stderr.str()


def test_marked_modules_run(pytester: pytest.Pytester):
    pytester.makeini(INI)
    pytester.makepyfile(
        test_marked="import pytest\npytestmark = [pytest.mark.unit]\ndef test_a():\n    pass\n"
    )
    pytester.runpytest("-p", "tests.markers").assert_outcomes(passed=1)
