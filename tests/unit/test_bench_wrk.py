"""The benchmarks' reading of wrk's output (bench/wrk.py): every unit wrk prints, latencies of
a second and more, and runs whose requests all outlasted wrk's timeout."""

from __future__ import annotations

import pytest
from bench import wrk

FAST = """\
Running 3s test @ http://127.0.0.1:8766/a.bin
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.65ms    1.25ms  23.58ms   85.02%
    Req/Sec   753.33    111.81     0.92k    66.67%
  Latency Distribution
     50%    2.46ms
     75%    3.11ms
     90%    3.85ms
     99%    5.97ms
  4498 requests in 3.00s, 429.84MB read
Requests/sec:   1498.83
Transfer/sec:    143.23MB
"""

# A server answering in 1.05 s: wrk pads "1.09s" to its column with one trailing space (written
# "_" here).
SLOW = """\
Running 3s test @ http://127.0.0.1:8765/
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.07s    22.43ms   1.09s   100.00%
    Req/Sec     1.00      0.00     1.00    100.00%
  Latency Distribution
     50%    1.09s_
     75%    1.09s_
     90%    1.09s_
     99%    1.09s_
  8 requests in 3.01s, 0.88KB read
Requests/sec:      2.66
Transfer/sec:     300.72B
""".replace("_\n", " \n")

# The same server answering in 2.5 s with wrk's default 2 s timeout: every request is a
# timeout, and the distribution is printed as zeros.
TIMED_OUT = """\
Running 6s test @ http://127.0.0.1:8765/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00    100.00%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  4 requests in 6.01s, 452.00B read
  Socket errors: connect 0, read 0, write 0, timeout 4
Requests/sec:      0.67
Transfer/sec:      75.20B
"""

MINUTES = """\
Running 5m test @ http://127.0.0.1:8000/big
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.50m    10.00s    2.01m    75.00%
    Req/Sec     0.00      0.00     0.00    100.00%
  Latency Distribution
     50%    1.48m_
     75%    1.60m_
     90%    1.90m_
     99%    2.01m_
  12 requests in 5.00m, 2.63GB read
  Non-2xx or 3xx responses: 3
Requests/sec:      0.04
Transfer/sec:      8.98MB
""".replace("_\n", " \n")


def test_milliseconds_and_sizes() -> None:
    result = wrk.parse(FAST)
    assert result.requests == 4498
    assert result.seconds == 3.0
    assert result.requests_per_s == 1498.83
    assert result.bytes_per_s == pytest.approx(143.23 * 1024 * 1024)
    assert (result.p50_ms, result.p75_ms, result.p90_ms, result.p99_ms) == (
        2.46,
        3.11,
        3.85,
        5.97,
    )
    assert result.latency_avg_ms == 2.65
    assert result.latency_max_ms == 23.58
    assert result.non_2xx_3xx == 0
    assert result.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}


def test_latencies_of_a_second_and_more_are_kept() -> None:
    result = wrk.parse(SLOW)
    assert result.p50_ms == pytest.approx(1090.0)
    assert result.p99_ms == pytest.approx(1090.0)
    assert result.latency_avg_ms == pytest.approx(1070.0)
    assert result.bytes_per_s == pytest.approx(300.72)


def test_minutes_and_non_2xx() -> None:
    result = wrk.parse(MINUTES)
    assert result.p50_ms == pytest.approx(1.48 * 60_000)
    assert result.p99_ms == pytest.approx(2.01 * 60_000)
    assert result.latency_max_ms == pytest.approx(2.01 * 60_000)
    assert result.seconds == pytest.approx(300.0)
    assert result.non_2xx_3xx == 3
    assert result.bytes_per_s == pytest.approx(8.98 * 1024 * 1024)


def test_requests_past_the_timeout_are_counted_not_read_as_zero_latency() -> None:
    result = wrk.parse(TIMED_OUT)
    assert result.socket_errors["timeout"] == 4
    assert result.p50_ms is None
    assert result.p99_ms is None
    assert result.latency_max_ms is None


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("820.00us", 0.82),
        ("12.31ms", 12.31),
        ("1.02s", 1020.0),
        ("  1.02s ", 1020.0),
        ("2.50m", 150_000.0),
        ("1.00h", 3_600_000.0),
        ("5s", 5000.0),
    ],
)
def test_durations(text: str, ms: float) -> None:
    assert wrk.duration_ms(text) == pytest.approx(ms)


def test_a_duration_reads_as_printed_in_the_tables() -> None:
    """The tables of docs/performance.md print the figure as it is: 2030.0 ms, not 2029.99..."""
    assert str(wrk.duration_ms("2.03s")) == "2030.0"


@pytest.mark.parametrize(
    ("text", "size"),
    [("512.00B", 512), ("35.16KB", 35.16 * 1024), ("1.02GB", 1.02 * 1024**3)],
)
def test_sizes(text: str, size: float) -> None:
    assert wrk.size_bytes(text) == pytest.approx(size)


def test_garbage_is_refused() -> None:
    with pytest.raises(ValueError):
        wrk.duration_ms("-nan%")
    with pytest.raises(ValueError):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_rotation_script_lists_every_path() -> None:
    script = wrk.rotation_script(["/a/1", '/b/"2"'])
    assert '"/a/1"' in script
    assert '"/b/\\"2\\""' in script
    assert "function request()" in script
