"""conftest.py refuses, at collection, a test asking for an argument that is neither a fixture nor
a parameter: skipped tests (the GPU-only ones on CI) would otherwise hide it."""
import conftest
import pytest

pytest_plugins = ["pytester"]

# Only the hook: the suite's conftest brings fixtures and imports the planted tests have no use for.
class CHECK:
    pytest_collection_modifyitems = staticmethod(conftest.pytest_collection_modifyitems)

FIXTURES = """
import pytest

@pytest.fixture
def gen():
    return 0

@pytest.fixture
def seeded(gen, request):
    return gen
"""


@pytest.mark.parametrize("source,unknown", [
    # the parametrize decorating a helper instead of the test (test_cuda_big.py once)
    ("""@pytest.mark.parametrize("op", ["cutmix", "mixup"])
def case_id(v):
    return str(v)

@pytest.mark.parametrize("n", [1, 2])
def test_planted(op, n, gen):
    pass""", "op"),
    ("""@pytest.fixture
def partner(seeded, missing):
    return seeded

def test_planted(partner):
    pass""", "missing"),
    ("""class TestPlanted:
    @pytest.mark.usefixtures("gone")
    def test_planted(self, tmp_path):
        pass""", "gone"),
], ids=["helper_parametrized", "fixture_needs_unknown", "usefixtures_unknown"])
def test_unknown_argument_of_a_skipped_test_fails_collection(pytester, source, unknown):
    pytester.makeconftest(FIXTURES)
    pytester.makepyfile(test_planted='import pytest\n\npytestmark = pytest.mark.skipif(True, reason="no GPU")\n\n'
                                     + source)
    for args in (["--co"], []):
        result = pytester.runpytest(*args, plugins=[CHECK])
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*neither a fixture nor a parameter*", f"*test_planted.py::*test_planted: {unknown}"])


def test_fixtures_and_parameters_pass(pytester):
    pytester.makeconftest(FIXTURES)
    pytester.makepyfile(test_good="""
        import pytest

        @pytest.fixture
        def local(seeded):
            return seeded

        @pytest.mark.skipif(True, reason="no GPU")
        @pytest.mark.parametrize("op", ["cutmix", "mixup"])
        def test_skipped(op, local, request):
            pass

        @pytest.mark.parametrize("gen", [5], indirect=True)
        @pytest.mark.parametrize("n,k", [(1, 2)])
        def test_indirect_and_direct(gen, n, k, tmp_path):
            assert gen == 0 and (n, k) == (1, 2)

        class TestMethods:
            @pytest.mark.usefixtures("gen")
            def test_method(self, seeded, monkeypatch):
                pass
    """)
    result = pytester.runpytest(plugins=[CHECK])
    result.assert_outcomes(passed=2, skipped=2)
