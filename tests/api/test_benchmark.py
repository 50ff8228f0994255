import pytest

from accounts.models import User
from jobs.benchmarks.api import USERNAME_PREFIX, api_benchmark, format_api_line
from jobs.models import Job


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_api_benchmark_measures_a_real_server_and_cleans_up():
    result = api_benchmark(jobs=60, clients=2, seconds=1.5, processes=1)
    assert result["errors"] == 0, result
    assert result["requests"] > 0
    assert 0 < result["p50_ms"] <= result["p95_ms"]
    assert result["rps"] > 0
    expected = f"p50_ms={result['p50_ms']} p95_ms={result['p95_ms']} rps={result['rps']}"
    assert format_api_line(result) == expected
    assert not Job.objects.exists()
    assert not User.objects.filter(username__startswith=USERNAME_PREFIX).exists()
